// protocol/client and protocol/server in one process over loopback, storage/posix below: the
// brick's fd number lives in each client's slot on the Fd (never in a reply), the caller's
// inode never crosses the wire, the server's numbers mean nothing on another connection, and
// an fd is reopened after a reconnect by its file's path now.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import type WebSocket from 'ws';
import { Server } from '../../brick/xlators/protocol/server.js';
import { Posix } from '../../brick/xlators/storage/posix.js';
import { ProtocolClient } from '../../client/xlators/protocol/client.js';
import { S_IFREG } from '../../lib/fops.js';
import { ROOT_FRAME } from '../../lib/frame.js';
import { Fd, InodeTable, ROOT_ID } from '../../lib/inode.js';
import { eventually, tmpDir } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_RDWR, O_CREAT, O_TRUNC } = fs.constants;

interface ServerDump {
  connections: Array<{ fds: number }>;
}

async function brick(t: ExecutionContext) {
  const dir = tmpDir(t);
  const posix = new Posix({ name: 'b', type: 'storage/posix', options: { directory: dir }, children: [] });
  const server = new Server({ name: 'srv', type: 'protocol/server', options: { 'listen-port': '0', 'listen-host': '127.0.0.1' }, children: [posix] });
  await posix.init();
  await server.init();
  t.teardown(async () => {
    await server.fini();
    await posix.fini();
  });
  /** Fds each connection holds on the brick, in connection order. */
  const served = (): number[] => (server.statedump() as unknown as ServerDump).connections.map((c) => c.fds);
  return { dir, server, posix, served };
}

async function client(t: ExecutionContext, port: number): Promise<ProtocolClient> {
  const c = new ProtocolClient({
    name: 'c', type: 'protocol/client', children: [],
    options: { 'remote-host': '127.0.0.1', 'remote-port': String(port), 'remote-subvolume': 'b' },
  });
  t.teardown(() => c.fini());
  await c.init();
  t.true(c.isUp);
  return c;
}

test('create and open keep the brick\'s fd in the Fd, not in the reply; release drops it', async (t) => {
  const { server, posix, served } = await brick(t);
  const c = await client(t, server.port);
  const fd = Fd.forPath('/f', O_RDWR | O_CREAT);
  const created = await c.call('create', { path: '/f', mode: 0o644, flags: O_RDWR | O_CREAT, fd }, ROOT_FRAME);
  t.false('fd' in created);
  t.true(created.created);
  t.deepEqual(await c.call('write', { fd, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME), { size: 5 });
  const other = Fd.forPath('/f', O_RDWR);
  t.deepEqual(await c.call('open', { path: '/f', flags: O_RDWR, fd: other }, ROOT_FRAME), {});
  t.is((await c.call('read', { fd: other, offset: 0, size: 10 }, ROOT_FRAME)).data.toString(), 'hello');
  t.like(c.statedump(), { fds: 2 });
  t.deepEqual(served(), [2]);
  t.like(posix.statedump(), { openFds: 2 });

  await c.call('release', { fd }, ROOT_FRAME);
  t.like(c.statedump(), { fds: 1 });
  t.is((await t.throwsAsync(c.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME)) as { code?: string }).code, 'EBADF');
  t.is((await t.throwsAsync(c.call('flush', { fd }, ROOT_FRAME)) as { code?: string }).code, 'EBADF');
  t.is((await t.throwsAsync(c.call('release', { fd }, ROOT_FRAME)) as { code?: string }).code, 'EBADF');
  await eventually(() => served()[0] === 1, 5000, 'the brick released it');
  t.like(posix.statedump(), { openFds: 1 });
  t.deepEqual(await c.call('flush', { fd: other }, ROOT_FRAME), {});
  await c.call('release', { fd: other }, ROOT_FRAME);
  await eventually(() => served()[0] === 0, 5000, 'the brick released the other');
});

test('one Fd through two clients (as a cluster translator winds it to each child) has a brick fd in each', async (t) => {
  const { server, served } = await brick(t);
  // The same name on purpose: each instance keeps its own slot.
  const c1 = await client(t, server.port);
  const c2 = await client(t, server.port);
  const fd = Fd.forPath('/f', O_RDWR | O_CREAT);
  await c1.call('create', { path: '/f', mode: 0o644, flags: O_RDWR | O_CREAT, fd }, ROOT_FRAME);
  await c2.call('open', { path: '/f', flags: O_RDWR, fd }, ROOT_FRAME);
  t.deepEqual(served(), [1, 1]);
  await c1.call('write', { fd, offset: 0, data: Buffer.from('ab') }, ROOT_FRAME);
  await c2.call('write', { fd, offset: 2, data: Buffer.from('cd') }, ROOT_FRAME);
  await c1.call('release', { fd }, ROOT_FRAME);
  t.is((await c2.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)).data.toString(), 'abcd', 'still open through the other');
  await eventually(() => served().join() === '0,1', 5000, 'c1\'s fd released');
  await c2.call('release', { fd }, ROOT_FRAME);
});

test('the caller\'s inode stays in the client: path fops that carry it are answered (the brick refuses unknown fields)', async (t) => {
  const { server } = await brick(t);
  const c = await client(t, server.port);
  const inodes = new InodeTable();
  const inode = inodes.entry(ROOT_ID, 'f', S_IFREG | 0o644);
  const fd = new Fd(inode, O_RDWR | O_CREAT);
  await c.call('create', { path: '/f', mode: 0o644, flags: O_RDWR | O_CREAT, fd }, ROOT_FRAME);
  t.is((await c.call('lookup', { path: '/f', inode }, ROOT_FRAME)).iatt.size, 0);
  t.is((await c.call('setattr', { path: '/f', inode, attrs: { mode: 0o600 } }, ROOT_FRAME)).iatt.mode & 0o777, 0o600);
  await c.call('setxattr', { path: '/f', inode, name: 'user.k', value: Buffer.from('v'), flags: 0 }, ROOT_FRAME);
  t.is((await c.call('getxattr', { path: '/f', inode, name: 'user.k' }, ROOT_FRAME)).value.toString(), 'v');
  await c.call('rename', { from: '/f', to: '/g', inode }, ROOT_FRAME);
  await c.call('link', { target: '/g', path: '/h', inode }, ROOT_FRAME);
  await c.call('unlink', { path: '/h', inode }, ROOT_FRAME);
  await c.call('release', { fd }, ROOT_FRAME);
});

test('after a reconnect an fd is reopened by its file\'s path now (renamed meanwhile), without O_TRUNC, once for fops sent together', async (t) => {
  const { server, served } = await brick(t);
  const c = await client(t, server.port);
  const inodes = new InodeTable();
  const fd = new Fd(inodes.entry(ROOT_ID, 'a', S_IFREG | 0o644), O_RDWR | O_CREAT | O_TRUNC);
  await c.call('create', { path: '/a', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await c.call('write', { fd, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME);
  await c.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME);
  inodes.move(ROOT_ID, 'a', ROOT_ID, 'b');
  t.is(fd.path, '/b');

  const epoch = c.statedump().epoch as number;
  (c as unknown as { ws: WebSocket }).ws.terminate();
  await eventually(() => c.isUp && c.statedump().epoch === epoch + 1, 10_000, 'the reconnect');
  await eventually(() => served().join() === '0', 5000, 'the brick released the old connection\'s fd');

  const [read, stat] = await Promise.all([
    c.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME),
    c.call('fstat', { fd }, ROOT_FRAME),
  ]);
  t.is(read.data.toString(), 'hello', 'the renamed file, not truncated');
  t.is(stat.iatt.size, 5);
  t.deepEqual(served(), [1], 'one reopen for both');
  t.like(c.statedump(), { fds: 1 });
  await c.call('release', { fd }, ROOT_FRAME);
  await eventually(() => served().join() === '0', 5000, 'the reopened fd released');
});

test('protocol/server: an fd number one connection was given means nothing on another', async (t) => {
  const { server } = await brick(t);
  // brick() makes its server without ssl whatever BRICKFS_TEST_TLS says: plain WebSocket.
  const a = await RawBrickClient.connect(server.port, 'b', { tls: false });
  const b = await RawBrickClient.connect(server.port, 'b', { tls: false });
  t.teardown(() => { a.close(); b.close(); });
  const created = await a.call('create', { path: '/f', mode: 0o644, flags: O_RDWR | O_CREAT });
  const n = (created.ok as { fd: number }).fd;
  t.true(Number.isSafeInteger(n));
  t.is((await b.call('write', { fd: n, offset: 0, data: Buffer.from('x') })).err?.code, 'EBADF');
  t.is((await b.call('release', { fd: n })).err?.code, 'EBADF');
  t.deepEqual((await a.call('write', { fd: n, offset: 0, data: Buffer.from('x') })).ok, { size: 1 });
  t.is((await a.call('open', { path: '/f', flags: O_RDWR, fd: n })).err?.code, 'EINVAL', 'an open names no fd');
  t.deepEqual((await a.call('release', { fd: n })).ok, {});
  t.is((await a.call('fstat', { fd: n })).err?.code, 'EBADF', 'released');
});
