// TLS on the I/O and management paths (GlusterFS's client.ssl / server.ssl, auth.ssl-allow,
// secure-access): certificates made with openssl as docs/security.md says; a real daemon,
// real bricks, a real FUSE mount. A hostile client built from the wire code, with no
// certificate, one of another CA, a name not allowed, or no TLS at all, is refused and
// changes nothing; the management API refuses a caller without a certificate of the CA.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { EtcdConfigStore } from '../../brick/mgmt/store/etcd.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { authHeaders } from '../../lib/mgmt/token.js';
import { runCli, runCliOk } from '../helpers/cli.js';
import { mountVolume } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { etcdBinary, startEtcd } from '../helpers/etcd.js';
import { formatLogText } from '../../lib/log.js';
import { eventually, sh, shOk, tmpDir } from '../helpers/proc.js';
import { certDir, makeCa, makeCert, revoke, type CertFiles } from '../helpers/tls.js';
import { RawBrickClient, type HelloCredentials } from '../helpers/wire.js';

// One CA for the pool and its clients; another CA nobody trusts.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-tls-test-'));
process.once('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const ca = makeCa(path.join(root, 'ca'), 'brickfs-ca');
const other = makeCa(path.join(root, 'other'), 'other-ca');
const certs = {
  host: makeCert(ca, 'host1'),
  client: makeCert(ca, 'client-ok'),
  intruder: makeCert(ca, 'intruder'),
  revoked: makeCert(ca, 'client-revoked'),
  otherCa: makeCert(other, 'client-ok'),
};
// This test process, its daemons, CLIs and mounts: host1 of the pool, with secure-access on.
const hostDir = certDir(path.join(root, 'host'), ca, certs.host, { secureAccess: true });
process.env.BRICKFS_TLS_DIR = hostDir;

const pem = (c: CertFiles): { cert: Buffer; key: Buffer } => ({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) });

/** Where the client volfile's first brick is and what its hello says. */
function brickOf(d: TestDaemon, vol: string): { port: number; subvolume: string; credentials: HelloCredentials } {
  const file = path.join(d.stateDir, 'vols', vol, 'client.vol');
  const o = parseVolfile(fs.readFileSync(file, 'utf8'), file).find((x) => x.type === 'protocol/client')!.options;
  return { port: Number(o['remote-port']), subvolume: o['remote-subvolume']!, credentials: { username: o.username, password: o.password, volumeId: o['volume-id'] } };
}

/**
 * Connects as told (no tls: plain WebSocket, whatever BRICKFS_TEST_TLS says, since that is what
 * these checks are about) and says the hello: 'open', the close the brick gave, or 'no session'
 * when the handshake failed.
 */
async function outcome(t: ExecutionContext, b: ReturnType<typeof brickOf>, opts: { tls?: { cert?: Buffer; key?: Buffer }; credentials?: HelloCredentials }): Promise<string> {
  let c: RawBrickClient;
  try {
    c = await RawBrickClient.connect(b.port, b.subvolume, { credentials: opts.credentials ?? b.credentials, tls: opts.tls ?? false });
  } catch {
    return 'no session';
  }
  t.teardown(() => c.close());
  if (c.helloReply?.hello.clientId) return 'open';
  await c.closed;
  return c.closeCode === 4003 ? `${c.closeCode} ${c.closeReason}` : 'no session';
}

/** What the volume holds on the bricks, as a listing with sizes (not the private directory, where heal marks come and go). */
function bricksListing(dirs: string[]): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).filter((x) => x.name !== '.brickfs').sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      out.push(`${p} ${e.isFile() ? fs.statSync(p).size : e.isDirectory() ? 'dir' : 'other'}`);
      if (e.isDirectory()) walk(p);
    }
  };
  for (const d of dirs) walk(d);
  return out.join('\n');
}

/** A raw request to the management API: with a certificate or none, over TLS or not; resolves with the status, or the error's code. */
function rawMgmt(d: TestDaemon, opts: { tls: boolean; cert?: CertFiles; token?: boolean }): Promise<string> {
  return new Promise((resolve) => {
    const mod = opts.tls ? https : http;
    const req = mod.request({
      host: d.addr, port: d.port, path: '/v1/volumes', method: 'GET',
      headers: opts.token ? authHeaders() : {},
      ...(opts.tls ? { rejectUnauthorized: false, ...(opts.cert ? pem(opts.cert) : {}) } : {}),
      timeout: 5000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    req.end();
  });
}

test('client.ssl and server.ssl: a mount works over TLS; no certificate, another CA, a name not in auth.ssl-allow, or plain WebSocket are refused and change nothing; the management API and CLI speak TLS and refuse a caller without a certificate', async (t) => {
  const d = await startDaemon(t);
  const dir = tmpDir(t, 'brickfs-tls-');
  const bricks = ['b1', 'b2'].map((b) => path.join(dir, b));
  await runCliOk(t, ['volume', 'create', 'sec', 'replica', '2', ...bricks.map((b) => `localhost:${b}`), '--force'], { server: d.server });
  for (const [k, v] of [['client.ssl', 'on'], ['server.ssl', 'on'], ['auth.ssl-allow', 'host1, client-*']]) {
    await runCliOk(t, ['volume', 'set', 'sec', k!, v!], { server: d.server });
  }
  await runCliOk(t, ['volume', 'start', 'sec'], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'sec']));

  // A real mount: the volfile over HTTPS, every brick over TLS with host1's certificate.
  const mnt = await mountVolume(t, d.server, 'sec', tmpDir(t, 'brickfs-tls-mnt-'));
  await shOk(t, `mkdir ${mnt}/d && head -c 300000 /dev/urandom > ${mnt}/d/f && cp ${mnt}/d/f ${dir}/copy && echo hi > ${mnt}/d/g`);
  t.is(fs.readFileSync(path.join(mnt, 'd', 'g'), 'utf8'), 'hi\n');
  t.deepEqual(fs.readFileSync(path.join(mnt, 'd', 'f')), fs.readFileSync(path.join(dir, 'copy')));
  for (const b of bricks) t.is(fs.readFileSync(path.join(b, 'd', 'g'), 'utf8'), 'hi\n', 'both replicas written');

  // Hostile clients, with the volume's own credentials.
  const b = brickOf(d, 'sec');
  const before = bricksListing(bricks);
  t.is(await outcome(t, b, {}), 'no session', 'plain WebSocket to a TLS brick');
  t.is(await outcome(t, b, { tls: {} }), 'no session', 'TLS without a certificate');
  t.is(await outcome(t, b, { tls: pem(certs.otherCa) }), 'no session', 'a certificate of another CA (with an allowed name)');
  t.is(await outcome(t, b, { tls: pem(certs.intruder) }), '4003 refused', 'a certificate of the CA with a name not in auth.ssl-allow');
  t.is(await outcome(t, b, { tls: pem(certs.client), credentials: {} }), '4003 refused', 'an allowed certificate does not replace the credentials');
  t.is(await outcome(t, b, { tls: pem(certs.client) }), 'open', 'an allowed certificate with the credentials');
  t.is(bricksListing(bricks), before, 'nothing changed on the bricks');
  const logs = formatLogText(fs.readdirSync(path.join(d.stateDir, 'logs', 'bricks')).map((f) => fs.readFileSync(path.join(d.stateDir, 'logs', 'bricks', f), 'utf8')).join(''));
  t.regex(logs, /refused a TLS connection from/);
  t.regex(logs, /certificate name "intruder" is not allowed/);

  // auth.ssl-allow applies at once to new connections.
  await runCliOk(t, ['volume', 'set', 'sec', 'auth.ssl-allow', 'host1'], { server: d.server });
  await eventually(async () => (await outcome(t, b, { tls: pem(certs.client) })) === '4003 refused', 10_000, 'auth.ssl-allow applied');
  const bad = await runCli(['volume', 'set', 'sec', 'auth.ssl-allow', 'a\tb'], { server: d.server });
  t.is(bad.code, 2, bad.stderr);

  // The management API: HTTPS only, and only with a certificate of the CA.
  t.regex(await rawMgmt(d, { tls: false, token: true }), /^error|^400$/, 'plain HTTP');
  t.regex(await rawMgmt(d, { tls: true, token: true }), /^error/, 'no certificate');
  t.regex(await rawMgmt(d, { tls: true, cert: certs.otherCa, token: true }), /^error/, 'a certificate of another CA');
  t.is(await rawMgmt(d, { tls: true, cert: certs.client }), '401', 'a certificate of the CA without the token: nothing more');
  t.is(await rawMgmt(d, { tls: true, cert: certs.client, token: true }), '200');
  t.regex(await runCliOk(t, ['volume', 'info', 'sec'], { server: d.server }), /Volume Name: sec/);
  // A CLI without secure-access speaks plain HTTP: refused, and told why.
  const plainDir = certDir(path.join(root, 'plain'), ca, certs.host);
  const plain = await runCli(['volume', 'info', 'sec'], { server: d.server, env: { BRICKFS_TLS_DIR: plainDir } });
  t.is(plain.code, 1);
  t.regex(plain.stderr, /if it has secure-access on, turn it on on this host too/);
  // A CLI whose certificate is of another CA: refused.
  const wrongDir = certDir(path.join(root, 'wrong'), other, certs.otherCa, { secureAccess: true });
  const wrong = await runCli(['volume', 'info', 'sec'], { server: d.server, env: { BRICKFS_TLS_DIR: wrongDir } });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /TLS/);

  // The mount carried on through all of it.
  await shOk(t, `echo more >> ${mnt}/d/g`);
  t.is(fs.readFileSync(path.join(mnt, 'd', 'g'), 'utf8'), 'hi\nmore\n');
});

/** A TLS 1.2 handshake with the brick offering only the given ciphers: 'ok', or the reason it failed. */
function tls12(port: number, ciphers: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...pem(certs.client), ca: fs.readFileSync(ca.cert), maxVersion: 'TLSv1.2', ciphers, checkServerIdentity: () => undefined });
    s.once('secureConnect', () => { s.destroy(); resolve('ok'); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

test('ssl.crl-path refuses a revoked client certificate in the handshake, from new connections on; ssl.cipher-list limits TLS 1.2 ciphers; a path without a CRL is refused by the bricks, which keep serving', async (t) => {
  const d = await startDaemon(t);
  const dir = tmpDir(t, 'brickfs-tls-');
  await runCliOk(t, ['volume', 'create', 'crl', `localhost:${path.join(dir, 'b1')}`, '--force'], { server: d.server });
  for (const [k, v] of [['client.ssl', 'on'], ['server.ssl', 'on']]) await runCliOk(t, ['volume', 'set', 'crl', k!, v!], { server: d.server });
  await runCliOk(t, ['volume', 'start', 'crl'], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'crl']));
  const b = brickOf(d, 'crl');
  t.is(await outcome(t, b, { tls: pem(certs.revoked) }), 'open', 'not revoked yet');
  const open = await RawBrickClient.connect(b.port, b.subvolume, { credentials: b.credentials, tls: pem(certs.client) });
  t.teardown(() => open.close());

  const crl = revoke(ca, certs.revoked);
  await runCliOk(t, ['volume', 'set', 'crl', 'ssl.crl-path', crl], { server: d.server });
  await eventually(async () => (await outcome(t, b, { tls: pem(certs.revoked) })) === 'no session', 10_000, 'the revoked certificate refused');
  t.is(await outcome(t, b, { tls: pem(certs.client) }), 'open', 'a certificate the CRL does not name');
  t.is((await open.call('lookup', { path: '/' })).err, undefined, 'a connection made before goes on');

  // TLS 1.2 ciphers: the host certificate is EC, so ECDSA suites are the only ones it can serve.
  t.is(await tls12(b.port, 'ECDHE-ECDSA-AES128-GCM-SHA256'), 'ok');
  await runCliOk(t, ['volume', 'set', 'crl', 'ssl.cipher-list', 'ECDHE-ECDSA-AES256-GCM-SHA384'], { server: d.server });
  await eventually(async () => (await tls12(b.port, 'ECDHE-ECDSA-AES128-GCM-SHA256')) !== 'ok', 10_000, 'a cipher outside the list refused');
  t.is(await tls12(b.port, 'ECDHE-ECDSA-AES256-GCM-SHA384'), 'ok');
  const bad = await runCli(['volume', 'set', 'crl', 'ssl.cipher-list', 'AES;rm -rf /'], { server: d.server });
  t.is(bad.code, 2, bad.stderr);

  // A path that holds no CRL: the bricks say so and serve as before.
  await runCliOk(t, ['volume', 'set', 'crl', 'ssl.crl-path', dir], { server: d.server });
  const logs = (): string => formatLogText(fs.readdirSync(path.join(d.stateDir, 'logs', 'bricks')).map((f) => fs.readFileSync(path.join(d.stateDir, 'logs', 'bricks', f), 'utf8')).join(''));
  await eventually(async () => /holds no PEM certificate revocation list/.test(logs()), 10_000, 'the brick names the bad path');
  t.is(await outcome(t, b, { tls: pem(certs.revoked) }), 'no session', 'the last good lists still apply');
});

test('server.ssl switched on a started volume: the bricks drop their plain connections at once, and a mount follows onto TLS', async (t) => {
  const d = await startDaemon(t);
  const dir = tmpDir(t, 'brickfs-tls-');
  await runCliOk(t, ['volume', 'create', 'sw', `localhost:${path.join(dir, 'b1')}`, `localhost:${path.join(dir, 'b2')}`, '--force'], { server: d.server });
  // The switch from plain is the point: the volume starts plain whatever BRICKFS_TEST_TLS says.
  for (const k of ['client.ssl', 'server.ssl']) await runCliOk(t, ['volume', 'set', 'sw', k, 'off'], { server: d.server });
  await runCliOk(t, ['volume', 'start', 'sw'], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'sw']));
  const mnt = await mountVolume(t, d.server, 'sw', tmpDir(t, 'brickfs-tls-mnt-'));
  await shOk(t, `echo one > ${mnt}/f1`);
  const b = brickOf(d, 'sw');
  const c = await RawBrickClient.connect(b.port, b.subvolume, { credentials: b.credentials, tls: false });
  t.teardown(() => c.close());
  t.truthy(c.helloReply?.hello.clientId, 'plain works before');
  await runCliOk(t, ['volume', 'set', 'sw', 'client.ssl', 'on'], { server: d.server });
  await runCliOk(t, ['volume', 'set', 'sw', 'server.ssl', 'on'], { server: d.server });
  await c.closed;
  t.is(await outcome(t, brickOf(d, 'sw'), {}), 'no session', 'plain refused after the switch');
  await eventually(async () => (await sh(`echo two > ${mnt}/f2 && cat ${mnt}/f1 ${mnt}/f2`)).stdout === 'one\ntwo\n', 30_000, 'the mount over TLS');
});

test('secure-access with an etcd store: the daemon reaches etcd over TLS with the host\'s certificate; etcd refuses a client without one, or with one of another CA', async (t) => {
  if (!etcdBinary()) {
    t.log('etcd is not installed (Debian: etcd-server); .ci/run installs it');
    t.pass();
    return;
  }
  const etcdCert = makeCert(ca, 'etcd', 'IP:127.0.0.1');
  const e = await startEtcd(t, { tls: { cert: etcdCert.cert, key: etcdCert.key, ca: ca.cert } });
  const d = await startDaemon(t, { store: `etcd://${e.endpoint}` });
  const dir = tmpDir(t, 'brickfs-tls-');
  await runCliOk(t, ['volume', 'create', 'ev', `localhost:${path.join(dir, 'b1')}`, '--force'], { server: d.server });
  t.regex(await runCliOk(t, ['volume', 'info', 'ev'], { server: d.server }), /Volume Name: ev/);
  const caPem = fs.readFileSync(ca.cert);
  const as = async (tls: { cert: Buffer; key: Buffer; ca: Buffer } | undefined): Promise<boolean> => {
    let s: EtcdConfigStore | undefined;
    try {
      s = new EtcdConfigStore([e.endpoint], { opTimeoutMs: 3000, ...(tls ? { tls } : {}) });
      return (await s.get('/brickfs/volumes/ev')) !== undefined;
    } catch {
      return false;
    } finally {
      await s?.close().catch(() => undefined);
    }
  };
  t.true(await as({ ...pem(certs.client), ca: caPem }), 'a certificate of the CA reads the store');
  t.false(await as(undefined), 'plain gRPC');
  const noCert = await new Promise<string>((resolve) => {
    const req = https.get(`https://${e.endpoint}/v3/kv/range`, { ca: caPem, checkServerIdentity: () => undefined, timeout: 3000 }, (res) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
  });
  t.regex(noCert, /^error/, 'TLS without a certificate');
  t.false(await as({ ...pem(certs.otherCa), ca: caPem }), 'a certificate of another CA');
});
