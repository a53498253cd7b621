// Authentication on the I/O path (GlusterFS's auth/login and auth/addr): bricks of a volume
// made by the daemon accept only a hello with the volume's credentials and id, from an
// address auth.allow / auth.reject let in; a client credential may not send what only the
// pool's services do (migrate, the heal index, trusted.* xattrs), and its negative pids get
// no service privileges. A real mount and the daemon's own services keep working.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { INTERNAL_PID, serviceFrame, type Frame } from '../../lib/frame.js';
import { XATTR_GFID, XATTR_LAYOUT } from '../../lib/fops.js';
import { runCliOk } from '../helpers/cli.js';
import { mountVolume } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually, shOk, tmpDir } from '../helpers/proc.js';
import { helloOf, RawBrickClient, type HelloCredentials, type VolfileHello } from '../helpers/wire.js';

interface Vol {
  name: string;
  bricks: string[];
  client: VolfileHello;
  service: VolfileHello;
}

/** A started replica 2 volume of the daemon, with what its client and service volfiles say. */
async function volume(t: ExecutionContext, d: TestDaemon, name: string): Promise<Vol> {
  const root = tmpDir(t, `brickfs-auth-${name}-`);
  const bricks = ['b1', 'b2'].map((b) => path.join(root, b));
  await runCliOk(t, ['volume', 'create', name, 'replica', '2', ...bricks.map((b) => `localhost:${b}`), '--force'], { server: d.server });
  await runCliOk(t, ['volume', 'start', name], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', name]));
  const dir = path.join(d.stateDir, 'vols', name);
  for (const f of ['client.vol', 'service.vol']) t.is(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is root's only`);
  return { name, bricks, client: helloOf(path.join(dir, 'client.vol')), service: helloOf(path.join(dir, 'service.vol')) };
}

async function connect(t: ExecutionContext, v: Vol, credentials: HelloCredentials, localAddress?: string): Promise<RawBrickClient> {
  const c = await RawBrickClient.connect(v.client.port, v.client.subvolume, { credentials, ...(localAddress ? { localAddress } : {}) });
  t.teardown(() => c.close());
  return c;
}

/** Connects and says the hello; resolves with the close code and reason when refused, or 'open'. */
async function outcome(t: ExecutionContext, v: Vol, credentials: HelloCredentials, localAddress?: string): Promise<string> {
  const c = await connect(t, v, credentials, localAddress);
  if (c.helloReply?.hello.clientId) return 'open';
  await c.closed;
  return `${c.closeCode} ${c.closeReason}`;
}

const REFUSED = '4003 refused';

test('a brick of a daemon-made volume refuses a hello without its credentials, with wrong ones, or with another volume\'s', async (t) => {
  const d = await startDaemon(t);
  const [a, b] = [await volume(t, d, 'a'), await volume(t, d, 'b')];
  t.truthy(a.client.credentials.password);
  t.not(a.client.credentials.username, a.service.credentials.username);
  t.not(a.client.credentials.password, b.client.credentials.password);
  t.is(await outcome(t, a, {}), REFUSED, 'no credentials');
  t.is(await outcome(t, a, { volumeId: a.client.credentials.volumeId }), REFUSED, 'the volume id alone');
  t.is(await outcome(t, a, { ...a.client.credentials, password: 'guess' }), REFUSED, 'a wrong password');
  t.is(await outcome(t, a, b.client.credentials), REFUSED, 'another volume\'s credentials');
  t.is(await outcome(t, a, { ...b.client.credentials, volumeId: a.client.credentials.volumeId }), REFUSED, 'another volume\'s credentials, this volume\'s id');
  t.is(await outcome(t, a, { ...a.client.credentials, volumeId: b.client.credentials.volumeId }), REFUSED, 'this volume\'s credentials, another volume\'s id');
  const { volumeId: _, ...noId } = a.client.credentials;
  t.is(await outcome(t, a, noId), REFUSED, 'no volume id');
  t.is(await outcome(t, a, a.client.credentials), 'open');
  t.is(await outcome(t, a, a.service.credentials), 'open');
  // Nothing in the volume's info gives the credentials away; the brick's log says why it refused.
  const info = await runCliOk(t, ['volume', 'info', 'a', '--json'], { server: d.server });
  t.false(info.includes(a.client.credentials.password!));
  const brickLogs = fs.readdirSync(path.join(d.stateDir, 'logs', 'bricks')).map((f) => fs.readFileSync(path.join(d.stateDir, 'logs', 'bricks', f), 'utf8')).join('');
  t.regex(brickLogs, /refused client .* it has no credentials/);
  t.regex(brickLogs, /wrong credentials/);
  t.false(brickLogs.includes(a.client.credentials.password!), 'the brick log never holds a password');
});

test('auth.reject and auth.allow: right credentials from an address not let in are refused, at once after volume set; the services are not subject to them', async (t) => {
  const d = await startDaemon(t);
  const a = await volume(t, d, 'a');
  const set = (k: string, v: string): Promise<string> => runCliOk(t, ['volume', 'set', 'a', k, v], { server: d.server });
  await set('auth.reject', '127.0.0.1');
  await eventually(async () => (await outcome(t, a, a.client.credentials)) === REFUSED, 10_000, 'auth.reject applied by the running brick');
  t.is(await outcome(t, a, a.client.credentials, '127.0.0.2'), 'open', 'another address');
  t.is(await outcome(t, a, a.service.credentials), 'open', 'the pool\'s services');
  await set('auth.reject', '127.0.0.*');
  await eventually(async () => (await outcome(t, a, a.client.credentials, '127.0.0.2')) === REFUSED, 10_000, 'wildcards');
  await runCliOk(t, ['volume', 'reset', 'a', 'auth.reject'], { server: d.server });
  await set('auth.allow', '127.0.0.2, 10.0.0.0/8');
  await eventually(async () => (await outcome(t, a, a.client.credentials)) === REFUSED, 10_000, 'auth.allow applied');
  t.is(await outcome(t, a, a.client.credentials, '127.0.0.2'), 'open');
  await set('auth.allow', '127.0.0.0/24');
  await eventually(async () => (await outcome(t, a, a.client.credentials)) === 'open', 10_000, 'a network');
  // A list that is not one is refused by volume set (exit 2), before any brick sees it.
  const bad = await d.cli(['volume', 'set', 'a', 'auth.allow', 'evil.example; *']);
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /comma-separated list of addresses/);
});

/** Root on a client machine, not one of the pool's services. */
const ROOT: Frame = { uid: 0, gid: 0, groups: [], pid: 4321 };

test('a client credential may not migrate, read the heal index, set trusted.* xattrs, or dodge root-squash with a negative pid; a real mount keeps working', async (t) => {
  const d = await startDaemon(t);
  const a = await volume(t, d, 'a');
  const mnt = await mountVolume(t, d.server, 'a', tmpDir(t, 'brickfs-auth-mnt-'));
  await shOk(t, `mkdir ${mnt}/dir && echo hello > ${mnt}/dir/f && mv ${mnt}/dir/f ${mnt}/dir/g && setfattr -n user.k -v v ${mnt}/dir/g`);

  const c = await connect(t, a, a.client.credentials);
  t.is((await c.call('lookup', { path: '/dir/g' })).err, undefined, 'an ordinary fop');
  for (const [fop, args] of [
    ['migrate', { path: '/dir/g', owner: 'x', op: 'freeze' }],
    ['indexlist', {}],
    ['setxattr', { path: '/dir/g', name: XATTR_GFID, value: Buffer.alloc(16, 1), flags: 0 }],
    ['setxattr', { path: '/dir/g', name: 'trusted.other', value: Buffer.from('x'), flags: 0 }],
    ['removexattr', { path: '/dir', name: XATTR_LAYOUT }],
  ] as const) {
    const r = await c.call(fop, args as Record<string, unknown>);
    t.is(r.err?.code, 'EPERM', `${fop} ${JSON.stringify((args as { name?: string }).name ?? '')}`);
  }
  // What a mount needs stays open to it: distribute's layout, replicate's changelog and entry locks.
  t.is((await c.call('xattrop', { path: '/dir/g', add: {} })).err, undefined);
  t.is((await c.call('mkdir', { path: '/locks', mode: 0o755 })).err, undefined);
  t.is((await c.call('entrylk', { path: '/locks', name: 'n', owner: 'o', cmd: 'trylock' })).err, undefined);
  t.is((await c.call('entrylk', { path: '/locks', name: 'n', owner: 'o', cmd: 'unlock' })).err, undefined);

  // The service credential may.
  const s = await connect(t, a, a.service.credentials);
  t.is((await s.call('indexlist', {})).err, undefined);

  // The mount, after a refused client: it is another connection and goes on.
  await shOk(t, `echo more >> ${mnt}/dir/g && mkdir ${mnt}/dir/sub && chmod 1777 ${mnt}/dir/sub && mv ${mnt}/dir/g ${mnt}/dir/sub/h`);
  t.is(fs.readFileSync(path.join(mnt, 'dir/sub/h'), 'utf8'), 'hello\nmore\n');
  for (const b of a.bricks) t.is(fs.readFileSync(path.join(b, 'dir/sub/h'), 'utf8'), 'hello\nmore\n');

  // Root-squash: a negative pid spares only the services' frames.
  const secret = path.join(a.bricks[0]!, 'secret');
  fs.writeFileSync(secret, 'top secret', { mode: 0o600 });
  fs.chownSync(secret, 4242, 4242);
  await runCliOk(t, ['volume', 'set', 'a', 'server.root-squash', 'on'], { server: d.server });
  await eventually(async () => (await c.call('readfile', { path: '/secret', offset: 0, size: 100 }, ROOT)).err?.code === 'EACCES', 10_000, 'root squashed');
  const forged = serviceFrame(INTERNAL_PID.selfHeal);
  t.is((await c.call('readfile', { path: '/secret', offset: 0, size: 100 }, forged)).err?.code, 'EACCES', 'a forged service pid on a client connection');
  const r = await s.call('readfile', { path: '/secret', offset: 0, size: 100 }, forged);
  t.is(r.err, undefined, 'the service itself');
  t.is(Buffer.from((r.ok as { data: Uint8Array }).data).toString(), 'top secret');

  // The mount, through all of it: squashed root writes as nobody where nobody may, on both replicas.
  await shOk(t, `echo new > ${mnt}/dir/sub/by-root && mv ${mnt}/dir/sub/by-root ${mnt}/dir/sub/moved`);
  for (const b of a.bricks) {
    t.is(fs.readFileSync(path.join(b, 'dir/sub/moved'), 'utf8'), 'new\n');
    t.is(fs.statSync(path.join(b, 'dir/sub/moved')).uid, 65534);
  }
});
