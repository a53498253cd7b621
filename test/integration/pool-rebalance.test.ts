// Rebalance per node, through the CLI only: three hosts (network namespaces) with a daemon
// each on a real 3-member etcd and a distribute volume of one brick per host, files written
// through a mount; a fourth host is probed and its brick added; `rebalance start` from host
// 1 runs a rebalance process on every host, each moving the files of its own brick;
// `rebalance status` from host 3 lists every node completed with counts that add up; files
// moved to the fourth host's brick, every file on exactly one brick and readable through
// the mount. `volume statedump` from host 2 dumps every host's brick. A lazy run stopped from
// host 4 stops on every node and resumes; a remove-brick drains host 1's brick, by host 1.
// Then a replica 3 volume across three hosts grows to 2 x 3: the hosts of a replica set
// share its files.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { RebalanceStatusReply, RemoveBrickStatusReply, StatedumpReply } from '../../lib/mgmt/api.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import type { RunResult } from '../helpers/cli.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { dataFiles } from '../helpers/rebalance.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { eventually, sh, tmpDir } from '../helpers/proc.js';

const show = (r: RunResult): string => `exit ${r.code}\n${r.stdout}${r.stderr}`;

/** Exit 0 or fail the test with the command's output; returns stdout. */
async function ok(t: { fail(m: string): void }, d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args, { timeoutMs: 90_000 });
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} on ${d.server} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const content = (name: string): string => `${name}: ${'x'.repeat(name.length * 37)}\n`;

test('add-brick on a fourth host, then rebalance from host 1: every host moves its own files, status from host 3 shows every node', async (t) => {
  t.timeout(600_000);
  const net = await makeHosts(t, 4);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts.slice(0, 3) });
  const store = etcd.storeUrl(`pool-rebalance-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3, d4] = ds as [TestDaemon, TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-rebalance-');
  // Bricks 1-4 on hosts 1-4; brick 5, added later, is a second one on host 4.
  const brick = (i: number): string => (i === 5 ? path.join(root, 'h4', 'dist2') : path.join(root, `h${i}`, 'dist'));
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  // Registered after the hosts: ava runs teardowns last-in first-out, so the mount goes first.
  t.teardown(() => unmountQuietly(mnt));

  await ok(t, d1, ['peer', 'probe', d2.addr]);
  await ok(t, d1, ['peer', 'probe', d3.addr]);
  await ok(t, d1, ['volume', 'create', 'dist', ...[d1, d2, d3].map((d, i) => `${d.addr}:${brick(i + 1)}`)]);
  await ok(t, d1, ['volume', 'start', 'dist']);

  // Files through a mount on host 2 (its FUSE mount is visible here).
  const m = await net.hosts[1]!.cli(['mount', `${d2.server}:/dist`, mnt, '-o', `backup-volfile-servers=${d1.addr}:${d3.addr}`], { timeoutMs: 60_000 });
  t.is(m.code, 0, show(m));
  t.true(isMountPoint(mnt));
  const names: string[] = [];
  fs.mkdirSync(path.join(mnt, 'sub'));
  for (let i = 0; i < 300; i++) names.push(`/f${i}`);
  for (let i = 0; i < 100; i++) names.push(`/sub/g${i}`);
  for (const n of names) fs.writeFileSync(path.join(mnt, n), content(n));
  const placedBefore = [1, 2, 3].map((h) => dataFiles(brick(h)));
  const before = placedBefore.map((f) => f.length);
  t.is(before.reduce((a, b) => a + b, 0), names.length);
  t.true(before.every((c) => c > 0), `every host holds files: ${before.join(', ')}`);

  // A fourth host joins, and its brick is added from host 1.
  await ok(t, d1, ['peer', 'probe', d4.addr]);
  const added = await ok(t, d1, ['volume', 'add-brick', 'dist', `${d4.addr}:${brick(4)}`]);
  t.log(`$ brickfs volume add-brick dist ${d4.addr}:${brick(4)}\n${added}`);
  t.deepEqual(dataFiles(brick(4)), [], 'the new brick starts empty');

  const started = await ok(t, d1, ['volume', 'rebalance', 'dist', 'start']);
  t.log(`$ brickfs --server ${d1.server} volume rebalance dist start\n${started}`);
  t.regex(started, /volume rebalance: dist: success: rebalance started on 4 nodes[ ;]/);

  // Status from host 3, which was not asked: every node, completed.
  const status = (): Promise<RebalanceStatusReply> => ok(t, d3, ['volume', 'rebalance', 'dist', 'status', '--json']).then((s) => JSON.parse(s) as RebalanceStatusReply);
  // Ended: every node's record says so, and its daemon has seen its process exit (a process
  // writes its last status just before it exits, so the two come a moment apart).
  const done = (await eventually(async () => {
    const s = await status();
    return s.state !== 'running' && s.nodes.every((n) => n.connected && !n.alive && n.pid === null) ? s : undefined;
  }, 180_000, 'the rebalance to end on every node'))!;
  const human = await ok(t, d3, ['volume', 'rebalance', 'dist', 'status']);
  t.log(`$ brickfs --server ${d3.server} volume rebalance dist status\n${human}`);
  t.is(done.state, 'completed', JSON.stringify(done, null, 2));
  t.is(done.filesFailed, 0);
  t.deepEqual(done.nodes.map((n) => n.host), ds.map((d) => d.addr), 'a row per host, in brick order');
  t.deepEqual(done.nodes.map((n) => n.state), ['completed', 'completed', 'completed', 'completed']);
  t.deepEqual(done.nodes.map((n) => n.self === true), [false, false, true, false], 'host 3 answers for itself');
  for (const k of ['filesMoved', 'filesScanned', 'filesFailed', 'filesSkipped', 'bytesMoved'] as const) {
    t.is(done[k], done.nodes.reduce((a, n) => a + n[k], 0), `${k} adds up`);
  }
  // Each host scanned the files its own brick held (and any moved onto it before it listed
  // them), and moved only files off its own brick.
  done.nodes.slice(0, 3).forEach((n, i) => {
    t.true(n.filesScanned >= before[i]!, `host ${i + 1} scanned ${n.filesScanned} of its ${before[i]} files`);
    t.true(n.filesMoved > 0 && n.filesMoved <= before[i]!, `host ${i + 1} moved ${n.filesMoved} of its ${before[i]} files`);
  });
  for (const [i, d] of ds.entries()) {
    const log = fs.readFileSync(path.join(d.stateDir, 'logs', 'rebalance-dist.log'), 'utf8');
    // Started by that host's own daemon, over that host's own subvolume only.
    t.regex(log, new RegExp(`brickfs daemon: starting rebalance of volume dist: .* --subvols dist-client-${i}:0/1 `), `host ${i + 1} ran its own rebalance process`);
  }
  t.regex(human, /Node +Rebalanced-files +size +scanned +failures +skipped +status +run time in h:m:s/);
  for (const d of [d1, d2, d4]) t.regex(human, new RegExp(`\\n${d.addr.replace(/\./g, '\\.')} +\\d+ +[\\d.]+ \\w+ +\\d+ +0 +\\d+ +completed +\\d:\\d\\d:\\d\\d\\n`));
  t.regex(human, /\nlocalhost +\d+ +[\d.]+ \w+ +\d+ +0 +\d+ +completed +\d:\d\d:\d\d\n/);
  t.regex(human, new RegExp(`\\ntotal +${done.filesMoved} +[\\d.]+ \\w+ +${done.filesScanned} +0 +\\d+ +completed `));

  // The files: some on the fourth host now, each on exactly one brick, all readable through the mount.
  const after = [1, 2, 3, 4].map((h) => dataFiles(brick(h)));
  t.log(`files per host before: ${before.join(', ')}; after: ${after.map((f) => f.length).join(', ')}`);
  t.true(after[3]!.length > 0, 'files moved to the fourth host');
  t.is(after[3]!.length + after.slice(0, 3).reduce((a, f) => a + f.length, 0), names.length);
  t.deepEqual(after.flat().sort(), [...names].sort(), 'every file on exactly one brick');
  const hostOf = (placed: string[][], n: string): number => placed.findIndex((f) => f.includes(n));
  t.is(done.filesMoved, names.filter((n) => hostOf(placedBefore, n) !== hostOf(after, n)).length, 'every move counted once');
  for (const n of names) t.is(fs.readFileSync(path.join(mnt, n), 'utf8'), content(n), n);

  // Then host 1, the run's first node, marks every directory settled on every brick (layout
  // version 1; the nodes left them at 2, unsettled, while any of them could still be moving).
  const layoutVersions = async (): Promise<string[]> => Promise.all([1, 2, 3, 4].flatMap((h) => ['', 'sub'].map(async (d) => {
    const r = await sh(`getfattr -e hex -n trusted.brickfs.layout ${path.join(brick(h), d)} 2>/dev/null | grep =`);
    return /=0x(\w{8})/.exec(r.stdout)?.[1] ?? `none on h${h}/${d}`;
  })));
  await eventually(async () => ((await layoutVersions()).every((v) => v === '00000001') ? true : undefined), 30_000, 'every directory settled');
  t.is(fs.readdirSync(mnt).filter((n) => n !== 'sub').length, 300);

  // Statedump from host 2: every host's brick, dumped by its own host.
  const dump = JSON.parse(await ok(t, d2, ['volume', 'statedump', 'dist', '--json'])) as StatedumpReply;
  t.deepEqual(dump.bricks.map((b) => b.host), ds.map((d) => d.addr));
  t.true(dump.bricks.every((b) => b.error === undefined && b.dump !== undefined), JSON.stringify(dump.bricks.map((b) => b.error)));

  // A second brick on host 4, a lazy rebalance started from host 2 and stopped from host 4
  // while it runs: every node stops; a start from host 3 resumes each node's share.
  await ok(t, d1, ['volume', 'add-brick', 'dist', `${d4.addr}:${brick(5)}`]);
  await ok(t, d2, ['volume', 'rebalance', 'dist', 'start', '--throttle', 'lazy']);
  await eventually(async () => {
    const s = await status();
    return s.state === 'running' && s.filesMoved > 0 ? s : undefined;
  }, 60_000, 'the lazy rebalance to move a file');
  const stop = await ok(t, d4, ['volume', 'rebalance', 'dist', 'stop']);
  t.log(`$ brickfs --server ${d4.server} volume rebalance dist stop\n${stop}`);
  t.regex(stop, /volume rebalance: dist: success: stopped; `start` resumes it/);
  const halted = await status();
  t.is(halted.state, 'stopped', JSON.stringify(halted.nodes.map((n) => [n.host, n.state, n.alive])));
  t.is(halted.nodes.length, 4, 'host 4 is one node for its two bricks');
  t.true(halted.nodes.every((n) => !n.alive && (n.state === 'stopped' || n.state === 'completed')));
  t.true(halted.nodes.some((n) => n.state === 'stopped'));
  const resumed = await ok(t, d3, ['volume', 'rebalance', 'dist', 'start']);
  t.regex(resumed, /volume rebalance: dist: success: rebalance resumed on 4 nodes/);
  const grown = (await eventually(async () => {
    const s = await status();
    return s.state !== 'running' ? s : undefined;
  }, 180_000, 'the resumed rebalance to end'))!;
  t.like(grown, { state: 'completed', filesFailed: 0 });
  const five = [1, 2, 3, 4, 5].map((h) => dataFiles(brick(h)));
  t.log(`files per brick with a second brick on host 4: ${five.map((f) => f.length).join(', ')}`);
  t.true(five[4]!.length > 0, 'files moved to the second brick of host 4');
  t.deepEqual(five.flat().sort(), [...names].sort(), 'every file on exactly one brick');

  // remove-brick of host 1's brick, from host 2: host 1 drains its own brick.
  const gone = `${d1.addr}:${brick(1)}`;
  await ok(t, d2, ['volume', 'remove-brick', 'dist', gone, 'start']);
  const drained = (await eventually(async () => {
    const r = JSON.parse(await ok(t, d4, ['volume', 'remove-brick', 'dist', gone, 'status', '--json'])) as RemoveBrickStatusReply;
    return r.rebalance && r.rebalance.state !== 'running' ? r : undefined;
  }, 180_000, 'the drain to end'))!;
  t.log(`$ brickfs --server ${d4.server} volume remove-brick dist ${gone} status\n${await ok(t, d4, ['volume', 'remove-brick', 'dist', gone, 'status'])}`);
  t.true(drained.complete, JSON.stringify(drained.rebalance, null, 2));
  t.is(drained.rebalance!.nodes.length, 4);
  t.is(drained.rebalance!.nodes[0]!.filesMoved, five[0]!.length, 'host 1 moved every file off its brick');
  t.true(drained.rebalance!.nodes.every((n) => n.state === 'completed'));
  t.deepEqual(dataFiles(brick(1)), [], 'the removed brick holds no file');
  await ok(t, d3, ['volume', 'remove-brick', 'dist', gone, 'commit']);
  const remaining = [2, 3, 4, 5].map((h) => dataFiles(brick(h)));
  t.deepEqual(remaining.flat().sort(), [...names].sort(), 'every file on exactly one remaining brick');
  await eventually(async () => {
    try {
      return names.every((n) => fs.readFileSync(path.join(mnt, n), 'utf8') === content(n)) ? true : undefined;
    } catch {
      return undefined;
    }
  }, 30_000, 'every file readable through the mount after the commit');
});

test('replica 3 across three hosts grown to 2 x 3: the three hosts of a replica set share its files by gfid hash, each file moved once', async (t) => {
  t.timeout(300_000);
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`pool-rebalance-r3-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-rebalance-r3-');
  const brick = (host: number, set: number): string => path.join(root, `h${host}`, `r${set}`);
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));

  await ok(t, d1, ['peer', 'probe', d2.addr]);
  await ok(t, d1, ['peer', 'probe', d3.addr]);
  await ok(t, d1, ['volume', 'create', 'r3', 'replica', '3', ...ds.map((d, i) => `${d.addr}:${brick(i + 1, 0)}`)]);
  await ok(t, d1, ['volume', 'start', 'r3']);
  const m = await net.hosts[0]!.cli(['mount', `${d1.server}:/r3`, mnt], { timeoutMs: 60_000 });
  t.is(m.code, 0, show(m));
  const names = Array.from({ length: 120 }, (_, i) => `/f${i}`);
  for (const n of names) fs.writeFileSync(path.join(mnt, n), content(n));

  await ok(t, d2, ['volume', 'add-brick', 'r3', ...ds.map((d, i) => `${d.addr}:${brick(i + 1, 1)}`)]);
  await ok(t, d2, ['volume', 'rebalance', 'r3', 'start']);
  const done = (await eventually(async () => {
    const s = JSON.parse(await ok(t, d3, ['volume', 'rebalance', 'r3', 'status', '--json'])) as RebalanceStatusReply;
    return s.state !== 'running' ? s : undefined;
  }, 180_000, 'the rebalance to end on every node'))!;
  t.log(`$ brickfs volume rebalance r3 status\n${await ok(t, d1, ['volume', 'rebalance', 'r3', 'status'])}`);
  t.is(done.state, 'completed', JSON.stringify(done, null, 2));
  t.is(done.filesFailed, 0);
  t.is(done.nodes.length, 3);
  // Every node moved some of the set's files (a file already moved onto the new set may be
  // scanned there too, by the node its gfid falls to).
  t.true(done.nodes.every((n) => n.state === 'completed' && n.filesMoved > 0), JSON.stringify(done.nodes.map((n) => n.filesMoved)));
  t.true(done.filesScanned >= names.length);
  const sets = [0, 1].map((s) => [1, 2, 3].map((h) => dataFiles(brick(h, s)).sort()));
  for (const s of sets) t.true(s.every((copy) => JSON.stringify(copy) === JSON.stringify(s[0])), 'the three copies of a set hold the same files');
  t.is(done.filesMoved, sets[1]![0]!.length);
  t.true(sets[1]![0]!.length > 0);
  t.deepEqual([...sets[0]![0]!, ...sets[1]![0]!].sort(), [...names].sort(), 'every file in exactly one set');
  for (const n of names) t.is(fs.readFileSync(path.join(mnt, n), 'utf8'), content(n), n);
});
