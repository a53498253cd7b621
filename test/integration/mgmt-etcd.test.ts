// `brickfs daemon --store etcd://...`: two management daemon processes on this host
// (own ports, state directories and brick port ranges) sharing one real etcd started by the
// test (test/helpers/etcd.ts), driven through the CLI. What a volume created through one
// shows through the other, what a race on one name gives, and how a daemon start fails on a
// wrong --store or an etcd that does not answer.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { HealthReply, VolumeListReply } from '../../lib/mgmt/api.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { startEtcd } from '../helpers/etcd.js';
import { eventually, freePort, tmpDir } from '../helpers/proc.js';

const local = (paths: string[]): string[] => paths.map((p) => `localhost:${p}`);

test('two daemons on one etcd: a volume created through one is listed by the other; of two creating one name at once, exactly one wins', async (t) => {
  const etcd = await startEtcd(t);
  const store = `etcd://${etcd.endpoint}/mgmt-etcd-test`;
  const a = await startDaemon(t, { store });
  const b = await startDaemon(t, { store });
  for (const d of [a, b]) {
    const h = JSON.parse((await d.http('/v1/health')).text) as HealthReply;
    t.is(h.store, `etcd://${etcd.endpoint}/mgmt-etcd-test/`);
  }
  const root = tmpDir(t, 'brickfs-bricks-');
  const brick = (n: string): string => path.join(root, n);

  // Created through A, listed through B (B's watch on the volume prefix).
  const made = await a.cli(['volume', 'create', 'v1', ...local([brick('v1-b0'), brick('v1-b1')])]);
  t.is(made.code, 0, made.stderr);
  const created = (await runCliJson<VolumeListReply>(t, ['volume', 'info', 'v1', '--json'], { server: a.server })).volumes[0]!;
  const seen = await eventually(async () => {
    const r = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: b.server });
    return r.volumes.find((v) => v.name === 'v1');
  }, 5000, 'volume v1 through daemon B');
  t.is(seen!.id, created.id);
  t.deepEqual(seen!.bricks.map((x) => x.path), [brick('v1-b0'), brick('v1-b1')]);
  const info = await runCli(['volume', 'info', 'v1'], { server: b.server });
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /Volume Name: v1/);

  // The same name through both at once: one wins, the other is told the volume exists and
  // changed nothing (its brick directories were not made).
  const [ra, rb] = await Promise.all([
    a.cli(['volume', 'create', 'race', `localhost:${brick('race-a')}`]),
    b.cli(['volume', 'create', 'race', `localhost:${brick('race-b')}`]),
  ]);
  t.is([ra, rb].filter((r) => r.code === 0).length, 1, `A: ${ra.code} ${ra.stderr}\nB: ${rb.code} ${rb.stderr}`);
  const loser = ra.code === 0 ? rb : ra;
  t.is(loser.code, 1, loser.stderr);
  t.regex(loser.stderr, /volume race already exists/);
  const winnerBrick = brick(ra.code === 0 ? 'race-a' : 'race-b');
  t.false(fs.existsSync(brick(ra.code === 0 ? 'race-b' : 'race-a')), 'the loser made no brick directory');
  for (const d of [a, b]) {
    const v = await eventually(async () => {
      const r = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server });
      return r.volumes.find((x) => x.name === 'race');
    }, 5000, `volume race through ${d.server}`);
    t.deepEqual(v!.bricks.map((x) => x.path), [winnerBrick]);
  }

  // A change through B is seen by A; a delete through A is seen by B.
  const set = await b.cli(['volume', 'set', 'v1', 'network.ping-timeout', '7']);
  t.is(set.code, 0, set.stderr);
  await eventually(async () => {
    const r = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: a.server });
    return r.volumes.find((v) => v.name === 'v1')?.options['network.ping-timeout'] === '7';
  }, 5000, 'the option set through B to show through A');
  const del = await a.cli(['volume', 'delete', 'race']);
  t.is(del.code, 0, del.stderr);
  await eventually(async () => {
    const r = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: b.server });
    return !r.volumes.some((v) => v.name === 'race');
  }, 5000, 'the delete through A to show through B');
});

test('a wrong --store is a usage error (exit 2) with an example, and starts nothing', async (t) => {
  const state = tmpDir(t, 'brickfs-mgmt-');
  const port = await freePort();
  for (const bad of ['redis://127.0.0.1:6379', 'etcd://', 'etcd://127.0.0.1:99999', 'etcd://a:1,,b:2', 'etcd:127.0.0.1:2379']) {
    const r = await runCli(['daemon', '--port', String(port), '--state', state, '--store', bad], { timeoutMs: 15_000 });
    t.is(r.code, 2, `--store ${bad}: ${r.code} ${r.stderr}`);
    t.regex(r.stderr, /--store: bad configuration store/, bad);
    t.regex(r.stderr, /for example: brickfs daemon --store etcd:\/\/127\.0\.0\.1:2379/, bad);
    t.false(fs.existsSync(path.join(state, 'daemon.pid')), bad);
  }
});

test('etcd not answering: the daemon start fails at once, exit 1, naming the store', async (t) => {
  const state = tmpDir(t, 'brickfs-mgmt-');
  const etcdPort = await freePort(); // nothing listens there
  const port = await freePort();
  for (const detach of [false, true]) {
    const started = Date.now();
    const r = await runCli([
      'daemon', '--port', String(port), '--state', state, '--store', `etcd://127.0.0.1:${etcdPort}`, ...(detach ? ['--detach'] : []),
    ], { timeoutMs: 30_000 });
    const took = Date.now() - started;
    t.is(r.code, 1, `detach ${detach}: ${r.code} ${r.stderr}`);
    t.regex(r.stderr, new RegExp(`cannot open the configuration store etcd://127\\.0\\.0\\.1:${etcdPort}/brickfs/`), `detach ${detach}`);
    t.regex(r.stderr, /check that etcd runs/, `detach ${detach}`);
    t.true(took < 15_000, `detach ${detach}: took ${took} ms`);
    t.false(fs.existsSync(path.join(state, 'daemon.pid')), `detach ${detach}: pidfile left`);
  }
});
