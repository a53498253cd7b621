// Attributes of a striped file from its copies: pure functions (test/unit/stripe-math.test.ts).
// Why the size is the max of the children's sizes is argued in docs/stripe.md.
import { S_IFMT, S_IFREG, type Iatt, type StatFs } from '../../../../lib/fops.js';

/** The logical size of a striped file: the largest of its copies' sizes (0 for none). */
export function logicalSize(childSizes: readonly number[]): number {
  let max = 0;
  for (const s of childSizes) if (s > max) max = s;
  return max;
}

/** True for regular files, the only entries whose copies hold different data. */
export function isRegular(iatt: Iatt): boolean {
  return (iatt.mode & S_IFMT) === S_IFREG;
}

/**
 * One file's attributes from its copies, child 0 first: child 0's attributes, except that
 * a regular file's size is the max, its blocks the sum, and its times the latest (a write
 * that lands on one child updates only that copy's mtime/ctime).
 */
export function mergeIatt(copies: readonly Iatt[]): Iatt {
  const first = copies[0];
  if (!first) throw new RangeError('mergeIatt needs at least one copy');
  if (!isRegular(first) || copies.length === 1) return first;
  const out = { ...first };
  out.size = logicalSize(copies.map((c) => c.size));
  out.blocks = 0;
  for (const c of copies) {
    out.blocks += c.blocks;
    out.atimeMs = Math.max(out.atimeMs, c.atimeMs);
    out.mtimeMs = Math.max(out.mtimeMs, c.mtimeMs);
    out.ctimeMs = Math.max(out.ctimeMs, c.ctimeMs);
  }
  return out;
}

/**
 * Usage of a stripe set: space adds up (every file is spread over all children), inodes do
 * not (every file takes one inode on each child), so free inodes are the smallest count.
 */
export function mergeStatfs(list: readonly StatFs[]): StatFs {
  const base = list[0];
  if (!base) throw new RangeError('mergeStatfs needs at least one child');
  const out: StatFs = { ...base, blocks: 0, bfree: 0, bavail: 0 };
  for (const s of list) {
    const scale = s.frsize / base.frsize;
    out.blocks += Math.floor(s.blocks * scale);
    out.bfree += Math.floor(s.bfree * scale);
    out.bavail += Math.floor(s.bavail * scale);
    out.files = Math.min(out.files, s.files);
    out.ffree = Math.min(out.ffree, s.ffree);
    out.favail = Math.min(out.favail, s.favail);
    out.namemax = Math.min(out.namemax, s.namemax);
  }
  return out;
}
