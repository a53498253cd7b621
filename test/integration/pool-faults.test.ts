// A daemon cut off from etcd, through the CLI only: three hosts (network namespaces,
// test/helpers/hosts.ts) with a daemon each on a real 3-member etcd (one member per host).
// Host 3's link is cut: its daemon refuses configuration changes at once with an error
// naming the store's endpoints (no hang), while its bricks serve on and a mount in host 3 of
// a volume of host 3 keeps reading and writing. Meanwhile host 1 sets an option of that
// volume and stops another volume with a brick on host 3. Back on the network, host 3's
// daemon converges without a restart: it stops that brick, serves the new volfile, and its
// mount switches to it.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { mountRunFile } from '../../client/mount-table.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import type { RunResult } from '../helpers/cli.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { eventually, tmpDir } from '../helpers/proc.js';

const show = (r: RunResult): string => `exit ${r.code}\n${r.stdout}${r.stderr}`;

/** Exit 0 or fail the test with the command's output; returns stdout. */
async function ok(t: { fail(m: string): void }, d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args, { timeoutMs: 90_000 });
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} on ${d.server} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function uuidOf(d: TestDaemon): Promise<string> {
  return (JSON.parse((await d.http('/v1/health')).text) as { uuid: string }).uuid;
}

async function connectedOn(t: { fail(m: string): void }, d: TestDaemon, uuid: string): Promise<boolean | undefined> {
  const peers = (JSON.parse(await ok(t, d, ['peer', 'status', '--json'])) as { peers: Array<{ uuid: string; connected: boolean }> }).peers;
  return peers.find((p) => p.uuid === uuid)?.connected;
}

/** The pid in a brick's pidfile under a daemon's state directory, when that process runs. */
function runningBrickPid(d: TestDaemon, vol: string): number | null {
  const run = path.join(d.stateDir, 'vols', vol, 'run');
  for (const f of fs.existsSync(run) ? fs.readdirSync(run) : []) {
    if (!f.endsWith('.pid') || f === 'rebalance.pid') continue;
    const pid = Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
    try {
      process.kill(pid, 0);
      return pid;
    } catch { /* not running */ }
  }
  return null;
}

test('host 3 cut off from etcd: changes refused at once naming the endpoints, bricks and mount serve on; back, it applies what changed meanwhile without a restart', async (t) => {
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`pool-faults-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-faults-');
  const dir = (host: number, name: string): string => path.join(root, `h${host}`, name);
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  // Registered after the hosts: ava runs teardowns last-in first-out, so the mount goes first.
  t.teardown(() => unmountQuietly(mnt));

  await ok(t, d1, ['peer', 'probe', d2.addr]);
  await ok(t, d1, ['peer', 'probe', d3.addr]);
  const uuid3 = await uuidOf(d3);

  // `local`: every brick on host 3, so its data path needs no network but host 3's.
  await ok(t, d1, ['volume', 'create', 'local', `${d3.addr}:${dir(3, 'local1')}`, `${d3.addr}:${dir(3, 'local2')}`]);
  await ok(t, d1, ['volume', 'start', 'local']);
  // `mixed`: a brick on host 1 and one on host 3.
  await ok(t, d1, ['volume', 'create', 'mixed', `${d1.addr}:${dir(1, 'mixed')}`, `${d3.addr}:${dir(3, 'mixed')}`]);
  await ok(t, d1, ['volume', 'start', 'mixed']);
  const mixedPid = runningBrickPid(d3, 'mixed');
  t.truthy(mixedPid, 'the brick of mixed runs on host 3');

  // The mount runs in host 3's network namespace, from host 3's daemon.
  const m = await net.hosts[2]!.cli(['mount', `${d3.server}:/local`, mnt, '-o', 'log-level=info'], { timeoutMs: 60_000 });
  t.is(m.code, 0, show(m));
  t.true(isMountPoint(mnt));
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(mnt, `before${i}`), `before ${i}\n`);
  const versionBefore = Number((await d3.http('/v1/volumes/local/volfile')).headers.get('x-brickfs-volume-version'));

  await net.hosts[2]!.cut();
  t.teardown(() => net.hosts[2]!.restore().catch(() => undefined));
  await eventually(async () => (await connectedOn(t, d1, uuid3)) === false, 20_000, 'host 3 cut off to show Disconnected on host 1');

  // On host 3: a change is refused within a bound, naming the store and its endpoints.
  const endpoints = etcd.endpoints.map((e) => e.replace(/\./g, '\\.')).join(',');
  for (const args of [
    ['volume', 'create', 'new3', `${d3.addr}:${dir(3, 'new3')}`],
    ['volume', 'set', 'local', 'performance.md-cache-timeout', '2'],
  ]) {
    const began = Date.now();
    const r = await d3.cli(args, { timeoutMs: 60_000 });
    const took = Date.now() - began;
    t.log(`$ brickfs volume ${args[1]} ... on host 3 cut off (${took} ms)\n${r.stderr}`);
    t.is(r.code, 1, show(r));
    t.true(took < 20_000, `refused in ${took} ms`);
    t.regex(r.stderr, new RegExp(`the configuration store etcd://${endpoints}/\\S+ is unreachable`));
    t.regex(r.stderr, /nothing was changed/);
  }
  t.false(fs.existsSync(dir(3, 'new3')), 'no brick directory made for the refused volume');

  // The mount of host 3's volume reads and writes on.
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(mnt, `during${i}`), `during ${i}\n`);
  t.is(fs.readFileSync(path.join(mnt, 'before7'), 'utf8'), 'before 7\n');
  t.is(fs.readFileSync(path.join(mnt, 'during13'), 'utf8'), 'during 13\n');
  t.is(fs.readdirSync(mnt).length, 40);

  // Meanwhile, through host 1: an option of `local` and a stop of `mixed`.
  await ok(t, d1, ['volume', 'set', 'local', 'performance.md-cache-timeout', '0']);
  const stop = await d1.cli(['volume', 'stop', 'mixed'], { timeoutMs: 90_000 });
  t.log(`$ brickfs volume stop mixed (host 3 cut off)\n${show(stop)}`);
  // Stopped in the store; host 3's brick stops when its daemon sees the change.
  t.regex(show(stop), new RegExp(`management daemon of host ${d3.addr.replace(/\./g, '\\.')} is not connected`));
  t.is(runningBrickPid(d3, 'mixed'), mixedPid, 'host 3 cut off still runs its brick of mixed');
  const versionSet = Number((await d1.http('/v1/volumes/local/volfile')).headers.get('x-brickfs-volume-version'));
  t.true(versionSet > versionBefore);

  const restoredAt = Date.now();
  await net.hosts[2]!.restore();
  // Converged without a restart: the brick of mixed stopped, the new volfile served, the mount on it.
  await eventually(async () => runningBrickPid(d3, 'mixed') === null, 30_000, 'host 3 to stop its brick of the stopped volume');
  t.log(`host 3 stopped its brick of mixed ${Date.now() - restoredAt} ms after its link came back`);
  await eventually(async () => Number((await d3.http('/v1/volumes/local/volfile')).headers.get('x-brickfs-volume-version')) === versionSet,
    30_000, 'host 3 to serve the volfile set through host 1');
  const vf = await ok(t, d3, ['volume', 'volfile', 'local']);
  t.regex(vf, /md-cache-timeout 0/);
  await eventually(() => fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8').includes(`switched to volfile version ${versionSet} (graph`),
    30_000, `the mount on host 3 to switch to volfile version ${versionSet}`);
  t.log(`host 3 converged ${Date.now() - restoredAt} ms after its link came back`);
  t.is(d3.proc?.exitCode, null, 'the daemon of host 3 ran through');
  const st = JSON.parse(await ok(t, d1, ['volume', 'status', 'mixed', '--json'])) as StatusListReply;
  t.true(st.volumes[0]!.bricks.every((b) => !b.online), 'every brick of mixed offline, seen from host 1');
  t.is(fs.readFileSync(path.join(mnt, 'during3'), 'utf8'), 'during 3\n');

  // And host 3 takes changes again.
  await eventually(async () => (await d3.cli(['volume', 'create', 'new3', `${d3.addr}:${dir(3, 'new3')}`])).code === 0,
    20_000, 'volume create on host 3 once etcd answers');
});
