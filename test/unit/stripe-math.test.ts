// The block math of cluster/stripe, pure: segmenting ranges into per-child pieces, the
// logical size from the children's sizes, read assembly with holes, attribute merging.
import test from 'ava';
import {
  assembleRead, childOfBlock, decodeGeometry, encodeGeometry, readLength, segment, sizeSeen, type Piece,
} from '../../client/xlators/cluster/stripe/blocks.js';
import { logicalSize, mergeIatt, mergeStatfs } from '../../client/xlators/cluster/stripe/size.js';
import type { Iatt, StatFs } from '../../lib/fops.js';
import { mulberry32 } from '../../lib/prng.js';

const K = 1024;

test('segment: one piece per block touched, round-robin over the children', (t) => {
  t.deepEqual(segment(0, 10, 4, 2), [
    { child: 0, offset: 0, length: 4, bufOffset: 0 },
    { child: 1, offset: 4, length: 4, bufOffset: 4 },
    { child: 0, offset: 8, length: 2, bufOffset: 8 },
  ]);
  // Unaligned start and end, three children.
  t.deepEqual(segment(5, 9, 4, 3), [
    { child: 1, offset: 5, length: 3, bufOffset: 0 },
    { child: 2, offset: 8, length: 4, bufOffset: 3 },
    { child: 0, offset: 12, length: 2, bufOffset: 7 },
  ]);
  // Inside one block: one piece, at the same offset (children keep file offsets).
  t.deepEqual(segment(130 * K, 4 * K, 128 * K, 2), [{ child: 1, offset: 130 * K, length: 4 * K, bufOffset: 0 }]);
  t.deepEqual(segment(7, 0, 4, 2), []);
  t.is(childOfBlock(11, 4), 3);
  // Offsets past 4 GiB stay exact.
  const far = 5 * 2 ** 32 + 3;
  t.deepEqual(segment(far, 2, 4096, 2), [{ child: Math.floor(far / 4096) % 2, offset: far, length: 2, bufOffset: 0 }]);
  t.throws(() => segment(-1, 1, 4, 2), { instanceOf: RangeError });
  t.throws(() => segment(0, 1, 0, 2), { instanceOf: RangeError });
  t.throws(() => segment(0, 1, 4, 0), { instanceOf: RangeError });
});

test('segment: random ranges are covered exactly, each piece within one block of its child', (t) => {
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const B = 4096 * (1 + Math.floor(rnd() * 8));
    const N = 2 + Math.floor(rnd() * 4);
    const offset = Math.floor(rnd() * 20 * B);
    const length = Math.floor(rnd() * 6 * B);
    const pieces = segment(offset, length, B, N);
    let pos = offset;
    for (const p of pieces) {
      if (p.offset !== pos || p.bufOffset !== pos - offset || p.length <= 0) return t.fail(`gap or overlap at ${pos}: ${JSON.stringify(p)}`);
      const block = Math.floor(p.offset / B);
      if (Math.floor((p.offset + p.length - 1) / B) !== block) return t.fail(`piece crosses a block: ${JSON.stringify(p)}`);
      if (p.child !== block % N) return t.fail(`block ${block} on child ${p.child}, want ${block % N}`);
      pos += p.length;
    }
    if (pos !== offset + length) return t.fail(`covered up to ${pos}, want ${offset + length}`);
  }
  t.pass();
});

test('logical size is the largest copy; readLength never goes past it', (t) => {
  t.is(logicalSize([]), 0);
  t.is(logicalSize([10, 300, 0]), 300);
  t.is(readLength(0, 100, 50), 50);
  t.is(readLength(60, 100, 50), 0);
  t.is(readLength(10, 5, 50), 5);
});

test('assembleRead: holes are zeros, nothing past the length is copied', (t) => {
  const pieces: Piece[] = segment(2, 12, 4, 2); // [2,4) c0, [4,8) c1, [8,12) c0, [12,14) c1
  const got = [Buffer.from('ab'), Buffer.from('c'), Buffer.from('defg'), Buffer.alloc(0)];
  // Piece 1 came back short (a hole after 'c'); the file ends at 12.
  t.is(sizeSeen(pieces, got), 12);
  const out = assembleRead(2, readLength(2, 12, 12), pieces, got);
  t.deepEqual([...out], [...Buffer.from('abc\0\0\0defg')]);
  // Clipped at a logical size inside a piece.
  t.is(assembleRead(2, 7, pieces, got).toString('latin1'), 'abc\0\0\0d');
  // Empty replies prove nothing about the size.
  t.is(sizeSeen(pieces, [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]), 0);
});

/**
 * The whole placement as a model: children are in-memory sparse files that grow on write and
 * are all set to the new size on truncate, as cluster/stripe does. After any sequence of
 * writes and truncates, max(child sizes) is the true size, and reading the pieces with
 * zero-filled short reads gives the true content.
 */
test('model: size = max of children and reads match a flat file after random writes and truncates', (t) => {
  const rnd = mulberry32(42);
  for (const [B, N] of [[4096, 2], [8192, 3], [4096, 4]] as const) {
    const children: Buffer[] = Array.from({ length: N }, () => Buffer.alloc(0));
    let flat: Buffer = Buffer.alloc(0);
    const grow = (b: Buffer, size: number): Buffer => (size <= b.length ? b.subarray(0, size) : Buffer.concat([b, Buffer.alloc(size - b.length)]));
    for (let op = 0; op < 400; op++) {
      if (rnd() < 0.75) {
        const off = Math.floor(rnd() * 12 * B);
        const data = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 3 * B) }, () => 1 + Math.floor(rnd() * 255)));
        for (const p of segment(off, data.length, B, N)) {
          const c = children[p.child]!;
          children[p.child] = grow(c, Math.max(c.length, p.offset + p.length));
          data.copy(children[p.child]!, p.offset, p.bufOffset, p.bufOffset + p.length);
        }
        flat = grow(flat, Math.max(flat.length, off + data.length));
        data.copy(flat, off);
      } else {
        const size = Math.floor(rnd() * 12 * B);
        for (let c = 0; c < N; c++) children[c] = Buffer.from(grow(children[c]!, size));
        flat = Buffer.from(grow(flat, size));
      }
      const size = logicalSize(children.map((c) => c.length));
      if (size !== flat.length) return t.fail(`op ${op}: size ${size}, want ${flat.length}`);
      const off = Math.floor(rnd() * 13 * B);
      const len = Math.floor(rnd() * 4 * B);
      const pieces = segment(off, len, B, N);
      const got = pieces.map((p) => children[p.child]!.subarray(p.offset, p.offset + p.length));
      const out = assembleRead(off, readLength(off, len, size), pieces, got);
      if (!out.equals(flat.subarray(off, off + len))) return t.fail(`op ${op}: read ${off}+${len} differs (B=${B}, N=${N})`);
    }
  }
  t.pass();
});

const iatt = (over: Partial<Iatt>): Iatt => ({
  mode: 0o100644, nlink: 1, uid: 1, gid: 2, rdev: 0, size: 0, blocks: 0, blksize: 4096, ino: 7,
  atimeMs: 1000, mtimeMs: 1000, ctimeMs: 1000, ...over,
});

test('mergeIatt: child 0 attributes; a regular file has max size, summed blocks, latest times', (t) => {
  const merged = mergeIatt([
    iatt({ size: 300, blocks: 8, mtimeMs: 5000, ino: 1 }),
    iatt({ size: 900, blocks: 16, ctimeMs: 7000, ino: 2, uid: 99 }),
  ]);
  t.like(merged, { size: 900, blocks: 24, mtimeMs: 5000, ctimeMs: 7000, ino: 1, uid: 1 });
  const dir = iatt({ mode: 0o040755, size: 4096, blocks: 8 });
  t.is(mergeIatt([dir, iatt({ mode: 0o040755, size: 8192, blocks: 16 })]), dir);
  t.throws(() => mergeIatt([]), { instanceOf: RangeError });
});

test('mergeStatfs: space adds up, inodes are the smallest child', (t) => {
  const s = (over: Partial<StatFs>): StatFs => ({
    bsize: 4096, frsize: 4096, blocks: 1000, bfree: 500, bavail: 400, files: 100, ffree: 50, favail: 50, namemax: 255, ...over,
  });
  t.like(mergeStatfs([s({}), s({ frsize: 8192, blocks: 10, bfree: 5, bavail: 4, files: 80, ffree: 20, favail: 20 })]), {
    frsize: 4096, blocks: 1020, bfree: 510, bavail: 408, files: 80, ffree: 20, favail: 20,
  });
});

test('geometry xattr: round trip; unknown formats are undefined', (t) => {
  const g = { blockSize: 128 * K, count: 3, index: 2 };
  t.deepEqual(decodeGeometry(encodeGeometry(g)), g);
  t.is(encodeGeometry(g).length, 16);
  t.is(decodeGeometry(undefined), undefined);
  t.is(decodeGeometry(Buffer.alloc(8)), undefined);
  const wrongVersion = encodeGeometry(g);
  wrongVersion.writeUInt32BE(9, 0);
  t.is(decodeGeometry(wrongVersion), undefined);
  t.is(decodeGeometry(encodeGeometry({ blockSize: 4096, count: 2, index: 2 })), undefined, 'index out of range');
});
