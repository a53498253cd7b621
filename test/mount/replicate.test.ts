// Replica volumes on real bricks and real mounts: a brick killed mid-write misses nothing
// after heal; deletions and new directories made while it was away are healed; split-brain
// gives EIO until resolved; two writers leave identical replicas; quorum refuses writes.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runHeal } from '../../client/heal.js';
import { mountVolfile } from '../helpers/cluster.js';
import { sh, shOk, sleep } from '../helpers/proc.js';
import { startReplicated } from '../helpers/replica.js';

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Everything under a brick except brickfs' private directory: relative path → content hash or 'dir'. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (rel === '' && e.name === '.brickfs') continue;
      const r = path.join(rel, e.name);
      const st = fs.lstatSync(path.join(dir, r));
      if (e.isDirectory()) {
        out.set(r, `dir ${st.mode.toString(8)}`);
        walk(r);
      } else {
        out.set(r, `${sha(path.join(dir, r))} ${st.mode.toString(8)} ${st.uid} ${Math.floor(st.mtimeMs)}`);
      }
    }
  };
  walk('');
  return out;
}

test('replica 3: kill -9 a brick during writes; after restart and heal it holds every acknowledged write', async (t) => {
  const vol = await startReplicated(t, 3, 1, { pingTimeoutS: 5 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  // The writer appends numbered lines and logs each one it saw succeed.
  const writer = sh(`for i in $(seq 1 400); do echo "line $i" >> ${mnt}/log.txt && echo $i >> ${vol.root}/acked; done`, { timeoutMs: 120_000 });
  await sleep(300);
  await vol.bricks[2]!.kill('SIGKILL');
  await writer;
  await shOk(t, `mkdir ${mnt}/newdir && echo inside > ${mnt}/newdir/f && echo gone > ${mnt}/tmp && rm ${mnt}/tmp && chmod 600 ${mnt}/log.txt`);
  await vol.bricks[2]!.start();
  await sleep(3500); // reconnect backoff
  const info = await runHeal(vol.volfile, { op: 'info' });
  t.true(info.sets[0]!.pending!.length > 0, 'heal info lists the pending paths');
  t.true(info.sets[0]!.pending!.every((p) => p.blamed.includes(`127.0.0.1:${vol.bricks[2]!.dir}`)), 'blamed bricks are named HOST:/path');
  t.deepEqual(info.bricks!.map((b) => [b.brick, b.status]), vol.bricks.map((b) => [`127.0.0.1:${b.dir}`, 'Connected']), 'heal info covers every brick');
  await runHeal(vol.volfile, { op: 'index' });
  const after = await runHeal(vol.volfile, { op: 'info' });
  t.deepEqual(after.sets[0]!.pending, []);
  const acked = fs.readFileSync(path.join(vol.root, 'acked'), 'utf8').trim().split('\n').length;
  const healed = fs.readFileSync(path.join(vol.bricks[2]!.dir, 'log.txt'), 'utf8').trim().split('\n');
  t.true(healed.length >= acked, `healed copy has ${healed.length} lines, ${acked} were acknowledged`);
  t.deepEqual(snapshot(vol.bricks[2]!.dir), snapshot(vol.bricks[0]!.dir));
  t.deepEqual(snapshot(vol.bricks[1]!.dir), snapshot(vol.bricks[0]!.dir));
  t.false(fs.existsSync(path.join(vol.bricks[2]!.dir, 'tmp')));
  t.is(fs.readFileSync(path.join(vol.bricks[2]!.dir, 'newdir', 'f'), 'utf8'), 'inside\n');
});

test('replica 2: the second brick dies during writes, writes go on, a lookup heals it when it is back', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `head -c 300000 /dev/urandom > ${mnt}/f && echo z > ${mnt}/zap`);
  const writer = sh(`for i in $(seq 1 300); do echo "line $i" >> ${mnt}/log && echo $i >> ${vol.root}/acked; done`, { timeoutMs: 120_000 });
  await sleep(300);
  await vol.bricks[1]!.kill('SIGKILL');
  await writer;
  await shOk(t, `head -c 500000 /dev/urandom >> ${mnt}/f && rm ${mnt}/zap && mkdir ${mnt}/d2 && echo y > ${mnt}/d2/y`);
  const want = await shOk(t, `sha256sum < ${mnt}/f`);
  await vol.bricks[1]!.start();
  await sleep(3500);
  // A brick that missed changes is never read from before heal: every read is right.
  for (let i = 0; i < 5; i++) t.is(await shOk(t, `cat ${mnt}/f | sha256sum`), want);
  await sleep(2100); // past kernel and md-cache timeouts, so the next lookups reach replicate
  await shOk(t, `ls -la ${mnt} ${mnt}/d2 > /dev/null && cat ${mnt}/f ${mnt}/log > /dev/null`);
  t.deepEqual(snapshot(vol.bricks[1]!.dir), snapshot(vol.bricks[0]!.dir));
  const acked = fs.readFileSync(path.join(vol.root, 'acked'), 'utf8').trim().split('\n').length;
  t.true(fs.readFileSync(path.join(vol.bricks[1]!.dir, 'log'), 'utf8').trim().split('\n').length >= acked);
});

test('split-brain gives EIO and each policy resolves it', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5, quorum: 'none' });
  const mnt = await mountVolfile(t, vol.volfilePath);
  for (const f of ['big', 'late', 'chosen']) await shOk(t, `echo base > ${mnt}/${f}`);
  const [a, b] = vol.bricks;
  await b!.kill('SIGKILL');
  await shOk(t, `echo only-on-a-and-longer > ${mnt}/big && echo a > ${mnt}/late && echo a > ${mnt}/chosen`);
  await a!.kill('SIGKILL');
  await b!.start();
  await sleep(3500);
  await sleep(1000);
  await shOk(t, `echo b > ${mnt}/big && echo b-newer > ${mnt}/late && echo b > ${mnt}/chosen`);
  await a!.start();
  await sleep(3500);
  await sleep(2100);
  const r = await sh(`cat ${mnt}/late`);
  t.not(r.code, 0);
  t.regex(r.stderr, /Input\/output error/);
  const info = await runHeal(vol.volfile, { op: 'info' });
  t.deepEqual(info.sets[0]!.pending!.filter((p) => p.splitBrain).map((p) => p.path).sort(), ['/big', '/chosen', '/late']);
  await runHeal(vol.volfile, { op: 'split-brain', policy: 'bigger-file', file: '/big' });
  await runHeal(vol.volfile, { op: 'split-brain', policy: 'latest-mtime', file: '/late' });
  await runHeal(vol.volfile, { op: 'split-brain', policy: 'source-brick', file: '/chosen', brick: `127.0.0.1:${a!.dir}` });
  await sleep(2100);
  t.is(await shOk(t, `cat ${mnt}/big`), 'only-on-a-and-longer\n');
  t.is(await shOk(t, `cat ${mnt}/late`), 'b-newer\n');
  t.is(await shOk(t, `cat ${mnt}/chosen`), 'a\n');
  for (const f of ['big', 'late', 'chosen']) t.is(sha(path.join(a!.dir, f)), sha(path.join(b!.dir, f)));
  t.deepEqual((await runHeal(vol.volfile, { op: 'info' })).sets[0]!.pending, []);
});

test('two mounts writing one file at once leave byte-identical replicas', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const m1 = await mountVolfile(t, vol.volfilePath);
  const m2 = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `head -c 1048576 /dev/zero > ${m1}/shared`);
  const w = (m: string, seed: number): Promise<unknown> => sh(`for i in $(seq 0 63); do head -c 8192 /dev/urandom | dd of=${m}/shared bs=8192 seek=$(( (i * ${seed}) % 128 )) conv=notrunc status=none; done`);
  await Promise.all([w(m1, 7), w(m2, 13)]);
  t.is(sha(path.join(vol.bricks[0]!.dir, 'shared')), sha(path.join(vol.bricks[1]!.dir, 'shared')));
});

test('quorum auto: with the first of two replicas down, writes are refused and reads still work', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `echo kept > ${mnt}/q`);
  await vol.bricks[0]!.kill('SIGKILL');
  await sleep(200);
  const w = await sh(`echo more >> ${mnt}/q`);
  t.not(w.code, 0);
  t.regex(w.stderr, /Read-only file system/);
  t.is(await shOk(t, `cat ${mnt}/q`), 'kept\n');
});

test('a file open for writing keeps taking writes after its directory is renamed: every copy has them, nothing pending', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const mnt = await mountVolfile(t, vol.volfilePath);
  // One process: open, write, rename the directory, write (in the same burst), idle past the
  // burst's 50 ms, write again (a new burst, under the new name), close.
  const script = path.join(vol.root, 'rename-open.py');
  fs.writeFileSync(script, `
import os, sys, time
m = sys.argv[1]
os.makedirs(m + "/a/deep")
fd = os.open(m + "/a/deep/f", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"one\\n")
os.rename(m + "/a", m + "/b")
os.write(fd, b"two\\n")
time.sleep(0.3)
os.write(fd, b"three\\n")
os.close(fd)
`);
  await shOk(t, `python3 ${script} ${mnt}`);
  t.is(await shOk(t, `cat ${mnt}/b/deep/f`), 'one\ntwo\nthree\n');
  await sleep(300);
  for (const b of vol.bricks) {
    const f = path.join(b.dir, 'b', 'deep', 'f');
    t.is(fs.readFileSync(f, 'utf8'), 'one\ntwo\nthree\n', `${b.dir}: every write`);
    const afr = await shOk(t, `getfattr --only-values -e hex -n trusted.brickfs.afr ${f} | od -An -tx1 | tr -d ' \\n'`);
    t.regex(afr, /^0*$/, `${b.dir}: nothing pending`);
  }
});
