import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { FsError } from '../../../lib/errors.js';
import { O_ACCMODE, O_DIRECT, S_IFMT, S_IFREG, type FopArgs, type FopReply, type Iatt } from '../../../lib/fops.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../lib/xlator.js';

const { O_TRUNC, O_WRONLY } = fs.constants;

/** Paths whose latest attributes are remembered (lookups, listings): bounded like md-cache's entries. */
const SEEN_LIMIT = 16384;

/** What a page is validated by: the file's modification time and size when it was filled. */
interface Attrs {
  mtimeMs: number;
  size: number;
}

/**
 * The latest attributes this translator saw for a path, and when (performance.now()); no
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

/** The cache of one path, kept across opens and closes. */
interface FileState {
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

function isRegular(iatt: Iatt): boolean {
  return (iatt.mode & S_IFMT) === S_IFREG;
}

/**
 * performance/io-cache (GlusterFS's io-cache): file pages kept in client memory across opens
 * and closes, keyed by path, for the reads the kernel sends again after dropping its own
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
 * (invalidate) drop the paths and what is below them. O_DIRECT fds bypass it. Files are keyed by path: a write
 * through another hard link is seen after cache-timeout, as another client's.
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

  private readonly files = new Map<string, FileState>();
  private readonly fds = new Map<number, FdState>();
  private readonly seen = new BoundedMap<string, Seen>(SEEN_LIMIT);
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
      cachedBytes: this.cachedBytes, pages: this.pageCount, files: this.files.size, openFds: this.fds.size, seenPaths: this.seen.size,
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
    for (const p of paths) this.seen.delete(p);
    for (const s of this.files.values()) {
      if (paths.some((p) => s.path === p || s.path.startsWith(p === '/' ? '/' : p + '/'))) this.dropFile(s);
    }
    super.invalidate(paths, from);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const r = await this.child.call('lookup', a, f);
    this.see(a.path, r.iatt);
    return r;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const r = await this.child.call('fstat', a, f);
    const st = this.fds.get(a.fd);
    if (st && !st.file.detached) this.see(st.file.path, r.iatt);
    return r;
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const r = await this.child.call('readdir', a, f);
    const base = a.path === '/' ? '' : a.path;
    for (const e of r.entries) if (!e.linkto) this.see(`${base}/${e.name}`, e.iatt);
    return r;
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.path), () => this.child.call('open', a, f)) : this.child.call('open', a, f));
    this.track(r.fd, a.path, a.flags);
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    // create of an existing file opens it, and truncates it with O_TRUNC.
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.path), () => this.child.call('create', a, f)) : this.child.call('create', a, f));
    this.track(r.fd, a.path, a.flags);
    this.see(a.path, r.iatt);
    return r;
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const st = this.fds.get(a.fd);
    const file = st?.file;
    if (!st || !file || st.bypass || file.detached || file.changing > 0 || a.size <= 0 || this.cacheSizeBytes === 0) return this.pass(a, f);
    let attrs = this.fresh(file.path);
    if (!attrs) {
      // Just changed here: what we knew is stale, and asking would cost this read a round trip.
      if (this.justChanged(file.path)) return this.pass(a, f);
      attrs = await this.revalidate(st, a.fd, f);
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
    return this.changing(this.fds.get(a.fd)?.file, () => this.child.call('write', a, f));
  }

  writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.changing(this.fds.get(a.fd)?.file, () => this.child.call('writev', a, f));
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changing(this.fds.get(a.fd)?.file, () => this.child.call('ftruncate', a, f));
  }

  /** A change of size changes the data; any reply with attributes is the latest we know. */
  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const r = await (a.attrs.size === undefined ? this.child.call('setattr', a, f) : this.changing(this.fileFor(a.path), () => this.child.call('setattr', a, f)));
    // A write-behind below may answer without attributes.
    if (r.iatt) this.see(a.path, r.iatt);
    return r;
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    const r = await this.child.call('link', a, f);
    this.see(a.path, r.iatt);
    return r;
  }

  /** Fds still open on the unlinked file read on through the child; the name now means nothing. */
  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    const s = this.fileFor(a.path);
    const r = await this.changing(s, () => this.child.call('unlink', a, f));
    this.seen.delete(a.path);
    this.detach(s);
    return r;
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    const r = await this.child.call('rmdir', a, f);
    this.seen.delete(a.path);
    return r;
  }

  /**
   * Both names and everything under a renamed directory lose their pages and attributes;
   * files move with their names, so their fds' later writes still drop the right pages.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    if (a.from === a.to) return this.child.call('rename', a, f);
    const under = (p: string, dir: string): boolean => p === dir || p.startsWith(dir + '/');
    const touched = [...this.files.values()].filter((s) => under(s.path, a.from) || under(s.path, a.to));
    // Only regular files have attributes here: a known file has nothing under it to scan for.
    const isFile = this.seen.get(a.from)?.attrs !== undefined;
    for (const s of touched) {
      s.changing++;
      this.dropFile(s);
    }
    try {
      const r = await this.child.call('rename', a, f);
      this.seen.delete(a.from);
      // rename(2) replaces only empty directories: nothing is under the target.
      if (!isFile) for (const k of [...this.seen.keys()]) if (k.startsWith(a.from + '/')) this.seen.delete(k);
      this.seen.set(a.to, { at: performance.now() });
      // What the rename replaced lives on for its open fds only.
      for (const s of touched) if (under(s.path, a.to) && !under(s.path, a.from)) this.detach(s);
      for (const s of touched) {
        if (s.detached || !under(s.path, a.from)) continue;
        if (this.files.get(s.path) === s) this.files.delete(s.path);
        s.path = a.to + s.path.slice(a.from.length);
        s.priority = this.priorityOf(s.path);
        this.files.set(s.path, s);
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
    const st = this.fds.get(a.fd);
    if (st) {
      this.fds.delete(a.fd);
      st.file.fds--;
      this.forgetIfUnused(st.file);
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

  private track(fd: number, path: string, flags: number): void {
    const old = this.fds.get(fd);
    if (old) {
      // The child reused a number we still knew: that fd is gone.
      old.file.fds--;
      this.forgetIfUnused(old.file);
    }
    const file = this.fileFor(path);
    file.fds++;
    this.fds.set(fd, { file, bypass: (flags & O_DIRECT) !== 0 || (flags & O_ACCMODE) === O_WRONLY });
  }

  private priorityOf(path: string): number {
    return this.priorities.find((r) => r.pattern.test(path))?.priority ?? 1;
  }

  private fileFor(path: string): FileState {
    let s = this.files.get(path);
    if (!s) {
      s = { path, pages: new Map(), gen: 0, changing: 0, fds: 0, detached: false, priority: this.priorityOf(path) };
      this.files.set(path, s);
    }
    return s;
  }

  /** A file with no pages, fds, changes or revalidation left is forgotten (its attributes stay in `seen`). */
  private forgetIfUnused(s: FileState): void {
    if (s.pages.size === 0 && s.fds === 0 && s.changing === 0 && !s.validating && this.files.get(s.path) === s) this.files.delete(s.path);
  }

  /** The name no longer leads to this file: its pages go, and its open fds read through. */
  private detach(s: FileState): void {
    this.dropFile(s);
    s.detached = true;
    if (this.files.get(s.path) === s) this.files.delete(s.path);
  }

  /**
   * Winds a fop that changes a file's data. Its pages go first and nothing of it is filled
   * or served until it is answered; fills started before it are thrown away. A write
   * through an fd we do not know could be to any file: every page goes.
   */
  private async changing<R>(file: FileState | undefined, wind: () => Promise<R>): Promise<R> {
    if (!file) {
      this.dropAll();
      return wind();
    }
    file.changing++;
    this.dropFile(file);
    if (!file.detached) this.seen.set(file.path, { at: performance.now() });
    try {
      return await wind();
    } finally {
      file.changing--;
      file.gen++;
      // Attributes seen while it was in flight may be from before it.
      if (!file.detached) this.seen.set(file.path, { at: performance.now() });
      this.forgetIfUnused(file);
    }
  }

  /** Attributes passing through: pages filled under other ones are stale and go. */
  private see(path: string, iatt: Iatt): void {
    if (!isRegular(iatt)) return;
    const now = attrsOf(iatt);
    const s = this.files.get(path);
    if (s && !s.detached) {
      for (const p of [...s.pages.values()]) {
        if (!sameAttrs(p.attrs, now)) {
          this.dropFile(s);
          break;
        }
      }
    }
    this.seen.set(path, { attrs: now, at: performance.now() });
  }

  /** The path's latest attributes if seen within cache-timeout. */
  private fresh(path: string): Attrs | undefined {
    const s = this.seen.get(path);
    if (!s?.attrs || performance.now() - s.at >= this.timeoutMs) return undefined;
    return s.attrs;
  }

  /** Whether this client changed the file within cache-timeout and no attributes were seen since. */
  private justChanged(path: string): boolean {
    const s = this.seen.get(path);
    return s !== undefined && !s.attrs && performance.now() - s.at < this.timeoutMs;
  }

  /**
   * An fstat through the reader's fd, with the reader's frame (one at a time per file: the
   * readers that come meanwhile share the first one's); undefined if it failed.
   */
  private revalidate(f: FdState, fd: number, frame: Frame): Promise<Attrs | undefined> {
    const s = f.file;
    if (s.validating) return s.validating;
    this.revalidations++;
    const p = this.child.call('fstat', { fd }, frame).then(
      (r) => {
        if (!s.detached && s.changing === 0) this.see(s.path, r.iatt);
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
    const latest = this.seen.get(s.path)?.attrs;
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
