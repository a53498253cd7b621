import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { bulkPool } from '../../../lib/buffer-pool.js';
import { FsError } from '../../../lib/errors.js';
import type { FopArgs, FopName, FopReply, SetattrFields, WriteExtent } from '../../../lib/fops.js';
import { CtxKey, type Fd, type Inode } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

const { O_APPEND, O_DSYNC } = fs.constants;

/** Acknowledged writes from this size are copied into pooled slabs; smaller ones into the V8 heap pool. */
const POOLED_COPY_BYTES = 32 * 1024;

/** One write on its way to the child. */
interface Write {
  /** The fd it was written through; none for a setattr. */
  fd?: Fd;
  offset: number;
  data: Buffer;
  /** The pooled slab `data` was copied into (lib/buffer-pool.ts), given back once the child answered. */
  slab?: Buffer;
  /** A write-through: its caller still waits for the child's reply. */
  caller?: { resolve(r: FopReply<'write'>): void; reject(e: unknown): void };
  /** O_APPEND: the brick picks the offset, so the write conflicts with every other one. */
  barrier: boolean;
  /**
   * Not a write: a setattr (owner, mode, times) of the file, acknowledged at once. It is a
   * barrier too: sent when nothing else is in flight, nothing after it before it is done
   * (a write landing after a utimens would move mtime).
   */
  setattr?: SetattrFields;
  /** Who wrote it (or changed the attributes): the caller's frame goes down with it when it is sent. */
  frame: Frame;
  /** Resolves once the child has answered, whatever the answer. */
  done: Promise<void>;
  settle(): void;
}

/** A byte range [start, end) of a file. */
interface Extent {
  start: number;
  end: number;
}

/**
 * One child request: adjacent queued writes merged into one write; runs of them that are not
 * adjacent, one writev; or a single write-through.
 */
interface Batch extends Extent {
  writes: Write[];
  /** A writev's runs, in order (start and end then span them all); undefined for a write. */
  runs?: Extent[];
  /** The pooled slab a merged batch was copied into. */
  slab?: Buffer;
}

/**
 * Write-behind state of one file, shared by every fd open on it (its slot in the inode's
 * ctx, so every name of the file, and the name a rename gives it, reach it).
 */
interface FileState {
  inode: Inode;
  /** Not sent yet; sent in this order. */
  queued: Write[];
  inflight: Set<Batch>;
  /** Bytes acknowledged to callers that the child has not answered yet (the window). */
  bytes: number;
  /** Writes waiting for room in the window, first come first served. */
  waiting: Array<{ size: number; admit(): void }>;
  /** The fds open on it through this translator. */
  fds: Set<FdState>;
  /** Someone waits for the pending work (flush, stat, release...): held setattrs go now. */
  urgent: boolean;
  /** Sends held setattrs after SETATTR_HOLD_MS even if nobody asked. */
  holdTimer?: NodeJS.Timeout;
  /** Sends a batch held for the next write to merge with (hold-ms) when nothing came. */
  writeHold?: NodeJS.Timeout;
  /** The hold is over: the last batch goes as it is. */
  writeHoldOver?: boolean;
}

/**
 * How long setattrs that went behind may wait to be merged with the next ones (tar sends
 * fchown, fchmod, futimens in a row): other clients see them after at most this, the
 * default md-cache timeout.
 */
const SETATTR_HOLD_MS = 1000;

/** Write-behind state of one fd (its slot in the fd's ctx). */
interface FdState {
  file: FileState;
  /** O_SYNC / O_DSYNC: the caller asked for the data to be stable before write() returns. */
  sync: boolean;
  append: boolean;
  /** A background write of this fd failed; reported once, on its next write, flush or fsync. */
  error?: FsError;
  /** Flushed (close() called) and nothing written since: its setattrs no longer go behind. */
  flushed: boolean;
  /** Its last flush, answered at once (flush-behind), on its way to the child. */
  flushBehind?: Promise<void>;
}

/**
 * performance/write-behind: acknowledges a write as soon as it is copied and queued, and
 * sends it to the child in the background, so a program's write() does not wait a network
 * round trip; while writes are in flight, small contiguous ones queue up and go down merged
 * into one larger write. The acknowledged bytes not yet written are bounded per file
 * (cache-size). A background failure cannot reach the write() that caused it any more: it
 * sticks to the fd and fails that fd's next write, flush or fsync (close() reports it), as
 * in GlusterFS. Every other fop on the file (read, stat, truncate, xattrs, rename...) waits
 * for the file's pending writes first, so nothing can observe that the data is not there yet.
 * A file's state hangs on its inode: path fops find it through the caller's inode (or the
 * inode table's of that name), whatever name the file was opened by.
 */
export class WriteBehind extends Xlator implements FopImpl {
  static override readonly description = 'Acknowledges writes at once and sends them in the background, merged';
  static override readonly options = {
    'cache-size': {
      // 4 MiB, not GlusterFS's 1 MiB: the kernel sends 1 MiB writes (libfuse 3), and a window
      // of one write would leave nothing in flight behind it.
      type: 'size', default: 4 * 1024 ** 2, min: 0, max: 1024 ** 3,
      description: 'Acknowledged but unwritten bytes held per file; a larger write goes through synchronously (0 turns write-behind off)',
      volume: { key: 'performance.write-behind-window-size', description: 'Bytes of acknowledged, not yet written data a client holds per file (bytes, or with K/M/G)' },
    },
    'metadata-behind': {
      type: 'bool', default: true,
      description: 'Also acknowledge at once owner, mode and time changes of a file open for writing and not yet closed',
    },
    'flush-behind': {
      // Off, unlike GlusterFS: close() here reports the failure of any write it acknowledged.
      type: 'bool', default: false,
      description: 'close() returns without waiting for the pending writes (a failure found earlier is still reported; later ones are only logged)',
      volume: { key: 'performance.flush-behind', description: 'close() returns without waiting for the pending writes; a failure after that is only logged (GlusterFS\'s default is on, brickfs\'s off) (on/off)' },
    },
    'aggregate-size': {
      type: 'size', default: 128 * 1024, min: 4096, max: 4 * 1024 ** 2,
      description: 'Contiguous queued writes are merged into one write of at most this size',
    },
    'hold-ms': {
      // GlusterFS's trickling-writes (on there) is hold-ms 0: tar writes a file in 10 KiB
      // records, each would be a request of its own.
      type: 'int', default: 1, min: 0, max: 1000,
      description: 'A batch below aggregate-size with nothing in flight waits this long for the next write to merge with (0: goes at once)',
      volume: { key: 'performance.write-behind-hold-ms', description: 'Milliseconds a small batch of writes to an idle file waits for the next write to merge with (0: sent at once, GlusterFS\'s trickling-writes)' },
    },
  } as const;
  /** `volume set performance.write-behind on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.write-behind', default: true, description: 'Acknowledge writes at once and send them in the background; errors surface on the next write, fsync or close (on/off)' } as const;

  private readonly fdKey = new CtxKey<FdState>(this.name);
  private readonly fileKey = new CtxKey<FileState>(this.name);
  /** Files with an open fd here or a pending write (for the statedump). */
  private readonly files = new Set<FileState>();
  /** Files with writes queued or in flight (renamed-over and unlinked ones included). */
  private readonly busy = new Set<FileState>();
  /** Flushes answered before they went down (flush-behind), until they reached the child. */
  private readonly flushesBehind = new Set<Promise<void>>();
  private acknowledged = 0;
  private childWrites = 0;
  private merged = 0;
  private writeThrough = 0;
  private windowWaits = 0;
  private writevs = 0;
  /** The child answered ENOSYS to writev (an older brick): runs go as single writes from then on. */
  private writevUnsupported = false;
  private failed = 0;

  private get child(): Xlator {
    return this.children[0]!;
  }

  private get cacheSizeBytes(): number {
    return this.optNumber('cache-size');
  }

  private get aggregateSizeBytes(): number {
    return this.optNumber('aggregate-size');
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    // A larger window admits waiting writes now; a new aggregate size changes what may be sent.
    for (const s of [...this.busy]) this.progress(s);
  }

  /** Acknowledged data is written before the graph goes: an unmount or a graph switch loses none. */
  override async fini(): Promise<void> {
    for (;;) {
      const waits = [...this.busy].map((s) => this.drained(s)).filter((w) => w !== undefined);
      if (waits.length === 0 && this.flushesBehind.size === 0) return;
      await Promise.all([...waits, ...this.flushesBehind]);
    }
  }

  override statedump(): Record<string, unknown> {
    const files = [...this.busy].map((s) => ({
      path: s.inode.path, pendingBytes: s.bytes, queued: s.queued.length, inflight: s.inflight.size, waitingForWindow: s.waiting.length,
    }));
    let openFds = 0;
    let stickyErrors = 0;
    for (const s of this.files) {
      openFds += s.fds.size;
      for (const f of s.fds) if (f.error) stickyErrors++;
    }
    return {
      cacheSizeBytes: this.cacheSizeBytes, aggregateSizeBytes: this.aggregateSizeBytes,
      openFds, pendingBytes: files.reduce((n, f) => n + f.pendingBytes, 0), files,
      acknowledged: this.acknowledged, childWrites: this.childWrites, merged: this.merged,
      writeThrough: this.writeThrough, windowWaits: this.windowWaits, writevs: this.writevs, failed: this.failed, stickyErrors,
    };
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    const st = a.fd.ctx.get(this.fdKey);
    if (!st) return this.afterFd(a.fd, () => this.child.call('write', a, f));
    if (st.error) throw this.takeError(st);
    st.flushed = false;
    const s = st.file;
    const size = a.data.length;
    // Synchronous and appending fds, and writes larger than the window, go through: they
    // still take their turn in the queue, so they land after the writes acknowledged before.
    if (st.sync || st.append || size > this.cacheSizeBytes) {
      this.writeThrough++;
      return new Promise((resolve, reject) => {
        this.enqueue(s, a, f, { resolve, reject }, st.append);
        this.pump(s);
      });
    }
    if (s.waiting.length === 0 && this.fits(s, size)) {
      this.enqueue(s, a, f);
      this.pump(s);
      return { size };
    }
    // The window is full: the caller waits (memory stays bounded), behind earlier waiters.
    this.windowWaits++;
    return new Promise((resolve) => {
      s.waiting.push({ size, admit: () => { this.enqueue(s, a, f); resolve({ size }); } });
    });
  }

  flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    const st = a.fd.ctx.get(this.fdKey);
    if (st) st.flushed = true;
    const flushed = this.afterFd(a.fd, () => this.reportOr(a.fd, 'flush', a, f));
    if (!st || !this.optBool('flush-behind') || st.error || !this.busy.has(st.file)) return flushed;
    // flush-behind (GlusterFS's option): the flush goes down after the pending writes, in the
    // background, with the frame of the close() that sent it; release waits for it, and a
    // failure meanwhile is logged there.
    const behind: Promise<void> = flushed.then(() => undefined, (e: Error) => {
      this.log.warn(`${a.fd.path}: flush behind close failed: ${e.message}`);
    }).finally(() => {
      this.flushesBehind.delete(behind);
      if (st.flushBehind === behind) st.flushBehind = undefined;
    });
    st.flushBehind = behind;
    this.flushesBehind.add(behind);
    return Promise.resolve({});
  }

  fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return this.afterFd(a.fd, () => this.reportOr(a.fd, 'fsync', a, f));
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    // A flush that went behind close reaches the child before the release.
    await a.fd.ctx.get(this.fdKey)?.flushBehind;
    return this.afterFd(a.fd, () => {
      const st = a.fd.ctx.take(this.fdKey);
      if (st) {
        st.file.fds.delete(st);
        // close() already returned: nobody is left to tell.
        if (st.error) this.log.warn(`${a.fd.path}: a background write failed after the last flush (${st.error.code}: ${st.error.message})`);
        this.forgetIfUnused(st.file);
      }
      return this.child.call('release', a, f);
    });
  }

  // Fd fops that read or change what the pending writes change: after them.

  read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    return this.afterFd(a.fd, () => this.child.call('read', a, f));
  }

  fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    return this.afterFd(a.fd, () => this.child.call('fstat', a, f));
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.afterFd(a.fd, () => this.child.call('ftruncate', a, f));
  }

  // Path fops on a file with pending writes: after them (the size, mtime, data they see).

  lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    return this.afterPath(a.path, a.inode, 'lookup', a, f);
  }

  /**
   * A change of owner, mode or times of a file open here and not yet closed (tar's fchown and
   * fchmod between its writes and close) goes behind like a write: acknowledged at once, in
   * the file's queue, a failure reported by the next write, flush (close) or fsync of every
   * fd open on it. The reply then carries no attributes (md-cache above applies the change
   * to what it holds). Truncation, and any setattr of a file no unflushed fd holds, wait for
   * the pending writes and go through.
   */
  setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const s = this.fileAt(a.path, a.inode);
    if (s && a.attrs.size === undefined && this.optBool('metadata-behind') && this.hasUnflushedFd(s)) {
      this.enqueueSetattr(s, a.attrs, f);
      this.pump(s);
      return Promise.resolve({} as FopReply<'setattr'>);
    }
    return this.afterPath(a.path, a.inode, 'setattr', a, f);
  }

  getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    return this.afterPath(a.path, a.inode, 'getxattr', a, f);
  }

  setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return this.afterPath(a.path, a.inode, 'setxattr', a, f);
  }

  removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return this.afterPath(a.path, a.inode, 'removexattr', a, f);
  }

  listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return this.afterPath(a.path, a.inode, 'listxattr', a, f);
  }

  readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return this.afterPath(a.path, a.inode, 'readlink', a, f);
  }

  /** An O_TRUNC open must not be overtaken by the writes before it. */
  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const r = await this.afterPath(a.path, a.fd.inode, 'open', a, f);
    this.track(a.fd);
    return r;
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const r = await this.afterPath(a.path, a.fd.inode, 'create', a, f);
    this.track(a.fd);
    return r;
  }

  unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return this.afterPath(a.path, a.inode, 'unlink', a, f);
  }

  link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.after([this.fileAt(a.target, a.inode), this.fileAt(a.path)], () => this.child.call('link', a, f));
  }

  /** The source and what it replaces, after their pending writes; their state stays on their inodes. */
  rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    return this.after([this.fileAt(a.from, a.inode), this.fileAt(a.to)], () => this.child.call('rename', a, f));
  }

  /** Entries carry sizes and times: a listing waits for the pending writes of the files in it. */
  readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const send = (): Promise<FopReply<'readdir'>> => this.child.call('readdir', a, f);
    if (this.busy.size === 0) return send();
    const waits = [...this.busy].filter((s) => pathMod.dirname(s.inode.path) === a.path).map((s) => this.drained(s));
    return waits.length ? Promise.all(waits).then(send) : send();
  }

  private track(fd: Fd): void {
    const s = fd.inode.ctx.ensure(this.fileKey, () => {
      const made: FileState = { inode: fd.inode, queued: [], inflight: new Set(), bytes: 0, waiting: [], fds: new Set(), urgent: false };
      this.files.add(made);
      return made;
    });
    const st: FdState = { file: s, sync: (fd.flags & O_DSYNC) !== 0, append: (fd.flags & O_APPEND) !== 0, flushed: false };
    fd.ctx.set(this.fdKey, st);
    s.fds.add(st);
  }

  /** The state of the file a path fop names: through the caller's inode, else the inode table's of that path. */
  private fileAt(path: string, inode?: Inode): FileState | undefined {
    return (inode ?? this.inodes.find(path))?.ctx.get(this.fileKey);
  }

  private hasUnflushedFd(s: FileState): boolean {
    for (const f of s.fds) if (!f.flushed && !f.sync) return true;
    return false;
  }

  private enqueueSetattr(s: FileState, attrs: SetattrFields, frame: Frame): void {
    let settle!: () => void;
    const done = new Promise<void>((r) => { settle = r; });
    s.queued.push({ offset: 0, data: Buffer.alloc(0), barrier: true, setattr: { ...attrs }, frame, done, settle });
    this.acknowledged++;
    this.busy.add(s);
  }

  /** Memory bound: a file holds at most cache-size acknowledged bytes, or one write when idle. */
  private fits(s: FileState, size: number): boolean {
    return s.bytes === 0 || s.bytes + size <= this.cacheSizeBytes;
  }

  /** Queues a write; an acknowledged one is copied, as FUSE reuses the caller's buffer once answered. */
  private enqueue(s: FileState, a: FopArgs<'write'>, frame: Frame, caller?: Write['caller'], barrier = false): void {
    let settle!: () => void;
    const done = new Promise<void>((r) => { settle = r; });
    let data = a.data;
    let slab: Buffer | undefined;
    if (!caller && data.length >= POOLED_COPY_BYTES) {
      slab = bulkPool.take(data.length);
      data = slab.subarray(0, data.copy(slab));
    } else if (!caller) {
      data = Buffer.from(data);
    }
    s.queued.push({ fd: a.fd, offset: a.offset, data, slab, caller, barrier, frame, done, settle });
    if (!caller) {
      s.bytes += data.length;
      this.acknowledged++;
    }
    this.busy.add(s);
  }

  /**
   * Sends queued writes in order, stopping at the first that may not go yet: one that
   * overlaps a write in flight (the child may complete concurrent writes in any order); a
   * write-through while the file has writes in flight (its reply, which its caller gets,
   * must come after every write before it); the last batch while it is below aggregate-size
   * and the file has writes in flight (it may still grow: that wait is what merges small
   * writes). Non-overlapping full batches go at once, several in flight together.
   */
  private pump(s: FileState): void {
    const max = this.aggregateSizeBytes;
    while (s.queued.length > 0) {
      const head = s.queued[0]!;
      let start = head.barrier ? 0 : head.offset;
      let end = head.barrier ? Infinity : head.offset + head.data.length;
      let n = 1;
      if (head.setattr) {
        // Consecutive setattrs (tar: fchown, fchmod, futimens) go down as one: later fields win.
        while (n < s.queued.length && s.queued[n]!.setattr) n++;
        // Nothing behind them and nobody waiting: hold them, the next one may merge.
        if (n === s.queued.length && !s.urgent) {
          if (!s.holdTimer) {
            s.holdTimer = setTimeout(() => { s.holdTimer = undefined; s.urgent = true; this.pump(s); }, SETATTR_HOLD_MS);
            s.holdTimer.unref();
          }
          return;
        }
      }
      let runs: Extent[] | undefined;
      let bytes = end - start;
      if (!head.caller && !head.setattr) {
        // Merged writes are one fd's: they share its open flags and its sticky error. Adjacent
        // ones extend a run; others start a new run of the same request (a writev), unless
        // they overlap a write in flight. At most aggregate-size bytes in all.
        runs = [{ start, end }];
        for (; n < s.queued.length; n++) {
          const next = s.queued[n]!;
          if (next.caller || next.setattr || next.fd !== head.fd || bytes + next.data.length > max) break;
          const last = runs[runs.length - 1]!;
          const nextEnd = next.offset + next.data.length;
          // A write overlapping one in flight waits, and so does everything queued after it.
          if (overlapsAny(s.inflight, next.offset, nextEnd)) break;
          if (next.offset === last.end) {
            last.end = nextEnd;
          } else {
            if (this.writevUnsupported) break;
            runs.push({ start: next.offset, end: nextEnd });
          }
          bytes += next.data.length;
        }
        start = Math.min(...runs.map((r) => r.start));
        end = Math.max(...runs.map((r) => r.end));
      }
      if (s.inflight.size > 0 && (head.caller || head.setattr || (n === s.queued.length && bytes < max))) return;
      if (!head.caller && !head.setattr && n === s.queued.length && bytes < max && this.holdWrites(s)) return;
      if (overlapsAny(s.inflight, head.barrier ? 0 : head.offset, head.barrier ? Infinity : head.offset + head.data.length)) return;
      const batch: Batch = { start, end, writes: s.queued.splice(0, n), runs: runs && runs.length > 1 ? runs : undefined };
      s.inflight.add(batch);
      this.send(s, batch);
    }
  }

  /**
   * Whether the last batch, below aggregate-size with nothing in flight, waits for the next
   * write (hold-ms, once per batch); nobody may be waiting for it.
   */
  private holdWrites(s: FileState): boolean {
    if (s.urgent || s.writeHoldOver) return false;
    const ms = this.optNumber('hold-ms');
    if (ms === 0) return false;
    if (!s.writeHold) {
      s.writeHold = setTimeout(() => {
        s.writeHold = undefined;
        s.writeHoldOver = true;
        this.pump(s);
      }, ms);
      s.writeHold.unref();
    }
    return true;
  }

  private send(s: FileState, batch: Batch): void {
    const head = batch.writes[0]!;
    if (!head.setattr && !head.caller) {
      clearTimeout(s.writeHold);
      s.writeHold = undefined;
      s.writeHoldOver = false;
    }
    // Merged setattrs (possibly of different callers) go with the first one's frame.
    if (head.setattr) return this.sendSetattr(s, batch, Object.assign({}, ...batch.writes.map((w) => w.setattr)), head.frame);
    if (batch.runs) return this.sendRuns(s, batch);
    const data = batch.writes.length === 1 ? head.data : this.merge(batch);
    this.childWrites++;
    this.merged += batch.writes.length - 1;
    let p: Promise<FopReply<'write'>>;
    try {
      // Writes merged into one batch are one fd's but may be different callers' (an fd shared
      // across a fork): the batch goes with the first write's frame.
      p = this.child.call('write', { fd: head.fd!, offset: head.offset, data }, head.frame);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (r) => this.complete(s, batch, data.length, r, undefined),
      (e) => this.complete(s, batch, data.length, undefined, FsError.from(e)),
    );
  }

  /** A batch of runs that are not adjacent: one writev, each run's writes merged into one extent. */
  private sendRuns(s: FileState, batch: Batch): void {
    const extents: WriteExtent[] = [];
    let i = 0;
    for (const run of batch.runs!) {
      const parts: Buffer[] = [];
      for (let at = run.start; at < run.end; i++) {
        const w = batch.writes[i]!;
        parts.push(w.data);
        at += w.data.length;
      }
      extents.push({ offset: run.start, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
    }
    const sent = extents.reduce((n, e) => n + e.data.length, 0);
    // As a merged write, the writev goes with its first write's frame.
    const { frame } = batch.writes[0]!;
    const fd = batch.writes[0]!.fd!;
    this.childWrites++;
    this.writevs++;
    this.merged += batch.writes.length - 1;
    const p = this.child.call('writev', { fd, extents }, frame).catch((e: unknown) => {
      if (FsError.from(e).code !== 'ENOSYS') throw e;
      this.writevUnsupported = true;
      return this.writeEach(fd, extents, frame);
    });
    p.then(
      (r) => this.complete(s, batch, sent, r, undefined),
      (e) => this.complete(s, batch, sent, undefined, FsError.from(e)),
    );
  }

  /** A writev for a child without it: the extents one after another (they may overlap), up to a short one. */
  private async writeEach(fd: Fd, extents: WriteExtent[], frame: Frame): Promise<FopReply<'writev'>> {
    let size = 0;
    for (const e of extents) {
      const n = (await this.child.call('write', { fd, offset: e.offset, data: e.data }, frame)).size;
      size += n;
      if (n < e.data.length) break;
    }
    return { size };
  }

  /** A setattr that went behind; its failure sticks to every fd open on the file. */
  private sendSetattr(s: FileState, batch: Batch, attrs: SetattrFields, frame: Frame): void {
    this.childWrites++;
    let p: Promise<unknown>;
    try {
      p = this.child.call('setattr', { path: s.inode.path, inode: s.inode, attrs }, frame);
    } catch (e) {
      p = Promise.reject(e);
    }
    const finish = (err?: FsError): void => {
      s.inflight.delete(batch);
      if (err) {
        this.failed++;
        this.log.debug(`${s.inode.path}: background setattr failed: ${err.code}`);
        for (const f of s.fds) f.error ??= err;
      }
      for (const w of batch.writes) w.settle();
      this.progress(s);
    };
    p.then(() => finish(), (e) => finish(FsError.from(e)));
  }

  /** One buffer for a merged batch, pooled when it is big enough to be worth a slab. */
  private merge(batch: Batch): Buffer {
    const size = batch.end - batch.start;
    if (size < POOLED_COPY_BYTES) return Buffer.concat(batch.writes.map((w) => w.data), size);
    batch.slab = bulkPool.take(size);
    let at = 0;
    for (const w of batch.writes) at += w.data.copy(batch.slab, at);
    return batch.slab.subarray(0, at);
  }

  /** The child is done with a batch's bytes: their slabs go back to the pool. */
  private releaseSlabs(batch: Batch): void {
    if (batch.slab) bulkPool.give(batch.slab);
    for (const w of batch.writes) if (w.slab) bulkPool.give(w.slab);
  }

  private complete(s: FileState, batch: Batch, sent: number, reply: FopReply<'write' | 'writev'> | undefined, err: FsError | undefined): void {
    s.inflight.delete(batch);
    this.releaseSlabs(batch);
    const head = batch.writes[0]!;
    if (head.caller) {
      // A write-through answers its caller as the child did, short count included.
      if (err) head.caller.reject(err);
      else head.caller.resolve(reply!);
    } else {
      for (const w of batch.writes) s.bytes -= w.data.length;
      if (!err && reply!.size < sent) {
        err = FsError.of('EIO', `${s.inode.path}: short background write, ${reply!.size} of ${sent} bytes at offset ${head.offset}`);
      }
      if (err) {
        this.failed++;
        this.log.debug(`${s.inode.path}: background write of ${sent} bytes at ${head.offset} failed: ${err.code}`);
        const f = head.fd!.ctx.get(this.fdKey);
        // The first failure is the one reported.
        if (f) f.error ??= err;
      }
    }
    for (const w of batch.writes) w.settle();
    this.progress(s);
  }

  /** Admits the writes waiting for room, sends what may go now, forgets an idle file. */
  private progress(s: FileState): void {
    while (s.waiting.length > 0 && this.fits(s, s.waiting[0]!.size)) s.waiting.shift()!.admit();
    this.pump(s);
    if (s.queued.length === 0 && s.inflight.size === 0) {
      s.urgent = false;
      clearTimeout(s.holdTimer);
      s.holdTimer = undefined;
      clearTimeout(s.writeHold);
      s.writeHold = undefined;
      s.writeHoldOver = false;
      this.busy.delete(s);
      this.forgetIfUnused(s);
    }
  }

  private forgetIfUnused(s: FileState): void {
    if (s.fds.size > 0 || this.busy.has(s)) return;
    this.files.delete(s);
    if (s.inode.ctx.get(this.fileKey) === s) s.inode.ctx.take(this.fileKey);
  }

  /** Resolves when the writes pending now are done; undefined (no wait at all) when there are none. */
  private drained(s: FileState | undefined): Promise<void> | undefined {
    if (!s || (s.queued.length === 0 && s.inflight.size === 0)) return undefined;
    if (!s.urgent && s.queued.length > 0) {
      s.urgent = true;
      this.pump(s);
    }
    const done = s.queued.map((w) => w.done);
    for (const b of s.inflight) for (const w of b.writes) done.push(w.done);
    return Promise.all(done).then(() => undefined);
  }

  /** Sends once the pending writes of these files are done (at once when there are none). */
  private after<T>(files: Array<FileState | undefined>, send: () => Promise<T>): Promise<T> {
    const waits = files.map((s) => this.drained(s)).filter((w) => w !== undefined);
    return waits.length ? Promise.all(waits).then(send) : send();
  }

  /** An fd fop: after the pending writes of its file, whichever fd wrote them. */
  private afterFd<T>(fd: Fd, send: () => Promise<T>): Promise<T> {
    return this.after([fd.inode.ctx.get(this.fileKey)], send);
  }

  private afterPath<F extends FopName>(path: string, inode: Inode | undefined, fop: F, a: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    return this.after([this.fileAt(path, inode)], () => this.child.call(fop, a, frame));
  }

  private takeError(f: FdState): FsError {
    const e = f.error!;
    f.error = undefined;
    return e;
  }

  /** flush and fsync: the fd's sticky error if it has one, else the fop itself. */
  private reportOr<F extends 'flush' | 'fsync'>(fd: Fd, fop: F, a: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const st = fd.ctx.get(this.fdKey);
    if (st?.error) return Promise.reject(this.takeError(st));
    return this.child.call(fop, a, frame);
  }
}

registerXlator('performance/write-behind', WriteBehind);

/** Whether [start, end) overlaps a write in flight (each run of a writev on its own). */
function overlapsAny(inflight: Set<Batch>, start: number, end: number): boolean {
  for (const b of inflight) {
    for (const x of b.runs ?? [b]) if (start < x.end && x.start < end) return true;
  }
  return false;
}
