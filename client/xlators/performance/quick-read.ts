import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { LOOKUP_DATA_MAX_BYTES, O_ACCMODE, O_DIRECT, type FopArgs, type FopReply, type Iatt } from '../../../lib/fops.js';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { CtxKey, type Fd, type Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

const { O_RDONLY, O_TRUNC, S_IFMT, S_IFREG } = fs.constants;
/** What an entry costs beyond its data (the map entry, the attributes, the path), so empty files count too. */
const ENTRY_OVERHEAD_BYTES = 256;
/**
 * Fetch credit (our addition, not GlusterFS's): every content kept costs one, the first read
 * it answers earns USE_CREDIT. At zero, lookups stop asking for content but for a probe after
 * PROBE_EVERY lookups, then after twice as many each time (up to MAX_PROBE_EVERY) until some
 * content is read again: a stat-only pass (find, ls -l, a rename of every file) over
 * files whose pages are not in the brick's cache would otherwise read each from disk for nothing.
 */
const MAX_CREDIT = 16;
const USE_CREDIT = 8;
const PROBE_EVERY = 16;
const MAX_PROBE_EVERY = 64;
/** Directories whose last listing is remembered for prefetch, least recently listed dropped first. */
const LISTINGS_MAX = 1024;
/** Names a remembered listing keeps at most (the first ones). */
const LISTING_NAMES_MAX = 4096;
/** Names whose gfid is remembered, at most. */
const NAMES_MAX = 65536;
/** Prefetch lookups in flight at once, over all directories. */
const PREFETCH_IN_FLIGHT = 8;

/** A small file's content as a lookup brought it. */
interface Cached {
  /** The name it was fetched by (a renamed or removed directory drops what was fetched below it). */
  path: string;
  data: Buffer;
  iatt: Iatt;
  fetchedAt: number;
  /** data, path and overhead: what the entry counts against cache-size. */
  cost: number;
  /** It answered a read (it has earned its fetch credit). */
  used: boolean;
  /** Fetched by prefetch, and no lookup from above has seen it yet: the first one is answered from it. */
  prefetched: boolean;
}

/** A directory's small regular files in its last listing, and how far prefetch went through them. */
interface Listing {
  names: string[];
  /** Index of the next name to prefetch: each is fetched at most once per listing. */
  next: number;
  /** Names a lookup from above asked for itself: no need to prefetch them. */
  asked: Set<string>;
}

/** Same file, same size and modification time (ctime may come from another replica). */
function sameFile(a: Iatt, b: Iatt): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** A lookup in flight: a change of its path, or of a file it may bring, meanwhile makes its content unusable. */
interface Fetch {
  path: string;
  stale: boolean;
  /** Keys of files changed while it was in flight: content of one of them is stale too. */
  changed: Set<string>;
}

/** An fd opened read-only through this translator while content of its file was held. */
interface QrFd {
  /** The held content's key (its file's gfid, else the path). */
  key: string;
  /**
   * Opened read-only (no O_DIRECT) while content of the file at path was held (the lookup
   * before the open brought it): that file's inode. Its reads are answered from content of
   * the same inode only, so an fd on a file unlinked or renamed over since never reads the
   * content of whatever took its name.
   */
  ino: number;
}

/**
 * performance/quick-read (GlusterFS's quick-read): a lookup asks for the content of the file
 * too, when it is at most max-file-size bytes (`wantData`); the brick reads it in the same
 * request. The content is kept by path, and readfile (open-behind's read by path) and
 * reads on fds opened read-only through here are answered from it for cache-timeout seconds
 * after it was fetched: reading a small file after the kernel's caches went cold costs the
 * lookup alone, one round trip. Sits directly above the cluster translator, below open-behind.
 *
 * Content is the file's, keyed by its gfid (the fop's inode, or the gfid a reply gave the
 * name), so every name of a hard link reads and drops the same entry; a file without a gfid
 * is known by its path. It lives in a bounded map rather than on inodes: a lookup's reply
 * fills it before the bridge has an inode for a new name. The prefetch listings are about
 * names (which files of a listed directory to fetch next) and stay keyed by path.
 *
 * Coherence: this client's own changes drop the path, before the change is sent and again
 * when it is answered (a write, writev or ftruncate through an fd opened here, any setattr,
 * an open for writing or with O_TRUNC, create, unlink, rename of either name and anything
 * under them, link, ...), and a lookup whose path changed while it was in flight keeps
 * nothing. Another client's change shows once the entry expires (the bound md-cache and the
 * kernel keep), or at once when a brick's upcall reaches invalidate().
 *
 * Fetching is not free: the brick reads the file in the lookup, from disk when its pages are
 * cold. While fetched content goes unread (a stat-only pass), lookups stop asking for it but
 * for a probe now and then (see MAX_CREDIT).
 */
export class QuickRead extends Xlator implements FopImpl {
  static override readonly description = 'Fetches small files with their lookup and answers their reads from memory for a short time';
  static override readonly options = {
    'max-file-size': {
      type: 'size', default: 64 * 1024, min: 0, max: LOOKUP_DATA_MAX_BYTES, description: 'Largest file (bytes) whose content a lookup fetches',
      volume: { key: 'performance.quick-read-max-file-size', description: 'Largest file whose content quick-read fetches with its lookup (bytes, or with K/M; at most 1 MiB)' },
    },
    'cache-timeout': {
      type: 'int', default: 1, min: 0, max: 60, description: 'Seconds a fetched content answers reads (0 turns quick-read off)',
      volume: { key: 'performance.quick-read-cache-timeout', description: 'Seconds a small file\'s fetched content answers reads (0 turns quick-read\'s cache off)' },
    },
    'cache-size': {
      type: 'size', default: 64 * 1024 * 1024, min: 0, max: 1024 ** 3, description: 'Bytes of content held in total, least recently used dropped first',
      volume: { key: 'performance.quick-read-cache-size', description: 'Bytes of small-file content a client holds in total (bytes, or with K/M/G)' },
    },
    'prefetch-files': {
      type: 'int', default: 16, min: 0, max: MAX_CREDIT, description: 'Small files of a recently listed directory fetched ahead once one of them (or the directory) is looked up, while fetched content gets read (0 turns prefetch off)',
      volume: { key: 'performance.quick-read-prefetch-files', description: 'Small files of a recently listed directory whose content quick-read fetches ahead, in parallel, once a walker looks one of them (or the directory) up; 0 turns it off' },
    },
  } as const;
  /** `volume set performance.quick-read on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.quick-read', default: true, description: 'Fetch the content of small files with their lookup and answer their reads from the client for up to 1 s (on/off)' } as const;

  /** By gfid (a file without one: by path), least recently used first (a Map keeps insertion order; a hit re-inserts). */
  private readonly cache = new Map<string, Cached>();
  /** The gfid of each name whose content was fetched: a fop without an inode finds the file's entry through it. */
  private readonly names = new BoundedMap<string, string>(NAMES_MAX);
  private bytes = 0;
  private readonly fdKey = new CtxKey<QrFd>(this.name);
  private readonly fetches = new Set<Fetch>();
  private hits = 0;
  private misses = 0;
  private fills = 0;
  private staleFills = 0;
  private drops = 0;
  private evictions = 0;
  private invalidations = 0;
  private credit = MAX_CREDIT;
  private sinceProbe = 0;
  private probeEvery = PROBE_EVERY;
  /** Lookups sent without asking for content because fetched content went unread. */
  private unasked = 0;
  /** By directory path, least recently listed first. */
  private readonly listings = new Map<string, Listing>();
  /** Prefetch lookups in flight, by path: a lookup from above for one waits for it. */
  private readonly prefetching = new Map<string, Promise<void>>();
  /** Paths to prefetch, each with the frame of the fop that called for it (a lookup, or a read of a listed file). */
  private readonly prefetchQueue: Array<{ path: string; frame: Frame }> = [];
  private prefetches = 0;
  private prefetchHits = 0;

  private get child(): Xlator {
    return this.children[0]!;
  }

  private get timeoutMs(): number {
    return this.optNumber('cache-timeout') * 1000;
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    if (this.timeoutMs === 0) this.clear();
    this.evict();
  }

  override async fini(): Promise<void> {
    this.clear();
  }

  override statedump(): Record<string, unknown> {
    return {
      entries: this.cache.size, bytes: this.bytes, hits: this.hits, misses: this.misses, fills: this.fills,
      staleFills: this.staleFills, drops: this.drops, evictions: this.evictions, invalidations: this.invalidations,
      credit: this.credit, unasked: this.unasked, lookupsInFlight: this.fetches.size,
      listings: this.listings.size, prefetches: this.prefetches, prefetchHits: this.prefetchHits,
    };
  }

  // ---- the cache ------------------------------------------------------------------------

  /** The key of the file at path: the caller's inode's gfid, else the name's last known one, else the path. */
  private keyOf(path: string, inode?: Inode): string {
    return inode?.gfid ?? this.names.get(path) ?? this.inodes.find(path)?.gfid ?? path;
  }

  private put(path: string, data: Buffer, iatt: Iatt, inode: Inode | undefined, prefetched = false): void {
    const key = iatt.gfid ?? this.keyOf(path, inode);
    this.remove(key);
    const cost = data.length + path.length + ENTRY_OVERHEAD_BYTES;
    if (cost > this.optNumber('cache-size')) return;
    if (key !== path) this.names.set(path, key);
    this.cache.set(key, { path, data, iatt, fetchedAt: Date.now(), cost, used: false, prefetched });
    this.bytes += cost;
    this.fills++;
    this.credit = Math.max(0, this.credit - 1);
    this.evict();
  }

  /**
   * Drops least recently used entries while over cache-size, and expired ones at that end
   * anyway: content nobody reads again would otherwise stay until the cache fills (and every
   * rename scans the entries for a directory's).
   */
  private evict(): void {
    const cap = this.optNumber('cache-size');
    const now = Date.now();
    for (const [key, e] of this.cache) {
      const over = this.bytes > cap;
      if (!over && now - e.fetchedAt < this.timeoutMs) break;
      this.remove(key);
      if (over) this.evictions++;
    }
  }

  private remove(key: string): boolean {
    const e = this.cache.get(key);
    if (!e) return false;
    this.cache.delete(key);
    this.bytes -= e.cost;
    return true;
  }

  private clear(): void {
    this.listings.clear();
    this.prefetchQueue.length = 0;
    this.cache.clear();
    this.names.clear();
    this.bytes = 0;
  }

  /** The content of path while fresh, marked recently used; a read it answers (a hit) earns fetch credit the first time. */
  private hit(key: string, frame: Frame, ino?: number): Cached | undefined {
    const e = this.cache.get(key);
    if (!e || (ino !== undefined && e.iatt.ino !== ino)) return undefined;
    if (Date.now() - e.fetchedAt >= this.timeoutMs) {
      this.remove(key);
      return undefined;
    }
    this.cache.delete(key);
    this.cache.set(key, e);
    this.hits++;
    // A read of prefetched content no lookup saw (md-cache above answered the lookups): a
    // walker in this directory all the same.
    if (e.prefetched) this.prefetchUsed(e, frame);
    if (!e.used) {
      e.used = true;
      this.credit = Math.min(MAX_CREDIT, this.credit + USE_CREDIT);
      this.probeEvery = PROBE_EVERY;
    }
    return e;
  }

  /** Whether this lookup asks for content: while fetched content gets read, else as a probe now and then. */
  private askContent(): boolean {
    if (this.credit > 0) return true;
    if (++this.sinceProbe >= this.probeEvery) {
      // Until some content is read again, each probe waits twice as long as the last.
      this.probeEvery = Math.min(MAX_PROBE_EVERY, this.probeEvery * 2);
      this.sinceProbe = 0;
      return true;
    }
    this.unasked++;
    return false;
  }

  /**
   * The file at path changed (or is about to): forget its content, through every name, and
   * what lookups in flight bring of it, by this name or another.
   */
  private drop(path: string, inode?: Inode): void {
    const key = this.keyOf(path, inode);
    if (this.remove(key)) this.drops++;
    for (const f of this.fetches) {
      if (f.path === path) f.stale = true;
      f.changed.add(key);
    }
  }

  /** The same for a name and everything under it (a renamed or removed directory). */
  private dropTree(path: string, inode?: Inode): void {
    this.drop(path, inode);
    this.dropListings(path);
    const prefix = path === '/' ? '/' : path + '/';
    for (const [k, e] of [...this.cache]) if (e.path.startsWith(prefix) && this.remove(k)) this.drops++;
    for (const f of this.fetches) if (f.path.startsWith(prefix)) f.stale = true;
  }

  /** Runs a change of files (by name, with the caller's inode) with their content dropped before it is sent and again when it is answered. */
  private async changing<T>(files: ReadonlyArray<{ path: string; inode?: Inode }>, run: () => Promise<T>, tree = false): Promise<T> {
    const forget = (): void => {
      for (const { path, inode } of files) (tree ? this.dropTree(path, inode) : this.drop(path, inode));
    };
    forget();
    try {
      return await run();
    } finally {
      forget();
    }
  }

  private ofFd(fd: Fd): Array<{ path: string; inode: Inode }> {
    return [{ path: fd.path, inode: fd.inode }];
  }

  /** Another client changed these paths (a brick's upcall): drop them, then tell the parents. */
  override invalidate(paths: readonly string[], from: Xlator): void {
    for (const p of paths) {
      this.invalidations++;
      this.drop(p);
    }
    super.invalidate(paths, from);
  }

  // ---- reads ----------------------------------------------------------------------------

  /**
   * Asks for the content of a small file with plain lookups (see askContent); keeps it unless
   * the path changed meanwhile. A lookup that did not ask keeps what is held only while the
   * attributes it brings are those the content came with.
   */
  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    if (a.xattrs?.length || a.wantData !== undefined || this.timeoutMs === 0) return this.child.call('lookup', a, f);
    // A prefetch of this very file answers it, once; one on the way is waited for.
    const inFlight = this.prefetching.get(a.path);
    if (inFlight) await inFlight;
    // Only through the name binding learnt here (as md-cache): the caller's inode may carry a
    // name another client has renamed or removed since.
    const pre = this.takePrefetched(this.names.get(a.path) ?? a.path, f);
    if (pre) return { iatt: pre.iatt };
    this.prefetchAround(a.path, f);
    if (!this.askContent()) {
      const r = await this.child.call('lookup', a, f);
      const held = this.cache.get(this.keyOf(a.path, a.inode));
      if (held && !sameFile(held.iatt, r.iatt)) this.drop(a.path, a.inode);
      return r;
    }
    const { reply, stale } = await this.fetchContent(a, false, f);
    if (reply.data === undefined) return reply;
    if (stale) this.staleFills++;
    const { data: _content, ...rest } = reply;
    return rest;
  }

  /**
   * A lookup that asks for the content, kept (marked prefetched or not) unless the path
   * changed while it was in flight; stale says it did.
   */
  private async fetchContent(a: FopArgs<'lookup'>, prefetched: boolean, frame: Frame): Promise<{ reply: FopReply<'lookup'>; stale: boolean }> {
    const fetch: Fetch = { path: a.path, stale: false, changed: new Set() };
    this.fetches.add(fetch);
    try {
      const reply = await this.child.call('lookup', { ...a, wantData: this.optNumber('max-file-size') }, frame);
      // Changed through another name while in flight: the content may be from before.
      if (fetch.changed.has(reply.iatt.gfid ?? this.keyOf(a.path, a.inode))) fetch.stale = true;
      if (reply.data === undefined) {
        // Not a small file now, or a copy that cannot be trusted: what was kept is no longer right.
        if (!fetch.stale) this.drop(a.path, a.inode);
      } else if (!fetch.stale) {
        this.put(a.path, Buffer.isBuffer(reply.data) ? reply.data : Buffer.from(reply.data), reply.iatt, a.inode, prefetched);
      }
      return { reply, stale: fetch.stale };
    } finally {
      this.fetches.delete(fetch);
    }
  }

  // ---- prefetch ---------------------------------------------------------------------------
  //
  // Our addition, not GlusterFS's. A walker (tar -c, cp -r, grep -r, rsync, a build) lists a
  // directory and then reads its files one by one, each read a lookup round trip once the
  // kernel's entries (1 s) have expired. The listing already names the small files, so the
  // first lookup in the directory (or of the directory itself) fetches the next ones' content
  // in parallel, and their lookups are then answered from memory. When md-cache above answers
  // the lookups (the listing gave it the attributes), the first read that misses starts it and
  // each read of prefetched content keeps it going, as a lookup would. Bounded by the fetch credit
  // (content fetched but never read stops it, as it stops lookups asking for content), by
  // prefetch-files per lookup and PREFETCH_IN_FLIGHT at once; each file is fetched at most once
  // per listing. Coherence is the cache's own: a prefetched entry answers one lookup, within
  // cache-timeout, unless a change of this client or a brick's upcall dropped it first.

  /** Remembers a listing's small regular files for prefetch. */
  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const r = await this.child.call('readdir', a, f);
    this.listings.delete(a.path);
    if (this.prefetchMax > 0) {
      const max = this.optNumber('max-file-size');
      const names: string[] = [];
      for (const e of r.entries) {
        if (names.length >= LISTING_NAMES_MAX) break;
        if ((e.iatt.mode & S_IFMT) === S_IFREG && e.iatt.size <= max && e.linkto === undefined) names.push(e.name);
      }
      if (names.length > 1) {
        this.listings.set(a.path, { names, next: 0, asked: new Set() });
        if (this.listings.size > LISTINGS_MAX) this.listings.delete(this.listings.keys().next().value!);
      }
    }
    return r;
  }

  private get prefetchMax(): number {
    return this.timeoutMs > 0 ? this.optNumber('prefetch-files') : 0;
  }

  /** A prefetched entry, fresh, not yet seen by a lookup from above: it answers that one lookup. */
  private takePrefetched(key: string, frame: Frame): Cached | undefined {
    const e = this.cache.get(key);
    if (!e?.prefetched) return undefined;
    if (Date.now() - e.fetchedAt >= this.timeoutMs) {
      e.prefetched = false;
      return undefined;
    }
    this.prefetchUsed(e, frame);
    return e;
  }

  /** Prefetched content answered its first lookup or read: the walker is in this directory, keep the next files coming. */
  private prefetchUsed(e: Cached, frame: Frame): void {
    e.prefetched = false;
    this.prefetchHits++;
    this.prefetchFiles(pathMod.dirname(e.path), frame);
  }

  /** A lookup of path: prefetch the files of path when it is a listed directory, else its siblings. */
  private prefetchAround(path: string, frame: Frame): void {
    const queued = this.prefetchQueue.findIndex((q) => q.path === path);
    if (queued >= 0) this.prefetchQueue.splice(queued, 1);
    if (this.listings.has(path)) return this.prefetchFiles(path, frame);
    const dir = pathMod.dirname(path);
    this.listings.get(dir)?.asked.add(pathMod.basename(path));
    this.prefetchFiles(dir, frame);
  }

  /**
   * Queues the next files of dir's listing, as many as prefetch-files and the fetch credit
   * allow, to be fetched with the frame of the fop that asked for them.
   */
  private prefetchFiles(dir: string, frame: Frame): void {
    const l = this.listings.get(dir);
    if (!l) return;
    let budget = Math.min(this.prefetchMax, this.credit);
    while (budget > 0 && l.next < l.names.length) {
      const name = l.names[l.next++]!;
      const p = pathMod.join(dir, name);
      if (l.asked.has(name) || this.cache.has(this.keyOf(p)) || this.prefetching.has(p)) continue;
      budget--;
      this.prefetchQueue.push({ path: p, frame });
    }
    if (l.next >= l.names.length) this.listings.delete(dir);
    this.pumpPrefetch();
  }

  private pumpPrefetch(): void {
    while (this.prefetching.size < PREFETCH_IN_FLIGHT && this.prefetchQueue.length > 0) {
      const { path: p, frame } = this.prefetchQueue.shift()!;
      if (this.cache.has(this.keyOf(p)) || this.prefetching.has(p)) continue;
      this.prefetching.set(p, this.prefetchOne(p, frame).finally(() => {
        this.prefetching.delete(p);
        this.pumpPrefetch();
      }));
    }
  }

  private async prefetchOne(path: string, frame: Frame): Promise<void> {
    this.prefetches++;
    // Gone since the listing, a brick away, or not the caller's to see: the lookup from above finds out for itself.
    await this.fetchContent({ path }, true, frame).catch(() => undefined);
  }

  /** A directory renamed or removed: its listings (and those below it) name nothing there now. */
  private dropListings(path: string): void {
    const prefix = path === '/' ? '/' : path + '/';
    for (const d of [...this.listings.keys()]) if (d === path || d.startsWith(prefix)) this.listings.delete(d);
  }

  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    const e = this.hit(this.keyOf(a.path, a.inode), f);
    if (!e) {
      this.misses++;
      // A read by path with the kernel's entries still fresh (no lookup came by): a walker too.
      this.prefetchAround(a.path, f);
      return this.child.call('readfile', a, f);
    }
    return { data: e.data.subarray(a.offset, a.offset + a.size) };
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const qf = a.fd.ctx.get(this.fdKey);
    const e = qf ? this.hit(qf.key, f, qf.ino) : undefined;
    if (!e) {
      if (qf) this.misses++;
      return this.child.call('read', a, f);
    }
    return { data: e.data.subarray(a.offset, a.offset + a.size) };
  }

  // ---- fds ------------------------------------------------------------------------------

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const readOnly = (a.flags & O_ACCMODE) === O_RDONLY && (a.flags & O_TRUNC) === 0;
    const open = (): Promise<FopReply<'open'>> => this.child.call('open', a, f);
    const r = readOnly ? await open() : await this.changing([{ path: a.path, inode: a.fd.inode }], open);
    const key = this.keyOf(a.path, a.fd.inode);
    const held = readOnly && (a.flags & O_DIRECT) === 0 ? this.cache.get(key) : undefined;
    if (held) a.fd.ctx.set(this.fdKey, { key, ino: held.iatt.ino });
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    return this.changing([{ path: a.path, inode: a.fd.inode }], () => this.child.call('create', a, f));
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    a.fd.ctx.take(this.fdKey);
    return this.child.call('release', a, f);
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.changing(this.ofFd(a.fd), () => this.child.call('write', a, f));
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.changing(this.ofFd(a.fd), () => this.child.call('writev', a, f));
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changing(this.ofFd(a.fd), () => this.child.call('ftruncate', a, f));
  }

  // ---- names and attributes -------------------------------------------------------------

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    return this.changing([a], () => this.child.call('setattr', a, f));
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return this.changing([a], () => this.child.call('unlink', a, f));
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    return this.changing([a], () => this.child.call('rmdir', a, f), true);
  }

  /** Both names and everything under them. */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    return this.changing([{ path: a.from, inode: a.inode }, { path: a.to }], () => this.child.call('rename', a, f), true);
  }

  /** The target's link count changes, under every name. */
  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.changing([{ path: a.target, inode: a.inode }, { path: a.path }], () => this.child.call('link', a, f));
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return this.changing([a], () => this.child.call('symlink', a, f));
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return this.changing([a], () => this.child.call('mknod', a, f));
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.changing([a], () => this.child.call('mkdir', a, f));
  }
}

registerXlator('performance/quick-read', QuickRead);
