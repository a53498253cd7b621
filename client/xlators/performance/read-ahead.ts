import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FsError } from '../../../lib/errors.js';
import type { FopArgs, FopReply } from '../../../lib/fops.js';
import { O_ACCMODE, O_DIRECT } from '../../../lib/fops.js';
import { CtxKey, type Fd, type Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent } from '../../../lib/xlator.js';

const { O_TRUNC, O_WRONLY } = fs.constants;

/**
 * A page fetched longer ago than this is not served: another client's write shows after at
 * most this long, the bound md-cache and the kernel's attribute cache keep too.
 */
const PAGE_TTL_MS = 1000;

/**
 * The largest read the kernel sends with its default readahead window (128 KiB), and every
 * read through libfuse 2: a reader that gets only these needs read-ahead's pages.
 */
const KERNEL_DEFAULT_READ_BYTES = 128 * 1024;

/** One page-size piece of a file, fetched ahead for one fd. */
interface Page {
  index: number;
  owner: FdState;
  /** The page's bytes (shorter than page-size at the end of the file), or undefined if the fetch failed. */
  data: Promise<Buffer | undefined>;
  /** Set once fetched. */
  bytes?: Buffer;
  startedAt: number;
  /** Bytes counted against cache-size while the page is held: page-size until it lands, then its length. */
  charged: number;
}

/**
 * The fds open on one file (its slot in the inode's ctx: every name of the file, and the
 * name a rename gives it, reach it).
 */
interface FileState {
  inode: Inode;
  fds: Set<FdState>;
  /** Fops changing the file's data in flight: no page of it is fetched meanwhile. */
  changing: number;
  /** The end of the file as a short reply showed it: nothing is fetched from there on. */
  eof?: number;
}

/** One fd's window (its slot in the fd's ctx). */
interface FdState {
  fd: Fd;
  file: FileState;
  /**
   * O_DIRECT or write-only, or the kernel reads it ahead itself (a read of a whole page or
   * more came): reads go straight to the child.
   */
  bypass: boolean;
  /** Where the next read starts if the fd is read sequentially (-1 before its first read). */
  next: number;
  /** Reads in a row that started where the one before ended. */
  streak: number;
  /** Held pages by index: fetched, or still being fetched. */
  pages: Map<number, Page>;
  /** Fetches in flight, held or not: release waits for them, so none reaches a released fd. */
  fetching: Set<Promise<void>>;
}

/**
 * performance/read-ahead: when an fd is read sequentially (a read starts where the one before
 * ended), fetches the pages that cover the read and the page-count pages after it from the
 * child, concurrently, and answers the next reads from them; a read of a page still on its
 * way waits for it. Through libfuse 2 (or without root, where the mount cannot raise the
 * kernel's readahead) the kernel sends reads of at most 128 KiB, one or two at a time, so a
 * sequential reader waits a whole brick round trip for each; this keeps several in flight.
 * Pages are 1 MiB, the largest read libfuse 3 lets the kernel send. Where the kernel sends
 * reads of a whole page (libfuse 3 with the window the bridge raises), it is reading ahead
 * itself: the fd is left to it. A read elsewhere (a seek) drops the fd's pages and goes to
 * the child, unless the fd's pages already cover it (the kernel's concurrent reads may
 * arrive out of order).
 *
 * Coherence, within this client: a write or truncate (ftruncate, setattr of the size, an
 * O_TRUNC open) through any fd or name of a file drops every fd's pages of that file before
 * it is wound, and no page of the file is fetched until it is answered, so a read that
 * starts after the change was answered never sees bytes from before it. The fds of a file
 * are found through its inode, so a rename or unlink changes nothing of what they read
 * and keeps their pages. Another client's writes drop the file's pages when a brick says so
 * (invalidate, features.cache-invalidation), and show after at most PAGE_TTL_MS anyway. A
 * failed fetch is forgotten; the read that wanted it goes to the child and gets the child's
 * own answer. A short reply is the end of the file: nothing is fetched past it.
 */
export class ReadAhead extends Xlator implements FopImpl {
  static override readonly description = 'Fetches the next pages of sequentially read files ahead of the reader';
  static override readonly options = {
    'page-size': {
      type: 'size', default: 1024 * 1024, min: 4096, max: 4 * 1024 ** 2, multipleOf: 4096,
      description: 'Bytes fetched by one read-ahead read (pages start at multiples of it)',
    },
    'page-count': {
      type: 'int', default: 4, min: 1, max: 16,
      description: 'Pages fetched ahead of a sequential reader, beyond the ones its read covers',
      volume: { key: 'performance.read-ahead-page-count', description: 'Pages (1 MiB each) fetched ahead of a sequential reader' },
    },
    'cache-size': {
      type: 'size', default: 32 * 1024 ** 2, min: 0, max: 1024 ** 3,
      description: 'Bytes of fetched pages held across all fds; the oldest go first (0 turns read-ahead off)',
    },
  } as const;
  /** `volume set performance.read-ahead on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.read-ahead', default: true, description: 'Fetch the next pages of a file read sequentially before they are asked for (on/off)' } as const;

  private readonly fdKey = new CtxKey<FdState>(this.name);
  private readonly fileKey = new CtxKey<FileState>(this.name);
  /** Files with an fd open here or a change in flight: what a brick event or an invalidation drops. */
  private readonly files = new Set<FileState>();
  /** Every held page, oldest first (eviction order). */
  private readonly held = new Set<Page>();
  private cachedBytes = 0;
  private hits = 0;
  private misses = 0;
  private prefetches = 0;
  private prefetchFailures = 0;
  private drops = 0;
  private evictions = 0;
  private expired = 0;
  private invalidations = 0;
  private bypassed = 0;
  /** Fds left to the kernel's own readahead (whole-page reads). */
  private kernelReadsAhead = 0;

  private get child(): Xlator {
    return this.children[0]!;
  }

  private get pageSizeBytes(): number {
    return this.optNumber('page-size');
  }

  private get pageCount(): number {
    return this.optNumber('page-count');
  }

  private get cacheSizeBytes(): number {
    return this.optNumber('cache-size');
  }

  override statedump(): Record<string, unknown> {
    return {
      pageSizeBytes: this.pageSizeBytes, pageCount: this.pageCount, cacheSizeBytes: this.cacheSizeBytes,
      cachedBytes: this.cachedBytes, pages: this.held.size, openFds: this.openFds().length, files: this.files.size,
      hits: this.hits, misses: this.misses, prefetches: this.prefetches, prefetchFailures: this.prefetchFailures,
      drops: this.drops, evictions: this.evictions, expired: this.expired, invalidations: this.invalidations, bypassed: this.bypassed, kernelReadsAhead: this.kernelReadsAhead,
    };
  }

  /** Pages were cut at the old page size: they are cheap to fetch again. */
  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    this.dropAll();
  }

  /** A brick that went or came back may answer differently (a replica that was behind). */
  override notify(event: XlatorEvent, from: Xlator): void {
    this.dropAll();
    super.notify(event, from);
  }

  /** No fetch outlives the graph: the children go next. */
  override async fini(): Promise<void> {
    this.dropAll();
    await Promise.all(this.openFds().flatMap((f) => [...f.fetching]));
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.fd.inode), () => this.child.call('open', a, f)) : this.child.call('open', a, f));
    this.track(a.fd);
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    // create of an existing file opens it, and truncates it with O_TRUNC.
    const r = await ((a.flags & O_TRUNC) ? this.changing(this.fileFor(a.fd.inode), () => this.child.call('create', a, f)) : this.child.call('create', a, f));
    this.track(a.fd);
    return r;
  }

  read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const st = a.fd.ctx.get(this.fdKey);
    if (!st || st.bypass || a.size <= 0) {
      if (st?.bypass) this.bypassed++;
      return this.child.call('read', a, f);
    }
    const ps = this.pageSizeBytes;
    const end = a.offset + a.size;
    const first = Math.floor(a.offset / ps);
    const last = Math.floor((end - 1) / ps);
    if (a.size >= ps && a.size > KERNEL_DEFAULT_READ_BYTES && !this.cover(st, first, last, ps)) {
      // Reads of a whole page are the kernel reading ahead itself (libfuse 3 with the window
      // the bridge raised: 1 MiB reads, several in flight). Fetching ahead of those again
      // only adds a copy of every byte (fio's 1 MiB sequential read: 20-28 % faster without).
      this.dropPages(st);
      st.bypass = true;
      this.kernelReadsAhead++;
      return this.child.call('read', a, f);
    }
    this.expire(st);
    const sequential = a.offset === st.next;
    st.next = end;
    if (sequential) {
      st.streak++;
    } else if (!this.cover(st, first, last, ps)) {
      // A seek: what was fetched ahead is not what comes next.
      this.dropPages(st);
      st.streak = 0;
    }
    // The page before the read stays: the kernel's reads may arrive slightly out of order.
    for (const p of [...st.pages.values()]) if (p.index < first - 1) this.drop(p);
    if (st.streak > 0 && st.file.changing === 0) this.fetchAhead(st, first, last + this.pageCount, ps, f);
    const pages = this.cover(st, first, last, ps);
    if (!pages) return this.miss(st, a, f);
    return this.answer(st, a, pages, ps, f);
  }

  write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.changing(this.fileFor(a.fd.inode), () => this.child.call('write', a, f));
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changing(this.fileFor(a.fd.inode), () => this.child.call('ftruncate', a, f));
  }

  /** Only a change of size changes what a read returns. */
  setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const inode = a.inode ?? this.inodes.find(a.path);
    if (a.attrs.size === undefined || !inode) return this.child.call('setattr', a, f);
    return this.changing(this.fileFor(inode), () => this.child.call('setattr', a, f));
  }

  /** close(2) of a descriptor: its pages go (a dup of it may read on and fetch again). */
  flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    const st = a.fd.ctx.get(this.fdKey);
    if (st) this.dropPages(st);
    return this.child.call('flush', a, f);
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const st = a.fd.ctx.take(this.fdKey);
    if (st) {
      this.dropPages(st);
      st.file.fds.delete(st);
      this.forgetIfUnused(st.file);
      if (st.fetching.size > 0) await Promise.all(st.fetching);
    }
    return this.child.call('release', a, f);
  }

  /**
   * Another client changed these paths: the pages of each file (through its inode, so of
   * every name of it; and of files below a changed directory) go, so the next read asks the
   * brick. Few files are open: a scan.
   */
  override invalidate(paths: readonly string[], from: Xlator): void {
    const named = new Set<Inode | undefined>(paths.map((p) => this.inodes.find(p)));
    for (const s of this.files) {
      const path = s.inode.path;
      if (named.has(s.inode) || paths.some((p) => path === p || path.startsWith(p === '/' ? '/' : p + '/'))) this.dropFilePages(s);
    }
    super.invalidate(paths, from);
  }

  private track(fd: Fd): void {
    const file = this.fileFor(fd.inode);
    const bypass = (fd.flags & O_DIRECT) !== 0 || (fd.flags & O_ACCMODE) === O_WRONLY;
    const f: FdState = { fd, file, bypass, next: -1, streak: 0, pages: new Map(), fetching: new Set() };
    file.fds.add(f);
    fd.ctx.set(this.fdKey, f);
  }

  private fileFor(inode: Inode): FileState {
    return inode.ctx.ensure(this.fileKey, () => {
      const s: FileState = { inode, fds: new Set(), changing: 0 };
      this.files.add(s);
      return s;
    });
  }

  private forgetIfUnused(s: FileState): void {
    if (s.fds.size > 0 || s.changing > 0) return;
    this.files.delete(s);
    if (s.inode.ctx.get(this.fileKey) === s) s.inode.ctx.take(this.fileKey);
  }

  private openFds(): FdState[] {
    return [...this.files].flatMap((s) => [...s.fds]);
  }

  /**
   * Winds a fop that changes a file's data. Its pages go first, fetched or still on their
   * way (a read already waiting for one is concurrent with the change and may see either
   * version), and none is fetched until it is answered: a fetch meanwhile could hold either
   * version too.
   */
  private async changing<R>(file: FileState, wind: () => Promise<R>): Promise<R> {
    file.changing++;
    this.dropFilePages(file);
    try {
      return await wind();
    } finally {
      file.changing--;
      this.forgetIfUnused(file);
    }
  }

  private dropFilePages(s: FileState): void {
    this.invalidations++;
    s.eof = undefined;
    for (const f of s.fds) this.dropPages(f);
  }

  /** The held pages first..last that answer a read (up to the end of the file), or undefined if one is missing. */
  private cover(f: FdState, first: number, last: number, ps: number): Page[] | undefined {
    const out: Page[] = [];
    for (let i = first; i <= last; i++) {
      const p = f.pages.get(i);
      if (!p) return undefined;
      out.push(p);
      if (p.bytes && p.bytes.length < ps) break;
    }
    return out;
  }

  /**
   * Starts fetching the pages first..upTo the fd does not hold, short of the end of file and
   * the cache size, with the frame of the read that called for them.
   */
  private fetchAhead(f: FdState, first: number, upTo: number, ps: number, frame: Frame): void {
    for (let i = first; i <= upTo; i++) {
      if (f.file.eof !== undefined && i * ps >= f.file.eof) return;
      if (f.pages.has(i)) continue;
      if (!this.room(ps, f)) return;
      this.fetch(f, i, ps, frame);
    }
  }

  /** Makes room for bytes more by evicting the oldest pages of other fds; false when they do not fit. */
  private room(bytes: number, protect: FdState): boolean {
    const cap = this.cacheSizeBytes;
    if (bytes > cap) return false;
    for (const p of this.held) {
      if (this.cachedBytes + bytes <= cap) break;
      if (p.owner === protect) continue;
      this.drop(p);
      this.evictions++;
    }
    return this.cachedBytes + bytes <= cap;
  }

  private fetch(f: FdState, index: number, ps: number, frame: Frame): void {
    const page: Page = { index, owner: f, startedAt: performance.now(), charged: ps, data: Promise.resolve(undefined) };
    f.pages.set(index, page);
    this.held.add(page);
    this.cachedBytes += ps;
    this.prefetches++;
    let p: Promise<FopReply<'read'>>;
    try {
      p = this.child.call('read', { fd: f.fd, offset: index * ps, size: ps }, frame);
    } catch (e) {
      p = Promise.reject(e);
    }
    page.data = p.then(
      (r) => {
        page.bytes = r.data;
        this.landed(page, ps);
        return r.data;
      },
      (e: unknown) => {
        this.prefetchFailures++;
        this.log.debug(`${f.fd.path}: read-ahead of page ${index} failed: ${FsError.from(e).code}`);
        this.drop(page);
        return undefined;
      },
    );
    const done: Promise<void> = page.data.then(() => { f.fetching.delete(done); });
    f.fetching.add(done);
  }

  /** A fetched page: charged its real length; a short one marks the end of the file. */
  private landed(page: Page, ps: number): void {
    if (!this.isHeld(page)) return;
    const len = page.bytes!.length;
    this.cachedBytes += len - page.charged;
    page.charged = len;
    if (len < ps) {
      const f = page.owner;
      this.sawEof(f.file, page.index * ps + len);
      // Pages fetched past it concurrently hold nothing.
      for (const p of [...f.pages.values()]) if (p.index > page.index) this.drop(p);
    }
  }

  /** The read's bytes from its pages; if one of them failed, the child answers instead. */
  private async answer(f: FdState, a: FopArgs<'read'>, pages: Page[], ps: number, frame: Frame): Promise<FopReply<'read'>> {
    const parts: Buffer[] = [];
    for (const p of pages) {
      const data = await p.data;
      if (!data) return this.miss(f, a, frame);
      const base = p.index * ps;
      const from = Math.max(a.offset - base, 0);
      const to = Math.min(a.offset + a.size - base, data.length);
      if (to > from) parts.push(data.subarray(from, to));
      if (data.length < ps) break;
    }
    this.hits++;
    return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
  }

  /** A read the pages do not answer goes to the child; a short reply shows the end of the file. */
  private async miss(f: FdState, a: FopArgs<'read'>, frame: Frame): Promise<FopReply<'read'>> {
    this.misses++;
    const r = await this.child.call('read', a, frame);
    if (r.data.length < a.size && f.file.changing === 0) this.sawEof(f.file, a.offset + r.data.length);
    return r;
  }

  private sawEof(s: FileState, eof: number): void {
    s.eof = s.eof === undefined ? eof : Math.min(s.eof, eof);
  }

  private isHeld(p: Page): boolean {
    return p.owner.pages.get(p.index) === p;
  }

  /** Forgets a held page; a reader already waiting for it still gets its bytes. */
  private drop(p: Page): void {
    if (!this.isHeld(p)) return;
    p.owner.pages.delete(p.index);
    this.held.delete(p);
    this.cachedBytes -= p.charged;
  }

  private dropPages(f: FdState): void {
    this.drops += f.pages.size;
    for (const p of [...f.pages.values()]) this.drop(p);
  }

  private expire(f: FdState): void {
    const before = performance.now() - PAGE_TTL_MS;
    for (const p of [...f.pages.values()]) {
      if (p.startedAt < before) {
        this.drop(p);
        this.expired++;
      }
    }
  }

  private dropAll(): void {
    for (const s of this.files) {
      s.eof = undefined;
      for (const f of s.fds) this.dropPages(f);
    }
  }
}

registerXlator('performance/read-ahead', ReadAhead);
