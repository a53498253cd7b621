import { type Frame } from '../../../lib/frame.js';
import { performance } from 'node:perf_hooks';
import pathMod from 'node:path/posix';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { FsError } from '../../../lib/errors.js';
import type { FopArgs, FopReply } from '../../../lib/fops.js';
import type { Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

/** Every name of a directory, as far as this client knows, until expiresAt. */
interface DirState {
  names: Set<string>;
  expiresAt: number;
  /** The path it was known at: where it is now when the inode table cannot say (no inode of its gfid). */
  path: string;
}

/** A readdir or mkdir in flight whose reply would make its directory known. */
interface Listing {
  /** The directory's path as asked, and its key when known before the reply. */
  dir: string;
  key: string;
  /** Something may be missing from the reply: it must not be believed. */
  spoiled: boolean;
}

const under = (p: string, tree: string): boolean => p === tree || p.startsWith(tree === '/' ? '/' : tree + '/');

/**
 * performance/nl-cache: answers lookups of names that do not exist (every create is
 * preceded by one) from memory. A directory's full name set is known for nl-cache-timeout
 * seconds after this client made it (empty) or listed it; a lookup of a name outside a
 * known set fails with ENOENT without a round trip. Changes made through this client keep
 * the sets exact; changes by other clients forget the directory when a brick says so
 * (invalidate, features.cache-invalidation) and otherwise show after at most the timeout,
 * the bound of md-cache and of the kernel's own caches.
 *
 * The one rule that keeps it safe: a set may hold names that are gone (that only costs a
 * real lookup) but never lack a name that exists. So names are added before the fop that
 * makes them is wound, a removal never drops a name that a fop in flight is making, and a
 * listing is not believed if a name may have been made in its directory while it was in
 * flight, or if the directory's path was removed or renamed meanwhile.
 *
 * A negative entry is a (directory, name) pair, so the state is the directory's: its name set
 * is keyed by the directory's gfid (the readdir's inode, mkdir's reply, or the mount's inode
 * table for the parent of a path), else by its path. A directory renamed keeps its set (its
 * names did not change) and is found under its new path through the table; a set known only
 * by path is forgotten when that path is renamed or removed. The name itself stays a name:
 * a file has no identity until it exists, and the state is about names that do not.
 */
export class NlCache extends Xlator implements FopImpl {
  static override readonly description = 'Answers lookups of missing names from known directory listings';
  static override readonly options = {
    'nl-cache-timeout': {
      type: 'int', default: 1, min: 0, max: 600, description: 'Seconds a directory listing stays known (0 disables the cache)',
      volume: { key: 'performance.nl-cache-timeout', description: 'Seconds a directory listing this client knows stays trusted for negative lookups (default 60 while features.cache-invalidation is on, else 1)' },
      // As long as GlusterFS's nl-cache trusts a listing, which there also needs
      // cache-invalidation: another client's new name then drops the listing at once.
      defaultWhen: { key: 'features.cache-invalidation', is: true, default: 60 },
    },
    'nl-cache-limit': { type: 'int', default: 16384, min: 16, max: 1 << 22, description: 'Directories kept at most' },
  } as const;
  /** `volume set performance.nl-cache on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.nl-cache', default: true, description: 'Answer lookups of names known not to exist (in directories this client made or listed) without a round trip (on/off)' } as const;

  /** Known directories by key (gfid, else path). */
  private dirs: BoundedMap<string, DirState>;
  /** Names being made by fops in flight, per directory key, with how many fops make each. */
  private readonly claims = new Map<string, Map<string, number>>();
  private readonly listings = new Set<Listing>();
  private hits = 0;
  private misses = 0;
  /** Upcalls received (paths other clients changed). */
  private invalidations = 0;

  constructor(init: XlatorInit) {
    super(init);
    this.dirs = new BoundedMap(this.optNumber('nl-cache-limit'));
  }

  private get ttlMs(): number {
    return this.optNumber('nl-cache-timeout') * 1000;
  }

  /** Monotonic: a wall-clock step must not keep a listing known longer than the timeout. */
  private now(): number {
    return performance.now();
  }

  override statedump(): Record<string, unknown> {
    return { directories: this.dirs.size, hits: this.hits, misses: this.misses, invalidations: this.invalidations, dirsWithNamesInFlight: this.claims.size, listingsInFlight: this.listings.size };
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    // States made under the old timeout could outlive the new one; they are cheap to rebuild.
    this.forgetAll();
    this.dirs = new BoundedMap(this.optNumber('nl-cache-limit'));
  }

  /**
   * A brick that is down hides its names from distribute's listing; one that comes back
   * shows them again, and one that went away may have been half-way through a change.
   */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.forgetAll();
    super.notify(event, from);
  }

  /** A directory's key: its gfid (the caller's inode, or the shared inode table's), else its path. */
  private keyOf(dir: string, inode?: Inode): string {
    return inode?.gfid ?? this.inodes.find(dir)?.gfid ?? dir;
  }

  /** Where a known directory is now. */
  private pathOf(key: string, s: DirState): string {
    return key === s.path ? key : this.inodes.byGfidOf(key)?.path ?? s.path;
  }

  /**
   * Another client changed these paths: what this client knows of each one's directory goes
   * (a name may have been made there), and so does everything at and below each path (a
   * directory renamed or removed). Listings in flight there are not believed either.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    // One pass for the whole push: a directory goes if it, or a directory above it, changed
    // (renamed or removed), or if a name in it changed (its parent is in the push).
    const changed = new Set(paths);
    const parents = new Set(paths.filter((p) => p !== '/').map((p) => pathMod.dirname(p)));
    const keys = new Set([...changed, ...parents].map((p) => this.keyOf(p)));
    const goes = (key: string, dir: string): boolean => {
      if (keys.has(key) || parents.has(dir)) return true;
      for (let d = dir; ; d = pathMod.dirname(d)) {
        if (changed.has(d)) return true;
        if (d === '/') return false;
      }
    };
    for (const [k, s] of [...this.dirs]) if (goes(k, this.pathOf(k, s))) this.dirs.delete(k);
    for (const l of this.listings) if (goes(l.key, l.dir)) l.spoiled = true;
    this.invalidations++;
    super.invalidate(paths, from);
  }

  private forgetAll(): void {
    this.dirs.clear();
    for (const l of this.listings) l.spoiled = true;
  }

  private fresh(key: string): DirState | undefined {
    const s = this.dirs.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.dirs.delete(key);
      return undefined;
    }
    return s;
  }

  /** True when the name at path is outside its parent's fresh known set. */
  private knownMissing(path: string): boolean {
    const name = pathMod.basename(path);
    if (name === '' || name === '.' || name === '..') return false;
    const s = this.fresh(this.keyOf(pathMod.dirname(path)));
    return s !== undefined && !s.names.has(name);
  }

  /** Winds a fop that makes the name at path: the name is in its parent's set before it exists. */
  private async making<R>(path: string, wind: () => Promise<R>): Promise<R> {
    const dir = pathMod.dirname(path);
    const key = this.keyOf(dir);
    const name = pathMod.basename(path);
    let names = this.claims.get(key);
    if (!names) this.claims.set(key, (names = new Map()));
    names.set(name, (names.get(name) ?? 0) + 1);
    this.dirs.get(key)?.names.add(name);
    for (const l of this.listings) if (l.key === key || l.dir === dir) l.spoiled = true;
    try {
      // On failure the name stays: it may exist anyway (EEXIST, a lost reply), and a name
      // too many only costs a real lookup.
      return await wind();
    } finally {
      const n = names.get(name)! - 1;
      if (n > 0) names.set(name, n);
      else names.delete(name);
      if (names.size === 0) this.claims.delete(key);
    }
  }

  /**
   * Winds a fop whose success means dir holds exactly the names of the reply. keyOfReply: the
   * directory's key from the reply (mkdir's new directory has no inode before it).
   */
  private async listing<R>(dir: string, key: string, wind: () => Promise<R>, namesOf: (r: R) => Iterable<string>, keyOfReply?: (r: R) => string | undefined): Promise<R> {
    // Another client's change after this moment shows once the timeout has passed.
    const started = this.now();
    const l: Listing = { dir, key, spoiled: this.claims.has(key) };
    this.listings.add(l);
    try {
      const r = await wind();
      const ttl = this.ttlMs;
      if (!l.spoiled && ttl > 0) this.dirs.set(keyOfReply?.(r) ?? key, { names: new Set(namesOf(r)), expiresAt: started + ttl, path: dir });
      return r;
    } finally {
      this.listings.delete(l);
    }
  }

  /** The name at path is gone (after a successful unlink, rmdir, rename away). */
  private removed(path: string): void {
    const key = this.keyOf(pathMod.dirname(path));
    const name = pathMod.basename(path);
    if (this.claims.get(key)?.has(name)) return;
    this.dirs.get(key)?.names.delete(name);
  }

  /**
   * The directory at path and all below it are gone or elsewhere: a later one there is new.
   * keepMoved: a set keyed by gfid stays (a renamed directory's names did not change).
   */
  private forgetTree(path: string, keepMoved = false): void {
    for (const [k, s] of [...this.dirs]) {
      if (keepMoved && k !== s.path) continue;
      if (under(this.pathOf(k, s), path)) this.dirs.delete(k);
    }
    for (const l of this.listings) if (under(l.dir, path)) l.spoiled = true;
  }

  /**
   * A lookup that asks for xattrs is answered too: a name that does not exist has none,
   * and the child would fail it with ENOENT as well.
   */
  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    if (this.knownMissing(a.path)) {
      this.hits++;
      throw FsError.of('ENOENT', `${a.path}: not in its directory's listing (nl-cache)`);
    }
    this.misses++;
    const r = await this.children[0]!.call('lookup', a, f);
    // Made by another client since the directory became known.
    if (a.path !== '/') this.fresh(this.keyOf(pathMod.dirname(a.path)))?.names.add(pathMod.basename(a.path));
    return r;
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    return this.listing(a.path, this.keyOf(a.path, a.inode), () => this.children[0]!.call('readdir', a, f), (r) => r.entries.map((e) => e.name));
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.making(a.path, () => this.listing(a.path, a.path, () => this.children[0]!.call('mkdir', a, f), () => [], (r) => r.iatt.gfid));
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    return this.making(a.path, () => this.children[0]!.call('create', a, f));
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return this.making(a.path, () => this.children[0]!.call('mknod', a, f));
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return this.making(a.path, () => this.children[0]!.call('symlink', a, f));
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.making(a.path, () => this.children[0]!.call('link', a, f));
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    const r = await this.children[0]!.call('unlink', a, f);
    this.removed(a.path);
    return r;
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    try {
      const r = await this.children[0]!.call('rmdir', a, f);
      this.removed(a.path);
      return r;
    } finally {
      // Also on failure: a lost reply may hide a directory that is gone.
      this.forgetTree(a.path);
    }
  }

  /**
   * A renamed directory keeps the sets known by its gfid (and those below it): its names did
   * not change. Sets known only by the old path go, and so does that of a directory the
   * rename replaced.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    // rename(2) between two names of one file, or of a path onto itself, succeeds and
    // removes nothing; paths cannot tell, unless the target was known not to exist.
    const fromGoes = this.knownMissing(a.to);
    try {
      const r = await this.making(a.to, () => this.children[0]!.call('rename', a, f));
      if (fromGoes) this.removed(a.from);
      return r;
    } finally {
      // A file the caller's inode says is not a directory has no directory set at or below
      // either name (rename(2) replaces a directory only with a directory): no scan of every
      // set, whose paths are computed through the inodes, on each rename of a file.
      if (!a.inode || a.inode.isDir()) {
        this.forgetTree(a.from, true);
        this.forgetTree(a.to);
      }
    }
  }
}

registerXlator('performance/nl-cache', NlCache);
