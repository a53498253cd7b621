import { nameHash } from './hash.js';

/** Hash range owned by one subvolume for one directory; inclusive bounds. */
export interface HashRange {
  start: number;
  end: number;
}

export const HASH_MAX = 0xffffffff;
/** Layout written by mkdir or for a directory that had none: every entry is on its hashed brick. */
const LAYOUT_VERSION = 1;
/** Layout rewritten over a directory that had entries: some may sit off their hashed brick. */
const LAYOUT_VERSION_UNSETTLED = 2;
const LAYOUT_BYTES = 16;

/**
 * The per-directory layout for n subvolumes: equal ranges covering 0..2^32-1 exactly once.
 * The first range goes to subvolume (hash(dirPath) mod n), so directories do not all start
 * on subvolume 0 (GlusterFS rotates by the directory's gfid the same way). Deterministic,
 * so two clients healing the same directory write identical layouts.
 */
export function computeLayout(n: number, dirPath: string): HashRange[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`layout needs at least one subvolume, got ${n}`);
  const rotation = nameHash(dirPath) % n;
  const chunk = Math.floor((HASH_MAX + 1) / n);
  const ranges = new Array<HashRange>(n);
  for (let k = 0; k < n; k++) {
    const start = k * chunk;
    const end = k === n - 1 ? HASH_MAX : (k + 1) * chunk - 1;
    ranges[(rotation + k) % n] = { start, end };
  }
  return ranges;
}

/** Index of the range holding hash, or -1 when no range does (an incomplete layout). */
export function findRange(ranges: ReadonlyArray<HashRange | undefined>, hash: number): number {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (r && hash >= r.start && hash <= r.end) return i;
  }
  return -1;
}

/** True when the ranges cover 0..2^32-1 exactly once. */
export function isCompleteLayout(ranges: ReadonlyArray<HashRange | undefined>): boolean {
  const present = ranges.filter((r): r is HashRange => r !== undefined).sort((a, b) => a.start - b.start);
  let next = 0;
  for (const r of present) {
    if (r.start !== next || r.end < r.start) return false;
    next = r.end + 1;
  }
  return next === HASH_MAX + 1;
}

/**
 * On-brick encoding of one directory copy's range (xattr trusted.brickfs.layout):
 * version, subvolume count the layout was made for, start, end — big-endian u32s.
 * The version also says whether a miss on the hashed brick can be trusted (settled).
 */
export function encodeRange(r: HashRange, count: number, settled = true): Buffer {
  const b = Buffer.alloc(LAYOUT_BYTES);
  b.writeUInt32BE(settled ? LAYOUT_VERSION : LAYOUT_VERSION_UNSETTLED, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(r.start, 8);
  b.writeUInt32BE(r.end, 12);
  return b;
}

/** Decodes a range xattr; undefined when absent or not in a known format. */
export function decodeRange(b: Uint8Array | undefined): { range: HashRange; count: number; settled: boolean } | undefined {
  if (!b || b.length !== LAYOUT_BYTES) return undefined;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const version = buf.readUInt32BE(0);
  if (version !== LAYOUT_VERSION && version !== LAYOUT_VERSION_UNSETTLED) return undefined;
  return { count: buf.readUInt32BE(4), range: { start: buf.readUInt32BE(8), end: buf.readUInt32BE(12) }, settled: version === LAYOUT_VERSION };
}
