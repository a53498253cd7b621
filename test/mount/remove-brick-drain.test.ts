// What a remove-brick drain counts, on a real daemon, real bricks, a real mount and the real
// rebalance program: the drain's total is the files on the bricks being removed (not the
// volume's), and a commit refused for want of a complete drain names the very counts
// `remove-brick ... status` prints.
import test from 'ava';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { RemoveBrickStatusReply } from '../../lib/mgmt/api.js';
import { isMountPoint, mountVolume } from '../helpers/cluster.js';
import { runCli, runCliJson, runCliOk } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { dataFiles } from '../helpers/rebalance.js';
import { eventually, tmpDir } from '../helpers/proc.js';

const FILES = 120;
/** The files left on the brick to remove: a small share of the volume's. */
const ON_REMOVED = 4;

test('remove-brick drain: its total is the removed brick\'s files; a refused commit names the counts status shows', async (t) => {
  const root = tmpDir(t);
  const d = await startDaemon(t, { stateDir: path.join(root, 'state') });
  const o = { server: d.server, timeoutMs: 120_000 };
  const bricks = [0, 1, 2].map((i) => path.join(root, `b${i}`));
  const gone = `localhost:${bricks[2]}`;
  t.teardown(() => runCli(['volume', 'stop', 'drain'], o));
  await runCliOk(t, ['volume', 'create', 'drain', ...bricks.map((b) => `localhost:${b}`), '--force'], o);
  await runCliOk(t, ['volume', 'start', 'drain'], o);
  const mnt = await mountVolume(t, d.server, 'drain', fs.mkdtempSync(path.join(root, 'mnt-')));
  t.true(isMountPoint(mnt));
  await fsp.mkdir(path.join(mnt, 'data'));
  for (let i = 0; i < FILES; i++) await fsp.writeFile(path.join(mnt, 'data', `f${i}`), `file ${i}\n`);

  // Keep only a few files on the brick to remove, so its count and the volume's differ widely.
  const there = dataFiles(bricks[2]!);
  t.true(there.length > ON_REMOVED, `the brick to remove holds ${there.length} files`);
  for (const f of there.slice(ON_REMOVED)) await fsp.unlink(path.join(mnt, f));
  const drained = dataFiles(bricks[2]!).sort();
  t.is(drained.length, ON_REMOVED);
  const inVolume = (await fsp.readdir(path.join(mnt, 'data'))).length;
  t.true(inVolume > 10 * ON_REMOVED, `${inVolume} files in the volume`);

  // One of them cannot move: a real file of its name waits on both kept bricks (its
  // destination is one of them), so the drain ends with it failed and its counts stand still.
  const stuck = drained[0]!;
  for (const b of bricks.slice(0, 2)) fs.writeFileSync(path.join(b, stuck), 'in the way\n');

  await runCliOk(t, ['volume', 'remove-brick', 'drain', gone, 'start'], o);
  const status = (): Promise<RemoveBrickStatusReply> => runCliJson<RemoveBrickStatusReply>(t, ['volume', 'remove-brick', 'drain', gone, 'status', '--json'], o);
  let st!: RemoveBrickStatusReply;
  await eventually(async () => {
    st = await status();
    return st.rebalance !== null && st.rebalance.state !== 'running' && !st.rebalance.alive;
  }, 90_000, 'the drain ends');
  const r = st.rebalance!;
  t.like(r, { purpose: 'remove-brick', state: 'completed', filesTotal: ON_REMOVED, filesScanned: ON_REMOVED, filesMoved: ON_REMOVED - 1, filesFailed: 1 }, r.error);
  t.regex(r.error ?? '', /exists on both/);
  t.false(st.complete);
  t.deepEqual(dataFiles(bricks[2]!), [stuck], 'the moved files left the brick; the stuck one stays');

  const text = await runCliOk(t, ['volume', 'remove-brick', 'drain', gone, 'status'], o);
  t.log(`$ brickfs volume remove-brick drain ${gone} status\n${text}`);
  t.regex(text, new RegExp(`files on the bricks being removed: ${ON_REMOVED}; estimated time left`));
  const shown = /^Drain: (.*)$/m.exec(text)?.[1];
  t.is(shown, `files on the bricks being removed: ${ON_REMOVED}, moved: ${ON_REMOVED - 1}, failed: 1, skipped: 0, left: 1; state completed`);

  const commit = await runCli(['volume', 'remove-brick', 'drain', gone, 'commit'], o);
  t.is(commit.code, 1, commit.stdout);
  t.log(`$ brickfs volume remove-brick drain ${gone} commit\n${commit.stderr}`);
  const refused = /the drain is not complete: (.*); wait /.exec(commit.stderr)?.[1];
  t.is(refused, shown, commit.stderr);

  // The moved files read as written, through the mount, from where they went.
  for (const f of drained.slice(1)) t.regex(await fsp.readFile(path.join(mnt, f), 'utf8'), /^file \d+\n$/, f);
});
