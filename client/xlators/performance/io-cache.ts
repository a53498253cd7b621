import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { FsError } from '../../../lib/errors.js';
import { O_ACCMODE, O_DIRECT, S_IFMT, S_IFREG, type FopArgs, type FopReply, type Iatt } from '../../../lib/fops.js';
import { CtxKey, type Fd, type Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

const { O_TRUNC, O_WRONLY } = fs.constants;

/** Files whose latest attributes are remembered (lookups, listings), and names whose gfid is: bounded like md-cache's entries. */
const SEEN_LIMIT = 16384;

/** What a page is validated by: the file's modification time and size when it was filled. */
interface Attrs {
  mtimeMs: number;
  size: number;
}

/**
 * The latest attributes this translator saw for a file, and when (performance.now()); no
 * attributes: this client changed the file then, and what it knew before is stale.
 */
interface Seen {
  attrs?: Attrs;
  at: number;
}

/** One page-size piece of a file, shorter at the end of the file. */
interface Page {
  file: FileState;
  index: number;
  data: Buffer;
  attrs: Attrs;
  /** The priority it is held under (its file's when it was filled). */
  priority: number;
}

/** One entry of the priority option: files whose path matches keep their pages longer (higher), or not at all (0). */
interface PriorityRule {
  pattern: RegExp;
  priority: number;
}

/**
 * Parses GlusterFS's cache-priority ("*.h:3,*.c:2"): shell patterns matched against the
 * whole path (`*` crosses slashes, as fnmatch without FNM_PATHNAME), first match wins.
 * Malformed entries are left out with a warning rather than failing the mount.
 */
function parsePriorities(spec: string, warn: (msg: string) => void): PriorityRule[] {
  const rules: PriorityRule[] = [];
  for (const entry of spec.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const m = /^(.+):(\d+)$/.exec(entry);
    if (!m) {
      warn(`priority entry "${entry}" is not PATTERN:NUMBER; ignored`);
      continue;
    }
    const re = m[1]!.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    rules.push({ pattern: new RegExp(`^${re}$`), priority: Number(m[2]) });
  }
  return rules;
}

/** The cache of one file, kept across opens and closes. */
interface FileState {
  /** Its gfid; a file without one is known by its path (and moves with its name). */
  key: string;
  /** Its name as last seen here: what the priority patterns match, and what an upcall of a directory above it names. */
  path: string;
  pages: Map<number, Page>;
  /** Bumped by every change this client makes and every invalidation: a fill started before it is not stored. */
  gen: number;
  /** Changes of ours to the file in flight: nothing is filled or served meanwhile. */
  changing: number;
  /** Fds open on it here. */
  fds: number;
  /** The fstat revalidating its attributes, shared by concurrent readers. */
  validating?: Promise<Attrs | undefined>;
  /** Unlinked or renamed over while fds were open: those fds read through, uncached. */
  detached: boolean;
  /** From the priority option and its path (1 when no pattern matches; 0: not kept). */
  priority: number;
  /** Known by its path until its gfid was found to have a state already: that one is the file's now. */
  merged?: FileState;
}

interface FdState {
  file: FileState;
  /** O_DIRECT or write-only: reads go straight to the child. */
  bypass: boolean;
}

function attrsOf(iatt: Iatt): Attrs {
  return { mtimeMs: iatt.mtimeMs, size: iatt.size };
}

function sameAttrs(x: Attrs, y: Attrs): boolean {
  return x.mtimeMs === y.mtimeMs && x.size === y.size;
}

const under = (p: string, dir: string): boolean => p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');

function isRegular(iatt: Iatt): boolean {
  return (iatt.mode & S_IFMT) === S_IFREG;
}

/**
 * performance/io-cache (GlusterFS's io-cache): file pages kept in client memory across opens
 * and closes, keyed by the file's gfid, for the reads the kernel sends again after dropping its own
 * page cache (every open here, since opens reply without keep_cache; memory pressure;
 * several processes or fds reading one file).
 *
 * Validity: a page records the file's mtime and size when it was filled, and is served only
 * while they equal the latest attributes seen for the path: from lookup, fstat, create,
 * setattr and readdir replies passing through, or from an fstat of its own when the latest
 * are older than cache-timeout. A brick upcall (invalidate) drops another client's change
 * at once; without one it is seen after at most cache-timeout (the bound md-cache and the
 * kernel keep). A fill is stored only if its bytes agree with the size it is validated by.
 *
 * Coherence within this client: writes, truncations (ftruncate, setattr of the size, an
 * O_TRUNC open or create), unlink and rename drop the path's pages before they are wound,
 * nothing is filled while one is in flight, and a fill that started before one is thrown
 * away. After such a change, reads pass straight to the child until fresh attributes are
 * seen or cache-timeout has passed (the attributes this translator knows are stale, and
 * asking for new ones would cost every read after a write a round trip). Brick upcalls
 * (invalidate) drop the paths and what is below them. O_DIRECT fds bypass it.
 *
 * A file's pages and attributes are keyed by its gfid (the fd's or the fop's inode, or the gfid
 * a reply gave the name), so a write through one name of a hard link drops what every name
 * reads; a file without a gfid is known by its path. They live in maps rather than on inodes:
 * a lookup's or listing's attributes must find the file before the bridge has an inode for
 * the name. What an fd needs (its file, whether it bypasses) is in the fd's ctx.
 *
 * Fills read whole pages. A read much smaller than the pages it touches (a 4 KiB random read
 * of a large file) is not filled: reading a whole page for it would cost more than a cache
 * that holds a sliver of the file can save. It is still answered from pages already held.
 * Files larger than half the cache are not kept at all. Eviction is least recently used
 * within a priority (GlusterFS's cache-priority patterns), the lowest priority first.
 */
export class IoCache extends Xlator implements FopImpl {
  static override readonly description = 'Keeps file pages in client memory across opens, validated by mtime and size';
  static override readonly options = {
    'page-size': {
      type: 'size', default: 128 * 1024, min: 4096, max: 4 * 1024 ** 2, multipleOf: 4096,
      description: 'Bytes of one cached page (pages start at multiples of it)',
    },
    'cache-size': {
      type: 'size', default: 32 * 1024 ** 2, min: 0, max: 64 * 1024 ** 3,
      description: 'Bytes of pages held across all files; the least recently used go first (0 caches nothing)',
      volume: [
        { key: 'performance.io-cache-size', description: 'Bytes of file pages io-cache holds per mount, least recently used evicted first (bytes, or with K/M/G)' },
        { key: 'performance.cache-size', description: 'Bytes of file pages io-cache holds per mount (as performance.io-cache-size)' },
      ],
    },
    'cache-timeout': {
      type: 'int', default: 1, min: 0, max: 61,
      description: 'Seconds attributes seen for a file stay trusted; older, a read revalidates them with an fstat first',
      volume: { key: 'performance.cache-refresh-timeout', description: 'Seconds io-cache trusts the attributes it saw for a file before it checks them again (the bound on seeing another client\'s change)' },
    },
    'max-file-size': {
      type: 'size', default: 0, min: 0,
      description: 'Files larger than this are not cached (0: no limit)',
      volume: { key: 'performance.cache-max-file-size', description: 'Files larger than this are not kept by io-cache (0: no limit)' },
    },
    'min-file-size': {
      type: 'size', default: 0, min: 0,
      description: 'Files smaller than this are not cached',
      volume: { key: 'performance.cache-min-file-size', description: 'Files smaller than this are not kept by io-cache' },
    },
    'priority': {
      type: 'string', default: '',
      description: 'PATTERN:N,... (e.g. *.h:3,*.tmp:0): files whose path matches keep their pages longer, the lowest priority is evicted first; unmatched files have 1, 0 is never cached',
      volume: { key: 'performance.cache-priority', description: 'PATTERN:N,... (e.g. *.h:3,*.tmp:0): io-cache evicts pages of lower-priority files first; unmatched files have 1, 0 is never cached' },
    },
  } as const;
  /** `volume set performance.io-cache on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.io-cache', default: true, description: 'Keep file pages in client memory across opens, checked against the file\'s mtime and size; another client\'s change is seen after performance.cache-refresh-timeout (on/off)' } as const;

  /** By key (gfid, else path). */
  private readonly files = new Map<string, FileState>();
  private readonly fdKey = new CtxKey<FdState>(this.name);
  /** By key (gfid, else path). */
  private readonly seen = new BoundedMap<string, Seen>(SEEN_LIMIT);
  /** The gfid of each name seen in a reply: a fop without an inode finds its file through it. */
  private readonly names = new BoundedMap<string, string>(SEEN_LIMIT);
  private openFds = 0;
  /** Every held page by priority, least recently used first. */
  private readonly lrus = new Map<number, Set<Page>>();
  private priorities: PriorityRule[] = [];
  private pageCount = 0;
  private cachedBytes = 0;
  private hits = 0;
  private misses = 0;
  /** Reads that went straight to the child: O_DIRECT or unknown fds, uncacheable sizes, just after a change. */
  private passed = 0;
  private revalidations = 0;
  private invalidations = 0;
  private upcallInvalidations = 0;
  private evictions = 0;
  /** Fills not stored: the file changed meanwhile, or the bytes disagree with its size. */
  private discardedFills = 0;

  constructor(init: XlatorInit) {
    super(init);
    this.priorities = parsePriorities(this.optString('priority'), (m) => this.log.warn(m));
  }

  private get child(): Xlator {
    return this.children[0]!;
  }

  private get pageSizeBytes(): number {
    return this.optNumber('page-size');
  }

  private get cacheSizeBytes(): number {
    return this.optNumber('cache-size');
  }

  private get timeoutMs(): number {
    return this.optNumber('cache-timeout') * 1000;
  }

  override statedump(): Record<string, unknown> {
    return {
      pageSizeBytes: this.pageSizeBytes, cacheSizeBytes: this.cacheSizeBytes, cacheTimeoutS: this.optNumber('cache-timeout'),
      cachedBytes: this.cachedBytes, pages: this.pageCount, files: this.files.size, openFds: this.openFds, seenFiles: this.seen.size,
      hits: this.hits, misses: this.misses, passed: this.passed, revalidations: this.revalidations,
      invalidations: this.invalidations, upcallInvalidations: this.upcallInvalidations, evictions: this.evictions, discardedFills: this.discardedFills,
    };
  }

  /** Pages were cut at the old page size; a smaller cache-size evicts at once. */
  override reconfigure(options: Record<string, string>): void {
    const pageSize = this.pageSizeBytes;
    const priority = this.optString('priority');
    super.reconfigure(options);
    if (this.optString('priority') !== priority) {
      this.priorities = parsePriorities(this.optString('priority'), (m) => this.log.warn(m));
      for (const s of this.files.values()) s.priority = this.priorityOf(s.path);
      this.dropAll();
    }
    if (this.pageSizeBytes !== pageSize) this.dropAll();
    this.room(0);
  }

  /** A brick that went or came back may answer differently (a replica that was behind). */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.dropAll();
    super.notify(event, from);
  }

  override async fini(): Promise<void> {
    this.dropAll();
  }

  /**
   * Another client changed these paths (a brick's upcall): the pages of the files at or
   * below them go (a directory renamed or removed elsewhere), and their attributes. A fill
   * in flight is thrown away (the generation moves); attributes in flight may still land,
   * but only pages read after this could be validated by them.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    this.upcallInvalidations += paths.length;
    const keys = new Set(paths.map((p) => this.keyOf(p)));
    for (const k of keys) this.seen.delete(k);
    for (const p of paths) this.names.delete(p);
    for (const s of this.files.values()) {
      if (keys.has(s.key) || paths.some((p) => under(s.path, p))) this.dropFile(s);
    }
    super.invalidate(paths, from);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const r = await this.child.call('lookup', a, f);
    this.see(a.path, r.iatt, a.inode);
    return r;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const r = await this.child.call('fstat', a, f);
    const file = this.fdFile(a.fd);
    if (file && !file.detached) this.seeFile(file.key, r.iatt);
    return r;
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const r = await this.child.call('readdir', a, f);
    const base = a.path === '/' ? '' : a.path;
    for (const e of r.entries) if (!e.linkto) this.see(`${base}/${e.name}`, e.iatt);
    return r;
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.path, a.fd.inode), () => this.child.call('open', a, f)) : this.child.call('open', a, f));
    this.track(a.fd, a.path);
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    // create of an existing file opens it, and truncates it with O_TRUNC.
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.path, a.fd.inode), () => this.child.call('create', a, f)) : this.child.call('create', a, f));
    this.see(a.path, r.iatt, a.fd.inode);
    this.track(a.fd, a.path, r.iatt);
    return r;
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const st = a.fd.ctx.get(this.fdKey);
    const file = st && this.live(st.file);
    if (!st || !file || st.bypass || file.detached || file.changing > 0 || a.size <= 0 || this.cacheSizeBytes === 0) return this.pass(a, f);
    let attrs = this.fresh(file.key);
    if (!attrs) {
      // Just changed here: what we knew is stale, and asking would cost this read a round trip.
      if (this.justChanged(file.key)) return this.pass(a, f);
      attrs = await this.revalidate(file, a.fd, f);
      if (!attrs || file.detached || file.changing > 0) return this.pass(a, f);
    }
    if (file.priority === 0 || !this.keeps(attrs.size)) return this.pass(a, f);
    const ps = this.pageSizeBytes;
    const first = Math.floor(a.offset / ps);
    // Pages from the end of the file on hold nothing.
    const last = Math.min(Math.floor((a.offset + a.size - 1) / ps), Math.ceil(attrs.size / ps) - 1);
    const held = this.cover(file, first, last, attrs);
    if (held) {
      this.hits++;
      for (const p of held) this.touch(p);
      return { data: this.slice(held, a.offset, a.size, ps) };
    }
    // A fill reads whole pages: worth it only if that is at most twice what was asked for.
    const fillBytes = Math.min((last + 1) * ps, attrs.size) - first * ps;
    if (fillBytes > 2 * a.size) return this.pass(a, f);
    return this.fill(file, a, attrs, first, last, ps, f);
  }

  write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.changing(this.fdFile(a.fd), () => this.child.call('write', a, f));
  }

  writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.changing(this.fdFile(a.fd), () => this.child.call('writev', a, f));
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changing(this.fdFile(a.fd), () => this.child.call('ftruncate', a, f));
  }

  /** A change of size changes the data; any reply with attributes is the latest we know. */
  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const r = await (a.attrs.size === undefined ? this.child.call('setattr', a, f) : this.changing(this.fileFor(a.path, a.inode), () => this.child.call('setattr', a, f)));
    // A write-behind below may answer without attributes.
    if (r.iatt) this.see(a.path, r.iatt, a.inode);
    return r;
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    const r = await this.child.call('link', a, f);
    this.see(a.path, r.iatt, a.inode);
    return r;
  }

  /**
   * Fds still open on the unlinked file read on through the child; the name now means
   * nothing. (The file may live on under another name: it is cached again from its next open.)
   */
  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    const s = this.fileFor(a.path, a.inode);
    const r = await this.changing(s, () => this.child.call('unlink', a, f));
    this.seen.delete(s.key);
    this.names.delete(a.path);
    this.detach(s);
    return r;
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    const r = await this.child.call('rmdir', a, f);
    this.seen.delete(this.keyOf(a.path, a.inode));
    this.forgetNames(a.path);
    return r;
  }

  /**
   * Both names and everything under a renamed directory lose their pages and attributes.
   * A file renamed keeps its state (its fds' later writes still drop its pages) and takes the
   * new name's priority; one without a gfid is known only by its path, so it moves with it.
   * What the rename replaced lives on for its open fds only.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    if (a.from === a.to) return this.child.call('rename', a, f);
    const source = this.keyOf(a.from, a.inode);
    // Only regular files have attributes here: a known file (or one the caller's inode says is
    // not a directory) has nothing under it, so only the states of its two names are touched;
    // scanning every file kept here per rename made a rename of many files quadratic.
    const isFile = this.seen.get(source)?.attrs !== undefined || (a.inode !== undefined && !a.inode.isDir());
    const touches = (s: FileState): boolean => under(s.path, a.from) || under(s.path, a.to);
    const touched = isFile
      ? [...new Set([source, this.keyOf(a.to), a.from, a.to].map((k) => this.files.get(k)))].filter((s): s is FileState => s !== undefined && touches(s))
      : [...this.files.values()].filter(touches);
    for (const s of touched) {
      s.changing++;
      this.dropFile(s);
    }
    try {
      const r = await this.child.call('rename', a, f);
      this.seen.delete(source);
      // rename(2) replaces only empty directories: nothing is under the target.
      if (!isFile) for (const k of [...this.seen.keys()]) if (k.startsWith(a.from + '/')) this.seen.delete(k);
      this.forgetNames(a.from, !isFile);
      this.forgetNames(a.to, !isFile);
      const moved = source === a.from ? a.to : source;
      if (moved !== a.to) this.names.set(a.to, moved);
      this.seen.set(moved, { at: performance.now() });
      for (const s of touched) if (under(s.path, a.to) && !under(s.path, a.from)) this.detach(s);
      for (const s of touched) {
        if (s.detached || !under(s.path, a.from)) continue;
        s.path = a.to + s.path.slice(a.from.length);
        s.priority = this.priorityOf(s.path);
        if (s.key.startsWith('/')) {
          if (this.files.get(s.key) === s) this.files.delete(s.key);
          s.key = s.path;
          this.files.set(s.key, s);
        }
      }
      return r;
    } finally {
      for (const s of touched) {
        s.changing--;
        s.gen++;
        this.forgetIfUnused(s);
      }
    }
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const st = a.fd.ctx.take(this.fdKey);
    if (st) {
      this.openFds--;
      const file = this.live(st.file);
      file.fds--;
      this.forgetIfUnused(file);
    }
    return this.child.call('release', a, f);
  }

  /**
   * Whether files of this size are kept: within min-file-size..max-file-size, and no larger
   * than half the cache. A larger one read through would push everything else out and be
   * evicted itself, front first, before a sequential re-read reached it: no hits, and a
   * copy of every byte read.
   */
  private keeps(size: number): boolean {
    const max = this.optNumber('max-file-size');
    return (max === 0 || size <= max) && size >= this.optNumber('min-file-size') && size <= this.cacheSizeBytes / 2;
  }

  private pass(a: FopArgs<'read'>, frame: Frame): Promise<FopReply<'read'>> {
    this.passed++;
    return this.child.call('read', a, frame);
  }

  private track(fd: Fd, path: string, iatt?: Iatt): void {
    const file = this.fileFor(path, fd.inode, iatt);
    file.fds++;
    this.openFds++;
    fd.ctx.set(this.fdKey, { file, bypass: (fd.flags & O_DIRECT) !== 0 || (fd.flags & O_ACCMODE) === O_WRONLY });
  }

  /** The key of the file at path: the caller's inode's gfid, else the name's last known one, else the path. */
  private keyOf(path: string, inode?: Inode): string {
    return inode?.gfid ?? this.names.get(path) ?? this.inodes.find(path)?.gfid ?? path;
  }

  /** The state of the file an fd is open on. */
  private fdFile(fd: Fd): FileState | undefined {
    const st = fd.ctx.get(this.fdKey);
    return st && this.live(st.file);
  }

  private live(s: FileState): FileState {
    while (s.merged) s = s.merged;
    return s;
  }

  /**
   * The name's gfid is now known: a state kept for it by path (opened before any reply gave
   * the gfid) becomes the file's. If the file has one already (reached through another name
   * or its inode), the two become one: the path one's fds count, change and read there.
   */
  private adopt(path: string, key: string): void {
    const s = this.files.get(path);
    if (!s || s.key !== path || s.detached || s.changing > 0) return;
    this.files.delete(path);
    const g = this.files.get(key);
    if (!g) {
      s.key = key;
      this.files.set(key, s);
      return;
    }
    this.dropFile(s);
    this.dropFile(g);
    g.fds += s.fds;
    s.fds = 0;
    s.merged = g;
  }

  /** Names at path (and below it, for a directory) mean something else or nothing now. */
  private forgetNames(path: string, subtree = true): void {
    this.names.delete(path);
    if (subtree) for (const n of [...this.names.keys()]) if (under(n, path)) this.names.delete(n);
  }

  private priorityOf(path: string): number {
    return this.priorities.find((r) => r.pattern.test(path))?.priority ?? 1;
  }

  private fileFor(path: string, inode?: Inode, iatt?: Iatt): FileState {
    const key = iatt?.gfid ?? this.keyOf(path, inode);
    if (key !== path) this.adopt(path, key);
    let s = this.files.get(key);
    if (!s) {
      s = { key, path, pages: new Map(), gen: 0, changing: 0, fds: 0, detached: false, priority: this.priorityOf(path) };
      this.files.set(key, s);
    }
    return s;
  }

  /** A file with no pages, fds, changes or revalidation left is forgotten (its attributes stay in `seen`). */
  private forgetIfUnused(s: FileState): void {
    if (s.pages.size === 0 && s.fds === 0 && s.changing === 0 && !s.validating && this.files.get(s.key) === s) this.files.delete(s.key);
  }

  /** The name no longer leads to this file: its pages go, and its open fds read through. */
  private detach(s: FileState): void {
    this.dropFile(s);
    s.detached = true;
    if (this.files.get(s.key) === s) this.files.delete(s.key);
  }

  /**
   * Winds a fop that changes a file's data. Its pages go first and nothing of it is filled
   * or served until it is answered; fills started before it are thrown away. A write
   * through an fd we do not know could be to any file: every page goes.
   */
  private async changing<R>(file: FileState | undefined, wind: () => Promise<R>): Promise<R> {
    file = file && this.live(file);
    if (!file) {
      this.dropAll();
      return wind();
    }
    file.changing++;
    this.dropFile(file);
    if (!file.detached) this.seen.set(file.key, { at: performance.now() });
    try {
      return await wind();
    } finally {
      file.changing--;
      file.gen++;
      // Attributes seen while it was in flight may be from before it.
      if (!file.detached) this.seen.set(file.key, { at: performance.now() });
      this.forgetIfUnused(file);
    }
  }

  /** Attributes passing through for a name: those of its file. */
  private see(path: string, iatt: Iatt, inode?: Inode): void {
    if (!isRegular(iatt)) return;
    const key = iatt.gfid ?? this.keyOf(path, inode);
    if (key !== path) {
      this.names.set(path, key);
      this.adopt(path, key);
    }
    this.seeFile(key, iatt);
  }

  /** A file's attributes: pages filled under other ones are stale and go. */
  private seeFile(key: string, iatt: Iatt): void {
    if (!isRegular(iatt)) return;
    const now = attrsOf(iatt);
    const s = this.files.get(key);
    if (s && !s.detached) {
      for (const p of [...s.pages.values()]) {
        if (!sameAttrs(p.attrs, now)) {
          this.dropFile(s);
          break;
        }
      }
    }
    this.seen.set(key, { attrs: now, at: performance.now() });
  }

  /** The file's latest attributes if seen within cache-timeout. */
  private fresh(key: string): Attrs | undefined {
    const s = this.seen.get(key);
    if (!s?.attrs || performance.now() - s.at >= this.timeoutMs) return undefined;
    return s.attrs;
  }

  /** Whether this client changed the file within cache-timeout and no attributes were seen since. */
  private justChanged(key: string): boolean {
    const s = this.seen.get(key);
    return s !== undefined && !s.attrs && performance.now() - s.at < this.timeoutMs;
  }

  /**
   * An fstat through the reader's fd, with the reader's frame (one at a time per file: the
   * readers that come meanwhile share the first one's); undefined if it failed.
   */
  private revalidate(s: FileState, fd: Fd, frame: Frame): Promise<Attrs | undefined> {
    if (s.validating) return s.validating;
    this.revalidations++;
    const p = this.child.call('fstat', { fd }, frame).then(
      (r) => {
        if (!s.detached && s.changing === 0) this.seeFile(s.key, r.iatt);
        return s.changing === 0 && !s.detached ? attrsOf(r.iatt) : undefined;
      },
      (e: unknown) => {
        this.log.debug(`${s.path}: revalidation failed: ${FsError.from(e).code}`);
        return undefined;
      },
    ).finally(() => {
      s.validating = undefined;
      this.forgetIfUnused(s);
    });
    s.validating = p;
    return p;
  }

  /** The held pages first..last valid under attrs, or undefined if one is missing. */
  private cover(s: FileState, first: number, last: number, attrs: Attrs): Page[] | undefined {
    const out: Page[] = [];
    for (let i = first; i <= last; i++) {
      const p = s.pages.get(i);
      if (!p || !sameAttrs(p.attrs, attrs)) return undefined;
      out.push(p);
    }
    return out;
  }

  /**
   * Reads pages first..last from the child (with the frame of the read that wants them),
   * answers from them, and keeps them if nothing changed meanwhile.
   */
  private async fill(s: FileState, a: FopArgs<'read'>, attrs: Attrs, first: number, last: number, ps: number, frame: Frame): Promise<FopReply<'read'>> {
    this.misses++;
    const gen = s.gen;
    const start = first * ps;
    const r = await this.child.call('read', { fd: a.fd, offset: start, size: (last - first + 1) * ps }, frame);
    const data = r.data;
    const expected = Math.max(0, Math.min((last + 1) * ps, attrs.size) - start);
    const latest = this.seen.get(s.key)?.attrs;
    if (s.gen === gen && s.changing === 0 && !s.detached && data.length === expected && latest && sameAttrs(latest, attrs)) {
      for (let i = first; i <= last; i++) {
        const from = (i - first) * ps;
        // Copied: the reply's buffer may be a view of a larger frame, and a page holds only its own bytes.
        this.store(s, i, Buffer.from(data.subarray(from, Math.min(from + ps, data.length))), attrs);
      }
    } else {
      this.discardedFills++;
    }
    const from = Math.min(a.offset - start, data.length);
    return { data: data.subarray(from, Math.min(from + a.size, data.length)) };
  }

  private store(s: FileState, index: number, data: Buffer, attrs: Attrs): void {
    const old = s.pages.get(index);
    if (old) this.drop(old);
    if (!this.room(data.length)) return;
    const p: Page = { file: s, index, data, attrs, priority: s.priority };
    s.pages.set(index, p);
    this.lruOf(p.priority).add(p);
    this.pageCount++;
    this.cachedBytes += data.length;
  }

  private lruOf(priority: number): Set<Page> {
    let l = this.lrus.get(priority);
    if (!l) {
      l = new Set();
      this.lrus.set(priority, l);
    }
    return l;
  }

  /** Evicts pages, lowest priority first and least recently used first within one, until bytes more fit; false if they cannot. */
  private room(bytes: number): boolean {
    const cap = this.cacheSizeBytes;
    if (bytes > cap) return false;
    for (const prio of [...this.lrus.keys()].sort((x, y) => x - y)) {
      for (const p of this.lrus.get(prio)!) {
        if (this.cachedBytes + bytes <= cap) return true;
        this.drop(p);
        this.evictions++;
        this.forgetIfUnused(p.file);
      }
    }
    return this.cachedBytes + bytes <= cap;
  }

  private touch(p: Page): void {
    const l = this.lruOf(p.priority);
    l.delete(p);
    l.add(p);
  }

  /** The bytes [offset, offset+size) out of consecutive pages (fewer at the end of the file). */
  private slice(pages: Page[], offset: number, size: number, ps: number): Buffer {
    const parts: Buffer[] = [];
    for (const p of pages) {
      const base = p.index * ps;
      const from = Math.max(offset - base, 0);
      const to = Math.min(offset + size - base, p.data.length);
      if (to > from) parts.push(p.data.subarray(from, to));
    }
    if (parts.length === 0) return Buffer.alloc(0);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private drop(p: Page): void {
    if (p.file.pages.get(p.index) !== p) return;
    p.file.pages.delete(p.index);
    this.lrus.get(p.priority)?.delete(p);
    this.pageCount--;
    this.cachedBytes -= p.data.length;
  }

  private dropFile(s: FileState): void {
    s.gen++;
    if (s.pages.size > 0) this.invalidations++;
    for (const p of [...s.pages.values()]) this.drop(p);
  }

  private dropAll(): void {
    for (const s of [...this.files.values()]) {
      this.dropFile(s);
      this.forgetIfUnused(s);
    }
    this.seen.clear();
  }
}

registerXlator('performance/io-cache', IoCache);
