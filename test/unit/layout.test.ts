import test from 'ava';
import { nameHash } from '../../lib/hash.js';
import {
  computeLayout, decodeRange, EMPTY_RANGE, isEmptyRange, encodeRange, findRange, HASH_MAX, isCompleteLayout, layoutRotations, type HashRange,
} from '../../lib/layout.js';

test('hash is xxhash32 seed 0, stable across releases (on-brick placement depends on it)', (t) => {
  t.is(nameHash(''), 0x02cc5d05);
  t.is(nameHash('abc'), 0x32d153ff);
  t.is(nameHash('file-1'), 0x0e289366);
  t.is(nameHash('é'), 0x33a52927);
});

function assertCovers(t: import('ava').ExecutionContext, ranges: HashRange[], n: number): void {
  t.is(ranges.length, n);
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  t.is(sorted[0]!.start, 0);
  t.is(sorted[n - 1]!.end, HASH_MAX);
  for (let i = 1; i < n; i++) t.is(sorted[i]!.start, sorted[i - 1]!.end + 1, `gap or overlap between ranges ${i - 1} and ${i}`);
  for (const r of ranges) t.true(r.end >= r.start);
}

test('layout covers 0..2^32-1 exactly once for every brick count 1..128', (t) => {
  for (let n = 1; n <= 128; n++) {
    const ranges = computeLayout(n, `/dir-${n}`);
    assertCovers(t, ranges, n);
    t.true(isCompleteLayout(ranges));
  }
});

test('every hash lands in exactly one range, including the extremes', (t) => {
  for (const n of [1, 2, 3, 5, 7, 16]) {
    const ranges = computeLayout(n, '/x');
    for (const h of [0, 1, HASH_MAX - 1, HASH_MAX, ...ranges.flatMap((r) => [r.start, r.end])]) {
      t.is(ranges.filter((r) => h >= r.start && h <= r.end).length, 1, `hash ${h} with ${n} bricks`);
      t.not(findRange(ranges, h), -1);
    }
  }
});

test('ranges rotate per directory so first ranges are not all on brick 0', (t) => {
  const firstOwners = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const ranges = computeLayout(3, `/d${i}`);
    firstOwners.add(ranges.findIndex((r) => r.start === 0));
  }
  t.is(firstOwners.size, 3);
});

test('layout is deterministic for a directory (two clients heal to the same layout)', (t) => {
  t.deepEqual(computeLayout(4, '/a/b'), computeLayout(4, '/a/b'));
});

test('names spread over all bricks roughly evenly', (t) => {
  const ranges = computeLayout(3, '/');
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[findRange(ranges, nameHash(`file-${i}`))]!++;
  for (const c of counts) t.true(c > 800 && c < 1200, `uneven spread ${counts.join(',')}`);
});

test('incomplete layouts are detected', (t) => {
  const ranges: Array<HashRange | undefined> = computeLayout(3, '/');
  ranges[1] = undefined;
  t.false(isCompleteLayout(ranges));
  t.false(isCompleteLayout([{ start: 0, end: 10 }, { start: 5, end: HASH_MAX }]));
  t.false(isCompleteLayout([{ start: 0, end: 10 }, { start: 12, end: HASH_MAX }]));
});

test('range encoding round-trips and rejects foreign data', (t) => {
  const r = { start: 0x12345678, end: 0xfedcba98 };
  t.deepEqual(decodeRange(encodeRange(r, 3)), { range: r, count: 3, epoch: 0, settled: true });
  t.deepEqual(decodeRange(encodeRange(r, 3, false, 7)), { range: r, count: 3, epoch: 7, settled: false });
  t.deepEqual(decodeRange(encodeRange(EMPTY_RANGE, 4, true, 2))?.range, EMPTY_RANGE);
  t.is(decodeRange(Buffer.from('junk')), undefined);
  t.is(decodeRange(undefined), undefined);
  const wrongVersion = encodeRange(r, 3);
  wrongVersion.writeUInt32BE(99, 0);
  t.is(decodeRange(wrongVersion), undefined);
});

test('computeLayout refuses zero bricks', (t) => {
  t.throws(() => computeLayout(0, '/'), { instanceOf: RangeError });
});

test('weighted layouts size ranges by weight; weight 0 gets an empty range', (t) => {
  const ranges = computeLayout([1, 3, 0, 2], '/w');
  t.true(isEmptyRange(ranges[2]!));
  t.true(isCompleteLayout(ranges));
  t.is(findRange(ranges, 12345) === 2, false);
  const size = (r: HashRange): number => r.end - r.start + 1;
  const unit = (HASH_MAX + 1) / 6;
  t.true(Math.abs(size(ranges[0]!) - unit) < 2);
  t.true(Math.abs(size(ranges[1]!) - 3 * unit) < 2);
  t.true(Math.abs(size(ranges[3]!) - 2 * unit) < 2);
});

test('equal weights give the same layout as a count (old volumes keep their placement)', (t) => {
  for (const n of [1, 2, 3, 4, 7]) {
    for (const d of ['/', '/a', '/a/b/c']) t.deepEqual(computeLayout(new Array(n).fill(5), d), computeLayout(n, d));
  }
});

test('a drained subvolume does not change the other subvolumes\' shares order', (t) => {
  // Draining subvolume 1 of 3 gives the same ranges as a 2-subvolume layout over the rest.
  for (let i = 0; i < 20; i++) {
    const drained = computeLayout([1, 0, 1], `/d${i}`);
    const two = computeLayout(2, `/d${i}`);
    t.deepEqual([drained[0], drained[2]], two);
  }
});

test('layoutRotations: one complete layout per weighted subvolume, computeLayout\'s among them, each starting on another subvolume', (t) => {
  for (const weights of [3, [1, 1, 1, 1], [2, 1, 0, 1]] as const) {
    const rotations = layoutRotations(weights);
    const active = typeof weights === 'number' ? weights : weights.filter((w) => w > 0).length;
    t.is(rotations.length, active);
    for (const r of rotations) t.true(isCompleteLayout(r));
    t.is(new Set(rotations.map((r) => findRange(r, 0))).size, active, 'each rotation gives hash 0 to another subvolume');
    for (const dir of ['/', '/a', '/b/c', '/renamed']) {
      t.true(rotations.some((r) => JSON.stringify(r) === JSON.stringify(computeLayout(weights, dir))), `${dir}'s layout is a rotation`);
    }
  }
});
