import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import pathMod from 'node:path/posix';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { BRICK_PRIVATE_DIR, isDir, type DirEntry, type FopArgs, type FopReply } from '../../../lib/fops.js';
import type { Fd, Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

/** Prefetches waiting for a free request slot, at most (every queue is bounded); more are not queued. */
const QUEUE_LIMIT = 4096;
/**
 * A directory whose prefetched listing expired unused is not prefetched again for this many
 * cache-timeouts: a program that lists one directory over and over (ls in a loop, a file
 * manager) and never goes down does not pay a listing of every subdirectory each time.
 */
const WASTED_BACKOFF = 10;

/** A prefetch of one directory's listing: in flight, then held until used, dropped or expired. */
interface Prefetch {
  /** The directory's gfid when known (a listing is the directory's, whatever its name), else its path. */
  key: string;
  /** The path it was asked by. */
  dir: string;
  /** When the request was sent (monotonic ms): the listing is as old as this at most. */
  sentAt: number;
  /** Settles when the request does: the entries, or undefined if it failed. */
  done: Promise<DirEntry[] | undefined>;
  entries?: DirEntry[];
  /** This client changed something the listing shows while it was in flight or held: never used. */
  spoiled: boolean;
  /**
   * Already answered a readdir. With reuse-listings it stays held for more readdirs of the
   * directory until it is cache-timeout old, and expiring then is no waste; else it was dropped.
   */
  used: boolean;
}

/** A subdirectory named by a listing. */
interface Sub {
  key: string;
  dir: string;
}

const parentOf = (p: string): string => pathMod.dirname(p);
const childPath = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
const under = (p: string, tree: string): boolean => p === tree || p.startsWith(tree === '/' ? '/' : tree + '/');

/**
 * performance/readdir-ahead: a directory walk (find, du, rm -rf, tar c, rsync) waits one
 * round trip per directory before it can go down. When a listing of D comes back, the
 * listings of D's subdirectories are fetched in the background and held, in the order they
 * came, max-prefetch of them ahead of the walker (the next one as the walker uses one), at
 * most `parallel` requests in flight in all; the walker's readdir of each is then answered
 * from memory, once. A readdir that arrives while its
 * prefetch is in flight waits for it; one whose prefetch is still queued goes down at once.
 * With reuse-listings (volgen turns it on while the bricks push invalidations), a listing
 * that answered a readdir (a prefetched one, or one that went down because nothing was held)
 * answers the next readdirs of that directory too, until it is cache-timeout old: GNU rm
 * lists every directory twice in a row (once to see whether it is empty, once to walk it).
 *
 * Coherence: a held listing is at most cache-timeout old when it is used (the bound of
 * md-cache and the kernel for other clients' changes); every change this client makes to a
 * directory's entries or to one of its children's attributes drops that directory's listing
 * (and the listing of its parent, which shows the directory's own times and link count),
 * before the change is sent and again when it is answered, so a prefetch that overlapped the
 * change is never used; an upcall (invalidate) drops the listings of the paths and their
 * parents. A change to a file drops the listing of every directory holding one of its names
 * (each shows the file's attributes).
 *
 * Listings are keyed by the directory's gfid where it is known (the readdir's inode, the
 * listing entry a prefetch came from, the mount's inode table for a change by path), else by
 * path. Both sides resolve a path through the same shared inode table, so a change through
 * the mount always finds the listing its directory's readdir would use.
 */
export class ReaddirAhead extends Xlator implements FopImpl {
  static override readonly description = 'Prefetches the listings of subdirectories when a directory is listed';
  static override readonly options = {
    'max-prefetch': {
      type: 'int', default: 32, min: 0, max: 4096, description: 'Subdirectories prefetched per listing, at most (0: none)',
      volume: { key: 'performance.readdir-ahead-max-prefetch', description: 'Subdirectories whose listings are prefetched per listing' },
    },
    parallel: {
      type: 'int', default: 2, min: 1, max: 64, description: 'Prefetch requests in flight at most, in all',
      volume: { key: 'performance.readdir-ahead-parallel', description: 'Prefetched listings in flight at most, per client' },
    },
    'cache-timeout': {
      type: 'int', default: 1, min: 0, max: 600, description: 'Seconds a prefetched listing may be used after it was asked for (0: no prefetching)',
      volume: { key: 'performance.readdir-ahead-cache-timeout', description: 'Seconds a prefetched listing may be used (0: no prefetching)' },
    },
    'reuse-listings': {
      type: 'bool', default: false, description: 'A listing answers every readdir of its directory until it is cache-timeout old, not just one (safe while the bricks push invalidations, which drop a listing another client changes)',
      volume: { key: 'performance.readdir-ahead-reuse-listings', description: 'A listing answers every readdir of its directory until it is cache-timeout old, not one (default on while features.cache-invalidation is on, else off)' },
      // rm lists each directory twice in a row; without pushes a reused listing could hide
      // another client's change for cache-timeout.
      defaultWhen: { key: 'features.cache-invalidation', is: true, default: true },
    },
    'cache-size': {
      type: 'int', default: 100000, min: 0, max: 1 << 24, description: 'Directory entries held at most, across all prefetched listings (a listing counts its entries plus one)',
      volume: { key: 'performance.readdir-ahead-cache-size', description: 'Directory entries held at most in prefetched listings, per client' },
    },
  } as const;
  /** `volume set performance.readdir-ahead on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.readdir-ahead', default: true, description: 'When a directory is listed, fetch the listings of its subdirectories in the background for a walk that goes down next (find, du, rm -rf) (on/off)' } as const;

  /** Prefetches not sent yet by key, oldest first: the path, when queued, and the frame of the readdir that queued it (the prefetch goes with it). */
  private readonly queued = new Map<string, { dir: string; at: number; frame: Frame }>();
  /** Prefetches in flight by key (spoiled ones leave this map but stay counted in running). */
  private readonly inflight = new Map<string, Prefetch>();
  /** Listings that came back and wait for their readdir, in the order they came. */
  private readonly ready = new Map<string, Prefetch>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly wasted = new BoundedMap<string, number>(4096);
  /** Subdirectories of recent listings not queued yet, by the listed directory's path (a walker goes depth-first: few parents at a time). */
  private readonly rest = new BoundedMap<string, { subs: Sub[]; next: number }>(64);
  private running = 0;
  private heldEntries = 0;
  /**
   * Subdirectories prefetched ahead of the walker per listing, max-prefetch at most: halved
   * when held listings expire unused (a slow walker, rm -rf, does not get that far within
   * the timeout), one more per window of listings used (TCP's congestion avoidance: it grows
   * back slowly and settles where listings are used in time). Fractional; whole listings are prefetched.
   */
  private window: number;
  private shrunkAt = -Infinity;
  private stopped = false;
  private readonly counters = {
    prefetched: 0, hits: 0, waited: 0, misses: 0, expired: 0, dropped: 0, evicted: 0, failed: 0,
    skipped: 0, promoted: 0, backedOff: 0,
  };

  constructor(init: XlatorInit) {
    super(init);
    this.window = this.optNumber('max-prefetch');
  }

  private get ttlMs(): number {
    return this.optNumber('cache-timeout') * 1000;
  }

  /** Monotonic: a wall-clock step must not make a listing usable for longer. */
  private now(): number {
    return performance.now();
  }

  override statedump(): Record<string, unknown> {
    return {
      ...this.counters, window: Math.floor(this.window), held: this.ready.size, heldEntries: this.heldEntries,
      inFlight: this.running, queued: this.queued.size,
    };
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    this.window = this.optNumber('max-prefetch');
    this.dropAll();
  }

  /** A brick that went or came back changes what distribute lists. */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.dropAll();
    super.notify(event, from);
  }

  /**
   * Another client changed these paths (a brick's push): the listings that show them (the
   * parent's, and the grandparent's, which shows the parent's times), and every listing at
   * or below each path (a directory renamed or removed elsewhere) are dropped, in flight too.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    for (const p of paths) this.spoil([parentOf(p), parentOf(parentOf(p))], [p]);
    super.invalidate(paths, from);
  }

  /** No prefetch outlives the graph: the children go next. */
  override async fini(): Promise<void> {
    this.stopped = true;
    this.dropAll();
    await Promise.all([...this.pending]);
  }

  private dropAll(): void {
    this.queued.clear();
    this.rest.clear();
    this.spoil([], ['/']);
  }

  private unhold(p: Prefetch): void {
    if (this.ready.get(p.key) !== p) return;
    this.ready.delete(p.key);
    this.heldEntries -= p.entries!.length + 1;
  }

  /** Drops the listings of dirs and of everything under trees, held or in flight. */
  private spoil(dirs: readonly string[], trees: readonly string[]): void {
    // Nothing held or on its way (a tree being written, not listed): no key to look up.
    if (this.ready.size === 0 && this.inflight.size === 0) return;
    const one = (p: Prefetch): void => {
      if (p.spoiled) return;
      p.spoiled = true;
      this.counters.dropped++;
      this.unhold(p);
      if (this.inflight.get(p.key) === p) this.inflight.delete(p.key);
    };
    for (const d of dirs) {
      for (const k of new Set([d, this.keyOf(d)])) {
        const r = this.ready.get(k);
        if (r) one(r);
        const f = this.inflight.get(k);
        if (f) one(f);
      }
    }
    if (trees.length === 0) return;
    for (const m of [this.ready, this.inflight]) {
      for (const p of [...m.values()]) if (trees.some((t) => under(p.dir, t))) one(p);
    }
  }

  /** Forgets held listings past the timeout (oldest first): nobody came for them. */
  private sweep(): void {
    const now = this.now();
    const ttl = this.ttlMs;
    for (const p of this.ready.values()) {
      if (now - p.sentAt <= ttl) break;
      this.unhold(p);
      if (!p.used) this.expired(p.key, now);
    }
  }

  /** A held listing nobody came for: the walker is slower than the window assumed (halved once per timeout, as listings expire in batches). */
  private expired(key: string, now: number): void {
    this.counters.expired++;
    this.wasted.set(key, now);
    if (now - this.shrunkAt < this.ttlMs) return;
    this.shrunkAt = now;
    this.window = Math.max(1, this.window >> 1);
  }

  /**
   * Queues the first `window` subdirectories of a listing just answered, and sends what
   * fits. The others wait in `rest` and are queued one by one as the walker uses the ones
   * before them (advance), so a directory with many subdirectories (node_modules) is covered
   * while at most `window` (max-prefetch) of its listings are ahead of the walker. They are
   * fetched with the frame of the readdir that listed them, or that advanced to them.
   */
  private schedule(dir: string, entries: readonly DirEntry[], frame: Frame): void {
    const max = Math.min(Math.floor(this.window), this.optNumber('max-prefetch'));
    if (this.stopped || this.ttlMs === 0 || max === 0) return;
    const subs: Sub[] = [];
    for (const e of entries) {
      if (!isDir(e.iatt) || (dir === '/' && e.name === BRICK_PRIVATE_DIR)) continue;
      const sub = childPath(dir, e.name);
      subs.push({ key: e.iatt.gfid ?? sub, dir: sub });
    }
    const now = this.now();
    for (const sub of subs.slice(0, max)) this.enqueue(sub, now, frame);
    if (subs.length > max) this.rest.set(dir, { subs, next: max });
    else this.rest.delete(dir);
    this.pump();
  }

  private enqueue(sub: Sub, now: number, frame: Frame): void {
    const k = sub.key;
    if (this.queued.size >= QUEUE_LIMIT || this.queued.has(k) || this.inflight.has(k) || this.ready.has(k)) return;
    const wastedAt = this.wasted.get(k);
    if (wastedAt !== undefined && now - wastedAt < WASTED_BACKOFF * this.ttlMs) {
      this.counters.backedOff++;
      return;
    }
    this.queued.set(k, { dir: sub.dir, at: now, frame });
  }

  /** The walker reached dir: the next sibling past the window is queued (past dir itself, if the walker got there first). */
  private advance(key: string, dir: string, frame: Frame): void {
    const parent = parentOf(dir);
    const r = this.rest.get(parent);
    if (!r) return;
    if (r.subs[r.next]?.key === key) r.next++;
    if (r.next < r.subs.length) this.enqueue(r.subs[r.next++]!, this.now(), frame);
    if (r.next >= r.subs.length) this.rest.delete(parent);
  }

  /** Sends queued prefetches while fewer than `parallel` are in flight. */
  private pump(): void {
    const ttl = this.ttlMs;
    while (!this.stopped && this.running < this.optNumber('parallel') && this.queued.size > 0) {
      const [key, { dir, at: queuedAt, frame }] = this.queued.entries().next().value as [string, { dir: string; at: number; frame: Frame }];
      this.queued.delete(key);
      // Queued for a whole timeout: the prefetcher is not keeping up, and the walker is elsewhere.
      if (this.now() - queuedAt > ttl) {
        this.counters.skipped++;
        continue;
      }
      this.fetch(key, dir, frame);
    }
  }

  private fetch(key: string, dir: string, frame: Frame): void {
    this.running++;
    this.counters.prefetched++;
    const p: Prefetch = { key, dir, sentAt: this.now(), spoiled: false, used: false, done: undefined as unknown as Prefetch['done'] };
    this.inflight.set(key, p);
    p.done = this.children[0]!.call('readdir', { path: dir }, frame).then((r) => r.entries, () => {
      this.counters.failed++;
      return undefined;
    }).then((entries) => {
      this.running--;
      if (this.inflight.get(key) === p) this.inflight.delete(key);
      if (entries && !p.spoiled && !this.stopped) this.hold(p, entries);
      this.pending.delete(p.done);
      this.pump();
      return entries;
    });
    this.pending.add(p.done);
  }

  /** Keeps a listing that came back, within cache-size (the oldest held ones make room). */
  private hold(p: Prefetch, entries: DirEntry[]): void {
    const older = this.ready.get(p.key);
    if (older) this.unhold(older);
    this.sweep();
    const cost = entries.length + 1;
    const limit = this.optNumber('cache-size');
    if (cost > limit) {
      this.counters.evicted++;
      return;
    }
    for (const old of this.ready.values()) {
      if (this.heldEntries + cost <= limit) break;
      this.unhold(old);
      this.counters.evicted++;
    }
    p.entries = entries;
    this.ready.set(p.key, p);
    this.heldEntries += cost;
  }

  /** The listing p holds if it may answer a readdir now, else undefined. */
  private take(p: Prefetch): DirEntry[] | undefined {
    const reuse = this.optBool('reuse-listings');
    if (p.spoiled || !p.entries || (p.used && !reuse)) return undefined;
    const now = this.now();
    if (now - p.sentAt > this.ttlMs) {
      this.unhold(p);
      if (!p.used) this.expired(p.key, now);
      return undefined;
    }
    if (!p.used) {
      p.used = true;
      this.window = Math.min(this.optNumber('max-prefetch'), this.window + 1 / this.window);
    }
    if (!reuse) this.unhold(p);
    return p.entries;
  }

  /**
   * A readdir nothing held could answer goes down. With reuse-listings its listing is held
   * like a prefetched one (a change meanwhile spoils it), and a readdir of the same directory
   * arriving meanwhile waits for it.
   */
  private listNow(a: FopArgs<'readdir'>, key: string, frame: Frame): Promise<DirEntry[]> {
    const dir = a.path;
    const p: Prefetch = { key, dir, sentAt: this.now(), spoiled: false, used: true, done: undefined as unknown as Prefetch['done'] };
    const listed = this.children[0]!.call('readdir', a, frame).then((r) => r.entries).finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    p.done = listed.then((entries) => {
      if (!p.spoiled && !this.stopped && this.ttlMs > 0 && this.optBool('reuse-listings')) this.hold(p, entries);
      return entries;
    }, () => undefined);
    if (this.optBool('reuse-listings') && !this.inflight.has(key)) this.inflight.set(key, p);
    return listed;
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    this.sweep();
    const dir = a.path;
    const key = this.keyOf(dir, a.inode);
    const held = this.ready.get(key);
    let entries = held && this.take(held);
    if (entries) {
      this.counters.hits++;
    } else {
      const p = this.inflight.get(key);
      if (p) {
        await p.done;
        entries = this.take(p);
        if (entries) this.counters.waited++;
      }
    }
    if (!entries) {
      if (this.queued.delete(key)) this.counters.promoted++;
      this.counters.misses++;
      this.wasted.delete(key);
      entries = await this.listNow(a, key, f);
    }
    this.advance(key, dir, f);
    this.schedule(dir, entries, f);
    return { entries };
  }

  /** A directory's key: its gfid (the caller's inode, or the shared inode table's), else its path. */
  private keyOf(dir: string, inode?: Inode): string {
    return inode?.gfid ?? this.inodes.find(dir)?.gfid ?? dir;
  }

  /**
   * Winds a change that alters the listings of dirs (and of every directory under trees),
   * before and after it: a prefetch sent while the change was on its way may or may not show
   * it. dirs is worked out only while something is held or in flight: every write passes here.
   */
  private changing<R>(dirs: () => readonly string[], trees: readonly string[], wind: () => Promise<R>): Promise<R> {
    const spoil = (): void => {
      if (this.ready.size > 0 || this.inflight.size > 0) this.spoil(dirs(), trees);
    };
    spoil();
    return wind().finally(spoil);
  }

  /** An entry appears or goes at path: its directory's listing, and the parent's (the directory's times, link count). */
  private entryDirs(path: string): string[] {
    const d = parentOf(path);
    return [d, parentOf(d)];
  }

  /** The listings that show a file's attributes: the directory of each of its names (a hard link's too). */
  private nameDirs(path: string, inode?: Inode): string[] {
    const dirs = new Set([parentOf(path)]);
    const table = inode?.table;
    if (table && inode.attached) {
      for (const l of [{ parent: inode.parent }, ...inode.more]) {
        const d = table.get(l.parent);
        if (d) dirs.add(d.path);
      }
    }
    return [...dirs];
  }

  private fdDirs(fd: Fd): string[] {
    return this.nameDirs(fd.path, fd.inode);
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    return this.changing(() => this.entryDirs(a.path), [], () => this.children[0]!.call('create', a, f));
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const wind = (): Promise<FopReply<'open'>> => this.children[0]!.call('open', a, f);
    return (a.flags & fs.constants.O_TRUNC) ? this.changing(() => this.fdDirs(a.fd), [], wind) : wind();
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.changing(() => this.fdDirs(a.fd), [], () => this.children[0]!.call('write', a, f));
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.changing(() => this.fdDirs(a.fd), [], () => this.children[0]!.call('writev', a, f));
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changing(() => this.fdDirs(a.fd), [], () => this.children[0]!.call('ftruncate', a, f));
  }

  /** The path's own listing too: a directory whose mode changed must be listed under the new one. */
  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    return this.changing(() => [...this.nameDirs(a.path, a.inode), a.path], [], () => this.children[0]!.call('setattr', a, f));
  }

  /** Setting an xattr moves ctime. */
  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return this.changing(() => this.nameDirs(a.path, a.inode), [], () => this.children[0]!.call('setxattr', a, f));
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return this.changing(() => this.nameDirs(a.path, a.inode), [], () => this.children[0]!.call('removexattr', a, f));
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.changing(() => [...this.entryDirs(a.path), a.path], [], () => this.children[0]!.call('mkdir', a, f));
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return this.changing(() => this.entryDirs(a.path), [], () => this.children[0]!.call('mknod', a, f));
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return this.changing(() => this.entryDirs(a.path), [], () => this.children[0]!.call('symlink', a, f));
  }

  /** The target's link count changes too, in the listing of each of its names. */
  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.changing(() => [...this.entryDirs(a.path), ...this.nameDirs(a.target, a.inode)], [], () => this.children[0]!.call('link', a, f));
  }

  /** The file's other names show its link count drop. */
  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return this.changing(() => [...this.entryDirs(a.path), ...this.nameDirs(a.path, a.inode)], [], () => this.children[0]!.call('unlink', a, f));
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    return this.changing(() => this.entryDirs(a.path), [a.path], () => this.children[0]!.call('rmdir', a, f));
  }

  /** Both parents, and everything under the old and the new name (a renamed directory, or one it replaced). */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    return this.changing(() => [...this.entryDirs(a.from), ...this.entryDirs(a.to)], [a.from, a.to], () => this.children[0]!.call('rename', a, f));
  }
}

registerXlator('performance/readdir-ahead', ReaddirAhead);
