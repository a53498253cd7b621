// Seeded random file operations applied to a file on a mount and to a reference file on a
// local disk, compared as they go. Uses fs.promises only: the mount is served by another
// process, so a blocked call never blocks the one serving it.
import fsp from 'node:fs/promises';

import { mulberry32 } from '../../lib/prng.js';

export interface RandomOpsOptions {
  /** The file under test (on the mount). */
  target: string;
  /** The same operations on a local file. */
  reference: string;
  seed: number;
  ops: number;
  /** Writes and truncates stay below this offset. */
  maxSize: number;
  /** Longest single write. */
  maxWrite: number;
  /** Whole-file comparison (through fresh opens) every this many ops. */
  checkEvery: number;
}

/** Where the two files first differ, with the operations that led there. */
export interface Mismatch {
  op: number;
  what: string;
  log: string[];
}

async function wholeFile(p: string): Promise<{ size: number; data: Buffer }> {
  // A fresh open: FUSE drops the kernel's cached pages of the file on open (no keep_cache),
  // so these bytes come from the filesystem, not from the page cache.
  const data = await fsp.readFile(p);
  const size = (await fsp.stat(p)).size;
  return { size, data };
}

/**
 * Runs unaligned pwrite/pread/ftruncate/truncate/reopen at random offsets on both files,
 * compares every pread, and size and content every checkEvery ops and at the end.
 * Resolves with the first mismatch, or undefined when the files stayed identical.
 */
export async function randomFileOps(o: RandomOpsOptions): Promise<Mismatch | undefined> {
  const rnd = mulberry32(o.seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const log: string[] = [];
  let target = await fsp.open(o.target, 'w+');
  let ref = await fsp.open(o.reference, 'w+');
  const compareWhole = async (op: number): Promise<Mismatch | undefined> => {
    const [a, b] = await Promise.all([wholeFile(o.target), wholeFile(o.reference)]);
    if (a.size !== b.size) return { op, what: `size ${a.size}, expected ${b.size}`, log };
    if (!a.data.equals(b.data)) {
      let i = 0;
      while (i < a.data.length && a.data[i] === b.data[i]) i++;
      return { op, what: `content differs from byte ${i} (got ${a.data[i]}, expected ${b.data[i]}; lengths ${a.data.length}/${b.data.length})`, log };
    }
    return undefined;
  };
  try {
    for (let op = 0; op < o.ops; op++) {
      const kind = rnd();
      if (kind < 0.5) {
        const len = 1 + int(o.maxWrite);
        const off = int(o.maxSize - len);
        const data = Buffer.alloc(len);
        for (let i = 0; i < len; i++) data[i] = 1 + int(255); // never 0, so a lost write cannot pass for a hole
        log.push(`pwrite ${off}+${len}`);
        const [a, b] = await Promise.all([target.write(data, 0, len, off), ref.write(data, 0, len, off)]);
        if (a.bytesWritten !== b.bytesWritten) return { op, what: `wrote ${a.bytesWritten}, expected ${b.bytesWritten}`, log };
      } else if (kind < 0.75) {
        const len = 1 + int(o.maxWrite * 2);
        const off = int(o.maxSize + o.maxWrite);
        log.push(`pread ${off}+${len}`);
        const [a, b] = await Promise.all([target.read(Buffer.alloc(len), 0, len, off), ref.read(Buffer.alloc(len), 0, len, off)]);
        const ga = a.buffer.subarray(0, a.bytesRead);
        const gb = b.buffer.subarray(0, b.bytesRead);
        if (!ga.equals(gb)) return { op, what: `pread got ${ga.length} bytes, expected ${gb.length} (or different content)`, log };
      } else if (kind < 0.85) {
        const size = int(o.maxSize);
        log.push(`ftruncate ${size}`);
        await Promise.all([target.truncate(size), ref.truncate(size)]);
      } else if (kind < 0.93) {
        const size = int(o.maxSize);
        log.push(`truncate(path) ${size}`);
        await Promise.all([fsp.truncate(o.target, size), fsp.truncate(o.reference, size)]);
      } else {
        log.push('reopen');
        await Promise.all([target.close(), ref.close()]);
        [target, ref] = await Promise.all([fsp.open(o.target, 'r+'), fsp.open(o.reference, 'r+')]);
      }
      if ((op + 1) % o.checkEvery === 0) {
        const m = await compareWhole(op);
        if (m) return m;
      }
    }
    return await compareWhole(o.ops);
  } finally {
    await Promise.allSettled([target.close(), ref.close()]);
  }
}
