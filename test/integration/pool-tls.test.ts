// A pool under secure-access (docs/security.md, "TLS"): two hosts (network namespaces) with
// certificates of one CA, etcd requiring client certificates. The daemons reach etcd, probe
// and check each other's bricks over mutual TLS; a replica 2 volume across the hosts with
// client.ssl and server.ssl on is mounted through host 2; plain HTTP to a daemon is refused.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { etcdBinary, startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { tmpDir } from '../helpers/proc.js';
import { certDir, makeCa, makeCert } from '../helpers/tls.js';

async function ok(t: { fail(m: string): void }, d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.cli(args, { timeoutMs: 90_000 });
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} on ${d.server} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('two hosts under secure-access: etcd, probe, brick checks and bricks over mutual TLS; a mount through host 2 works; plain HTTP is refused', async (t) => {
  if (!etcdBinary()) {
    t.log('etcd is not installed (Debian: etcd-server); .ci/run installs it');
    t.pass();
    return;
  }
  const net = await makeHosts(t, 2);
  const [h1, h2] = net.hosts as [typeof net.hosts[0], typeof net.hosts[0]];
  // One certificate for both hosts (this test process is both): it names both addresses, for etcd.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-pool-tls-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const ca = makeCa(path.join(root, 'ca'), 'pool-ca');
  const host = makeCert(ca, 'pool-host', `IP:${h1.addr},IP:${h2.addr}`);
  process.env.BRICKFS_TLS_DIR = certDir(path.join(root, 'host'), ca, host, { secureAccess: true });

  const etcd = await startEtcdCluster(t, { hosts: [h1] }, { tls: { cert: host.cert, key: host.key, ca: ca.cert } });
  const store = etcd.storeUrl(`pool-tls-${process.pid}`);
  const [d1, d2] = await Promise.all([h1, h2].map((h) => startDaemon(t, { store, host: h, port: 7007 }))) as [TestDaemon, TestDaemon];
  t.is(await ok(t, d1, ['peer', 'probe', d2.addr]), 'peer probe: success\n');

  const dirs = tmpDir(t, 'brickfs-pool-tls-b-');
  const bricks = [d1, d2].map((d, i) => `${d.addr}:${path.join(dirs, `h${i + 1}`, 'b')}`);
  await ok(t, d1, ['volume', 'create', 'sec', 'replica', '2', ...bricks]);
  for (const k of ['client.ssl', 'server.ssl']) await ok(t, d2, ['volume', 'set', 'sec', k, 'on']);
  await ok(t, d1, ['volume', 'start', 'sec']);
  t.teardown(() => d1.cli(['volume', 'stop', 'sec']));

  const mnt = tmpDir(t, 'brickfs-pool-tls-mnt-');
  t.teardown(() => unmountQuietly(mnt));
  const m = await h2.cli(['mount', `${d2.server}:/sec`, mnt], { timeoutMs: 60_000 });
  t.is(m.code, 0, `${m.stdout}${m.stderr}`);
  fs.writeFileSync(path.join(mnt, 'f'), 'over TLS\n');
  t.is(fs.readFileSync(path.join(mnt, 'f'), 'utf8'), 'over TLS\n');
  for (const i of [1, 2]) t.is(fs.readFileSync(path.join(dirs, `h${i}`, 'b', 'f'), 'utf8'), 'over TLS\n', `the replica on host ${i}`);

  // From host 2, plain HTTP to host 1's daemon gets no answer.
  const plain = await h2.exec(process.execPath, ['-e', `fetch('http://${d1.addr}:7007/v1/health').then((r) => console.log(r.status), (e) => console.log('error', e.cause?.code ?? e.message))`]);
  t.regex(plain.stdout, /^error/, plain.stdout + plain.stderr);
  const log1 = fs.readFileSync(d1.log, 'utf8');
  t.regex(log1, /HTTPS, secure-access/);
});
