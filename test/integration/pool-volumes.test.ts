// Volumes across hosts, through the CLI only: three hosts (network namespaces,
// test/helpers/hosts.ts) with a daemon each on a real 3-member etcd; a distribute volume
// with one brick per host created from host 1, the same `volume info` from every host,
// every brick online in `volume status`, a mount through host 2 spreading 500 files over
// all three hosts; a brick refused on host 3 leaves no volume anywhere; of two hosts
// creating one name at once exactly one wins; a brick directory of another volume is refused
// at start by its host.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { BrickStatus, StatusListReply, VolumeListReply } from '../../lib/mgmt/api.js';
import { volumeIdAt } from '../../brick/xlators/storage/volume-id.js';
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

/** Entries of a brick directory, without the brick's private directory. */
function brickFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n !== '.brickfs');
}

test('three hosts: a volume with a brick per host from the CLI; one view from every host; a mount through host 2; refusals change nothing; one create of a name wins', async (t) => {
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`pool-volumes-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-volumes-');
  const dir = (host: number, name: string): string => path.join(root, `h${host}`, name);
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  // Registered after the hosts: ava runs teardowns last-in first-out, so the mount goes first.
  t.teardown(() => unmountQuietly(mnt));

  t.is(await ok(t, d1, ['peer', 'probe', d2.addr]), 'peer probe: success\n');
  t.is(await ok(t, d1, ['peer', 'probe', d3.addr]), 'peer probe: success\n');

  // A brick on a host outside the pool is refused, naming peer probe.
  const stranger = await d1.cli(['volume', 'create', 'nope', `10.255.255.1:${dir(1, 'nope')}`]);
  t.is(stranger.code, 1, show(stranger));
  t.regex(stranger.stderr, /host 10\.255\.255\.1 is not a member of this daemon's pool; add it with `brickfs peer probe 10\.255\.255\.1`/);

  const bricks = ds.map((d, i) => `${d.addr}:${dir(i + 1, 'dist')}`);
  const created = await ok(t, d1, ['volume', 'create', 'dist', ...bricks]);
  t.log(`$ brickfs volume create dist ${bricks.join(' ')}\n${created}`);
  const started = await ok(t, d1, ['volume', 'start', 'dist']);
  t.log(`$ brickfs volume start dist\n${started}`);

  // `volume info` byte for byte the same from every host.
  const info = await eventually(async () => {
    const all = await Promise.all(ds.map((d) => ok(t, d, ['volume', 'info', 'dist', '--json'])));
    return all.every((x) => x === all[0]) ? all[0]! : undefined;
  }, 10_000, 'the same volume info from every host');
  const vol = (JSON.parse(info!) as VolumeListReply).volumes[0]!;
  t.deepEqual(vol.bricks.map((b) => b.host), ds.map((d) => d.addr), 'bricks named by the peers\' addresses');
  t.is(vol.status, 'started');

  // `volume status` from every host: every brick online, with its host.
  for (const d of ds) {
    const st = await eventually(async () => {
      const s = JSON.parse(await ok(t, d, ['volume', 'status', 'dist', '--json'])) as StatusListReply;
      const b = s.volumes[0]!.bricks;
      return b.every((x) => x.online && x.pid !== null) ? b : undefined;
    }, 15_000, `every brick online in volume status on ${d.addr}`);
    t.deepEqual(st!.map((b: BrickStatus) => [b.host, b.path]), ds.map((x, i) => [x.addr, dir(i + 1, 'dist')]));
  }
  t.log(`$ brickfs --server ${d3.server} volume status dist\n${await ok(t, d3, ['volume', 'status', 'dist'])}`);

  // Each brick root carries the volume's id, written by its own host.
  for (let i = 1; i <= 3; i++) t.is(volumeIdAt(dir(i, 'dist')), vol.id, `volume id on the brick of host ${i}`);

  // The volfile names every brick by its host's address, the same from every host.
  const volfiles = await Promise.all(ds.map((d) => ok(t, d, ['volume', 'volfile', 'dist'])));
  t.true(volfiles.every((v) => v === volfiles[0]));
  t.notRegex(volfiles[0]!, /localhost|127\.0\.0\.1/);

  // A mount through host 2, run in host 2's network namespace (its FUSE mount is visible here).
  const m = await net.hosts[1]!.cli(['mount', `${d2.server}:/dist`, mnt], { timeoutMs: 60_000 });
  t.is(m.code, 0, show(m));
  t.true(isMountPoint(mnt));
  for (let i = 0; i < 500; i++) fs.writeFileSync(path.join(mnt, `f${i}`), `file ${i}\n`);
  t.is(fs.readdirSync(mnt).length, 500);
  t.is(fs.readFileSync(path.join(mnt, 'f321'), 'utf8'), 'file 321\n');
  const counts = [1, 2, 3].map((h) => brickFiles(dir(h, 'dist')).length);
  t.log(`files per host: ${counts.join(', ')}`);
  t.is(counts.reduce((a, b) => a + b, 0), 500);
  t.true(counts.every((c) => c > 0), `every host got files: ${counts.join(', ')}`);
  await unmountQuietly(mnt);
  t.false(isMountPoint(mnt));

  // A brick refused on host 3 (not empty): exit 1 naming the host and why; nothing anywhere.
  fs.mkdirSync(dir(3, 'full'), { recursive: true });
  fs.writeFileSync(path.join(dir(3, 'full'), 'keep'), 'x');
  const refused = await d1.cli(['volume', 'create', 'bad', `${d1.addr}:${dir(1, 'bad')}`, `${d2.addr}:${dir(2, 'bad')}`, `${d3.addr}:${dir(3, 'full')}`]);
  t.is(refused.code, 1, show(refused));
  t.regex(refused.stderr, new RegExp(`host ${d3.addr.replace(/\./g, '\\.')}: brick ${d3.addr.replace(/\./g, '\\.')}:.*full: directory .*full is not empty`));
  t.log(`$ brickfs volume create bad ... ${d3.addr}:${dir(3, 'full')}\n${refused.stderr}`);
  for (const d of ds) {
    const list = JSON.parse(await ok(t, d, ['volume', 'info', '--json'])) as VolumeListReply;
    t.deepEqual(list.volumes.map((v) => v.name), ['dist'], `no volume "bad" on ${d.addr}`);
  }
  t.false(fs.existsSync(dir(1, 'bad')), 'no brick directory made on host 1');
  t.false(fs.existsSync(dir(2, 'bad')), 'no brick directory made on host 2');

  // Two hosts create the same name at once: exactly one wins, the other is told it exists.
  const race = await Promise.all([
    d1.cli(['volume', 'create', 'race', `${d1.addr}:${dir(1, 'race')}`, `${d3.addr}:${dir(3, 'race-a')}`]),
    d2.cli(['volume', 'create', 'race', `${d2.addr}:${dir(2, 'race')}`, `${d3.addr}:${dir(3, 'race-b')}`]),
  ]);
  t.deepEqual(race.map((r) => r.code).sort(), [0, 1], race.map(show).join('\n'));
  const loser = race.find((r) => r.code === 1)!;
  t.regex(loser.stderr, /volume race already exists/);
  const raceInfos = await eventually(async () => {
    const all = await Promise.all(ds.map((d) => ok(t, d, ['volume', 'info', 'race', '--json'])));
    return all.every((x) => x === all[0]) ? all : undefined;
  }, 10_000, 'one volume race from every host');
  const winner = (JSON.parse(raceInfos![0]!) as VolumeListReply).volumes[0]!;
  t.is(winner.bricks.length, 2);

  // A brick directory that carries another volume's id is refused by its own host at start.
  t.is((await d1.cli(['volume', 'create', 'x1', `${d3.addr}:${dir(3, 'shared')}`])).code, 0);
  t.is((await d1.cli(['volume', 'create', 'x2', `${d3.addr}:${dir(3, 'shared')}`, '--force'])).code, 0);
  await ok(t, d2, ['volume', 'start', 'x1']);
  const clash = await d1.cli(['volume', 'start', 'x2']);
  t.is(clash.code, 1, show(clash));
  t.regex(clash.stderr, /on host .*: brick .*shared: brick directory .*shared belongs to another volume \(volume id [0-9a-f-]+ in trusted\.brickfs\.volume-id/);
  t.log(`$ brickfs volume start x2\n${clash.stderr}`);
  const x2 = (JSON.parse(await ok(t, d3, ['volume', 'info', 'x2', '--json'])) as VolumeListReply).volumes[0]!;
  t.not(x2.status, 'started', 'x2 stays stopped');

  // Stop and delete from another host: the owners stop their bricks and forget the volume.
  await ok(t, d2, ['volume', 'stop', 'dist']);
  const stopped = JSON.parse(await ok(t, d3, ['volume', 'status', 'dist', '--json'])) as StatusListReply;
  t.true(stopped.volumes[0]!.bricks.every((b) => !b.online));
  await ok(t, d3, ['volume', 'delete', 'dist']);
  for (const d of ds) {
    await eventually(async () => !fs.existsSync(path.join(d.stateDir, 'vols', 'dist')), 10_000, `the files of dist gone on ${d.addr}`);
  }
});
