// server.root-squash: root of a client (uid 0, gid 0, group 0) is served by the brick as
// server.anonuid/anongid (65534, nobody/nogroup), through the wire and through a mount, so
// root on a client owns nothing new and reads nothing it is not allowed as nobody. The
// pool's own services (negative pids) are not squashed. Off by default.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { INTERNAL_PID, serviceFrame, type Frame } from '../../lib/frame.js';
import { mountVolfile, startDistribute } from '../helpers/cluster.js';
import { openUp } from '../helpers/posix.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/** Root of a client machine: a user's process (positive pid), not one of the pool's services. */
const CLIENT_ROOT: Frame = { uid: 0, gid: 0, groups: [], pid: 4321 };
/** An ordinary user who is also in group 0. */
const IN_ROOT_GROUP: Frame = { uid: 4242, gid: 4242, groups: [0], pid: 4322 };

async function squashedBrick(t: Parameters<typeof startDistribute>[0], set: Record<string, string>) {
  const vol = await startDistribute(t, 1, { set });
  const brick = vol.bricks[0]!;
  fs.chmodSync(brick.dir, 0o1777);
  const secret = path.join(brick.dir, 'secret');
  fs.writeFileSync(secret, 'top secret', { mode: 0o600 });
  fs.chownSync(secret, 4242, 4242);
  const rootGroup = path.join(brick.dir, 'root-group');
  fs.writeFileSync(rootGroup, 'for group 0', { mode: 0o040 });
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  return { brick, c };
}

test('root-squash on: root over the wire creates as 65534:65534 and cannot read, chown or remove what others own', async (t) => {
  const { brick, c } = await squashedBrick(t, { 'server.root-squash': 'on' });
  const made = await c.call('create', { path: '/by-root', mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL }, CLIENT_ROOT);
  t.is(made.err, undefined);
  const st = fs.statSync(path.join(brick.dir, 'by-root'));
  t.deepEqual([st.uid, st.gid], [65534, 65534]);
  t.is((await c.call('readfile', { path: '/secret', offset: 0, size: 100 }, CLIENT_ROOT)).err?.code, 'EACCES');
  t.is((await c.call('open', { path: '/secret', flags: 0 }, CLIENT_ROOT)).err?.code, 'EACCES');
  t.is((await c.call('setattr', { path: '/secret', attrs: { uid: 0 } }, CLIENT_ROOT)).err?.code, 'EPERM');
  t.is((await c.call('setattr', { path: '/secret', attrs: { mode: 0o666 } }, CLIENT_ROOT)).err?.code, 'EPERM');
  t.is((await c.call('unlink', { path: '/secret' }, CLIENT_ROOT)).err?.code, 'EPERM');
  // Group 0 among a user's groups is squashed too.
  t.is((await c.call('readfile', { path: '/root-group', offset: 0, size: 100 }, IN_ROOT_GROUP)).err?.code, 'EACCES');
  t.is(fs.readFileSync(path.join(brick.dir, 'secret'), 'utf8'), 'top secret');
  t.is(fs.statSync(path.join(brick.dir, 'secret')).uid, 4242);
  // The pool's own services (self-heal, rebalance: negative pids) act as root still.
  const svc = await c.call('create', { path: '/by-service', mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL }, serviceFrame(INTERNAL_PID.selfHeal));
  t.is(svc.err, undefined);
  t.is(fs.statSync(path.join(brick.dir, 'by-service')).uid, 0);
  t.is((await c.call('readfile', { path: '/secret', offset: 0, size: 100 }, serviceFrame(INTERNAL_PID.selfHeal))).err, undefined);
});

test('root-squash: server.anonuid and server.anongid choose whom root becomes', async (t) => {
  const { brick, c } = await squashedBrick(t, { 'server.root-squash': 'on', 'server.anonuid': '5000', 'server.anongid': '6000' });
  t.is((await c.call('create', { path: '/by-root', mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL }, CLIENT_ROOT)).err, undefined);
  const st = fs.statSync(path.join(brick.dir, 'by-root'));
  t.deepEqual([st.uid, st.gid], [5000, 6000]);
});

test('root-squash is off by default: root over the wire is root', async (t) => {
  const { brick, c } = await squashedBrick(t, {});
  t.is((await c.call('create', { path: '/by-root', mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL }, CLIENT_ROOT)).err, undefined);
  t.is(fs.statSync(path.join(brick.dir, 'by-root')).uid, 0);
  t.is((await c.call('readfile', { path: '/root-group', offset: 0, size: 100 }, IN_ROOT_GROUP)).err, undefined);
});

function sh(script: string, user?: string[]): Promise<{ code: number; stderr: string }> {
  const [cmd, args] = user ? ['setpriv', [...user, '--', 'sh', '-c', script]] : ['sh', ['-c', script]];
  return new Promise((resolve) => execFile(cmd, args as string[], { timeout: 30_000 }, (err, _out, stderr) => {
    resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 125) : 0, stderr });
  }));
}

test('root-squash through a mount: root\'s new file is owned by 65534 on the brick, and root cannot read another user\'s 0600 file', async (t) => {
  const vol = await startDistribute(t, 1, { set: { 'server.root-squash': 'on' } });
  const brick = vol.bricks[0]!;
  fs.chmodSync(brick.dir, 0o1777);
  const mnt = await mountVolfile(t, vol.volfilePath);
  openUp(mnt);
  const u4242 = ['--reuid=4242', '--regid=4242', '--clear-groups'];
  const made = await sh(`umask 077 && printf 'top secret' > '${mnt}/secret'`, u4242);
  t.is(made.code, 0, made.stderr);
  t.is(fs.statSync(path.join(brick.dir, 'secret')).uid, 4242);
  const wrote = await sh(`echo mine > '${mnt}/by-root'`);
  t.is(wrote.code, 0, wrote.stderr);
  const st = fs.statSync(path.join(brick.dir, 'by-root'));
  t.deepEqual([st.uid, st.gid], [65534, 65534]);
  // Its owner reads it first: what the mount caches of it (quick-read, io-cache) is not root's to read either.
  const own = await sh(`cat '${mnt}/secret' > /dev/null`, u4242);
  t.is(own.code, 0, own.stderr);
  const read = await sh(`cat '${mnt}/secret'`);
  t.not(read.code, 0);
  t.regex(read.stderr, /Permission denied/);
  const chown = await sh(`chown 0 '${mnt}/secret'`);
  t.not(chown.code, 0);
  t.is(fs.statSync(path.join(brick.dir, 'secret')).uid, 4242);
});
