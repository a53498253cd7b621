// Growing and shrinking live volumes through the management daemon: add-brick, remove-brick
// and rebalance, end to end with a real daemon process, the real CLI and real brick
// processes (no FUSE). The serial tests run a stand-in rebalance program
// (test/helpers/rebalance-standin.ts) to exercise supervision (status, stop, resume, death,
// adoption) at a pace a test can watch; the others run the real one.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../../brick/mgmt/bricks.js';
import type {
  RebalanceStatusReply, RemoveBrickStatusReply, StatusListReply, VolumeInfo, VolumeListReply,
} from '../../lib/mgmt/api.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { runCliJson, runCliOk, testTlsVolume } from '../helpers/cli.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually, REPO, tmpDir, type Owner } from '../helpers/proc.js';

const STANDIN = path.join(REPO, 'dist', 'test', 'helpers', 'rebalance-standin.js');

/** n brick paths (not created) in a fresh temporary directory. */
function brickPaths(t: Owner, n: number): string[] {
  const root = tmpDir(t, 'brickfs-bricks-');
  return Array.from({ length: n }, (_, i) => path.join(root, `b${i}`));
}

const local = (paths: string[]): string[] => paths.map((p) => `localhost:${p}`);

/** Under BRICKFS_TEST_TLS=1, the versions the CLI helper's `volume set`s add to every volume it creates. */
const TLS_VERSIONS = testTlsVolume().versions;

/**
 * Runs fn with the daemon's rebalance program set to the stand-in. Only from serial tests:
 * they run before the concurrent ones, so no other daemon is spawned meanwhile.
 */
async function withStandin<T>(fn: () => Promise<T>): Promise<T> {
  process.env.BRICKFS_REBALANCE_MAIN = STANDIN;
  try {
    return await fn();
  } finally {
    delete process.env.BRICKFS_REBALANCE_MAIN;
  }
}

async function info(t: Parameters<typeof runCliJson>[0], d: TestDaemon, vol: string): Promise<VolumeInfo> {
  return (await runCliJson<VolumeListReply>(t, ['volume', 'info', vol, '--json'], { server: d.server })).volumes[0]!;
}

async function bricksOf(t: Parameters<typeof runCliJson>[0], d: TestDaemon, vol: string): Promise<StatusListReply['volumes'][number]['bricks']> {
  return (await runCliJson<StatusListReply>(t, ['volume', 'status', vol, '--json'], { server: d.server })).volumes[0]!.bricks;
}

async function volfile(t: Parameters<typeof runCliOk>[0], d: TestDaemon, vol: string): Promise<ReturnType<typeof parseVolfile>> {
  return parseVolfile(await runCliOk(t, ['volume', 'volfile', vol], { server: d.server }));
}

/** Polls a status until pred holds; resolves with that status. */
async function until<T>(get: () => Promise<T>, pred: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  let last: T | undefined;
  await eventually(async () => pred(last = await get()), timeoutMs, what);
  return last!;
}

const dhtOptions = (decls: ReturnType<typeof parseVolfile>): Record<string, string> =>
  decls.find((x) => x.type === 'cluster/distribute')!.options;

test.serial('rebalance supervision (stand-in program): status, one run at a time, stop, resume, death, adoption, volume stop', async (t) => {
  const d = await withStandin(() => startDaemon(t));
  t.is((await d.cli(['volume', 'create', 'rb', ...local(brickPaths(t, 2))])).code, 0);
  t.is((await d.cli(['volume', 'start', 'rb'])).code, 0);
  const status = (): Promise<RebalanceStatusReply> => runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'rb', 'status', '--json'], { server: d.server });

  const start = await d.cli(['volume', 'rebalance', 'rb', 'start']);
  t.is(start.code, 0, start.stderr);
  t.regex(start.stdout, /volume rebalance: rb: success: rebalance started \(pid \d+\)/);
  const first = await until(status, (s) => s.filesMoved > 0, 'progress');
  t.like(first, { volume: 'rb', purpose: 'rebalance', mode: 'migrate', throttle: 'normal', state: 'running', alive: true, resumed: false, layoutEpoch: 0 });
  t.true(typeof first.pid === 'number' && pidAlive(first.pid));
  const human = await d.cli(['volume', 'rebalance', 'rb', 'status']);
  t.regex(human.stdout, /Node +Rebalanced-files +size +scanned +failures +skipped +status +run time in h:m:s/);
  t.regex(human.stdout, /localhost +\d+ +[\d.]+ \w+ +\d+ +0 +0 +running +0:00:\d\d/);
  t.regex(human.stdout, /Rate: [\d.]+ files\/s, [\d.]+ MiB\/s; files in volume: 1000; estimated time left: \d+:\d\d:\d\d/);

  const again = await d.cli(['volume', 'rebalance', 'rb', 'start']);
  t.is(again.code, 1);
  t.regex(again.stderr, /already running; `brickfs volume rebalance rb status` shows its progress/);
  const add = await d.cli(['volume', 'add-brick', 'rb', ...local(brickPaths(t, 1))]);
  t.is(add.code, 1);
  t.regex(add.stderr, /a rebalance of volume rb is running; wait .* or stop it with `brickfs volume rebalance rb stop`, then add bricks/);

  // The rebalance outlives the daemon and is adopted by the next one.
  await withStandin(() => d.restart());
  const adopted = await status();
  t.is(adopted.pid, first.pid);
  t.is(adopted.state, 'running');

  const stop = await d.cli(['volume', 'rebalance', 'rb', 'stop']);
  t.is(stop.code, 0, stop.stderr);
  t.regex(stop.stdout, /stopped; `start` resumes it/);
  const stopped = await status();
  t.like(stopped, { state: 'stopped', alive: false, pid: null });
  t.false(pidAlive(first.pid!));
  t.is((await d.cli(['volume', 'rebalance', 'rb', 'stop'])).code, 1, 'nothing left to stop');

  // Started again over the same bricks: it resumes.
  const resumed = await runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'rb', 'start', '--throttle', 'lazy', '--json'], { server: d.server });
  t.like(resumed, { resumed: true, throttle: 'lazy', alive: true });
  const cont = await until(status, (s) => s.filesScanned > stopped.filesScanned, 'progress after resume');
  t.true(cont.filesMoved < cont.filesScanned, 'a resumed run counts from where the stopped one was');

  // A process that dies leaves "running" in its status file: shown as failed, and a start resumes.
  process.kill(resumed.pid!, 'SIGKILL');
  const died = await until(status, (s) => s.state === 'failed', 'death noticed');
  t.false(died.alive);
  t.regex(died.error ?? '', /the rebalance process died; start it again to resume \(`brickfs volume rebalance rb start`\)/);
  const restart = await runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'rb', 'start', '--json'], { server: d.server });
  t.true(restart.resumed);

  // volume stop stops the rebalance first; it stays resumable.
  t.is((await d.cli(['volume', 'stop', 'rb'])).code, 0);
  t.like(await status(), { state: 'stopped', alive: false });
  const notStarted = await d.cli(['volume', 'rebalance', 'rb', 'start']);
  t.is(notStarted.code, 1);
  t.regex(notStarted.stderr, /volume rb is not started; start it with `brickfs volume start rb`/);
});

test.serial('remove-brick (stand-in drain): commit refused until drained, commit force takes the bricks out; other bricks keep their names', async (t) => {
  const d = await withStandin(() => startDaemon(t));
  const bricks = brickPaths(t, 3);
  t.is((await d.cli(['volume', 'create', 'rm', ...local(bricks)])).code, 0);
  t.is((await d.cli(['volume', 'start', 'rm'])).code, 0);
  const before = await bricksOf(t, d, 'rm');
  const b1 = `localhost:${bricks[1]}`;

  const start = await d.cli(['volume', 'remove-brick', 'rm', b1, 'start']);
  t.is(start.code, 0, start.stderr);
  t.regex(start.stdout, /volume remove-brick start: rm: success: draining 1 brick\(s\) \(pid \d+\)/);
  const v = await info(t, d, 'rm');
  t.like(v, { version: 2 + TLS_VERSIONS, layoutEpoch: 1 });
  t.deepEqual(v.removing?.bricks, [{ host: 'localhost', path: bricks[1], port: before[1]!.port }], 'no internal ids in info');
  t.deepEqual(dhtOptions(await volfile(t, d, 'rm')), { 'layout-epoch': '1', 'decommissioned-bricks': 'rm-client-1' });
  t.regex((await d.cli(['volume', 'info', 'rm'])).stdout, /Bricks being removed \(remove-brick started .*\):\n {2}localhost:.*b1\n/);

  const st = await runCliJson<RemoveBrickStatusReply>(t, ['volume', 'remove-brick', 'rm', b1, 'status', '--json'], { server: d.server });
  t.like(st, { volume: 'rm', complete: false });
  t.like(st.rebalance, { purpose: 'remove-brick', state: 'running', alive: true });
  const wrong = await d.cli(['volume', 'remove-brick', 'rm', `localhost:${bricks[2]}`, 'status']);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /the remove-brick in progress on volume rm is of localhost:.*b1/);

  const commit = await d.cli(['volume', 'remove-brick', 'rm', b1, 'commit']);
  t.is(commit.code, 1);
  t.regex(commit.stderr, /the drain is not complete: files on the bricks being removed: (\d+|counting), moved: \d+, failed: 0, skipped: \d+, left: (\d+|unknown); state running; wait .*commit force/);
  const add = await d.cli(['volume', 'add-brick', 'rm', ...local(brickPaths(t, 1))]);
  t.is(add.code, 1);
  t.regex(add.stderr, /a remove-brick of volume rm is in progress .*; finish it first/);
  t.is((await d.cli(['volume', 'rebalance', 'rm', 'start'])).code, 1);

  const force = await d.cli(['volume', 'remove-brick', 'rm', b1, 'commit', 'force']);
  t.is(force.code, 0, force.stderr);
  t.regex(force.stdout, /Removed localhost:.*b1\. Their directories and any files left in them stay on disk/);
  const after = await info(t, d, 'rm');
  t.deepEqual(after.bricks.map((b) => b.path), [bricks[0], bricks[2]]);
  t.like(after, { version: 3 + TLS_VERSIONS, layoutEpoch: 1, type: 'distribute' });
  t.is(after.removing, undefined);
  t.false(pidAlive(before[1]!.pid!), 'the removed brick process is stopped');
  const now = await bricksOf(t, d, 'rm');
  t.deepEqual(now.map((b) => b.pid), [before[0]!.pid, before[2]!.pid], 'the others keep running');
  t.true(fs.existsSync(bricks[1]!), 'the removed brick directory stays');
  const decls = await volfile(t, d, 'rm');
  t.deepEqual(decls.filter((x) => x.type === 'protocol/client').map((x) => x.name), ['rm-client-0', 'rm-client-2']);
  t.deepEqual(dhtOptions(decls), { 'layout-epoch': '1' }, 'the layout over the remaining bricks is unchanged');
  const drain = await runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'rm', 'status', '--json'], { server: d.server });
  t.like(drain, { purpose: 'remove-brick', state: 'stopped', alive: false });
});

test('add-brick on a started volume starts its bricks and pushes a new volfile; rebalance and remove-brick with the real rebalance program', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 5);
  t.is((await d.cli(['volume', 'create', 'grow', ...local(bricks.slice(0, 2))])).code, 0);
  t.is((await d.cli(['volume', 'start', 'grow'])).code, 0);
  const waiting = d.http(`/v1/volumes/grow/volfile?newer-than=${1 + TLS_VERSIONS}&wait=30`);
  await new Promise((r) => setTimeout(r, 200));

  const add = await d.cli(['volume', 'add-brick', 'grow', ...local(bricks.slice(2, 4))]);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /volume add-brick: grow: success\n.*brickfs volume rebalance grow start/);
  const pushed = await waiting;
  t.is(pushed.status, 200);
  t.is(pushed.headers.get('x-brickfs-volume-version'), String(2 + TLS_VERSIONS));
  const decls = parseVolfile(pushed.text);
  t.deepEqual(decls.filter((x) => x.type === 'protocol/client').map((x) => x.name), ['grow-client-0', 'grow-client-1', 'grow-client-2', 'grow-client-3']);
  t.deepEqual(dhtOptions(decls), { 'layout-epoch': '1' }, 'bricks on one filesystem: no weights');
  const st = await bricksOf(t, d, 'grow');
  t.is(st.length, 4);
  t.true(st.every((b) => b.online && typeof b.pid === 'number'), JSON.stringify(st));
  t.like(await info(t, d, 'grow'), { version: 2 + TLS_VERSIONS, layoutEpoch: 1, type: 'distribute' });

  const reb = await d.cli(['volume', 'rebalance', 'grow', 'start']);
  t.is(reb.code, 0, reb.stderr);
  const done = await until(
    () => runCliJson<RebalanceStatusReply>(t, ['volume', 'rebalance', 'grow', 'status', '--json'], { server: d.server }),
    // Its last status is written just before the process exits: the daemon sees the exit a moment later.
    (s) => s.state !== 'running' && !s.alive, 'rebalance end', 30_000);
  t.like(done, { state: 'completed', filesFailed: 0, purpose: 'rebalance', layoutEpoch: 1, alive: false });

  const gone = local(bricks.slice(2, 4));
  const rm = await d.cli(['volume', 'remove-brick', 'grow', ...gone, 'start']);
  t.is(rm.code, 0, rm.stderr);
  await eventually(async () => (await runCliJson<RemoveBrickStatusReply>(t, ['volume', 'remove-brick', 'grow', ...gone, 'status', '--json'], { server: d.server })).complete, 30_000, 'drain complete');
  const commit = await d.cli(['volume', 'remove-brick', 'grow', ...gone, 'commit']);
  t.is(commit.code, 0, commit.stderr);
  t.like(await info(t, d, 'grow'), { version: 4 + TLS_VERSIONS, layoutEpoch: 2 });
  await eventually(() => !pidAlive(st[2]!.pid!) && !pidAlive(st[3]!.pid!), 5000, 'removed bricks stopped');
  t.deepEqual((await bricksOf(t, d, 'grow')).map((b) => b.pid), [st[0]!.pid, st[1]!.pid]);

  // Slots of removed bricks are not given again: a link file naming grow-client-2 never points at a new brick.
  t.is((await d.cli(['volume', 'add-brick', 'grow', `localhost:${bricks[4]}`])).code, 0);
  const last = await volfile(t, d, 'grow');
  t.deepEqual(last.filter((x) => x.type === 'protocol/client').map((x) => x.name), ['grow-client-0', 'grow-client-1', 'grow-client-4']);
  t.is(dhtOptions(last)['layout-epoch'], '3');
  t.is((await d.cli(['volume', 'stop', 'grow'])).code, 0);
});

test('add-brick refusals: a wrong multiple is exit 2, a replica change or a brick of a volume is exit 1; a stopped volume grows without processes', async (t) => {
  const d = await startDaemon(t);
  const [a, b, c, e, f] = brickPaths(t, 5) as [string, string, string, string, string];
  t.is((await d.cli(['volume', 'create', 'rep', 'replica', '2', ...local([a, b])])).code, 0);
  t.is((await d.cli(['volume', 'create', 'other', ...local([c])])).code, 0);

  const odd = await d.cli(['volume', 'add-brick', 'rep', `localhost:${e}`]);
  t.is(odd.code, 2, odd.stderr);
  t.regex(odd.stderr, /volume rep \(replica 2\) grows by whole sets of 2 bricks: give a multiple of 2, got 1/);
  t.regex(odd.stderr, /usage: brickfs volume add-brick VOL \[replica N\]/);
  const raw = await d.http('/v1/volumes/rep/add-brick', { method: 'POST', body: JSON.stringify({ bricks: local([e, f, `${f}x`]) }) });
  t.is(raw.status, 400, 'the daemon checks too');

  const change = await d.cli(['volume', 'add-brick', 'rep', 'replica', '3', ...local([e, f, `${f}x`])]);
  t.is(change.code, 1);
  t.regex(change.stderr, /changing the replica count with add-brick is not supported yet; volume rep has replica 2: add bricks in multiples of 2/);

  const used = await d.cli(['volume', 'add-brick', 'rep', `localhost:${c}`, `localhost:${e}`]);
  t.is(used.code, 1);
  t.regex(used.stderr, /brick localhost:.* is already a brick of volume other; use another directory, or add --force/);
  const own = await d.cli(['volume', 'add-brick', 'rep', `localhost:${a}`, `localhost:${e}`, 'force']);
  t.is(own.code, 1);
  t.regex(own.stderr, /is already a brick of volume rep; give another directory/);
  t.false(fs.existsSync(e), 'a refused add-brick makes no directories');
  t.is((await d.cli(['volume', 'add-brick', 'nope', `localhost:${e}`])).code, 1);

  const ok = await d.cli(['volume', 'add-brick', 'rep', 'replica', '2', ...local([e, f])]);
  t.is(ok.code, 0, ok.stderr);
  const v = await info(t, d, 'rep');
  t.like(v, { type: 'distributed-replicate', version: 2 + TLS_VERSIONS, layoutEpoch: 1, replicaCount: 2 });
  t.is(v.bricks.length, 4);
  t.true((await bricksOf(t, d, 'rep')).every((x) => x.pid === null), 'a volume not started gets no brick processes');
  const decls = await volfile(t, d, 'rep');
  t.deepEqual(decls.find((x) => x.type === 'cluster/distribute')!.subvolumes, ['rep-replicate-0', 'rep-replicate-1']);
});

test('remove-brick refusals: part of a set, every set, a stranger, not started, commit without start; commit force without start', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 4);
  const [a, b, c, e] = local(bricks) as [string, string, string, string];
  t.is((await d.cli(['volume', 'create', 'r', 'replica', '2', a, b, c, e])).code, 0);

  const part = await d.cli(['volume', 'remove-brick', 'r', a, 'start']);
  t.is(part.code, 2);
  t.regex(part.stderr, /remove whole replica sets \(replica 2\): .*b0 .*b1 form one; add .*b1 to the bricks to remove/);
  const all = await d.cli(['volume', 'remove-brick', 'r', a, b, c, e, 'start']);
  t.is(all.code, 1);
  t.regex(all.stderr, /would leave volume r without bricks: at least one set must stay/);
  const stranger = await d.cli(['volume', 'remove-brick', 'r', 'localhost:/nowhere/x', 'start']);
  t.is(stranger.code, 2);
  t.regex(stranger.stderr, /localhost:\/nowhere\/x is not a brick of volume r; `brickfs volume info r` lists its bricks/);
  const stopped = await d.cli(['volume', 'remove-brick', 'r', a, b, 'start']);
  t.is(stopped.code, 1);
  t.regex(stopped.stderr, /volume r is not started; the drain moves files through the bricks/);
  const noStart = await d.cli(['volume', 'remove-brick', 'r', a, b, 'commit']);
  t.is(noStart.code, 1);
  t.regex(noStart.stderr, /no remove-brick of .* was started on volume r; drain them first/);
  const noStatus = await d.cli(['volume', 'remove-brick', 'r', a, b, 'status']);
  t.is(noStatus.code, 1);
  t.regex(noStatus.stderr, /no remove-brick is in progress on volume r/);

  // commit force without a drain: taken out at once; the layout changes (epoch), the other set keeps its names.
  const force = await d.cli(['volume', 'remove-brick', 'r', a, b, 'commit', 'force']);
  t.is(force.code, 0, force.stderr);
  t.like(await info(t, d, 'r'), { type: 'replicate', version: 2 + TLS_VERSIONS, layoutEpoch: 1 });
  const decls = await volfile(t, d, 'r');
  t.deepEqual(decls.map((x) => x.name), ['r-client-2', 'r-client-3', 'r-replicate-1', 'r-dht', 'r-quick-read', 'r-open-behind', 'r-write-behind', 'r-io-cache', 'r-read-ahead', 'r-nl-cache', 'r-readdir-ahead', 'r-md-cache']);
  t.is(dhtOptions(decls)['layout-epoch'], '1');
});

test('rebalance refusals and usage errors', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 3);
  t.is((await d.cli(['volume', 'create', 'one', `localhost:${bricks[0]}`])).code, 0);
  t.is((await d.cli(['volume', 'start', 'one'])).code, 0);
  const single = await d.cli(['volume', 'rebalance', 'one', 'start']);
  t.is(single.code, 1);
  t.regex(single.stderr, /volume one has a single distribute subvolume: there is nothing to rebalance; add bricks first with `brickfs volume add-brick one BRICK...`/);
  const never = await d.cli(['volume', 'rebalance', 'one', 'status']);
  t.is(never.code, 1);
  t.regex(never.stderr, /no rebalance has been started on volume one; start one with `brickfs volume rebalance one start`/);
  t.is((await d.cli(['volume', 'create', 'two', ...local(bricks.slice(1))])).code, 0);
  const notStarted = await d.cli(['volume', 'rebalance', 'two', 'start']);
  t.is(notStarted.code, 1);
  t.regex(notStarted.stderr, /volume two is not started/);
  t.is((await d.cli(['volume', 'rebalance', 'nope', 'status'])).code, 1);
  t.is((await d.cli(['volume', 'stop', 'one'])).code, 0);

  for (const args of [
    ['rebalance', 'two'],
    ['rebalance', 'two', 'go'],
    ['rebalance', 'two', 'status', '--fix-layout'],
    ['rebalance', 'two', 'start', '--throttle', 'fast'],
    ['remove-brick', 'two', `localhost:${bricks[1]}`],
    ['remove-brick', 'two', `localhost:${bricks[1]}`, 'start', 'force'],
    ['remove-brick', 'two', 'start'],
    ['add-brick', 'two'],
    ['add-brick', 'two', 'localhost:rel'],
  ]) {
    const r = await d.cli(['volume', ...args]);
    t.is(r.code, 2, `brickfs volume ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /usage: brickfs volume/, args.join(' '));
  }
});
