// Issue "grow and shrink a live volume", as a user types it, through ONE mount that stays
// up the whole time: a 2-brick volume with files → add-brick 2 → new files land on the new
// bricks (the mount switched graphs, no remount) → rebalance start / status → every brick
// holds a share, every file intact → remove-brick start / status / commit → nothing lost.
import test from 'ava';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { RebalanceStatusReply, RemoveBrickStatusReply } from '../../lib/mgmt/api.js';
import { isMountPoint, mountVolume } from '../helpers/cluster.js';
import { runCli, runCliJson, runCliOk } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { dataFiles } from '../helpers/rebalance.js';
import { eventually, tmpDir } from '../helpers/proc.js';

const FILES = 400;

function contentOf(i: number): string {
  return `file ${i} `.repeat(1 + (i % 50)) + '\n';
}

test('add-brick while mounted, rebalance, remove-brick: one mount sees every file throughout', async (t) => {
  const root = tmpDir(t);
  const d = await startDaemon(t, { stateDir: path.join(root, 'state') });
  const o = { server: d.server, timeoutMs: 120_000 };
  const bricks = [1, 2, 3, 4].map((i) => path.join(root, `b${i}`));
  t.teardown(() => runCli(['volume', 'stop', 'grow'], o));
  await runCliOk(t, ['volume', 'create', 'grow', `localhost:${bricks[0]}`, `localhost:${bricks[1]}`, '--force'], o);
  await runCliOk(t, ['volume', 'start', 'grow'], o);
  const mnt = await mountVolume(t, d.server, 'grow', fs.mkdtempSync(path.join(root, 'mnt-')));
  t.true(isMountPoint(mnt));
  await fsp.mkdir(path.join(mnt, 'data'));
  for (let i = 0; i < FILES; i++) await fsp.writeFile(path.join(mnt, 'data', `f${i}`), contentOf(i));

  await runCliOk(t, ['volume', 'add-brick', 'grow', `localhost:${bricks[2]}`, `localhost:${bricks[3]}`, '--force'], o);
  // Files created after the add land on the new bricks, through the same mount, once it
  // has switched to the new volfile (a long poll away).
  let round = 0;
  await eventually(async () => {
    const dir = path.join(mnt, `after-${round++}`);
    await fsp.mkdir(dir);
    for (let i = 0; i < 20; i++) await fsp.writeFile(path.join(dir, `n${i}`), `new ${i}\n`);
    return fs.existsSync(path.join(bricks[2]!, path.basename(dir))) && dataFiles(bricks[2]!).length > 0 && dataFiles(bricks[3]!).length > 0;
  }, 30_000, 'new files on the added bricks');
  t.true(isMountPoint(mnt), 'still the same mount');

  const started = await runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'grow', 'start', '--json'], o);
  t.is(started.purpose, 'rebalance');
  // --watch follows the run and returns by itself once no node runs (plain reports: stdout is no terminal).
  const watched = await runCli(['volume', 'rebalance', 'grow', 'status', '--watch', '--interval', '0.2'], { ...o, timeoutMs: 90_000 });
  t.is(watched.code, 0, watched.stderr);
  t.regex(watched.stdout, /^== \d{4}-\d\d-\d\dT/m, 'each report under its time');
  t.regex(watched.stdout, /completed/);
  const done = await runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'grow', 'status', '--json'], o);
  t.is(done.state, 'completed', done.error);
  t.is(done!.filesFailed, 0, done!.error);
  t.true(done!.filesMoved > FILES / 4, `moved ${done!.filesMoved} of ${FILES}`);
  const text = await runCliOk(t, ['volume', 'rebalance', 'grow', 'status'], o);
  t.regex(text, /completed/);

  const shares = bricks.map((b) => dataFiles(b).filter((f) => f.startsWith('/data/')).length);
  t.is(shares.reduce((a, b) => a + b, 0), FILES, `each file once: ${shares.join(',')}`);
  for (const s of shares) t.true(s > FILES / 8, `every brick holds a share: ${shares.join(',')}`);
  for (let i = 0; i < FILES; i++) t.is(await fsp.readFile(path.join(mnt, 'data', `f${i}`), 'utf8'), contentOf(i));

  // Shrink again: drain the first brick, then commit.
  const early = await runCli(['volume', 'remove-brick', 'grow', `localhost:${bricks[0]}`, 'commit'], o);
  t.is(early.code, 1, 'commit with no drain is refused');
  await runCliOk(t, ['volume', 'remove-brick', 'grow', `localhost:${bricks[0]}`, 'start'], o);
  await eventually(async () => {
    const s = await runCliJson<RemoveBrickStatusReply>(t, ['volume', 'remove-brick', 'grow', `localhost:${bricks[0]}`, 'status', '--json'], o);
    if (s.rebalance?.state === 'failed') t.fail(`drain failed: ${s.rebalance.error}`);
    return s.complete;
  }, 90_000, 'drain complete');
  await runCliOk(t, ['volume', 'remove-brick', 'grow', `localhost:${bricks[0]}`, 'commit'], o);
  t.deepEqual(dataFiles(bricks[0]!), [], 'the removed brick was drained');
  const info = await runCliOk(t, ['volume', 'info', 'grow', '--json'], o);
  t.false(info.includes(bricks[0]!), 'removed brick gone from the volume');
  // The mount follows the commit too, and every file is still there.
  await eventually(async () => {
    const st = await runCliOk(t, ['volume', 'status', 'grow', '--json'], o);
    return !st.includes(bricks[0]!);
  }, 10_000, 'status without the removed brick');
  for (let i = 0; i < FILES; i++) t.is(await fsp.readFile(path.join(mnt, 'data', `f${i}`), 'utf8'), contentOf(i));
  t.is((await fsp.readdir(path.join(mnt, 'data'))).length, FILES);
});
