import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { BoundedMap } from '../../../lib/bounded-map.js';
import type { FopArgs, FopReply, Iatt } from '../../../lib/fops.js';
import { isDir } from '../../../lib/fops.js';
import { renamedPath } from '../../../lib/paths.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

/** Most a file with more than one name stays cached (see put). */
const MULTI_LINK_TTL_MS = 1000;

interface Entry {
  iatt: Iatt;
  expiresAt: number;
}

/**
 * performance/md-cache: keeps the attributes the bricks just returned (lookup, create,
 * setattr, readdir's per-entry attributes...) for md-cache-timeout seconds, so the stat
 * that follows almost every change or listing is answered without a round trip. Every
 * change made through this client drops or replaces the entries it affects; changes made
 * by other clients are dropped when a brick says so (invalidate, features.cache-invalidation)
 * and otherwise show after at most the timeout, the same bound as the kernel's own
 * attribute cache.
 */
export class MdCache extends Xlator implements FopImpl {
  static override readonly description = 'Caches file attributes for a short time';
  static override readonly options = {
    'md-cache-timeout': {
      type: 'int', default: 1, min: 0, max: 600, description: 'Seconds an attribute stays valid (0 disables the cache)',
      volume: { key: 'performance.md-cache-timeout', description: 'Seconds clients keep file attributes (0 turns the attribute cache off; default 60 while features.cache-invalidation is on, else 1)' },
      // While the bricks push invalidations another client's change drops what is kept at
      // once, so the timeout only bounds what no push reaches (docs/cache-invalidation.md,
      // "Limits"): 60 s, as GlusterFS's metadata-cache option group with cache-invalidation
      // (600 s there), so the stat, open or rm of a file made, listed or renamed a while ago
      // needs no lookup. Without pushes, 1 s bounds what a client misses.
      defaultWhen: { key: 'features.cache-invalidation', is: true, default: 60 },
    },
    'cache-entries': { type: 'int', default: 65536, min: 16, max: 1 << 22, description: 'Paths kept at most' },
  } as const;
  /** `volume set performance.md-cache on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.md-cache', default: true, description: 'Cache file attributes in the client (on/off)' } as const;

  private readonly cache: BoundedMap<string, Entry>;
  /**
   * The entry of each file by gfid: every name of a hard link maps to the same Entry, so a
   * change through one name (a setattr, a write, an unlink) is seen through the others at once.
   */
  private readonly byGfid: BoundedMap<string, Entry>;
  /** Path each open fd was opened at, to key fstat and writes. */
  private readonly fdPath = new Map<number, string>();
  private hits = 0;
  private misses = 0;
  /** Upcalls received (paths other clients changed). */
  private invalidations = 0;
  /**
   * Bumped by every upcall: a lookup, fstat or listing wound before one may carry attributes
   * from before the change it announces, and is then not cached (the reply may arrive after
   * the push that should have dropped it).
   */
  private generation = 0;

  constructor(init: XlatorInit) {
    super(init);
    this.cache = new BoundedMap(this.optNumber('cache-entries'));
    this.byGfid = new BoundedMap(this.optNumber('cache-entries'));
  }

  private get ttlMs(): number {
    return this.optNumber('md-cache-timeout') * 1000;
  }

  /** A shorter timeout (cache invalidation turned off: 60 s -> 1 s) also bounds what is already kept. */
  override reconfigure(options: Record<string, string>): void {
    const before = this.ttlMs;
    super.reconfigure(options);
    if (this.ttlMs < before) {
      this.cache.clear();
      this.byGfid.clear();
    }
  }

  override statedump(): Record<string, unknown> {
    return { entries: this.cache.size, hits: this.hits, misses: this.misses, invalidations: this.invalidations, openFds: this.fdPath.size };
  }

  private put(path: string, iatt: Iatt): void {
    if (this.ttlMs <= 0) return;
    // A file with several names: the names this client knows share one entry (byGfid), but
    // another client's change is pushed by the path it used, which may be a name not known
    // here; such a name's entry keeps at most 1 s.
    const ttl = iatt.nlink > 1 && !isDir(iatt) ? Math.min(this.ttlMs, MULTI_LINK_TTL_MS) : this.ttlMs;
    const expiresAt = Date.now() + ttl;
    const g = iatt.gfid;
    let e = g === undefined ? undefined : this.byGfid.get(g);
    if (e) {
      e.iatt = iatt;
      e.expiresAt = expiresAt;
    } else {
      e = { iatt, expiresAt };
      if (g !== undefined) this.byGfid.set(g, e);
    }
    this.cache.set(path, e);
  }

  /** A path's attributes are no longer known: its entry goes, and expires for every other name of the file. */
  private forget(path: string): void {
    const e = this.cache.get(path);
    if (!e) return;
    this.cache.delete(path);
    e.expiresAt = 0;
  }

  private fresh(path: string): Iatt | undefined {
    const e = this.cache.get(path);
    if (!e) return undefined;
    if (e.expiresAt < Date.now()) {
      this.cache.delete(path);
      return undefined;
    }
    return e.iatt;
  }

  /**
   * An entry op changed a directory: its cached attributes are updated here (mtime, ctime,
   * link count for subdirectories) rather than dropped, so the kernel's permission check
   * before the next create in it (it re-reads the directory's attributes after every
   * change) needs no round trip. The times are this client's clock, within milliseconds of
   * the brick's; the next lookup after the timeout brings the brick's own.
   */
  private touchParent(path: string, nlinkDelta = 0): void {
    const dir = pathMod.dirname(path);
    const e = this.cache.get(dir);
    if (!e) return;
    const now = Date.now();
    e.iatt = { ...e.iatt, mtimeMs: now, ctimeMs: now, nlink: e.iatt.nlink + nlinkDelta };
  }

  private dropWithParent(path: string, nlinkDelta = 0): void {
    this.forget(path);
    this.touchParent(path, nlinkDelta);
  }

  /**
   * A write through this client: the cached size and times follow it (a write-behind below
   * may answer before the brick has the data, without attributes), so the stat the kernel
   * sends after every write needs no round trip. A reply that carries attributes wins.
   */
  private wrote(fd: number, end: number, reply: FopReply<'write'>): void {
    const path = this.fdPath.get(fd);
    if (path === undefined) return;
    const replied = (reply as { iatt?: Iatt }).iatt;
    if (replied) return this.put(path, replied);
    const e = this.cache.get(path);
    if (!e) return;
    const now = Date.now();
    const size = Math.max(e.iatt.size, end);
    e.iatt = { ...e.iatt, size, blocks: Math.max(e.iatt.blocks, Math.ceil(size / 512)), mtimeMs: now, ctimeMs: now };
  }

  private dropTree(dir: string): void {
    const prefix = dir + '/';
    for (const k of [...this.cache.keys()]) if (k === dir || k.startsWith(prefix)) this.forget(k);
  }

  /**
   * Another client changed these paths: their attributes go, and their parents' (an entry
   * change moves the directory's times and link count). A directory's renamed or removed
   * subtree goes with it: its paths now name something else or nothing.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    for (const p of paths) {
      const e = this.cache.get(p);
      if (e && isDir(e.iatt)) this.dropTree(p);
      else this.forget(p);
      if (p !== '/') this.forget(pathMod.dirname(p));
    }
    this.invalidations++;
    this.generation++;
    super.invalidate(paths, from);
  }

  /**
   * A brick came or went: while it was away, pushes from it were lost (and a brick that
   * comes back may show other copies), so nothing cached can be trusted to be current.
   */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.cache.clear();
    this.byGfid.clear();
    this.generation++;
    super.notify(event, from);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    if (!a.xattrs?.length) {
      const iatt = this.fresh(a.path);
      if (iatt) {
        this.hits++;
        return { iatt };
      }
    }
    this.misses++;
    const gen = this.generation;
    const r = await this.children[0]!.call('lookup', a, f);
    if (gen === this.generation) this.put(a.path, r.iatt);
    return r;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const path = this.fdPath.get(a.fd);
    const iatt = path === undefined ? undefined : this.fresh(path);
    if (iatt) {
      this.hits++;
      return { iatt };
    }
    this.misses++;
    const gen = this.generation;
    const r = await this.children[0]!.call('fstat', a, f);
    if (path !== undefined && gen === this.generation) this.put(path, r.iatt);
    return r;
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const gen = this.generation;
    const r = await this.children[0]!.call('readdir', a, f);
    if (gen !== this.generation) return r;
    const base = a.path === '/' ? '' : a.path;
    for (const e of r.entries) this.put(`${base}/${e.name}`, e.iatt);
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const r = await this.children[0]!.call('create', a, f);
    this.touchParent(a.path);
    this.fdPath.set(r.fd, a.path);
    this.put(a.path, r.iatt);
    return r;
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await this.children[0]!.call('open', a, f);
    this.fdPath.set(r.fd, a.path);
    if (a.flags & fs.constants.O_TRUNC) this.forget(a.path);
    return r;
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    this.fdPath.delete(a.fd);
    return this.children[0]!.call('release', a, f);
  }

  private dropFd(fd: number): void {
    const path = this.fdPath.get(fd);
    if (path !== undefined) this.forget(path);
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    try {
      const r = await this.children[0]!.call('write', a, f);
      this.wrote(a.fd, a.offset + r.size, r);
      return r;
    } catch (e) {
      this.dropFd(a.fd);
      throw e;
    }
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    this.dropFd(a.fd);
    try {
      return await this.children[0]!.call('ftruncate', a, f);
    } finally {
      this.dropFd(a.fd);
    }
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const before = this.fresh(a.path);
    this.forget(a.path);
    const r = await this.children[0]!.call('setattr', a, f);
    if (r.iatt) {
      this.put(a.path, r.iatt);
    } else if (before) {
      // A write-behind below acknowledged the change without attributes: apply it here.
      const at = a.attrs;
      const now = Date.now();
      this.put(a.path, {
        ...before,
        mode: at.mode === undefined ? before.mode : (before.mode & ~0o7777) | (at.mode & 0o7777),
        uid: at.uid ?? before.uid, gid: at.gid ?? before.gid,
        atimeMs: at.atimeMs ?? before.atimeMs, mtimeMs: at.mtimeMs ?? before.mtimeMs, ctimeMs: now,
      });
    }
    return r;
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    const r = await this.children[0]!.call('mkdir', a, f);
    this.touchParent(a.path, 1);
    this.put(a.path, r.iatt);
    return r;
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    const r = await this.children[0]!.call('mknod', a, f);
    this.touchParent(a.path);
    this.put(a.path, r.iatt);
    return r;
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    const r = await this.children[0]!.call('symlink', a, f);
    this.touchParent(a.path);
    this.put(a.path, r.iatt);
    return r;
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    this.dropWithParent(a.path);
    // Every name of the file changes link count; other names' entries cannot be found by path.
    this.forget(a.target);
    const r = await this.children[0]!.call('link', a, f);
    this.put(a.path, r.iatt);
    return r;
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    this.forget(a.path);
    const r = await this.children[0]!.call('unlink', a, f);
    this.dropWithParent(a.path);
    return r;
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    this.forget(a.path);
    const r = await this.children[0]!.call('rmdir', a, f);
    this.dropWithParent(a.path, -1);
    return r;
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    const source = this.fresh(a.from);
    // A file known to be one moves its parents' times only, as a create or unlink does
    // (the kernel re-reads them before the next change there). A renamed directory, or a
    // name not known, may change both parents' link counts (find reads them): drop both.
    const knownFile = source !== undefined && !isDir(source);
    for (const p of [a.from, a.to]) {
      this.forget(p);
      if (!knownFile) this.forget(pathMod.dirname(p));
    }
    const gen = this.generation;
    try {
      const r = await this.children[0]!.call('rename', a, f);
      if (knownFile) {
        for (const p of [a.from, a.to]) this.touchParent(p);
        // The file is unchanged but for the rename's ctime: the lookup of its new name that
        // follows (stat, rm, the next rename) needs no round trip. Not when another client
        // changed something meanwhile: the attributes may be from before that.
        if (gen === this.generation) this.put(a.to, { ...source, ctimeMs: Date.now() });
      }
      return r;
    } finally {
      if (!knownFile) {
        this.dropTree(a.from);
        this.dropTree(a.to);
      }
      for (const [fd, p] of this.fdPath) {
        const moved = renamedPath(p, a.from, a.to);
        if (moved !== undefined) this.fdPath.set(fd, moved);
      }
    }
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    this.forget(a.path);
    return this.children[0]!.call('setxattr', a, f);
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    this.forget(a.path);
    return this.children[0]!.call('removexattr', a, f);
  }
}

registerXlator('performance/md-cache', MdCache);
