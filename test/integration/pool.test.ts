// The trusted storage pool through the CLI only: `peer probe`, `peer detach`, `peer status`
// and `pool list`. Three hosts are network namespaces (test/helpers/hosts.ts), each with
// its own daemon, on a real 3-member etcd with one member per host; liveness is a lease, so
// a daemon killed with SIGKILL shows Disconnected within seconds. Then the same commands
// on one machine (two daemons on loopback), on the file store (no pool) and typed wrong.
import test from 'ava';
import path from 'node:path';
import type { PeerInfo, ProbeReply } from '../../lib/mgmt/api.js';
import { runCli, type RunResult } from '../helpers/cli.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcd, startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { eventually, tmpDir } from '../helpers/proc.js';

/** Exit 0 or fail the test with the command's output; returns stdout. */
async function ok(t: { fail(m: string): void }, d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args);
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} on ${d.server} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function poolOf(t: { fail(m: string): void }, d: TestDaemon): Promise<PeerInfo[]> {
  return (JSON.parse(await ok(t, d, ['pool', 'list', '--json'])) as { pool: PeerInfo[] }).pool;
}

/**
 * peer status as host d sees it now, for eventually(): a failed command is thrown, to be
 * tried again. While a host is cut off, a daemon's store client may still ask that host's
 * etcd member, and then answers "no answer ... try again once it answers" after its store
 * timeout; what these loops wait for is the state the next answer shows.
 */
async function peersNow(d: TestDaemon): Promise<PeerInfo[]> {
  const r = await d.cli(['peer', 'status', '--json']);
  if (r.code !== 0) throw new Error(show(r));
  return (JSON.parse(r.stdout) as { peers: PeerInfo[] }).peers;
}

async function uuidOf(d: TestDaemon): Promise<string> {
  return (JSON.parse((await d.http('/v1/health')).text) as { uuid: string }).uuid;
}

const show = (r: RunResult): string => `exit ${r.code}\n${r.stdout}${r.stderr}`;

test('three hosts on a 3-member etcd: probe, pool list everywhere, a killed daemon Disconnected then Connected, detach', async (t) => {
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`pool-test-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h, i) => startDaemon(t, { store, host: h, port: 7007 + i })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const uuids = await Promise.all(ds.map(uuidOf));
  t.is(new Set(uuids).size, 3, 'each daemon has its own UUID');

  // Before any probe: each daemon is a pool of itself.
  const alone = await ok(t, d1, ['pool', 'list']);
  t.regex(alone, new RegExp(`^UUID\\s+Hostname\\s+State\\n${uuids[0]}\\s+localhost\\s+Connected\\n$`));
  t.is(await ok(t, d1, ['peer', 'status']), 'Number of Peers: 0\n');

  t.is(await ok(t, d1, ['peer', 'probe', d2.server]), 'peer probe: success\n');
  const probed = JSON.parse(await ok(t, d1, ['peer', 'probe', d3.server, '--json'])) as ProbeReply;
  t.like(probed, { result: 'probed', peer: { uuid: uuids[2], hostname: d3.addr, port: d3.port, connected: true } });
  // gluster's answers for a member and for this host.
  t.is(await ok(t, d1, ['peer', 'probe', d2.server]), `peer probe: success. Host ${d2.addr} port ${d2.port} already in peer list\n`);
  t.is(await ok(t, d1, ['peer', 'probe', d1.server]), 'peer probe: success. Probe on localhost not needed\n');
  // Nobody listens there: exit 1, saying so.
  const nobody = await d1.cli(['peer', 'probe', `${d2.addr}:${d2.port + 100}`]);
  t.is(nobody.code, 1, show(nobody));
  t.regex(nobody.stderr, /^peer probe: failed: Probe returned with Transport endpoint is not connected: cannot reach a management daemon at .*ECONNREFUSED/);

  // The same three UUIDs from every host, each host itself once, all connected.
  for (const [i, d] of ds.entries()) {
    const pool = await poolOf(t, d);
    t.deepEqual(pool.map((p) => p.uuid).sort(), [...uuids].sort(), `pool list on host ${i + 1}`);
    t.deepEqual(pool.filter((p) => p.self).map((p) => p.uuid), [uuids[i]], `self on host ${i + 1}`);
    t.true(pool.every((p) => p.connected), `all connected on host ${i + 1}`);
    const text = await ok(t, d, ['pool', 'list']);
    t.is(text.trimEnd().split('\n').length, 4, text);
    t.regex(text, new RegExp(`${uuids[i]}\\s+localhost\\s+Connected`));
  }
  const status = await ok(t, d1, ['peer', 'status']);
  t.regex(status, /^Number of Peers: 2\n/);
  t.regex(status, new RegExp(`Hostname: ${d3.addr}:${d3.port}\\nUuid: ${uuids[2]}\\nState: Peer in Cluster \\(Connected\\)`));

  // kill -9: the lease is no longer renewed; host 1 sees host 3 Disconnected within seconds.
  const killedAt = Date.now();
  await d3.stop('SIGKILL');
  await eventually(async () => (await peersNow(d1)).find((p) => p.uuid === uuids[2])?.connected === false,
    15_000, 'host 3 to show Disconnected on host 1');
  t.log(`host 3 Disconnected after ${Date.now() - killedAt} ms`);
  t.regex(await ok(t, d1, ['peer', 'status']), new RegExp(`Uuid: ${uuids[2]}\\nState: Peer in Cluster \\(Disconnected\\)`));
  t.regex(await ok(t, d2, ['pool', 'list']), new RegExp(`${uuids[2]}\\s+\\S+\\s+Disconnected`));
  // Still a member: the pool is what was probed, not who is up.
  t.true((await poolOf(t, d1)).some((p) => p.uuid === uuids[2]));

  await d3.start();
  t.is(await uuidOf(d3), uuids[2], 'the same UUID after a restart (STATE/daemon.info)');
  await eventually(async () => (await peersNow(d1)).find((p) => p.uuid === uuids[2])?.connected === true,
    15_000, 'host 3 to show Connected again on host 1');
  t.regex(await ok(t, d1, ['peer', 'status']), new RegExp(`Uuid: ${uuids[2]}\\nState: Peer in Cluster \\(Connected\\)`));

  // Host 3 cut off (its daemon runs on, its etcd member loses the others): Disconnected; back
  // on the network, its daemon puts its liveness key again by itself.
  await net.hosts[2]!.cut();
  await eventually(async () => (await peersNow(d1)).find((p) => p.uuid === uuids[2])?.connected === false,
    30_000, 'host 3 cut off to show Disconnected on host 1');
  await net.hosts[2]!.restore();
  await eventually(async () => (await peersNow(d1)).find((p) => p.uuid === uuids[2])?.connected === true,
    30_000, 'host 3 back on the network to show Connected again, without a restart');
  t.is(d3.proc?.exitCode, null, 'the daemon of host 3 ran through');

  // A volume with a brick on host 3 keeps it in the pool until the volume goes.
  const brick = path.join(tmpDir(t, 'brickfs-pool-brick-'), 'b');
  await ok(t, d3, ['volume', 'create', 'pv', `${d3.addr}:${brick}`]);
  const held = await d1.cli(['peer', 'detach', d3.server]);
  t.is(held.code, 1, show(held));
  t.regex(held.stderr, new RegExp(`^peer detach: failed: Peer ${d3.addr}:${d3.port} hosts one or more bricks \\(pv: ${d3.addr}:${brick}\\)`));
  await ok(t, d3, ['volume', 'delete', 'pv']);

  t.is(await ok(t, d1, ['peer', 'detach', d3.server]), 'peer detach: success\n');
  for (const [i, d] of ds.entries()) {
    const pool = await poolOf(t, d);
    if (i === 2) t.deepEqual(pool.map((p) => p.uuid), [uuids[2]], 'host 3 is a pool of itself again');
    else t.deepEqual(pool.map((p) => p.uuid).sort(), [uuids[0], uuids[1]].sort(), `pool list on host ${i + 1}`);
  }
  const gone = await d1.cli(['peer', 'detach', d3.server]);
  t.is(gone.code, 1, show(gone));
  t.is(gone.stderr, `peer detach: failed: ${d3.server} is not part of cluster; \`brickfs pool list\` lists the pool\n`);
});

test('one machine, one etcd: detach is refused for this host and for a stranger, forced while the peer holds bricks; another store is refused', async (t) => {
  const etcd = await startEtcd(t);
  const store = `etcd://${etcd.endpoint}/pool-local`;
  const a = await startDaemon(t, { store });
  const b = await startDaemon(t, { store });
  const other = await startDaemon(t, { store: `etcd://${etcd.endpoint}/pool-other` });

  t.is(await ok(t, a, ['peer', 'probe', b.server]), 'peer probe: success\n');
  const foreign = await a.cli(['peer', 'probe', other.server]);
  t.is(foreign.code, 1, show(foreign));
  t.regex(foreign.stderr, /uses another configuration store .*every daemon of a pool must be started with the same --store/);

  const self = await a.cli(['peer', 'detach', a.server]);
  t.is(self.code, 1, show(self));
  t.regex(self.stderr, /^peer detach: failed: 127\.0\.0\.1:\d+ is localhost/);
  const stranger = await a.cli(['peer', 'detach', other.server]);
  t.is(stranger.code, 1, show(stranger));
  t.regex(stranger.stderr, /is not part of cluster/);

  const brick = path.join(tmpDir(t, 'brickfs-pool-brick-'), 'b');
  await ok(t, b, ['volume', 'create', 'held', `127.0.0.1:${brick}`]);
  const refused = await a.cli(['peer', 'detach', b.server]);
  t.is(refused.code, 1, show(refused));
  t.regex(refused.stderr, /hosts one or more bricks/);
  const forced = await a.cli(['peer', 'detach', b.server, 'force', '--json']);
  t.is(forced.code, 0, show(forced));
  t.like(JSON.parse(forced.stdout), { peer: { uuid: await uuidOf(b), port: b.port } });
  t.regex(forced.stderr, /^warning: peer 127\.0\.0\.1:\d+ still holds bricks \(held: /);
  t.deepEqual((await poolOf(t, a)).map((p) => p.uuid), [await uuidOf(a)]);
  // Probed again, then detached by its UUID.
  t.is(await ok(t, a, ['peer', 'probe', b.server]), 'peer probe: success\n');
  t.is(await ok(t, a, ['peer', 'detach', await uuidOf(b), 'force']), 'peer detach: success\n');
  t.deepEqual((await poolOf(t, a)).map((p) => p.uuid), [await uuidOf(a)]);
});

test('the file store is no pool: probe says a pool needs --store etcd://, pool list shows localhost only', async (t) => {
  const d = await startDaemon(t);
  const uuid = await uuidOf(d);
  const r = await d.cli(['peer', 'probe', '127.0.0.1:7']);
  t.is(r.code, 1, show(r));
  t.regex(r.stderr, /^peer probe: failed: this daemon keeps its configuration in the file store \(file:.*\), which serves one host: .*--store etcd:\/\/H1:2379,H2:2379,H3:2379/);
  t.is(await ok(t, d, ['peer', 'status']), 'Number of Peers: 0\n');
  t.regex(await ok(t, d, ['pool', 'list']), new RegExp(`^UUID\\s+Hostname\\s+State\\n${uuid}\\s+localhost\\s+Connected\\n$`));
  t.deepEqual(await poolOf(t, d), [{ uuid, hostname: '127.0.0.1', port: d.port, connected: true, self: true }]);
  const detach = await d.cli(['peer', 'detach', '10.0.0.2']);
  t.is(detach.code, 1, show(detach));
  t.regex(detach.stderr, /10\.0\.0\.2 is not part of cluster/);
  // The UUID stays across restarts.
  await d.restart();
  t.is(await uuidOf(d), uuid);
});

test('peer and pool typed wrong: exit 2 with what to type, without asking a daemon', async (t) => {
  const server = '127.0.0.1:1'; // nobody there: reaching it would be exit 1
  const cases: Array<[string[], RegExp]> = [
    [['peer'], /give a peer command: probe HOST\[:PORT\], detach HOST \[force\] or status/],
    [['peer', 'probe'], /Not enough non-option arguments[\s\S]*brickfs peer probe HOST\[:PORT\]/],
    [['peer', 'probe', 'a:b:c'], /"a:b:c" is not HOST\[:PORT\][\s\S]*brickfs peer probe 10\.0\.0\.2/],
    [['peer', 'probe', 'node2:99999'], /port 99999 in "node2:99999" is out of range/],
    [['peer', 'detach'], /Not enough non-option arguments[\s\S]*brickfs peer detach HOST\[:PORT\]\|UUID \[force\]/],
    [['peer', 'detach', 'node3', 'now'], /unexpected "now": the only word after the host is "force" \(brickfs peer detach HOST force\)/],
    [['peer', 'status', 'extra'], /Unknown argument: extra/],
    [['pool'], /give a pool command: list/],
    [['pool', 'list', '--verbose'], /Unknown argument: verbose/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args, { server });
    t.is(r.code, 2, `${args.join(' ')}: ${show(r)}`);
    t.regex(r.stderr, re, args.join(' '));
  }
});
