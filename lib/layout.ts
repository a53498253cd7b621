import { nameHash } from './hash.js';

/** Hash range owned by one subvolume for one directory; inclusive bounds. start > end is empty. */
export interface HashRange {
  start: number;
  end: number;
}

export const HASH_MAX = 0xffffffff;
/** The range of a subvolume that takes no new names (weight 0: a brick being drained). */
export const EMPTY_RANGE: Readonly<HashRange> = Object.freeze({ start: 1, end: 0 });
/** Layout written by mkdir or for a directory that had none: every entry is on its hashed brick. */
const LAYOUT_VERSION = 1;
/** Layout rewritten over a directory that had entries: some may sit off their hashed brick. */
const LAYOUT_VERSION_UNSETTLED = 2;
/** version, count, epoch, start, end. */
const LAYOUT_BYTES = 20;
/** The first format had no epoch (read as epoch 0). */
const LAYOUT_BYTES_V0 = 16;

export function isEmptyRange(r: HashRange): boolean {
  return r.start > r.end;
}

/**
 * The per-directory layout for a set of subvolumes: ranges covering 0..2^32-1 exactly once,
 * sized in proportion to the weights (a number n means n equal weights; weight 0 gets
 * EMPTY_RANGE). The first range goes to the subvolume at position (hash(dirPath) mod m)
 * among the m weighted ones, so directories do not all start on subvolume 0 (GlusterFS
 * rotates by the directory's gfid the same way). Deterministic, so two clients healing the
 * same directory write identical layouts.
 */
export function computeLayout(weightsOrCount: number | readonly number[], dirPath: string): HashRange[] {
  return rotatedLayout(weightsOrCount, nameHash(dirPath));
}

/**
 * Every layout computeLayout can give for these weights, one per first subvolume: a
 * directory's layout stays this brick set's whatever its path is now (a renamed directory
 * keeps the rotation of the path it was made or healed under).
 */
export function layoutRotations(weightsOrCount: number | readonly number[]): HashRange[][] {
  const m = typeof weightsOrCount === 'number' ? weightsOrCount : weightsOrCount.filter((w) => w > 0).length;
  return Array.from({ length: Math.max(m, 1) }, (_, r) => rotatedLayout(weightsOrCount, r));
}

/** The layout for these weights whose first range goes to the weighted subvolume at (rotation mod m). */
function rotatedLayout(weightsOrCount: number | readonly number[], rotation: number): HashRange[] {
  const weights = typeof weightsOrCount === 'number' ? new Array<number>(weightsOrCount).fill(1) : [...weightsOrCount];
  if (typeof weightsOrCount === 'number' && (!Number.isInteger(weightsOrCount) || weightsOrCount < 1)) {
    throw new RangeError(`layout needs at least one subvolume, got ${weightsOrCount}`);
  }
  if (weights.some((w) => !Number.isFinite(w) || w < 0)) throw new RangeError(`layout weights must be non-negative numbers, got ${weights.join(',')}`);
  const active = weights.flatMap((w, i) => (w > 0 ? [i] : []));
  if (active.length === 0) throw new RangeError('layout needs at least one subvolume with a weight above 0');
  const m = active.length;
  const order = active.map((_, k) => active[(rotation + k) % m]!);
  const total = order.reduce((s, i) => s + weights[i]!, 0);
  const ranges: HashRange[] = weights.map(() => ({ ...EMPTY_RANGE }));
  let start = 0;
  let acc = 0;
  order.forEach((i, k) => {
    acc += weights[i]!;
    // Equal weights give floor(2^32 / m) per range, the last one taking the remainder.
    const end = k === m - 1 ? HASH_MAX : Math.floor(((HASH_MAX + 1) * acc) / total) - 1;
    ranges[i] = { start, end };
    start = end + 1;
  });
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

/** True when the ranges cover 0..2^32-1 exactly once (empty ranges count as absent). */
export function isCompleteLayout(ranges: ReadonlyArray<HashRange | undefined>): boolean {
  const present = ranges.filter((r): r is HashRange => r !== undefined && !isEmptyRange(r)).sort((a, b) => a.start - b.start);
  let next = 0;
  for (const r of present) {
    if (r.start !== next) return false;
    next = r.end + 1;
  }
  return next === HASH_MAX + 1;
}

export function sameRange(a: HashRange, b: HashRange): boolean {
  return (isEmptyRange(a) && isEmptyRange(b)) || (a.start === b.start && a.end === b.end);
}

/** A decoded layout xattr. */
export interface OnBrickRange {
  range: HashRange;
  /** Subvolume count of the graph that wrote it (informational). */
  count: number;
  /** Brick-set generation of the graph that wrote it: a graph with a lower epoch never rewrites it. */
  epoch: number;
  settled: boolean;
}

/**
 * On-brick encoding of one directory copy's range (xattr trusted.brickfs.layout):
 * version, subvolume count, layout epoch, start, end — big-endian u32s. The version also
 * says whether a miss on the hashed brick can be trusted (settled).
 */
export function encodeRange(r: HashRange, count: number, settled = true, epoch = 0): Buffer {
  const b = Buffer.alloc(LAYOUT_BYTES);
  b.writeUInt32BE(settled ? LAYOUT_VERSION : LAYOUT_VERSION_UNSETTLED, 0);
  b.writeUInt32BE(count, 4);
  b.writeUInt32BE(epoch, 8);
  b.writeUInt32BE(r.start, 12);
  b.writeUInt32BE(r.end, 16);
  return b;
}

/** Decodes a range xattr; undefined when absent or not in a known format. */
export function decodeRange(b: Uint8Array | undefined): OnBrickRange | undefined {
  if (!b || (b.length !== LAYOUT_BYTES && b.length !== LAYOUT_BYTES_V0)) return undefined;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const version = buf.readUInt32BE(0);
  if (version !== LAYOUT_VERSION && version !== LAYOUT_VERSION_UNSETTLED) return undefined;
  const at = b.length === LAYOUT_BYTES ? 12 : 8;
  return {
    count: buf.readUInt32BE(4),
    epoch: b.length === LAYOUT_BYTES ? buf.readUInt32BE(8) : 0,
    range: { start: buf.readUInt32BE(at), end: buf.readUInt32BE(at + 4) },
    settled: version === LAYOUT_VERSION,
  };
}
