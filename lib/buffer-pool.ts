/**
 * Reusable slabs for bulk payloads (128 KiB writes and reads). Every Buffer above 4 KiB is
 * its own ArrayBuffer outside V8's heap, and V8 answers a stream of them with a full
 * mark-compact every few MiB ("external memory pressure"): on a 512 MiB sequential write
 * the mount spent a third of its main thread in GC. Slabs taken here go back with give()
 * once nothing reads them any more.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Slabs handed out and not given back (statedump, tests). */
  outstanding = 0;

  constructor(readonly slabBytes: number, readonly maxFree: number) {}

  /** A buffer of at least `size` bytes: a slab when it fits, else a one-off allocation. */
  take(size: number): Buffer {
    if (size > this.slabBytes) return Buffer.allocUnsafeSlow(size);
    this.outstanding++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
  }

  /** Returns a buffer from take(); a one-off allocation is left to the GC. */
  give(buf: Buffer): void {
    if (buf.length !== this.slabBytes) return;
    this.outstanding--;
    if (this.free.length < this.maxFree) this.free.push(buf);
  }
}

/** One 128 KiB FUSE write or read plus its frame envelope fits a slab. */
export const bulkPool = new BufferPool(132 * 1024, 64);
