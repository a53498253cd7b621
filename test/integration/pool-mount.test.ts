// A mount of a pool's volume with backup volfile servers, through the CLI only: three hosts
// (network namespaces, test/helpers/hosts.ts) with a daemon each on a real 3-member etcd, a
// distribute volume with one brick per host, and a client on a fourth host that mounts
// through host 1 with -o backup-volfile-servers=host2:host3. Host 1's daemon is killed
// (kill -9; its brick process goes on), an option is changed through host 2, and the mount
// switches to the new graph within seconds through a backup server, its files still read
// and written. A mount through host 1 while its daemon is down gets the volfile from a
// backup; without backups it fails saying which daemon it could not reach.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountPidfile, mountRunFile } from '../../client/mount-table.js';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { formatLogText } from '../../lib/log.js';
import { isMountPoint, mountStatedump, unmountQuietly } from '../helpers/cluster.js';
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

function readLog(mnt: string): string {
  try {
    return formatLogText(fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8'));
  } catch {
    return '';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a mount with backup-volfile-servers follows volfile changes through a backup when its server\'s daemon is killed; a mount through a dead server gets the volfile from a backup', async (t) => {
  const net = await makeHosts(t, 4);
  const hosts = net.hosts.slice(0, 3);
  const client = net.hosts[3]!;
  const etcd = await startEtcdCluster(t, { hosts });
  const store = etcd.storeUrl(`pool-mount-${process.pid}`);
  const ds = await Promise.all(hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-mount-');
  const brick = (host: number): string => path.join(root, `h${host}`, 'dist');
  const mnt = path.join(root, 'mnt');
  const mnt2 = path.join(root, 'mnt2');
  const mnt3 = path.join(root, 'mnt3');
  for (const m of [mnt, mnt2, mnt3]) fs.mkdirSync(m);
  // Registered after the hosts: ava runs teardowns last-in first-out, so the mounts go first.
  for (const m of [mnt, mnt2, mnt3]) t.teardown(() => unmountQuietly(m));

  await ok(t, d1, ['peer', 'probe', d2.addr]);
  await ok(t, d1, ['peer', 'probe', d3.addr]);
  await ok(t, d1, ['volume', 'create', 'dist', ...ds.map((d, i) => `${d.addr}:${brick(i + 1)}`)]);
  await ok(t, d1, ['volume', 'start', 'dist']);
  const status = await eventually(async () => {
    const s = JSON.parse(await ok(t, d2, ['volume', 'status', 'dist', '--json'])) as StatusListReply;
    const b = s.volumes[0]!.bricks;
    return b.every((x) => x.online && x.pid !== null) ? b : undefined;
  }, 15_000, 'every brick online');

  // Every member serves the same volfile at the same version (one store).
  const served = await Promise.all(ds.map((d) => d.http('/v1/volumes/dist/volfile')));
  t.true(served.every((r) => r.status === 200 && r.text === served[0]!.text), 'the same volfile from every host');
  t.true(served.every((r) => r.headers.get('x-brickfs-volume-version') === served[0]!.headers.get('x-brickfs-volume-version')), 'at the same version');

  // The client host mounts through host 1; host 3 given with its port, host 2 with the default (host 1's).
  const backups = `${d2.addr}:${d3.addr}/7007`;
  const m = await client.cli(['mount', `${d1.server}:/dist`, mnt, '-o', `log-level=info,backup-volfile-servers=${backups}`], { timeoutMs: 60_000 });
  t.is(m.code, 0, show(m));
  t.true(isMountPoint(mnt));
  t.regex(readLog(mnt), new RegExp(`following dist at ${d1.addr}:7007 \\(then ${d2.addr}:7007, ${d3.addr}:7007\\)`));
  for (let i = 0; i < 60; i++) fs.writeFileSync(path.join(mnt, `f${i}`), `file ${i}\n`);
  const onHost1 = fs.readdirSync(brick(1)).filter((n) => n.startsWith('f'));
  t.true(onHost1.length > 0, 'some files live on host 1\'s brick');

  // Host 1's daemon dies; its brick is a process of its own and goes on serving.
  const brick1Pid = status!.find((b) => b.host === d1.addr)!.pid!;
  await d1.stop('SIGKILL');
  await eventually(() => readLog(mnt).includes(`volfile server ${d1.addr}:7007 of volume dist cannot serve`), 15_000, 'the mount noticing its server is gone');
  t.regex(readLog(mnt), new RegExp(`following it at ${d2.addr}:7007`));
  t.true(pidAlive(brick1Pid), 'host 1\'s brick process outlives its daemon');

  // An option changed through host 2: the mount switches within seconds.
  const setAt = Date.now();
  await ok(t, d2, ['volume', 'set', 'dist', 'performance.io-cache', 'off']);
  const setMs = Date.now() - setAt;
  const version = Number((await d2.http('/v1/volumes/dist/volfile')).headers.get('x-brickfs-volume-version'));
  await eventually(() => readLog(mnt).includes(`switched to volfile version ${version} (graph 2)`), 15_000, `switch to version ${version}`);
  const tookMs = Date.now() - setAt;
  t.log(`switched to version ${version} ${tookMs} ms after \`volume set\` through host 2 was started (the command took ${setMs} ms)`);
  t.true(tookMs < 15_000, `switched within 15 s of the command (${tookMs} ms)`);
  const dump = await mountStatedump(mnt) as unknown as { version: number; xlators: Record<string, { type: string }> };
  t.is(dump.version, version, 'the statedump shows the new version');
  t.false(Object.values(dump.xlators).some((x) => x.type === 'performance/io-cache'), 'no io-cache in the new graph');

  // Files read and write, on host 1's brick too.
  for (const n of onHost1) t.is(fs.readFileSync(path.join(mnt, n), 'utf8'), `file ${n.slice(1)}\n`);
  for (let i = 0; i < 60; i++) t.is(fs.readFileSync(path.join(mnt, `f${i}`), 'utf8'), `file ${i}\n`);
  for (let i = 60; i < 90; i++) fs.writeFileSync(path.join(mnt, `f${i}`), `file ${i}\n`);
  t.is(fs.readdirSync(mnt).length, 90);
  t.true(fs.readdirSync(brick(1)).filter((n) => n.startsWith('f')).length > onHost1.length, 'new files land on host 1\'s brick too');

  // A mount through host 1 while its daemon is down: from a backup, saying so.
  const viaBackup = await client.cli(['mount', `${d1.server}:/dist`, mnt2, '-o', `backup-volfile-servers=${backups}`], { timeoutMs: 60_000 });
  t.is(viaBackup.code, 0, show(viaBackup));
  t.regex(viaBackup.stderr, new RegExp(`volfile server ${d1.addr}:7007 cannot serve; volume dist from ${d2.addr}:7007`));
  t.is(fs.readdirSync(mnt2).length, 90);
  t.is(fs.readFileSync(path.join(mnt2, 'f77'), 'utf8'), 'file 77\n');
  t.truthy(fs.readFileSync(mountPidfile(mnt2), 'utf8'));
  // Without backups: exit 1 naming the daemon it could not reach.
  const noBackup = await client.cli(['mount', `${d1.server}:/dist`, mnt3], { timeoutMs: 60_000 });
  t.is(noBackup.code, 1, show(noBackup));
  t.regex(noBackup.stderr, new RegExp(`cannot reach the management daemon at ${d1.addr}:7007`));
  t.false(isMountPoint(mnt3));

  await unmountQuietly(mnt2);
  await unmountQuietly(mnt);
  t.false(isMountPoint(mnt));
});
