// The management daemon and the volume CLI, end to end: a real daemon process per test
// (own port, state directory and brick port range), the real CLI, real brick processes.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../../brick/mgmt/bricks.js';
import type { VolumeGetReply } from '../../client/cli/commands/volume/get.js';
import type { StatedumpReply, StatusListReply, VolumeListReply } from '../../lib/mgmt/api.js';
import { VOLUME_OPTIONS } from '../../lib/mgmt/volume-options.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { runCli, runCliJson, testTlsVolume } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { eventually, freePort, portOpen, tmpDir } from '../helpers/proc.js';

/** n brick paths (not created) in a fresh temporary directory. */
function brickPaths(t: Parameters<typeof tmpDir>[0], n: number): string[] {
  const root = tmpDir(t, 'brickfs-bricks-');
  return Array.from({ length: n }, (_, i) => path.join(root, `b${i}`));
}

const local = (paths: string[]): string[] => paths.map((p) => `localhost:${p}`);

/** Zombie-aware: detached processes are reaped by whoever PID 1 is, maybe late. */
const alive = pidAlive;

/** Under BRICKFS_TEST_TLS=1, the options and versions the CLI helper adds to every volume it creates. */
const TLS = testTlsVolume();

test('a relative brick path is a usage error (exit 2) with an example', async (t) => {
  const d = await startDaemon(t);
  const r = await d.cli(['volume', 'create', 'v', 'localhost:bricks/b1']);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /not absolute/);
  t.regex(r.stderr, /for example: localhost:\//);
  t.regex(r.stderr, /usage: brickfs volume create VOL/);
  t.deepEqual((await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server })).volumes, []);
});

test('usage errors exit 2: missing bricks, unknown command, missing arguments, bad --server', async (t) => {
  const d = await startDaemon(t);
  for (const args of [
    ['volume', 'create', 'v'],
    ['volume', 'create', 'v', 'replica', '2'],
    ['volume', 'create'],
    ['volume', 'frobnicate'],
    ['volume'],
    [],
    ['volume', 'set', 'v', 'network.ping-timeout'],
    ['volume', 'reset'],
    ['volume', 'get', 'v'],
    ['volume', 'statedump'],
    ['volume', 'reset', 'v', 'network.ping-timeout', 'extra'],
    ['volume', 'start', 'v', 'now'],
    ['volume', 'info', '--bogus'],
  ]) {
    const r = await d.cli(args);
    t.is(r.code, 2, `brickfs ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /usage: brickfs/, args.join(' '));
  }
  const bad = await runCli(['volume', 'info', '--server', 'a:b:c']);
  t.is(bad.code, 2, bad.stderr);
});

test('an unknown volume is exit 1 with a message, for every command', async (t) => {
  const d = await startDaemon(t);
  for (const args of [
    ['info', 'nope'], ['status', 'nope'], ['start', 'nope'], ['stop', 'nope'], ['delete', 'nope'],
    ['volfile', 'nope'], ['set', 'nope', 'network.ping-timeout', '5'], ['reset', 'nope'], ['reset', 'nope', 'network.ping-timeout'], ['get', 'nope', 'all'], ['statedump', 'nope'],
    ['add-brick', 'nope', 'localhost:/srv/x'], ['remove-brick', 'nope', 'localhost:/srv/x', 'start'],
    ['remove-brick', 'nope', 'localhost:/srv/x', 'status'], ['remove-brick', 'nope', 'localhost:/srv/x', 'commit'],
    ['rebalance', 'nope', 'start'], ['rebalance', 'nope', 'status'], ['rebalance', 'nope', 'stop'],
  ]) {
    const r = await d.cli(['volume', ...args]);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /volume nope does not exist; `brickfs volume info` lists volumes/);
  }
});

test('the daemon not running is exit 1 saying how to start it', async (t) => {
  const port = await freePort();
  const r = await runCli(['volume', 'info'], { server: `127.0.0.1:${port}` });
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`cannot reach the management daemon at 127.0.0.1:${port}.*start it with \`brickfs daemon\``));
});

test('a server name that does not resolve is said so (not "start a daemon"), for commands and for mount', async (t) => {
  // .invalid never resolves (RFC 6761), whatever the resolver.
  const r = await runCli(['volume', 'info'], { server: 'nosuchhost.invalid:7007' });
  t.is(r.code, 1);
  t.regex(r.stderr, /host name nosuchhost\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\); .*give the daemon's address/);
  t.notRegex(r.stderr, /brickfs daemon/);
  const dir = tmpDir(t);
  const m = await runCli(['mount', 'nosuchhost.invalid:/demo', dir]);
  t.is(m.code, 1);
  t.regex(m.stderr, /host name nosuchhost\.invalid does not resolve/);
});

test('create refusals: duplicate name, non-empty brick, nested bricks, brick reuse; --force overrides', async (t) => {
  const d = await startDaemon(t);
  const [b0, b1, b2, b3] = brickPaths(t, 4) as [string, string, string, string];
  const ok = await d.cli(['volume', 'create', 'v1', ...local([b0, b1])]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /volume create: v1: success/);
  t.true(fs.statSync(b0).isDirectory(), 'brick directories are created');

  const dup = await d.cli(['volume', 'create', 'v1', ...local([b2])]);
  t.is(dup.code, 1);
  t.regex(dup.stderr, /volume v1 already exists/);

  fs.mkdirSync(b2);
  fs.writeFileSync(path.join(b2, 'precious'), 'data');
  const full = await d.cli(['volume', 'create', 'v2', ...local([b2])]);
  t.is(full.code, 1);
  t.regex(full.stderr, /is not empty.*--force/);
  t.is((await d.cli(['volume', 'create', 'v2', ...local([b2]), '--force'])).code, 0);
  t.is(fs.readFileSync(path.join(b2, 'precious'), 'utf8'), 'data');

  const inside = await d.cli(['volume', 'create', 'v3', `localhost:${b0}/sub`]);
  t.is(inside.code, 1);
  t.regex(inside.stderr, /inside brick .* of volume v1.*--force/);
  const reuse = await d.cli(['volume', 'create', 'v3', `127.0.0.1:${b1}`]);
  t.is(reuse.code, 1);
  t.regex(reuse.stderr, /already a brick of volume v1/);
  const nested = await d.cli(['volume', 'create', 'v3', `localhost:${b3}`, `localhost:${b3}/x`]);
  t.is(nested.code, 1);
  t.regex(nested.stderr, /is inside brick/);

  const twice = await d.cli(['volume', 'create', 'v3', `localhost:${b3}`, `localhost:${b3}/`]);
  t.is(twice.code, 2);
  t.regex(twice.stderr, /listed twice/);

  const info = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server });
  t.deepEqual(info.volumes.map((v) => v.name), ['v1', 'v2']);
});

test('create: a host outside the pool is refused (exit 1); replica/stripe need a multiple of N bricks (exit 2)', async (t) => {
  const d = await startDaemon(t);
  const [b0, b1, b2] = brickPaths(t, 3) as [string, string, string];
  const rep = await d.cli(['volume', 'create', 'v', 'replica', '2', ...local([b0, b1, b2])]);
  t.is(rep.code, 2);
  t.regex(rep.stderr, /replica 2 needs a multiple of 2 bricks, got 3/);
  const odd = await d.cli(['volume', 'create', 'v', 'stripe', '2', ...local([b0, b1, b2])]);
  t.is(odd.code, 2);
  t.regex(odd.stderr, /stripe 2 needs a multiple of 2 bricks, got 3/);
  // The daemon checks too, whatever the client.
  const raw = await d.http('/v1/volumes', { method: 'POST', body: JSON.stringify({ name: 'v', stripe: 2, bricks: local([b0, b1, b2]) }) });
  t.is(raw.status, 400);
  const remote = await d.cli(['volume', 'create', 'v', `192.0.2.10:${b0}`]);
  t.is(remote.code, 1);
  t.regex(remote.stderr, /host 192\.0\.2\.10 is not a member of this daemon's pool; add it with `brickfs peer probe 192\.0\.2\.10`/);
  t.false(fs.existsSync(b0), 'a refused create makes no directories');
});

test('info and status --json shapes', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 2);
  const port = d.brickPortBase + 50;
  t.is((await d.cli(['volume', 'create', 'shape', `localhost:${bricks[0]}`, `127.0.0.1:${port}:${bricks[1]}`])).code, 0);
  const info = await runCliJson<VolumeListReply>(t, ['volume', 'info', 'shape', '--json'], { server: d.server });
  t.is(info.volumes.length, 1);
  const v = info.volumes[0]!;
  t.deepEqual(Object.keys(v).sort(), ['bricks', 'createdAt', 'id', 'name', 'options', 'status', 'type', 'version']);
  t.like(v, { name: 'shape', type: 'distribute', status: 'created', version: 1 + TLS.versions });
  t.deepEqual(v.options, TLS.options);
  t.regex(v.id, /^[0-9a-f-]{36}$/);
  t.false(Number.isNaN(Date.parse(v.createdAt)));
  t.deepEqual(v.bricks[1], { host: '127.0.0.1', path: bricks[1], port });
  t.true(v.bricks[0]!.port >= d.brickPortBase && v.bricks[0]!.port !== port);

  const status = await runCliJson<StatusListReply>(t, ['volume', 'status', '--json'], { server: d.server });
  t.deepEqual(status, {
    volumes: [{
      name: 'shape',
      status: 'created',
      bricks: v.bricks.map((b) => ({ ...b, pid: null, online: false })),
    }],
  });
  const human = await d.cli(['volume', 'info', 'shape']);
  t.regex(human.stdout, /Volume Name: shape\nType: Distribute\n/);
  t.regex(human.stdout, /Brick2: 127\.0\.0\.1:.*b1\n/);
});

test('daemon restart keeps volume definitions, options and versions', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 3);
  t.is((await d.cli(['volume', 'create', 'keep', ...local(bricks)])).code, 0);
  t.is((await d.cli(['volume', 'set', 'keep', 'network.ping-timeout', '7'])).code, 0);
  const before = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server });
  t.is(before.volumes[0]!.version, 2 + TLS.versions);
  await d.restart();
  const after = await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server });
  t.deepEqual(after, before);
  const volfile = await d.cli(['volume', 'volfile', 'keep']);
  t.is(volfile.code, 0, volfile.stderr);
  t.true(parseVolfile(volfile.stdout).filter((x) => x.type === 'protocol/client').every((x) => x.options['ping-timeout'] === '7'));
});

test('volume set: unknown key and bad values are usage errors naming the nearest key', async (t) => {
  const d = await startDaemon(t);
  t.is((await d.cli(['volume', 'create', 'opts', ...local(brickPaths(t, 1))])).code, 0);
  const unknown = await d.cli(['volume', 'set', 'opts', 'network.ping-timeot', '5']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown volume option "network\.ping-timeot"; did you mean network\.ping-timeout\? \(every option: brickfs volume set help\)/);
  t.is((await d.cli(['volume', 'set', 'opts', 'network.ping-timeout', '0'])).code, 2);
  // The daemon checks too, whatever the client.
  const raw = await d.http('/v1/volumes/opts/options/nope', { method: 'PUT', body: JSON.stringify({ value: '1' }) });
  t.is(raw.status, 400);
  t.regex((JSON.parse(raw.text) as { error: string }).error, /unknown volume option "nope"/);
});

test('volume reset: one option or every option back to its default; bricks reload; unknown keys are usage errors', async (t) => {
  const d = await startDaemon(t);
  t.is((await d.cli(['volume', 'create', 'rs', ...local(brickPaths(t, 2))])).code, 0);
  const info = async () => (await runCliJson<VolumeListReply>(t, ['volume', 'info', 'rs', '--json'], { server: d.server })).volumes[0]!;
  for (const [k, v] of [['network.ping-timeout', '9'], ['performance.read-ahead-page-count', '8'], ['storage.writeback-window', '1M']] as const) {
    t.is((await d.cli(['volume', 'set', 'rs', k, v])).code, 0);
  }
  t.is((await d.cli(['volume', 'start', 'rs'])).code, 0);
  const before = await info();
  t.is(before.version, 4 + TLS.versions);

  const one = await d.cli(['volume', 'reset', 'rs', 'storage.writeback-window']);
  t.is(one.code, 0, one.stderr);
  t.is(one.stdout, 'volume reset: success\n');
  const afterOne = await info();
  t.deepEqual(afterOne.options, { ...TLS.options, 'network.ping-timeout': '9', 'performance.read-ahead-page-count': '8' });
  t.is(afterOne.version, 5 + TLS.versions);
  const brickVols = path.join(d.stateDir, 'vols', 'rs', 'bricks');
  for (const f of fs.readdirSync(brickVols)) t.notRegex(fs.readFileSync(path.join(brickVols, f), 'utf8'), /writeback-window/);
  const logs = path.join(d.stateDir, 'logs', 'bricks');
  await eventually(() => fs.readdirSync(logs).every((f) => fs.readFileSync(path.join(logs, f), 'utf8').includes('options reloaded')), 5000, 'bricks reloaded');

  t.is((await d.cli(['volume', 'reset', 'rs', 'storage.writeback-window'])).code, 0, 'resetting an option that is not set succeeds');
  t.is((await info()).version, 5 + TLS.versions, '...and changes nothing');

  t.is((await d.cli(['volume', 'reset', 'rs'])).code, 0);
  const afterAll = await info();
  t.deepEqual(afterAll.options, {});
  t.is(afterAll.version, 6 + TLS.versions);
  const volfile = (await d.cli(['volume', 'volfile', 'rs'])).stdout;
  t.notRegex(volfile, /ping-timeout|page-count/);

  const unknown = await d.cli(['volume', 'reset', 'rs', 'performance.magic']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown volume option "performance\.magic" \(every option: brickfs volume set help\)/);
  const raw = await d.http('/v1/volumes/rs/options/nope', { method: 'DELETE' });
  t.is(raw.status, 400, 'the daemon checks too');
  t.is((await d.cli(['volume', 'stop', 'rs'])).code, 0);
});

test('volume statedump: every running brick\'s graph state; a brick that is down is named, exit 1', async (t) => {
  const d = await startDaemon(t);
  t.is((await d.cli(['volume', 'create', 'sd', ...local(brickPaths(t, 2))])).code, 0);
  t.is((await d.cli(['volume', 'start', 'sd'])).code, 0);
  t.teardown(() => d.cli(['volume', 'stop', 'sd']));
  const all = await runCliJson<StatedumpReply>(t, ['volume', 'statedump', 'sd', '--json'], { server: d.server });
  t.is(all.bricks.length, 2);
  for (const b of all.bricks) {
    const posix = Object.values(b.dump ?? {}).find((x) => (x as { type: string }).type === 'storage/posix') as { writeback?: unknown; directory: string };
    t.is(posix.directory, b.path);
    t.deepEqual(posix.writeback, { streams: 0, started: 0, failed: 0 });
  }
  const human = await d.cli(['volume', 'statedump', 'sd']);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^Brick localhost:\/.*\n\{\n/);

  const st = await runCliJson<StatusListReply>(t, ['volume', 'status', 'sd', '--json'], { server: d.server });
  process.kill(st.volumes[0]!.bricks[1]!.pid!, 'SIGKILL');
  await eventually(() => !alive(st.volumes[0]!.bricks[1]!.pid!), 5000, 'brick gone');
  const partial = await d.cli(['volume', 'statedump', 'sd', '--json']);
  t.is(partial.code, 1, partial.stdout + partial.stderr);
  const got = JSON.parse(partial.stdout) as StatedumpReply;
  t.truthy(got.bricks[0]!.dump);
  t.deepEqual({ dump: got.bricks[1]!.dump, error: got.bricks[1]!.error }, { dump: undefined, error: 'not running' });
});

test('volume list: one name per line, or gluster\'s line when there is none', async (t) => {
  const d = await startDaemon(t);
  const empty = await d.cli(['volume', 'list']);
  t.is(empty.code, 0, empty.stderr);
  t.is(empty.stdout, 'No volumes present in cluster\n');
  t.is((await d.cli(['volume', 'create', 'beta', ...local(brickPaths(t, 1))])).code, 0);
  t.is((await d.cli(['volume', 'create', 'alpha', ...local(brickPaths(t, 1))])).code, 0);
  const two = await d.cli(['volume', 'list']);
  t.deepEqual(two.stdout.trim().split('\n').sort(), ['alpha', 'beta']);
  t.is((await d.cli(['volume', 'list', 'alpha'])).code, 2, 'list takes no volume name');
});

test('volume get: the value in effect of every option, set or default, as the generated graphs have it', async (t) => {
  const d = await startDaemon(t);
  t.is((await d.cli(['volume', 'create', 'g', ...local(brickPaths(t, 2))])).code, 0);
  const get = async (key = 'all') => {
    const r = await runCliJson<VolumeGetReply>(t, ['volume', 'get', 'g', key, '--json'], { server: d.server });
    return Object.fromEntries(r.options.map((o) => [o.key, o]));
  };
  const defaults = await get();
  t.deepEqual(Object.keys(defaults), Object.keys(VOLUME_OPTIONS), 'every key, in the order `volume set` lists them');
  t.true(Object.values(defaults).every((o) => o.set === (o.key in TLS.options)));
  t.is(defaults['network.ping-timeout']!.value, '42');
  t.is(defaults['storage.writeback-window']!.value, String(4 * 1024 * 1024));
  t.is(defaults['performance.flush-behind']!.value, 'off');
  t.is(defaults['performance.io-cache']!.value, 'on');
  t.is(defaults['performance.nl-cache-timeout']!.value, '60', 'volgen\'s default while cache invalidation is on');
  t.is(defaults['performance.md-cache-timeout']!.value, '60', 'volgen\'s default while cache invalidation is on');

  t.is((await d.cli(['volume', 'set', 'g', 'features.cache-invalidation', 'off'])).code, 0);
  t.is((await d.cli(['volume', 'set', 'g', 'performance.io-cache', 'off'])).code, 0);
  t.is((await d.cli(['volume', 'set', 'g', 'storage.writeback-window', '1M'])).code, 0);
  const after = await get();
  t.deepEqual(after['features.cache-invalidation'], { key: 'features.cache-invalidation', value: 'off', set: true });
  t.is(after['performance.nl-cache-timeout']!.value, '1', 'the translator\'s own default once invalidation is off');
  t.is(after['performance.md-cache-timeout']!.value, '1', 'the translator\'s own default once invalidation is off');
  t.is(after['performance.io-cache']!.value, 'off');
  t.deepEqual(after['storage.writeback-window'], { key: 'storage.writeback-window', value: String(1024 * 1024), set: true });
  t.deepEqual(Object.keys(await get('performance.io-cache')), ['performance.io-cache']);

  const human = await d.cli(['volume', 'get', 'g', 'network.ping-timeout']);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^Option\s+Value\n------\s+-----\nnetwork\.ping-timeout\s+42\n$/);
  const unknown = await d.cli(['volume', 'get', 'g', 'performance.magic']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown volume option "performance\.magic"/);
});

test('volfile API: 404 unknown, 409 not started, text once started; long poll sees set', async (t) => {
  const d = await startDaemon(t);
  const missing = await d.http('/v1/volumes/none/volfile');
  t.is(missing.status, 404);
  t.regex((JSON.parse(missing.text) as { error: string }).error, /does not exist/);
  t.is((await d.cli(['volume', 'create', 'vf', ...local(brickPaths(t, 2))])).code, 0);
  const notStarted = await d.http('/v1/volumes/vf/volfile');
  t.is(notStarted.status, 409);
  t.regex((JSON.parse(notStarted.text) as { error: string }).error, /not started.*brickfs volume start vf/);
  t.is((await d.cli(['volume', 'volfile', 'vf'])).code, 0, '`volume volfile` prints it in any state');

  const start = await d.cli(['volume', 'start', 'vf']);
  t.is(start.code, 0, start.stderr);
  const ok = await d.http('/v1/volumes/vf/volfile');
  t.is(ok.status, 200);
  t.regex(ok.headers.get('content-type') ?? '', /^text\/plain/);
  t.is(ok.headers.get('x-brickfs-volume-version'), String(1 + TLS.versions));
  t.deepEqual(parseVolfile(ok.text).map((x) => x.name), ['vf-client-0', 'vf-client-1', 'vf-dht', 'vf-quick-read', 'vf-open-behind', 'vf-write-behind', 'vf-io-cache', 'vf-read-ahead', 'vf-nl-cache', 'vf-readdir-ahead', 'vf-md-cache']);

  const waiting = d.http(`/v1/volumes/vf/volfile?newer-than=${1 + TLS.versions}&wait=20`);
  await new Promise((r) => setTimeout(r, 200));
  t.is((await d.cli(['volume', 'set', 'vf', 'network.ping-timeout', '3'])).code, 0);
  const pushed = await waiting;
  t.is(pushed.status, 200);
  t.is(pushed.headers.get('x-brickfs-volume-version'), String(2 + TLS.versions));
  t.regex(pushed.text, /option ping-timeout 3/);
  t.is((await d.http(`/v1/volumes/vf/volfile?newer-than=${2 + TLS.versions}&wait=0`)).status, 304);
  // A brick-side option: the brick volfiles change and the running bricks reload them.
  t.is((await d.cli(['volume', 'set', 'vf', 'features.cache-invalidation', 'off'])).code, 0);
  t.notRegex((await d.cli(['volume', 'volfile', 'vf'])).stdout, /cache-invalidation/, 'not a client option');
  const brickVols = path.join(d.stateDir, 'vols', 'vf', 'bricks');
  for (const f of fs.readdirSync(brickVols)) t.regex(fs.readFileSync(path.join(brickVols, f), 'utf8'), /option cache-invalidation off/);
  const logs = path.join(d.stateDir, 'logs', 'bricks');
  await eventually(() => fs.readdirSync(logs).every((f) => fs.readFileSync(path.join(logs, f), 'utf8').includes('options reloaded')), 5000, 'bricks reloaded');
  t.is((await d.cli(['volume', 'stop', 'vf'])).code, 0);
});

test('start, status, stop: real brick processes; start twice; delete refuses a started volume', async (t) => {
  const d = await startDaemon(t);
  const bricks = brickPaths(t, 2);
  t.is((await d.cli(['volume', 'create', 'run', ...local(bricks)])).code, 0);
  const start = await d.cli(['volume', 'start', 'run']);
  t.is(start.code, 0, start.stderr);
  const st = await runCliJson<StatusListReply>(t, ['volume', 'status', 'run', '--json'], { server: d.server });
  t.is(st.volumes[0]!.status, 'started');
  for (const b of st.volumes[0]!.bricks) {
    t.true(b.online, JSON.stringify(b));
    t.true(typeof b.pid === 'number' && alive(b.pid));
    t.true(await portOpen(b.port));
  }
  const again = await d.cli(['volume', 'start', 'run']);
  t.is(again.code, 1);
  t.regex(again.stderr, /already started/);
  const del = await d.cli(['volume', 'delete', 'run']);
  t.is(del.code, 1);
  t.regex(del.stderr, /stop it first/);

  const stop = await d.cli(['volume', 'stop', 'run']);
  t.is(stop.code, 0, stop.stderr);
  for (const b of st.volumes[0]!.bricks) t.false(alive(b.pid!), `brick pid ${b.pid} is gone`);
  const stopped = await runCliJson<StatusListReply>(t, ['volume', 'status', 'run', '--json'], { server: d.server });
  t.true(stopped.volumes[0]!.bricks.every((b) => b.pid === null && !b.online));
  t.is((await d.cli(['volume', 'stop', 'run'])).code, 1, 'stopping a stopped volume fails');
  t.is((await d.cli(['volume', 'delete', 'run'])).code, 0);
  t.deepEqual((await runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server })).volumes, []);
  t.true(fs.existsSync(bricks[0]!), 'delete leaves brick directories alone');
});

test('bricks outlive the daemon; a restarted daemon adopts live bricks and respawns dead ones; start force', async (t) => {
  const d = await startDaemon(t);
  t.is((await d.cli(['volume', 'create', 'live', ...local(brickPaths(t, 2))])).code, 0);
  t.is((await d.cli(['volume', 'start', 'live'])).code, 0);
  const status = async (): Promise<StatusListReply['volumes'][number]> =>
    (await runCliJson<StatusListReply>(t, ['volume', 'status', 'live', '--json'], { server: d.server })).volumes[0]!;
  const first = await status();

  await d.stop();
  t.true(first.bricks.every((b) => alive(b.pid!)), 'bricks keep running without the daemon');
  await d.restart();
  t.deepEqual((await status()).bricks, first.bricks, 'same pids, adopted');

  process.kill(first.bricks[0]!.pid!, 'SIGKILL');
  await eventually(async () => !(await status()).bricks[0]!.online, 5000, 'brick 0 offline');
  const force = await d.cli(['volume', 'start', 'live', 'force']);
  t.is(force.code, 0, force.stderr);
  const healed = await status();
  t.true(healed.bricks.every((b) => b.online));
  t.not(healed.bricks[0]!.pid, first.bricks[0]!.pid);
  t.is(healed.bricks[1]!.pid, first.bricks[1]!.pid, 'a live brick is left alone');

  await d.stop();
  process.kill(healed.bricks[1]!.pid!, 'SIGKILL');
  await d.start();
  const respawned = await status();
  t.true(respawned.bricks.every((b) => b.online), JSON.stringify(respawned));
  t.not(respawned.bricks[1]!.pid, healed.bricks[1]!.pid);
  t.is((await d.cli(['volume', 'stop', 'live'])).code, 0);
});

test('a brick that cannot start fails `volume start` with its log, and the volume stays stopped', async (t) => {
  const d = await startDaemon(t);
  const [b0] = brickPaths(t, 1) as [string];
  t.is((await d.cli(['volume', 'create', 'broken', `localhost:${b0}`])).code, 0);
  // A file where the brick directory should be: storage/posix refuses to serve it.
  fs.rmdirSync(b0);
  fs.writeFileSync(b0, 'not a directory');
  const r = await d.cli(['volume', 'start', 'broken']);
  t.is(r.code, 1);
  t.regex(r.stderr, /failed to start/);
  t.regex(r.stderr, /log .* ends with/);
  const st = await runCliJson<StatusListReply>(t, ['volume', 'status', 'broken', '--json'], { server: d.server });
  t.is(st.volumes[0]!.status, 'created');
});

test('daemon --detach prints the pid once it answers', async (t) => {
  const state = tmpDir(t, 'brickfs-detach-');
  const port = await freePort();
  const r = await runCli(['daemon', '--detach', '--port', String(port), '--state', state, '--brick-port-base', '29900']);
  const pid = Number(r.stdout.trim());
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  });
  t.is(r.code, 0, r.stderr);
  t.true(pid > 0 && alive(pid));
  t.is((await runCli(['volume', 'info'], { server: `127.0.0.1:${port}` })).stdout, 'No volumes present\n');
  // A second daemon on the same state directory is refused.
  const second = await runCli(['daemon', '--port', String(await freePort()), '--state', state]);
  t.is(second.code, 1);
  t.regex(second.stderr, /another management daemon/);
  process.kill(pid, 'SIGTERM');
  await eventually(() => !alive(pid), 5000, 'daemon exit');
  t.false(fs.existsSync(path.join(state, 'daemon.pid')));
});
