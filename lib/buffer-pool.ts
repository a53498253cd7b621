/**
 * Reusable slabs for bulk payloads (writes and reads of 128 KiB to 1 MiB). Every Buffer above 4 KiB is
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

/** Pools of several slab sizes: a buffer comes from the smallest slab that holds it. */
export class TieredPool {
  private readonly tiers: BufferPool[];

  constructor(tiers: BufferPool[]) {
    this.tiers = [...tiers].sort((x, y) => x.slabBytes - y.slabBytes);
  }

  take(size: number): Buffer {
    const tier = this.tiers.find((t) => size <= t.slabBytes);
    return tier ? tier.take(size) : Buffer.allocUnsafeSlow(size);
  }

  give(buf: Buffer): void {
    this.tiers.find((t) => buf.length === t.slabBytes)?.give(buf);
  }

  /** Slabs handed out and not given back, over every tier. */
  get outstanding(): number {
    return this.tiers.reduce((n, t) => n + t.outstanding, 0);
  }
}

/**
 * Bulk payloads: a 128 KiB write or read plus its frame envelope fits the small slab; the
 * kernel's 1 MiB requests (libfuse 3, native/fuse-ll) and their frames fit the large one.
 */
export const bulkPool = new TieredPool([new BufferPool(132 * 1024, 64), new BufferPool(1028 * 1024, 24)]);
