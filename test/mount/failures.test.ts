// Bricks going away under a real mount: errors come fast (ENOTCONN), never a hang, and
// everything comes back when the brick does.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountPidfile, mountRunFile } from '../../client/mount-table.js';
import { isMountPoint, mountVolfile, startDistribute, unmountQuietly, type TestVolume } from '../helpers/cluster.js';
import { cli, eventually, sh, shOk, tmpDir } from '../helpers/proc.js';

/** Writes n files through the mount and returns, per brick index, the names stored there. */
async function filesByBrick(t: Parameters<typeof shOk>[0], vol: TestVolume, mnt: string, dir: string, n: number): Promise<string[][]> {
  await shOk(t, `mkdir -p ${mnt}/${dir} && for i in $(seq 1 ${n}); do echo "v$i" > ${mnt}/${dir}/f$i; done`);
  return vol.bricks.map((b) => fs.readdirSync(path.join(b.dir, dir)));
}

test('a killed brick gives ENOTCONN on its files at once; other files keep working; restart heals', async (t) => {
  const vol = await startDistribute(t, 3, { pingTimeoutS: 3 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  const byBrick = await filesByBrick(t, vol, mnt, 'k', 30);
  await vol.bricks[1]!.kill('SIGKILL');
  const dead = byBrick[1]![0]!;
  const alive = byBrick[0]![0]!;
  const started = Date.now();
  const r = await sh(`cat ${mnt}/k/${dead}`, { timeoutMs: 20_000 });
  t.not(r.code, 0);
  t.regex(r.stderr, /Transport endpoint is not connected/);
  t.true(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  t.is(await shOk(t, `cat ${mnt}/k/${alive}`), `v${alive.slice(1)}\n`);
  // A listing shows what the live bricks hold.
  const listed = (await shOk(t, `ls ${mnt}/k`)).trim().split('\n');
  t.is(listed.length, 30 - byBrick[1]!.length);
  await vol.bricks[1]!.start();
  await eventually(async () => (await sh(`cat ${mnt}/k/${dead}`)).stdout === `v${dead.slice(1)}\n`, 15_000, 'reconnect');
  t.is((await shOk(t, `ls ${mnt}/k | wc -l`)).trim(), '30');
});

test('a hung brick (SIGSTOP) gives ENOTCONN within the ping timeout, not a hang', async (t) => {
  const vol = await startDistribute(t, 2, { pingTimeoutS: 2 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  const byBrick = await filesByBrick(t, vol, mnt, 'h', 20);
  const hung = vol.bricks[0]!;
  await hung.kill('SIGSTOP');
  t.teardown(() => { hung.proc?.kill('SIGCONT'); });
  const started = Date.now();
  const r = await sh(`cat ${mnt}/h/${byBrick[0]![0]}`, { timeoutMs: 30_000 });
  const took = Date.now() - started;
  t.not(r.code, 0);
  t.regex(r.stderr, /Transport endpoint is not connected/);
  // 2 s ping timeout + up to 0.5 s watchdog period; the bound leaves room for a loaded CI machine.
  t.true(took >= 1500 && took < 8000, `answered after ${took} ms with a 2 s ping timeout`);
  t.is(await shOk(t, `cat ${mnt}/h/${byBrick[1]![0]}`), `v${byBrick[1]![0]!.slice(1)}\n`);
});

test('SIGUSR2 to a mount started without BRICKFS_PROFILE: it keeps serving and says how to turn profiling on', async (t) => {
  const vol = await startDistribute(t, 1);
  const mnt = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `echo before > ${mnt}/f`);
  process.kill(Number(fs.readFileSync(mountPidfile(mnt), 'utf8').trim()), 'SIGUSR2');
  await eventually(() => /profiling is off; start the mount or brick with BRICKFS_PROFILE=1/.test(fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8')), 5000, 'the log line');
  t.is(await shOk(t, `cat ${mnt}/f`), 'before\n', 'the mount still serves');
});

test('data survives unmount and remount', async (t) => {
  const vol = await startDistribute(t, 3);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const scratch = tmpDir(t);
  await shOk(t, `head -c 3000000 /dev/urandom > ${scratch}/big && mkdir ${mnt}/keep && cp ${scratch}/big ${mnt}/keep/big && for i in $(seq 1 50); do echo $i > ${mnt}/keep/s$i; done`);
  await unmountQuietly(mnt);
  t.false(isMountPoint(mnt));
  await mountVolfile(t, vol.volfilePath, mnt);
  t.is(await shOk(t, `sha256sum < ${mnt}/keep/big`), await shOk(t, `sha256sum < ${scratch}/big`));
  t.is((await shOk(t, `cat ${mnt}/keep/s* | sort -n | tail -1`)).trim(), '50');
});

test('a malformed volfile is refused with its line number and leaves no mount behind', async (t) => {
  const dir = tmpDir(t);
  const bad = path.join(dir, 'bad.vol');
  fs.writeFileSync(bad, 'volume a\n    type protocol/client\n    option remote-host 127.0.0.1\n    option remote-port 1\n    option remote-subvolume /x\n    option colour blue\nend-volume\n');
  fs.mkdirSync(path.join(dir, 'mnt'));
  const r = await cli(['mount', '--volfile', bad, path.join(dir, 'mnt')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /bad\.vol:6: .*unknown option "colour"/);
  t.false(isMountPoint(path.join(dir, 'mnt')));
});

test('mount on a missing directory fails clearly and leaves nothing mounted', async (t) => {
  const vol = await startDistribute(t, 1);
  const where = path.join(vol.root, 'does-not-exist');
  const r = await cli(['mount', '--volfile', vol.volfilePath, where]);
  t.is(r.code, 1);
  t.regex(r.stderr, /does not exist/);
  t.false(isMountPoint(where));
});

test('write-behind: writes acknowledged before a brick died are not reported written: write, fsync or close fails', async (t) => {
  const vol = await startDistribute(t, 1, { pingTimeoutS: 3 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  for (const end of ['close', 'fsync'] as const) {
    if (end === 'fsync') await vol.bricks[0]!.start();
    await eventually(async () => (await sh(`touch ${mnt}/probe-${end}`)).code === 0, 15_000, 'brick back');
    const fh = await fs.promises.open(`${mnt}/wb-${end}`, 'w');
    t.teardown(() => fh.close().catch(() => undefined));
    await fh.write(Buffer.alloc(65536, 1));
    await vol.bricks[0]!.kill('SIGKILL');
    const codes: string[] = [];
    for (let i = 0; i < 8 && codes.length === 0; i++) {
      await fh.write(Buffer.alloc(65536, 2)).catch((e: NodeJS.ErrnoException) => codes.push(`write ${e.code}`));
    }
    const last = end === 'close' ? fh.close() : fh.sync();
    await last.catch((e: NodeJS.ErrnoException) => codes.push(`${end} ${e.code}`));
    t.true(codes.length > 0, `${end}: every write and the ${end} reported success on a dead brick`);
    t.true(codes.every((c) => /ENOTCONN|EIO/.test(c)), codes.join(', '));
  }
});
