// Block math of cluster/stripe: pure functions, no I/O, unit-tested on their own
// (test/unit/stripe-math.test.ts). Block i of a file lives on child (i mod N) at its own
// offset i*B, so a file offset is the same number in the file and in the child's file.
import { INTERNAL_XATTR_PREFIX } from '../../../../lib/fops.js';

/** One contiguous part of a striped range: a part of one block, stored on one child. */
export interface Piece {
  child: number;
  /** Offset in the file, which is also the offset in the child's (sparse) file. */
  offset: number;
  length: number;
  /** Where the piece starts in the caller's buffer. */
  bufOffset: number;
}

/** The child that holds block `block` of a file striped over `count` children. */
export function childOfBlock(block: number, count: number): number {
  return block % count;
}

/** Cuts the range [offset, offset+length) at block boundaries: one piece per block touched, in order. */
export function segment(offset: number, length: number, blockSize: number, count: number): Piece[] {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad offset ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad length ${length}`);
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new RangeError(`bad block size ${blockSize}`);
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`bad stripe count ${count}`);
  const pieces: Piece[] = [];
  const end = offset + length;
  for (let pos = offset; pos < end;) {
    const block = Math.floor(pos / blockSize);
    const next = Math.min(end, (block + 1) * blockSize);
    pieces.push({ child: childOfBlock(block, count), offset: pos, length: next - pos, bufOffset: pos - offset });
    pos = next;
  }
  return pieces;
}

/**
 * A lower bound of the logical size that the replies of a read prove: a child that returned
 * k > 0 bytes at offset o holds a file of at least o+k bytes. An empty reply proves nothing.
 */
export function sizeSeen(pieces: readonly Piece[], got: readonly Uint8Array[]): number {
  let seen = 0;
  pieces.forEach((p, i) => {
    const n = Math.min(got[i]?.length ?? 0, p.length);
    if (n > 0) seen = Math.max(seen, p.offset + n);
  });
  return seen;
}

/** Bytes a read of `size` at `offset` returns from a file of `logicalSize` bytes. */
export function readLength(offset: number, size: number, logicalSize: number): number {
  return Math.max(0, Math.min(offset + size, logicalSize) - offset);
}

/**
 * Lays the pieces' replies into one buffer of `length` bytes starting at file offset
 * `offset`. What no child returned (a child's short read below the logical size) is a hole
 * and reads as zeros; nothing past `length` is ever copied.
 */
export function assembleRead(offset: number, length: number, pieces: readonly Piece[], got: readonly Uint8Array[]): Buffer {
  const out = Buffer.alloc(length);
  pieces.forEach((p, i) => {
    const start = p.offset - offset;
    if (start >= length) return;
    const data = got[i];
    if (!data) return;
    const n = Math.min(data.length, p.length, length - start);
    if (n > 0) out.set(data.subarray(0, n), start);
  });
  return out;
}

/** Per-file record of how a file is striped (GlusterFS keeps stripe-size/-count/-index xattrs). */
export interface StripeGeometry {
  blockSize: number;
  count: number;
  /** Which child this copy is (0..count-1): lets a person reassemble a file from the bricks. */
  index: number;
}

/** xattr on every copy of a striped file: its geometry, so a later block-size change cannot misread it. */
export const XATTR_STRIPE = `${INTERNAL_XATTR_PREFIX}stripe`;
const GEOMETRY_VERSION = 1;
const GEOMETRY_BYTES = 16;

/** On-brick encoding of a geometry: version, block size, count, index as big-endian u32s. */
export function encodeGeometry(g: StripeGeometry): Buffer {
  const b = Buffer.alloc(GEOMETRY_BYTES);
  b.writeUInt32BE(GEOMETRY_VERSION, 0);
  b.writeUInt32BE(g.blockSize, 4);
  b.writeUInt32BE(g.count, 8);
  b.writeUInt32BE(g.index, 12);
  return b;
}

/** Decodes a geometry xattr; undefined when absent or not in a known format. */
export function decodeGeometry(b: Uint8Array | undefined): StripeGeometry | undefined {
  if (!b || b.length !== GEOMETRY_BYTES) return undefined;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.readUInt32BE(0) !== GEOMETRY_VERSION) return undefined;
  const g = { blockSize: buf.readUInt32BE(4), count: buf.readUInt32BE(8), index: buf.readUInt32BE(12) };
  return g.blockSize > 0 && g.count > 0 && g.index < g.count ? g : undefined;
}
