// Early writeback of sequential writers on a brick (storage/posix's writeback-window).
import { FsError } from '../../../lib/errors.js';

/** One open fd's sequential stream. */
export interface Stream {
  /** Where the fd's last write ended: a write starting here, or less than a window after, continues the stream. */
  end: number;
  /** Bytes written in sequence since the last writeback started. */
  pending: number;
  /** The writeback on its way, if any (never rejects). */
  running?: Promise<void>;
  /** What a background writeback failed with, until the fd's next write or fsync reports it. */
  error?: FsError;
}

/**
 * What early writeback keeps of an open fd, in its owner's per-fd state (storage/posix's slot
 * on the Fd): the system fd it syncs, and its stream once it has written with a window set.
 */
export interface WritebackFd {
  readonly os: number;
  stream?: Stream;
}

/**
 * Starts writeback of a file written in sequence while it is still being written.
 *
 * Linux keeps dirty pages in memory until 10 % of it is dirty or they are 30 s old, so on a
 * brick host with memory to spare a large file written in one go reaches the disk only when
 * its writer's fsync asks: the network transfer and the disk take turns instead of
 * overlapping (fio's 512 MiB sequential write with end_fsync: ~1.1 s of writes, then ~0.8 s of
 * fsync). Here, once an fd has written `window` bytes in sequence since its last writeback,
 * an fdatasync of it starts in the thread pool and is not waited for; the writes go on meanwhile.
 * Random and small writers never fill a window, so they are left to the kernel.
 *
 * Errors: the kernel reports a writeback error once per open file, to the first fsync that
 * asks, and a background fdatasync would be that one. So its error is kept and fails the
 * fd's next write or fsync (the client's write-behind hands it to the application's next
 * write, fsync or close), and an fsync waits for the running writeback before its own.
 */
export class EarlyWriteback {
  /** Streams of fds not forgotten yet. */
  private streams = 0;
  private started = 0;
  private failed = 0;

  /**
   * @param window bytes in sequence that start a writeback (read at each write, so a
   *   reconfigured brick applies a new value at once); 0 turns it off
   * @param datasync the fdatasync to run in the background
   */
  constructor(private readonly window: () => number, private readonly datasync: (fd: number) => Promise<void>) {}

  /** Throws, once, what a background writeback of fd failed with. */
  reportError(fd: WritebackFd): void {
    const s = fd.stream;
    if (!s?.error) return;
    const e = s.error;
    s.error = undefined;
    throw e;
  }

  /** A write of `bytes` at `offset` through fd is on its way (counted in the order writes are sent). */
  written(fd: WritebackFd, offset: number, bytes: number): void {
    const window = this.window();
    if (window <= 0 || bytes <= 0) return;
    let s = fd.stream;
    if (!s) {
      s = fd.stream = { end: 0, pending: 0 };
      this.streams++;
    }
    // In sequence: at or after where the last write ended, less than a window beyond it, so
    // a stripe child's blocks (each the next but one, two... block of the file) count too.
    const continues = offset >= s.end && offset - s.end < window;
    s.pending = continues ? s.pending + bytes : bytes;
    s.end = offset + bytes;
    if (s.pending < window || s.running) return;
    s.pending = 0;
    this.started++;
    const stream = s;
    stream.running = this.datasync(fd.os).then(
      () => undefined,
      (e: unknown) => {
        this.failed++;
        stream.error ??= FsError.from(e);
      },
    ).finally(() => { stream.running = undefined; });
  }

  /** Waits for fd's running writeback, if any (before an fsync, or before fd is closed). */
  async settled(fd: WritebackFd): Promise<void> {
    await fd.stream?.running;
  }

  /**
   * fd is being closed: waits for its running writeback (the system fd must not be closed,
   * and its number reused, under it) and returns an error nobody was told of.
   */
  async forget(fd: WritebackFd): Promise<FsError | undefined> {
    const s = fd.stream;
    if (!s) return undefined;
    await s.running;
    if (fd.stream === s) {
      fd.stream = undefined;
      this.streams--;
    }
    return s.error;
  }

  statedump(): Record<string, unknown> {
    return { streams: this.streams, started: this.started, failed: this.failed };
  }
}
