import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { BoundedMap } from '../../../lib/bounded-map.js';
import type { FopArgs, FopReply, Iatt } from '../../../lib/fops.js';
import type { Fd, Inode } from '../../../lib/inode.js';
import { isDir } from '../../../lib/fops.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

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
 *
 * Entries are the files', keyed by gfid (the fop's inode, or the name's gfid from an
 * earlier reply), so every name of a hard link sees one entry: a change through one name is
 * seen through the others at once. A file without a gfid is known by its path. The entries
 * live in a bounded map rather than on the inodes, because a lookup's reply must find (and
 * fill) the entry of a name before the bridge has an inode for it.
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

  /** By gfid (a file without one: by path), least recently stored first. */
  private readonly entries: BoundedMap<string, Entry>;
  /**
   * The gfid of each name this translator saw in a reply: a fop without an inode (a caller
   * outside the bridge, a parent directory, a brick's push) finds the file's entry through it.
   */
  private readonly names: BoundedMap<string, string>;
  /**
   * Keys of entries of files with several names. A brick's push names the path another
   * client used, which may be a name of such a file this client never saw: a push of a path
   * not known here drops these (hard links are rare), so no other bound is needed for them.
   */
  private multiLinked = new Set<string>();
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
    this.entries = new BoundedMap(this.optNumber('cache-entries'));
    this.names = new BoundedMap(this.optNumber('cache-entries'));
  }

  private get ttlMs(): number {
    return this.optNumber('md-cache-timeout') * 1000;
  }

  /** A shorter timeout (cache invalidation turned off: 60 s -> 1 s) also bounds what is already kept. */
  override reconfigure(options: Record<string, string>): void {
    const before = this.ttlMs;
    super.reconfigure(options);
    if (this.ttlMs < before) this.clear();
  }

  override statedump(): Record<string, unknown> {
    return { entries: this.entries.size, names: this.names.size, hits: this.hits, misses: this.misses, invalidations: this.invalidations };
  }

  private clear(): void {
    this.entries.clear();
    this.names.clear();
    this.multiLinked.clear();
  }

  /** The key of the file at path: the caller's inode's gfid, else the name's last known one, else the path. */
  private keyOf(path: string, inode?: Inode): string {
    return inode?.gfid ?? this.names.get(path) ?? this.inodes.find(path)?.gfid ?? path;
  }

  private keyOfFd(fd: Fd): string {
    return this.keyOf(fd.path, fd.inode);
  }

  /** Attributes a reply brought for path: the file's entry, under the reply's gfid when it has one. */
  private put(path: string, iatt: Iatt, inode?: Inode): void {
    this.store(iatt.gfid ?? this.keyOf(path, inode), path, iatt);
  }

  private store(key: string, path: string, iatt: Iatt): void {
    if (this.ttlMs <= 0) return;
    if (key !== path) this.names.set(path, key);
    this.entries.set(key, { iatt, expiresAt: Date.now() + this.ttlMs });
    if (iatt.nlink > 1 && !isDir(iatt)) {
      this.multiLinked.add(key);
      // Evicted entries leave their keys behind: prune when the set outgrows the cache.
      if (this.multiLinked.size > this.entries.limit) this.multiLinked = new Set([...this.multiLinked].filter((k) => this.entries.has(k)));
    } else {
      this.multiLinked.delete(key);
    }
  }

  /** The file's attributes are no longer known, through any of its names. */
  private forget(path: string, inode?: Inode): void {
    this.entries.delete(this.keyOf(path, inode));
  }

  private fresh(key: string): Iatt | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt < Date.now()) {
      this.entries.delete(key);
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
    const e = this.entries.get(this.keyOf(pathMod.dirname(path)));
    if (!e) return;
    const now = Date.now();
    e.iatt = { ...e.iatt, mtimeMs: now, ctimeMs: now, nlink: e.iatt.nlink + nlinkDelta };
  }

  /** The name is gone: the file's entry (its link count changed) and the name's gfid go; its parent's times move. */
  private removed(path: string, inode: Inode | undefined, nlinkDelta = 0): void {
    this.forget(path, inode);
    this.names.delete(path);
    this.touchParent(path, nlinkDelta);
  }

  /**
   * A write through this client: the cached size and times follow it (a write-behind below
   * may answer before the brick has the data, without attributes), so the stat the kernel
   * sends after every write needs no round trip. A reply that carries attributes wins.
   */
  private wrote(fd: Fd, end: number, reply: FopReply<'write'>): void {
    const replied = (reply as { iatt?: Iatt }).iatt;
    if (replied) return this.put(fd.path, replied, fd.inode);
    const e = this.entries.get(this.keyOfFd(fd));
    if (!e) return;
    const now = Date.now();
    const size = Math.max(e.iatt.size, end);
    e.iatt = { ...e.iatt, size, blocks: Math.max(e.iatt.blocks, Math.ceil(size / 512)), mtimeMs: now, ctimeMs: now };
  }

  /** What is known at and below dir, by name: those names now mean something else or nothing. */
  private dropTree(dir: string): void {
    const prefix = dir === '/' ? '/' : dir + '/';
    const under = (k: string): boolean => k === dir || k.startsWith(prefix);
    for (const [name, key] of [...this.names]) {
      if (!under(name)) continue;
      this.entries.delete(key);
      this.names.delete(name);
    }
    // Files without a gfid are keyed by their path.
    for (const k of [...this.entries.keys()]) if (k.startsWith('/') && under(k)) this.entries.delete(k);
  }

  /**
   * Another client changed these paths: their attributes go, and their parents' (an entry
   * change moves the directory's times and link count). A directory's renamed or removed
   * subtree goes with it: its paths now name something else or nothing. A path not known
   * here may be another name of a file with several names: those entries go too.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    let unknown = false;
    for (const p of paths) {
      const key = this.keyOf(p);
      const e = this.entries.get(key);
      if (e && isDir(e.iatt)) {
        this.dropTree(p);
      } else {
        if (key === p && !e) unknown = true;
        this.entries.delete(key);
        // Another client may have put another file under the name.
        this.names.delete(p);
      }
      if (p !== '/') this.forget(pathMod.dirname(p));
    }
    if (unknown) {
      for (const k of this.multiLinked) this.entries.delete(k);
      this.multiLinked.clear();
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
    this.clear();
    this.generation++;
    super.notify(event, from);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    if (!a.xattrs?.length) {
      // A lookup asks what the name holds now: answered only through a name binding learnt
      // here (a push about the name drops it), never through the caller's inode alone, whose
      // name may be one another client has renamed or removed since.
      const iatt = this.fresh(this.names.get(a.path) ?? a.path);
      if (iatt) {
        this.hits++;
        return { iatt };
      }
    }
    this.misses++;
    const gen = this.generation;
    const r = await this.children[0]!.call('lookup', a, f);
    if (gen === this.generation) this.put(a.path, r.iatt, a.inode);
    return r;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const iatt = this.fresh(this.keyOfFd(a.fd));
    if (iatt) {
      this.hits++;
      return { iatt };
    }
    this.misses++;
    const gen = this.generation;
    const r = await this.children[0]!.call('fstat', a, f);
    if (gen === this.generation) this.put(a.fd.path, r.iatt, a.fd.inode);
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
    this.put(a.path, r.iatt, a.fd.inode);
    return r;
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await this.children[0]!.call('open', a, f);
    if (a.flags & fs.constants.O_TRUNC) this.forget(a.path, a.fd.inode);
    return r;
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    try {
      const r = await this.children[0]!.call('write', a, f);
      this.wrote(a.fd, a.offset + r.size, r);
      return r;
    } catch (e) {
      this.forget(a.fd.path, a.fd.inode);
      throw e;
    }
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    this.forget(a.fd.path, a.fd.inode);
    try {
      return await this.children[0]!.call('ftruncate', a, f);
    } finally {
      this.forget(a.fd.path, a.fd.inode);
    }
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const key = this.keyOf(a.path, a.inode);
    const before = this.fresh(key);
    this.entries.delete(key);
    const r = await this.children[0]!.call('setattr', a, f);
    if (r.iatt) {
      this.put(a.path, r.iatt, a.inode);
    } else if (before) {
      // A write-behind below acknowledged the change without attributes: apply it here.
      const at = a.attrs;
      const now = Date.now();
      this.store(key, a.path, {
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

  /** The file's link count changes under every name: its one entry takes the reply's attributes. */
  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    this.removed(a.path, undefined);
    this.forget(a.target, a.inode);
    const r = await this.children[0]!.call('link', a, f);
    this.put(a.path, r.iatt, a.inode);
    return r;
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    this.forget(a.path, a.inode);
    const r = await this.children[0]!.call('unlink', a, f);
    this.removed(a.path, a.inode);
    return r;
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    this.forget(a.path, a.inode);
    const r = await this.children[0]!.call('rmdir', a, f);
    this.removed(a.path, a.inode, -1);
    return r;
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    const key = this.keyOf(a.from, a.inode);
    const source = this.fresh(key);
    // A file known to be one moves its parents' times only, as a create or unlink does
    // (the kernel re-reads them before the next change there). A renamed directory, or a
    // name not known, may change both parents' link counts (find reads them): drop both.
    const knownFile = source !== undefined && !isDir(source);
    this.entries.delete(key);
    this.forget(a.to);
    if (!knownFile) for (const p of [a.from, a.to]) this.forget(pathMod.dirname(p));
    const gen = this.generation;
    try {
      const r = await this.children[0]!.call('rename', a, f);
      if (knownFile) {
        for (const p of [a.from, a.to]) this.touchParent(p);
        this.names.delete(a.from);
        this.names.delete(a.to);
        // The file is unchanged but for the rename's ctime: the lookup of its new name that
        // follows (stat, rm, the next rename) needs no round trip. Not when another client
        // changed something meanwhile: the attributes may be from before that.
        if (gen === this.generation) this.store(key === a.from ? a.to : key, a.to, { ...source, ctimeMs: Date.now() });
      }
      return r;
    } finally {
      if (!knownFile) {
        this.dropTree(a.from);
        this.dropTree(a.to);
      }
    }
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    this.forget(a.path, a.inode);
    return this.children[0]!.call('setxattr', a, f);
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    this.forget(a.path, a.inode);
    return this.children[0]!.call('removexattr', a, f);
  }
}

registerXlator('performance/md-cache', MdCache);
