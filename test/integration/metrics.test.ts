// Observability on real processes: a daemon-made volume of two bricks, mounted twice; the
// daemon's /metrics (Prometheus text, no token), `volume profile` start/info/stop counting
// the test's own writes, and `volume top read` naming the file read most. Then a pool of two
// hosts: profile and top asked of either daemon cover the bricks of both.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { ProfileInfoReply, TopReply } from '../../lib/mgmt/profile.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { eventually, tmpDir } from '../helpers/proc.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

/**
 * A strict reader of the Prometheus text format (0.0.4): every line a comment (# HELP / # TYPE
 * NAME KIND), blank, or NAME{LABEL="VALUE",...} NUMBER, each sample of a family whose TYPE was
 * given before it. Throws on anything else.
 */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sampleRe = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m[2].length) {
        const l = labelRe.exec(m[2]);
        if (!l) throw new Error(`line ${i + 1}: bad labels ${m[2]}`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`line ${i + 1}: bad value ${m[3]}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]!) && types.get(family) !== 'histogram') throw new Error(`line ${i + 1}: ${m[1]} has no # TYPE before it`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

/** /metrics as anyone reaches it: no token. */
async function scrape(d: TestDaemon): Promise<{ samples: Sample[]; types: Map<string, string> }> {
  const r = await fetch(`http://${d.server}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics: ${r.status} ${await r.text()}`);
  if (!/^text\/plain; version=0\.0\.4/.test(r.headers.get('content-type') ?? '')) throw new Error(`/metrics content-type ${r.headers.get('content-type')}`);
  return parsePrometheus(await r.text());
}

const sum = (samples: Sample[], name: string, match: Record<string, string>): number => samples
  .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
  .reduce((n, s) => n + s.value, 0);

test('/metrics, volume profile and volume top show the I/O a mount did', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t);
  // Named for this run: mounts of every test on the host share the stats directory.
  const vol = `metrics${process.pid}`;
  const bricks = [1, 2].map((i) => path.join(root, `b${i}`));
  const labels = bricks.map((b) => `127.0.0.1:${b}`);
  const ok = async (args: string[]): Promise<string> => {
    const r = await d.cli(args);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await ok(['volume', 'create', vol, ...labels, '--force']);
  // Each write(2) reaches a brick as one write fop, so the profile's count is the test's.
  await ok(['volume', 'set', vol, 'performance.write-behind', 'off']);
  await ok(['volume', 'start', vol]);
  const mounts = ['mA', 'mB'].map((n) => path.join(root, n));
  for (const m of mounts) {
    fs.mkdirSync(m);
    t.teardown(() => unmountQuietly(m));
  }
  await ok(['mount', `${d.server}:/${vol}`, mounts[0]!]);
  t.true(isMountPoint(mounts[0]!));

  const before = await scrape(d);
  for (const b of labels) t.is(sum(before.samples, 'brickfs_brick_online', { volume: vol, brick: b }), 1, `${b} online`);
  t.is(before.types.get('brickfs_brick_fop_latency_seconds'), 'histogram');
  t.true(sum(before.samples, 'brickfs_brick_capacity_bytes', { volume: vol }) > 0);
  const writesBefore = sum(before.samples, 'brickfs_brick_fop_calls_total', { volume: vol, fop: 'write' });

  // Profile: start, N writes, info counts exactly those, stop.
  t.regex(await ok(['volume', 'profile', vol, 'start']), /Starting volume profile on .* has been successful/);
  // The JSON through the API (what --json prints); the CLI's own text is checked once below.
  const api = async <T>(what: string): Promise<{ status: number; body: T }> => {
    const r = await d.http(`/v1/volumes/${vol}/${what}`);
    return { status: r.status, body: JSON.parse(r.text) as T };
  };
  const info = async (): Promise<ProfileInfoReply> => (await api<ProfileInfoReply>('profile')).body;
  await eventually(async () => (await info()).bricks.every((b) => b.enabled), 10_000, 'every brick profiling');
  const N = 10;
  const fd = fs.openSync(path.join(mounts[0]!, 'w.bin'), 'w');
  for (let i = 0; i < N; i++) fs.writeSync(fd, Buffer.alloc(4096, i), 0, 4096, i * 4096);
  fs.closeSync(fd);
  const p = await info();
  const writes = p.bricks.reduce((n, b) => n + (b.cumulative?.fops.write?.calls ?? 0) + (b.cumulative?.fops.writev?.calls ?? 0), 0);
  t.is(writes, N, JSON.stringify(p));
  t.is(p.bricks.reduce((n, b) => n + (b.cumulative?.writeBlocks['4096'] ?? 0), 0), N);
  t.is(p.bricks.reduce((n, b) => n + (b.cumulative?.bytesWritten ?? 0), 0), N * 4096);
  const writer = p.bricks.find((b) => b.cumulative?.fops.write)!;
  t.true(writer.cumulative!.fops.write!.maxUs >= writer.cumulative!.fops.write!.minUs && writer.cumulative!.fops.write!.maxUs > 0);
  // That info ended the interval: the next one starts empty of writes; the text is gluster's.
  const text = await ok(['volume', 'profile', vol, 'info']);
  t.regex(text, /^Brick: 127\.0\.0\.1:/m);
  t.regex(text, /Cumulative Stats:/);
  t.regex(text, /Interval \d+ Stats:/);
  t.regex(text, /%-latency +Avg-latency +Min-Latency +Max-Latency +No\. of calls +Fop/);
  t.regex(text, new RegExp(`^ +[\\d.]+ +[\\d.]+ us +[\\d.]+ us +[\\d.]+ us +${N} +WRITE$`, 'm'));
  t.regex(text, /Data Written: 40960 bytes/);
  t.regex(await ok(['volume', 'profile', vol, 'stop']), /Stopping volume profile on .* has been successful/);
  await eventually(async () => (await api('profile')).status === 409, 10_000, 'profile info refused once stopped');
  const stopped = await d.cli(['volume', 'profile', vol, 'info']);
  t.is(stopped.code, 1);
  t.regex(stopped.stderr, /not started.*volume profile .* start/);
  const begin = await d.cli(['volume', 'profile', vol, 'begin']);
  t.is(begin.code, 2);
  t.regex(begin.stderr, /type start, info or stop/);

  // /metrics: the bricks' write counters grew by those writes, with latency buckets; the mount's too.
  const after = await scrape(d);
  t.true(sum(after.samples, 'brickfs_brick_fop_calls_total', { volume: vol, fop: 'write' }) >= writesBefore + N);
  const inf = sum(after.samples, 'brickfs_brick_fop_latency_seconds_bucket', { volume: vol, fop: 'write', le: '+Inf' });
  t.is(inf, sum(after.samples, 'brickfs_brick_fop_latency_seconds_count', { volume: vol, fop: 'write' }));
  t.true(inf >= N);
  t.true(after.samples.some((s) => s.name === 'brickfs_brick_fop_latency_seconds_bucket' && s.labels.le === '0.001'));
  t.true(sum(after.samples, 'brickfs_brick_written_bytes_total', { volume: vol }) >= N * 4096);
  t.true(sum(after.samples, 'brickfs_mount_fop_calls_total', { volume: vol, mountpoint: mounts[0]!, fop: 'write' }) >= N);
  t.true(sum(after.samples, 'brickfs_mount_written_bytes_total', { volume: vol, mountpoint: mounts[0]! }) >= N * 4096);
  t.true(after.samples.some((s) => s.name === 'brickfs_mount_cache_hits_total' && s.labels.volume === vol && s.labels.cache === 'md-cache'));
  t.is(sum(after.samples, 'brickfs_volume_started', { volume: vol }), 1);

  // Top: a big file and a small one read once each through a second mount (nothing cached
  // there): the big one took more reads, so it heads the list.
  fs.writeFileSync(path.join(mounts[0]!, 'big.bin'), Buffer.alloc(8 << 20, 7));
  fs.writeFileSync(path.join(mounts[0]!, 'small.txt'), 'small\n');
  await ok(['mount', `${d.server}:/${vol}`, mounts[1]!]);
  t.is(fs.readFileSync(path.join(mounts[1]!, 'big.bin')).length, 8 << 20);
  t.is(fs.readFileSync(path.join(mounts[1]!, 'small.txt'), 'utf8'), 'small\n');
  const top = (await api<TopReply>('top?list=read&count=5')).body;
  const entries = top.bricks.flatMap((b) => b.entries ?? []);
  for (const b of top.bricks) {
    const counts = (b.entries ?? []).map((e) => e.count);
    t.deepEqual(counts, [...counts].sort((x, y) => y - x), 'most read first');
  }
  entries.sort((a, b) => b.count - a.count);
  t.is(entries[0]?.path, '/big.bin', JSON.stringify(top));
  t.true(entries.some((e) => e.path === '/small.txt'), JSON.stringify(top));
  const topText = await ok(['volume', 'top', vol, 'read']);
  t.regex(topText, /Count\t\tfilename\n=======================\n\d+\t\t\/big\.bin\n/);
  t.regex(await ok(['volume', 'top', vol, 'open', 'list-cnt', '3']), /Current open fds: \d+, Max open fds: \d+/);
  const misuse = await d.cli(['volume', 'top', vol, 'read', 'list-cnt', 'x']);
  t.is(misuse.code, 2);
  t.regex(misuse.stderr, /list-cnt N/);
});

test('in a pool of two hosts, profile info and top asked of either daemon cover the bricks of both; /metrics shows its own host\'s', async (t) => {
  const net = await makeHosts(t, 2);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`metrics-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2] = ds as [TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-pool-metrics-');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  // Registered after the hosts: teardowns run last-in first-out, so the mount goes first.
  t.teardown(() => unmountQuietly(mnt));
  const ok = async (d: TestDaemon, args: string[]): Promise<string> => {
    const r = await d.cli(args, { timeoutMs: 90_000 });
    t.is(r.code, 0, `${args.join(' ')} on ${d.server}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  await ok(d1, ['peer', 'probe', d2.addr]);
  const vol = `pm${process.pid}`;
  const bricks = ds.map((d, i) => `${d.addr}:${path.join(root, `h${i + 1}`, 'b')}`);
  await ok(d1, ['volume', 'create', vol, ...bricks]);
  await ok(d1, ['volume', 'set', vol, 'performance.write-behind', 'off']);
  await ok(d1, ['volume', 'start', vol]);
  await ok(d1, ['volume', 'profile', vol, 'start']);
  await eventually(async () => {
    const r = await d1.http(`/v1/volumes/${vol}/profile`);
    return r.status === 200 && (JSON.parse(r.text) as ProfileInfoReply).bricks.every((b) => b.enabled && !b.error);
  }, 20_000, 'both hosts\' bricks profiling');

  const m = await net.hosts[0]!.cli(['mount', `${d1.server}:/${vol}`, mnt], { timeoutMs: 60_000 });
  t.is(m.code, 0, m.stderr);
  const FILES = 20;
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(mnt, `f${i}`), Buffer.alloc(4096, i));

  const p = JSON.parse(await ok(d2, ['volume', 'profile', vol, 'info', '--json'])) as ProfileInfoReply;
  t.deepEqual(p.bricks.map((b) => b.brick), bricks);
  t.true(p.bricks.every((b) => !b.error && b.enabled), JSON.stringify(p));
  t.is(p.bricks.reduce((n, b) => n + (b.cumulative?.fops.write?.calls ?? 0), 0), FILES);
  t.true(p.bricks.every((b) => (b.cumulative?.fops.write?.calls ?? 0) > 0), 'files landed on both hosts');
  const top = JSON.parse(await ok(d1, ['volume', 'top', vol, 'write', '--json'])) as TopReply;
  t.deepEqual(top.bricks.flatMap((b) => (b.entries ?? []).map((e) => e.path)).sort(), Array.from({ length: FILES }, (_, i) => `/f${i}`).sort());

  const scraped = parsePrometheus((await d2.http('/metrics')).text).samples;
  t.is(sum(scraped, 'brickfs_brick_online', { volume: vol, brick: bricks[1]! }), 1);
  t.false(scraped.some((s) => s.name === 'brickfs_brick_online' && s.labels.brick === bricks[0]), 'host 1\'s brick is host 1\'s to report');
  t.is(sum(scraped, 'brickfs_volume_bricks', { volume: vol }), 2);
});
