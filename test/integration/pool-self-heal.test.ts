// The self-heal daemon across hosts, through the CLI only: three hosts (network namespaces)
// with a daemon each on a real 3-member etcd, a replica 3 volume with a brick per host, a
// mount through host 1; host 3's link is cut while a writer appends; once it is back, the
// self-heal daemons of hosts 1 and 2 heal their bricks' entries onto host 3 by themselves:
// `volume heal VOL info` from host 2 drains to zero with no `volume heal`, and host 3's brick
// holds every acknowledged write.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { eventually, sh, shOk, sleep, tmpDir } from '../helpers/proc.js';
import { brickTree } from '../helpers/replica.js';

/** Exit 0 or fail the test with the command's output; returns stdout. */
async function ok(t: { fail(m: string): void }, d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args, { timeoutMs: 90_000 });
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} on ${d.server} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}


test('three hosts, replica 3: host 3 cut off during writes; once back, the self-heal daemons heal it with no `volume heal`', async (t) => {
  t.timeout(300_000);
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`pool-shd-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-shd-');
  const dir = (host: number): string => path.join(root, `h${host}`, 'r3');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));

  await ok(t, d1, ['peer', 'probe', d2.addr]);
  await ok(t, d1, ['peer', 'probe', d3.addr]);
  await ok(t, d1, ['volume', 'create', 'r3', 'replica', '3', ...ds.map((d, i) => `${d.addr}:${dir(i + 1)}`)]);
  await ok(t, d1, ['volume', 'set', 'r3', 'network.ping-timeout', '5']);
  await ok(t, d1, ['volume', 'start', 'r3']);

  // Every host's self-heal daemon, seen from host 2.
  const lines = await eventually(async () => {
    const v = (JSON.parse(await ok(t, d2, ['volume', 'status', 'r3', '--json'])) as StatusListReply).volumes[0]!;
    return v.selfHeal?.length === 3 && v.selfHeal.every((s) => s.online && s.pid !== null) ? v.selfHeal : undefined;
  }, 30_000, 'three self-heal daemons online in volume status on host 2');
  t.deepEqual(lines!.map((s) => s.host), ds.map((d) => d.addr));
  const status = await ok(t, d2, ['volume', 'status', 'r3']);
  t.log(`$ brickfs --server ${d2.server} volume status r3\n${status}`);
  for (const d of ds) t.regex(status, new RegExp(`\nSelf-heal Daemon on ${d.addr.replace(/\./g, '\\.')} +N/A +Y +\\d+\n`));

  const m = await net.hosts[0]!.cli(['mount', `${d1.server}:/r3`, mnt], { timeoutMs: 60_000 });
  t.is(m.code, 0, `${m.stdout}${m.stderr}`);
  t.true(isMountPoint(mnt));
  await shOk(t, `mkdir ${mnt}/docs && for i in $(seq 1 20); do echo "v1 $i" > ${mnt}/docs/f$i; done`);

  // A writer appends and records each line acknowledged; host 3 is cut off meanwhile.
  const acked = path.join(root, 'acked');
  const writer = sh(`for i in $(seq 1 300); do echo "line $i" >> ${mnt}/log.txt && echo $i >> ${acked}; done`, { timeoutMs: 120_000 });
  await sleep(300);
  await net.hosts[2]!.cut();
  t.teardown(() => net.hosts[2]!.restore());
  t.is((await writer).code, 0, 'every write succeeded with two replicas of three');
  await shOk(t, `for i in $(seq 1 20); do echo "v2 $i" >> ${mnt}/docs/f$i; done && rm ${mnt}/docs/f1 && mkdir ${mnt}/later && echo x > ${mnt}/later/x`);

  const info = await ok(t, d2, ['volume', 'heal', 'r3', 'info']);
  t.log(`$ brickfs --server ${d2.server} volume heal r3 info (host 3 cut off)\n${info}`);
  t.regex(info, new RegExp(`Brick ${d3.addr.replace(/\./g, '\\.')}:${dir(3)}\nStatus: Transport endpoint is not connected\nNumber of entries: -\n`));
  t.regex(info, new RegExp(`Brick ${d1.addr.replace(/\./g, '\\.')}:${dir(1)}\n[^]*?Number of entries: [1-9]`));

  await net.hosts[2]!.restore();
  const back = Date.now();
  await eventually(async () => {
    const counts = [...(await ok(t, d2, ['volume', 'heal', 'r3', 'info'])).matchAll(/^Number of entries: (\S+)$/gm)].map((x) => x[1]);
    return counts.length === 3 && counts.every((c) => c === '0');
  }, 90_000, 'heal info at 0 on every brick with no `volume heal` run');
  t.log(`heal info drained ${Date.now() - back} ms after host 3's link came back`);

  const lines3 = fs.readFileSync(path.join(dir(3), 'log.txt'), 'utf8').trim().split('\n').length;
  const ackedN = fs.readFileSync(acked, 'utf8').trim().split('\n').length;
  t.true(lines3 >= ackedN, `host 3's copy has ${lines3} lines, ${ackedN} were acknowledged`);
  const [a, b, c] = [1, 2, 3].map((h) => brickTree(dir(h)));
  t.deepEqual(c, a, 'host 3\'s brick holds what host 1\'s holds');
  t.deepEqual(b, a);
  await unmountQuietly(mnt);
});
