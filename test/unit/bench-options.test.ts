import test from 'ava';
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import { OperationError } from '../../lib/errors.js';
import { fioArgs, fioJobs, parseFioJson } from '../../client/bench/fio.js';
import { benchOptions, parseSize, type RawBenchOptions } from '../../client/bench/options.js';
import { CacheDropper, fstypeFromMounts } from '../../client/bench/system.js';
import { smallFiles } from '../../client/bench/worker.js';

const raw = (o: Partial<RawBenchOptions> = {}): RawBenchOptions => ({ dir: '/mnt/a', size: '512M', runtime: 15, files: 4000, ...o });

test('sizes are read as fio reads them (1024-based)', (t) => {
  t.is(parseSize('512M'), 512 << 20);
  t.is(parseSize('1G'), 1 << 30);
  t.is(parseSize('8MiB'), 8 << 20);
  t.is(parseSize('4096k'), 4 << 20);
  t.is(parseSize('3145728'), 3 << 20);
  t.true(Number.isNaN(parseSize('banana')));
  t.true(Number.isNaN(parseSize('1.5G')));
  t.true(Number.isNaN(parseSize('')));
});

test('options: defaults, directories resolved in order, random file half the sequential one', (t) => {
  const o = benchOptions(raw({ compare: ['rel/b', '/mnt/c'], json: 'out.json' }));
  t.deepEqual(o.dirs, ['/mnt/a', path.resolve('rel/b'), '/mnt/c']);
  t.is(o.sizeBytes, 512 << 20);
  t.is(o.randSizeBytes, 256 << 20);
  t.is(o.runtimeSeconds, 15);
  t.is(o.files, 4000);
  t.deepEqual(o.skipped, []);
  t.is(o.json, path.resolve('out.json'));
  t.is(o.svg, undefined);
  t.deepEqual(benchOptions(raw({ skip: 'fio', runtime: '3', files: '200' })).skipped, ['fio']);
  t.is(benchOptions(raw({ runtime: '3' })).runtimeSeconds, 3);
  t.is(o.rounds, 1, 'one round unless asked');
  t.true(o.dropCaches, 'the page cache is dropped unless --no-drop-caches');
  t.false(benchOptions(raw({ dropCaches: false })).dropCaches);
  t.is(benchOptions(raw({ rounds: '3' })).rounds, 3);
});

test('options: bad values are usage errors that say what to type', (t) => {
  const bad: Array<[Partial<RawBenchOptions>, RegExp]> = [
    [{ size: 'banana' }, /--size .*such as 512M.*"banana"/],
    [{ size: '1M' }, /--size .*at least 2M/],
    [{ size: '2049k' }, /--size must be a whole number of MiB/],
    [{ runtime: 0 }, /--runtime .*1 to 3600/],
    [{ runtime: 'abc' }, /--runtime .*"abc"/],
    [{ runtime: 1.5 }, /--runtime/],
    [{ files: -1 }, /--files .*such as 4000/],
    [{ files: '1e3' }, /--files/],
    [{ dir: '' }, /directory name is empty/],
    [{ json: '' }, /--json needs a file name/],
    [{ rounds: 0 }, /--rounds .*1 to 20.*"0"/],
    [{ rounds: '21' }, /--rounds/],
    [{ rounds: 'two' }, /--rounds .*"two"/],
  ];
  for (const [o, msg] of bad) {
    const e = t.throws(() => benchOptions(raw(o)), { instanceOf: UsageError }, JSON.stringify(o));
    t.regex(e?.message ?? '', msg);
  }
});

test('fio jobs: the DESIGN.md workloads, writes fsync at the end, random jobs time based', (t) => {
  const jobs = fioJobs({ sizeBytes: 512 << 20, randSizeBytes: 256 << 20, runtimeSeconds: 15 });
  t.deepEqual(jobs.map((j) => j.key), ['seq-write', 'seq-read', 'rand-write', 'rand-read']);
  const args = (i: number): string[] => fioArgs(jobs[i]!, '/mnt/x/s', '/tmp/o.json');
  for (const a of [args(0), args(1)]) {
    t.true(a.includes('--bs=1M') && a.includes(`--size=${512 << 20}`) && a.includes('--filename=/mnt/x/s/seq.fio'));
  }
  t.true(args(0).includes('--rw=write') && args(0).includes('--end_fsync=1'));
  t.true(args(1).includes('--rw=read') && !args(1).includes('--end_fsync=1'));
  for (const a of [args(2), args(3)]) {
    t.true(a.includes('--bs=4k') && a.includes('--time_based') && a.includes('--runtime=15') && a.includes('--ioengine=psync') && a.includes('--iodepth=1'));
    t.true(a.includes(`--size=${256 << 20}`) && a.includes('--filename=/mnt/x/s/rand.fio'));
  }
  t.true(args(2).includes('--rw=randwrite') && args(2).includes('--end_fsync=1'));
  t.true(args(3).includes('--rw=randread'));
  t.deepEqual(args(0).slice(-2), ['--output-format=json', '--output=/tmp/o.json']);
  t.false(args(0).some((a) => a.startsWith('--directory')), 'an absolute filename, never --directory (ignored after --filename)');
  t.true(fioArgs(jobs[0]!, '/mnt/a:b', '/o').includes('--filename=/mnt/a\\:b/seq.fio'), 'fio file-name separators escaped');
});

test("fio's JSON: bandwidth in MiB/s for sequential jobs, IOPS for random ones", (t) => {
  const doc = (dir: 'read' | 'write', bw: number, iops: number): string => JSON.stringify({
    'fio version': 'fio-3.33',
    jobs: [{ jobname: 'x', error: 0, [dir]: { io_bytes: 1 << 20, bw_bytes: bw, iops }, [dir === 'read' ? 'write' : 'read']: { io_bytes: 0, bw_bytes: 0, iops: 0 } }],
  });
  t.deepEqual(parseFioJson(doc('write', 359 << 20, 359), 'seq-write'), { value: 359, unit: 'MiB/s' });
  t.deepEqual(parseFioJson(`note: a warning first\n${doc('read', 1 << 30, 1024)}`, 'seq-read'), { value: 1024, unit: 'MiB/s' });
  t.deepEqual(parseFioJson(doc('write', 1, 77000.5), 'rand-write'), { value: 77000.5, unit: 'IOPS' });
  t.throws(() => parseFioJson(doc('read', 1, 1), 'rand-write'), { instanceOf: OperationError, message: /did no I\/O/ });
  t.throws(() => parseFioJson('{"jobs":[{"error":5}]}', 'seq-read'), { instanceOf: OperationError, message: /error 5/ });
  t.throws(() => parseFioJson('fio: oops', 'seq-read'), { instanceOf: OperationError });
});

test('fstype: the longest mount point holding the directory, escapes undone', (t) => {
  const mounts = [
    '/dev/vda / ext4 rw 0 0',
    'tmpfs /tmp tmpfs rw 0 0',
    'demo /mnt/my\\040vol fuse.brickfs rw 0 0',
    'srv:/ref /mnt/gl fuse.glusterfs rw 0 0',
  ].join('\n');
  t.is(fstypeFromMounts(mounts, '/home/x'), 'ext4');
  t.is(fstypeFromMounts(mounts, '/tmp/a/b'), 'tmpfs');
  t.is(fstypeFromMounts(mounts, '/tmpx'), 'ext4', 'a prefix of the name is not a parent');
  t.is(fstypeFromMounts(mounts, '/mnt/my vol/sub'), 'fuse.brickfs');
  t.is(fstypeFromMounts(mounts, '/mnt/gl'), 'fuse.glusterfs');
  t.is(fstypeFromMounts(`${mounts}\noverlay /mnt/gl overlay rw 0 0`, '/mnt/gl'), 'overlay', 'the mount on top wins');
  t.is(fstypeFromMounts('', '/x'), 'unknown');
});

test('small-file set: 3-level tree, 1-16 KiB, the same every time', (t) => {
  const a = smallFiles('/s', 4000);
  t.is(a.files.length, 4000);
  t.is(a.dirs.length, 111);
  t.true(a.files.every((f) => f.size >= 1024 && f.size <= 16384));
  t.true(a.files.every((f) => f.path.split('/').length === 6), 'small/dX/dY/fN under /s');
  t.is(new Set(a.files.map((f) => f.path)).size, 4000);
  t.deepEqual(smallFiles('/s', 4000), a);
  const sizes = a.files.map((f) => f.size);
  t.true(Math.min(...sizes) < 2048 && Math.max(...sizes) > 15 * 1024, 'sizes span the range');
});

test('--no-drop-caches: the dropper runs nothing at all', async (t) => {
  const ran: string[] = [];
  const procs = { run: async (cmd: string) => { ran.push(cmd); return ''; } };
  const warnings: string[] = [];
  await new CacheDropper(procs, (m) => warnings.push(m), false).drop();
  t.deepEqual(ran, []);
  t.deepEqual(warnings, []);
});
