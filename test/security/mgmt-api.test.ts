// The management API as an attacker on the host sees it: a local user who is not root, a
// request whose Host names another site (DNS rebinding), bodies that are not JSON or not
// well formed, system directories as bricks with force, and, in a pool, a request to a
// peer's internal endpoint without the pool's secret. Root's CLI and the pool's own
// requests keep working.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { VolumeListReply } from '../../lib/mgmt/api.js';
import { authHeaders, tokenFile } from '../../lib/mgmt/token.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster } from '../helpers/etcd.js';
import { makeHosts } from '../helpers/hosts.js';
import { USERS } from '../helpers/posix.js';
import { BIN, eventually, tmpDir, type RunResult } from '../helpers/proc.js';

const show = (r: RunResult): string => `exit ${r.code}\n${r.stdout}${r.stderr}`;

/** Runs a command as user nobody (setpriv drops every capability with the uids). */
function asNobody(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('setpriv', [...USERS.nobody, '--', cmd, ...args], { timeout: 60_000, env: { ...process.env, HOME: '/', ...env } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown }) | null;
      resolve({ code: !e ? 0 : typeof e.code === 'number' ? e.code : 125, stdout, stderr });
    });
  });
}

/** One raw request made by a node process as nobody: prints "STATUS BODY". */
async function nobodyRequest(d: TestDaemon, method: string, pathname: string, body?: unknown): Promise<{ status: number; text: string }> {
  const script = `const [u, m, b] = process.argv.slice(1);
fetch(u, { method: m, headers: b ? { 'content-type': 'application/json' } : {}, body: b || undefined })
  .then(async (r) => process.stdout.write(r.status + ' ' + await r.text()), (e) => { process.stdout.write('0 ' + e.message); });`;
  const r = await asNobody(process.execPath, ['-e', script, `http://${d.server}${pathname}`, method, body === undefined ? '' : JSON.stringify(body)]);
  const i = r.stdout.indexOf(' ');
  return { status: Number(r.stdout.slice(0, i)), text: r.stdout.slice(i + 1) + r.stderr };
}

/** A request with full control of the headers (fetch would set Host itself). */
function raw(d: TestDaemon, method: string, pathname: string, headers: Record<string, string>, body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: d.addr, port: d.port, method, path: pathname, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function volumeNames(t: { fail(m: string): void }, d: TestDaemon): Promise<string[]> {
  const r = await d.cli(['volume', 'info', '--json']);
  if (r.code !== 0) t.fail(show(r));
  return (JSON.parse(r.stdout) as VolumeListReply).volumes.map((v) => v.name);
}

test('a local user who is not root can create, start, read or dump nothing; root\'s CLI creates, starts and stops', async (t) => {
  // A state directory anyone may enter, as /var/lib/brickfs is: what is secret in it is closed by the daemon.
  const state = tmpDir(t, 'brickfs-mgmtsec-state-');
  fs.chmodSync(state, 0o755);
  const d = await startDaemon(t, { stateDir: state });
  const root = tmpDir(t, 'brickfs-mgmtsec-');
  fs.chmodSync(root, 0o755);
  // The attack: force a volume over a directory only root may enter, start it, read it through the brick.
  const secret = path.join(root, 'root-only');
  fs.mkdirSync(secret, { mode: 0o700 });
  fs.writeFileSync(path.join(secret, 'shadow'), 'root:secret\n', { mode: 0o600 });

  const st = fs.statSync(tokenFile());
  t.is(st.mode & 0o777, 0o600, 'the token is root\'s alone');
  t.is(st.uid, 0);
  t.not((await asNobody('cat', [tokenFile()])).code, 0, 'nobody cannot read the token');

  const create = await nobodyRequest(d, 'POST', '/v1/volumes', { name: 'pwn', bricks: [`localhost:${secret}`], force: true });
  t.is(create.status, 401, create.text);
  t.regex(create.text, /only from root on this host.*run brickfs as root/);
  t.deepEqual(await volumeNames(t, d), [], 'nothing created');
  t.deepEqual(fs.readdirSync(secret), ['shadow'], 'the directory untouched');
  // With a token guessed or stolen from elsewhere: refused the same way.
  const forged = await raw(d, 'POST', '/v1/volumes', { host: d.server, 'content-type': 'application/json', authorization: 'Bearer 0123456789abcdef0123456789abcdef0123456789a' },
    JSON.stringify({ name: 'pwn', bricks: [`localhost:${secret}`], force: true }));
  t.is(forged.status, 401, forged.text);
  t.regex(forged.text, /the token sent is not this daemon's/);

  // The CLI as nobody: a clear refusal, exit 1, saying to run as root.
  const cliNobody = await asNobody(process.execPath, [BIN, '--server', d.server, 'volume', 'create', 'pwn', `localhost:${secret}`, '--force']);
  t.is(cliNobody.code, 1, show(cliNobody));
  t.regex(cliNobody.stderr, /permission denied: .*run this command as root/);
  t.deepEqual(await volumeNames(t, d), []);

  // Root's CLI: unchanged.
  const brick = path.join(root, 'b1');
  const made = await d.cli(['volume', 'create', 'v', `localhost:${brick}`]);
  t.is(made.code, 0, show(made));
  const started = await d.cli(['volume', 'start', 'v']);
  t.is(started.code, 0, show(started));
  const dumped = await d.cli(['volume', 'statedump', 'v']);
  t.is(dumped.code, 0, show(dumped));

  // Nobody: no start, stop, option, volfile (it holds the volume's credentials), statedump, listing; health stays open.
  for (const [method, p, body] of [
    ['POST', '/v1/volumes/v/stop', undefined], ['POST', '/v1/volumes/v/start', { force: true }], ['DELETE', '/v1/volumes/v', undefined],
    ['PUT', '/v1/volumes/v/options/server.root-squash', { value: 'off' }], ['GET', '/v1/volumes/v/volfile', undefined],
    ['POST', '/v1/volumes/v/statedump', undefined], ['GET', '/v1/volumes', undefined], ['GET', '/v1/status', undefined],
    ['POST', '/v1/bricks/check', { bricks: [`localhost:${secret}`], force: true }], ['POST', '/v1/peers', { host: '10.0.0.1' }],
    ['GET', '/v1/volumes/v/profile', undefined], ['GET', '/v1/volumes/v/top?list=read', undefined],
  ] as const) {
    const r = await nobodyRequest(d, method, p, body);
    t.is(r.status, 401, `${method} ${p}: ${r.text}`);
    t.false(r.text.includes('volume v'), 'the refusal says nothing of the volume');
  }
  t.is((await nobodyRequest(d, 'GET', '/v1/health')).status, 200);
  // /metrics is open as scrapers expect: counts and names (docs/security.md), never a credential.
  const metrics = await nobodyRequest(d, 'GET', '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.text, /brickfs_brick_online\{volume="v"/);
  const vol = fs.readFileSync(path.join(state, 'vols', 'v', 'client.vol'), 'utf8');
  const secrets = [...vol.matchAll(/option (?:username|password) (\S+)/g)].map((m) => m[1]!);
  t.true(secrets.length >= 2);
  for (const secretValue of secrets) t.false(metrics.text.includes(secretValue));
  // The statedump (it names every client) and the volfiles are on disk too: closed to nobody.
  for (const dir of ['logs', 'vols']) t.is(fs.statSync(path.join(state, dir)).mode & 0o777, 0o700, dir);
  const log = fs.readdirSync(path.join(state, 'logs', 'bricks')).map((f) => path.join(state, 'logs', 'bricks', f))[0]!;
  t.regex(fs.readFileSync(log, 'utf8'), /statedump/i);
  t.not((await asNobody('cat', [log])).code, 0, 'nobody cannot read the brick log with its statedump');
  t.not((await asNobody('cat', [path.join(state, 'vols', 'v', 'client.vol')])).code, 0, 'nor a volfile');

  const stopped = await d.cli(['volume', 'stop', 'v']);
  t.is(stopped.code, 0, show(stopped));
  t.deepEqual(await volumeNames(t, d), ['v']);
});

test('bodies are JSON with Content-Type: application/json (else 415); malformed input is a 400 saying what is wrong, never a 500', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-mgmtsec-');
  const body = JSON.stringify({ name: 'plain', bricks: [`localhost:${path.join(root, 'b')}`] });
  const auth = authHeaders();
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
    const r = await raw(d, 'POST', '/v1/volumes', { host: d.server, ...auth, ...(type === undefined ? {} : { 'content-type': type }) }, body);
    t.is(r.status, 415, `${type}: ${r.text}`);
    t.regex(r.text, /must be JSON sent with Content-Type: application\/json/);
  }
  t.deepEqual(await volumeNames(t, d), [], 'nothing created');
  t.false(fs.existsSync(path.join(root, 'b')));
  const ok = await raw(d, 'POST', '/v1/volumes', { host: d.server, ...auth, 'content-type': 'application/json; charset=utf-8' }, body);
  t.is(ok.status, 201, ok.text);

  const bad = await raw(d, 'POST', '/v1/volumes', { host: d.server, ...auth, 'content-type': 'application/json' }, '{"name": "x", bricks: }');
  t.is(bad.status, 400);
  t.regex(bad.text, /request body is not valid JSON/);

  // Every route that reads a body, with bodies of every wrong shape.
  const routes: Array<[string, string]> = [
    ['POST', '/v1/volumes'], ['POST', '/v1/volumes/plain/start'], ['PUT', '/v1/volumes/plain/options/performance.io-cache'],
    ['POST', '/v1/volumes/plain/add-brick'], ['POST', '/v1/volumes/plain/remove-brick/start'], ['POST', '/v1/volumes/plain/remove-brick/commit'],
    ['POST', '/v1/volumes/plain/remove-brick/stop'], ['POST', '/v1/volumes/plain/rebalance/start'], ['POST', '/v1/bricks/check'], ['POST', '/v1/peers'],
  ];
  const bodies = ['[]', 'null', '"x"', '7', 'true', '{"name": 5, "bricks": "x"}', '{"bricks": [1, null]}', '{"bricks": {}}', '{"value": 5}',
    '{"name": "q", "bricks": ["localhost:relative"]}', '{"force": "yes"}', '{"bricks": ["::::"], "replica": "two"}', '{"host": 5, "port": "x"}',
    '{"throttle": {}, "force": "yes", "fix-layout": 3}', '{"__proto__": {"force": true}, "bricks": []}', `{"name": "${'n'.repeat(5000)}", "bricks": []}`];
  const got: string[] = [];
  for (const [method, p] of routes) {
    for (const b of bodies) {
      const r = await raw(d, method, p, { host: d.server, ...auth, 'content-type': 'application/json' }, b);
      got.push(`${r.status}`);
      // Not an object: refused by every route. Fields a route does not read (start's) may pass.
      if (!b.startsWith('{')) t.is(r.status, 400, `${method} ${p} ${b}: ${r.text}`);
      t.true(r.status < 500, `${method} ${p} ${b.slice(0, 60)}: ${r.status} ${r.text}`);
      t.notRegex(r.text, /internal error/);
    }
  }
  t.log(`${got.length} malformed requests, statuses: ${[...new Set(got)].join(', ')}`);
  const enc = await raw(d, 'GET', '/v1/volumes/%zz', { host: d.server, ...auth });
  t.is(enc.status, 400, enc.text);
  t.deepEqual(await volumeNames(t, d), ['plain'], 'nothing else created');
});

test('a Host header that names another site (DNS rebinding) is refused with 421; the daemon\'s own names and addresses are served', async (t) => {
  const d = await startDaemon(t);
  const auth = authHeaders();
  for (const host of [`evil.example:${d.port}`, 'evil.example', `rebind.attacker.test:${d.port}`, '10.255.255.9', `127.0.0.1.evil.example:${d.port}`, 'a b']) {
    const r = await raw(d, 'GET', '/v1/volumes', { host, ...auth });
    t.is(r.status, 421, `Host ${JSON.stringify(host)}: ${r.text}`);
    const c = await raw(d, 'POST', '/v1/volumes', { host, ...auth, 'content-type': 'application/json' }, JSON.stringify({ name: 'rebound', bricks: ['localhost:/tmp/brickfs-rebound'] }));
    t.is(c.status, 421);
  }
  // No Host at all (HTTP/1.0): refused too.
  const bare = await new Promise<string>((resolve, reject) => {
    const c = net.connect(d.port, d.addr, () => c.end(`GET /v1/volumes HTTP/1.0\r\nauthorization: ${auth.authorization}\r\n\r\n`));
    const chunks: Buffer[] = [];
    c.on('data', (b: Buffer) => chunks.push(b));
    c.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    c.on('error', reject);
  });
  t.regex(bare, /^HTTP\/1\.[01] 421 /, bare);
  t.deepEqual(await volumeNames(t, d), []);
  for (const host of [`127.0.0.1:${d.port}`, `localhost:${d.port}`, 'localhost', `${os.hostname()}:${d.port}`, `[::1]:${d.port}`]) {
    const r = await raw(d, 'GET', '/v1/volumes', { host, ...auth });
    t.is(r.status, 200, `Host ${host}: ${r.text}`);
  }
});

test('/, /etc, /proc, /sys, /dev and what is under them are never bricks, even with force', async (t) => {
  const d = await startDaemon(t);
  for (const p of ['/', '/etc', '/etc/brickfs-pwn', '/proc', '/proc/self', '/sys/kernel', '/dev', '/dev/shm/brickfs-pwn', '/etc/../etc/cron.d', '/tmp/../etc']) {
    const r = await d.cli(['volume', 'create', 'sys', `localhost:${p}`, '--force']);
    // The root is refused by the CLI already (exit 2); the others by the daemon (exit 1).
    t.is(r.code, p === '/' ? 2 : 1, `${p}: ${show(r)}`);
    t.regex(r.stderr, /cannot be a brick/, p);
  }
  // The API itself, without the CLI's checks.
  for (const p of ['/', '/etc', '/proc/1', '/sys', '/dev/shm/brickfs-pwn']) {
    const r = await d.http('/v1/volumes', { method: 'POST', body: JSON.stringify({ name: 'sys', bricks: [`localhost:${p}`], force: true }) });
    t.true(r.status === 400 || r.status === 409, `${p}: ${r.status} ${r.text}`);
    t.regex(r.text, /cannot be a brick/);
  }
  t.false(fs.existsSync('/etc/brickfs-pwn'));
  t.false(fs.existsSync('/dev/shm/brickfs-pwn'));
  t.deepEqual(await volumeNames(t, d), []);
});

test('three hosts: peers probe and create across hosts with the pool\'s secret; a request to a peer\'s internal endpoint without it is refused', async (t) => {
  const net = await makeHosts(t, 3);
  const etcd = await startEtcdCluster(t, { hosts: net.hosts });
  const store = etcd.storeUrl(`mgmt-sec-${process.pid}`);
  const ds = await Promise.all(net.hosts.map((h) => startDaemon(t, { store, host: h, port: 7007 })));
  const [d1, d2, d3] = ds as [TestDaemon, TestDaemon, TestDaemon];
  const root = tmpDir(t, 'brickfs-mgmtsec-pool-');
  for (const d of [d2, d3]) {
    const r = await d1.cli(['peer', 'probe', d.addr]);
    t.is(r.code, 0, show(r));
  }
  // From host 3, a process that is not a daemon of the pool asks host 2 to check (and so to
  // take) a directory as a brick: refused without the pool's secret.
  const script = `fetch(process.argv[1], { method: 'POST', headers: { 'content-type': 'application/json' }, body: process.argv[2] })
  .then(async (r) => process.stdout.write(r.status + ' ' + await r.text()), (e) => process.stdout.write('0 ' + e.message));`;
  const probe = await net.hosts[2]!.exec(process.execPath, ['-e', script, `http://${d2.addr}:7007/v1/bricks/check`, JSON.stringify({ bricks: [`${d2.addr}:${path.join(root, 'x')}`], force: true })]);
  t.regex(probe.stdout, /^401 /, show(probe));
  // The pool's own requests carry the secret: a replica 3 volume over the three hosts.
  const bricks = ds.map((d, i) => `${d.addr}:${path.join(root, `h${i + 1}`, 'r')}`);
  const made = await d1.cli(['volume', 'create', 'r3', 'replica', '3', ...bricks], { timeoutMs: 90_000 });
  t.is(made.code, 0, show(made));
  const started = await d3.cli(['volume', 'start', 'r3'], { timeoutMs: 90_000 });
  t.is(started.code, 0, show(started));
  await eventually(async () => {
    const r = await d2.cli(['volume', 'info', 'r3', '--json']);
    return r.code === 0 && (JSON.parse(r.stdout) as VolumeListReply).volumes[0]?.status === 'started';
  }, 15_000, 'r3 started as host 2 sees it');
  const stopped = await d2.cli(['volume', 'stop', 'r3'], { timeoutMs: 90_000 });
  t.is(stopped.code, 0, show(stopped));
});
