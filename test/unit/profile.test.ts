// The counters behind /metrics, `volume profile` and `volume top`, and the CLI's gluster layout.
import test from 'ava';
import { BrickProfile, TOP_KEEP } from '../../brick/xlators/protocol/profile.js';
import { formatPeriod } from '../../client/cli/commands/volume/profile.js';
import { formatTop, parseTopWords } from '../../client/cli/commands/volume/top.js';
import { FopStats, LATENCY_BUCKETS_S } from '../../lib/fop-stats.js';
import { UsageError } from '../../lib/errors.js';

test('FopStats: calls, errors, seconds and the bucket each latency falls in', (t) => {
  const s = new FopStats();
  s.record('write', 30_000, true); // 30 us: the first bucket (50 us)
  s.record('write', 2_000_000, false); // 2 ms: the 2.5 ms bucket
  s.record('write', 60e9, true); // a minute: +Inf
  s.bytes('write', 4096);
  const w = s.snapshot().fops.write!;
  t.is(w.calls, 3);
  t.is(w.errors, 1);
  t.is(w.buckets.length, LATENCY_BUCKETS_S.length + 1);
  t.is(w.buckets[0], 1);
  t.is(w.buckets[LATENCY_BUCKETS_S.indexOf(0.0025)], 1);
  t.is(w.buckets[LATENCY_BUCKETS_S.length], 1);
  t.true(Math.abs(w.seconds - 60.00203) < 1e-6);
  t.is(s.snapshot().bytesWritten, 4096);
});

test('BrickProfile: nothing counted until started; info ends the interval; block sizes by power of two', (t) => {
  const p = new BrickProfile();
  p.record('write', 1000, { written: 4096, path: '/a' });
  t.deepEqual(p.profile(), { enabled: false, latency: false });
  p.configure(true, true);
  for (let i = 0; i < 3; i++) p.record('write', 2000 * (i + 1), { written: 4096 + i, path: '/a' });
  p.record('read', 500, { read: 100, path: '/b' });
  const first = p.profile();
  t.true(first.enabled);
  t.is(first.cumulative!.fops.write!.calls, 3);
  t.is(first.cumulative!.fops.write!.minUs, 2);
  t.is(first.cumulative!.fops.write!.maxUs, 6);
  t.is(first.cumulative!.fops.write!.avgUs, 4);
  t.deepEqual(first.cumulative!.writeBlocks, { 4096: 3 });
  t.deepEqual(first.cumulative!.readBlocks, { 64: 1 });
  t.is(first.interval!.number, 0);
  p.record('write', 1000, { written: 1, path: '/a' });
  const second = p.profile();
  t.is(second.interval!.number, 1);
  t.is(second.interval!.fops.write!.calls, 1);
  t.is(second.cumulative!.fops.write!.calls, 4);
  // Off and on again: a new profile.
  p.configure(false, false);
  p.configure(true, false);
  p.record('write', 5000, { written: 1 });
  const fresh = p.profile();
  t.is(fresh.cumulative!.fops.write!.calls, 1);
  t.is(fresh.cumulative!.fops.write!.maxUs, 0, 'no latency without latency-measurement');
});

test('BrickProfile top: counted without a profile, most first, bounded', (t) => {
  const p = new BrickProfile();
  for (let i = 0; i < 5; i++) p.record('read', 1, { read: 10, path: '/hot' });
  p.record('read', 1, { read: 10, path: '/cold' });
  p.record('readdir', 1, { path: '/dir' });
  p.record('open', 1, { path: '/hot' });
  t.deepEqual(p.topList('read', 10, 0).entries, [{ path: '/hot', count: 5 }, { path: '/cold', count: 1 }]);
  t.deepEqual(p.topList('opendir', 10, 0).entries, [{ path: '/dir', count: 1 }]);
  t.is(p.topList('open', 10, 3).openFds!.current, 3);
  for (let i = 0; i < 3 * TOP_KEEP; i++) p.record('read', 1, { read: 1, path: `/f${i}` });
  const all = p.topList('read', 10 * TOP_KEEP, 0).entries;
  t.true(all.length <= 2 * TOP_KEEP);
  t.is(all[0]!.path, '/hot', 'the most read survives the pruning');
});

test('CLI: gluster\'s profile table and top layout; list-cnt misuse is a usage error', (t) => {
  const text = formatPeriod('Cumulative Stats:', {
    durationS: 7, bytesRead: 0, bytesWritten: 40960, readBlocks: {}, writeBlocks: { 4096: 10 },
    fops: { write: { calls: 10, avgUs: 50, minUs: 10, maxUs: 90 }, lookup: { calls: 2, avgUs: 25, minUs: 20, maxUs: 30 } },
  });
  const lines = text.split('\n');
  t.is(lines[0], 'Cumulative Stats:');
  t.is(lines[1], `   Block Size:${'4096'.padStart(19)}b+ `);
  t.is(lines[3], `No. of Writes:${'10'.padStart(21)} `);
  t.is(lines[4], ' %-latency   Avg-latency   Min-Latency   Max-Latency   No. of calls         Fop');
  // Smallest share first, as gluster sorts: LOOKUP 2*25 of 550, WRITE 500 of 550.
  t.is(lines[6], '      9.09      25.00 us      20.00 us      30.00 us              2      LOOKUP');
  t.is(lines[7], '     90.91      50.00 us      10.00 us      90.00 us             10       WRITE');
  t.true(text.includes('Data Written: 40960 bytes'));
  t.is(formatTop({ name: 'v', list: 'read', bricks: [{ brick: 'h:/b', entries: [{ path: '/x', count: 3 }] }] }),
    'Brick: h:/b\nCount\t\tfilename\n=======================\n3\t\t/x\n');
  t.deepEqual(parseTopWords('write', ['list-cnt', '7']), { list: 'write', count: 7 });
  t.throws(() => parseTopWords('write', ['list-cnt']), { instanceOf: UsageError });
  t.throws(() => parseTopWords('writes', []), { instanceOf: UsageError });
});
