// A real brick process and raw protocol connections: a change made through one connection
// is pushed to the others (features.cache-invalidation), coalesced per event-loop turn.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import { encodeFrame, WIRE_VERSION } from '../../lib/rpc/frame.js';
import { startDistribute } from '../helpers/cluster.js';
import { eventually, sleep } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

async function clients(t: Parameters<typeof startDistribute>[0], set: Record<string, string> = {}) {
  const vol = await startDistribute(t, 1, { set });
  const brick = vol.bricks[0]!;
  const a = await RawBrickClient.connect(brick.port, brick.dir);
  const b = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { a.close(); b.close(); });
  return { a, b, brick };
}

const pushed = (c: RawBrickClient): string[][] => c.pushes.flatMap((p) => (p.push === 'invalidate' ? [p.paths] : []));

test('a change through one connection is pushed to the others, not to itself; a burst is a few frames', async (t) => {
  const { a, b } = await clients(t);
  const created = await a.call('create', { path: '/f', mode: 0o644, flags: 0o102 }, ROOT_FRAME);
  const fd = (created.ok as { fd: number }).fd;
  await eventually(() => b.pushes.length === 1, 5000, 'push of the create');
  t.deepEqual(pushed(b), [['/f']]);
  // 50 writes sent at once (pipelined): their push comes out of a few event-loop turns, not 50.
  for (let i = 0; i < 50; i++) a.ws.send(encodeFrame({ v: WIRE_VERSION, id: 1000 + i, fop: 'write', args: { fd, offset: i * 4, data: Buffer.from('abcd') }, cred: ROOT_FRAME }));
  for (let i = 0; i < 50; i++) t.is((await a.next()).err, undefined);
  await eventually(() => b.pushes.length >= 2, 5000, 'push of the writes');
  await sleep(100);
  // One per brick event-loop turn in which writes completed: a few, never one per write.
  t.true(b.pushes.length - 1 <= 10, `50 writes made ${b.pushes.length - 1} pushes`);
  t.deepEqual([...new Set(pushed(b).slice(1).flat())], ['/f'], 'an fd fop names the path the fd was opened at');
  t.deepEqual(a.pushes, [], 'the client that made the change is not told');
  b.pushes.length = 0;
  await a.call('rename', { from: '/f', to: '/g' }, ROOT_FRAME);
  await a.call('link', { target: '/g', path: '/h' }, ROOT_FRAME);
  await eventually(() => pushed(b).flat().length >= 4, 5000, 'push of rename and link');
  t.deepEqual(new Set(pushed(b).flat()), new Set(['/f', '/g', '/h']));
  // After the rename, the fd's path is the new name.
  b.pushes.length = 0;
  await a.call('ftruncate', { fd, size: 0 }, ROOT_FRAME);
  await eventually(() => b.pushes.length === 1, 5000, 'push of the ftruncate');
  t.deepEqual(pushed(b), [['/g']]);
});

test('xattrop and failed fops push nothing; b\'s changes go to a', async (t) => {
  const { a, b } = await clients(t);
  await a.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await eventually(() => b.pushes.length === 1, 5000, 'push of the mkdir');
  b.pushes.length = 0;
  const one = Buffer.alloc(4);
  one.writeInt32BE(1);
  t.is((await a.call('xattrop', { path: '/d', add: { 'user.n': one } }, ROOT_FRAME)).err, undefined);
  t.is((await a.call('unlink', { path: '/missing' }, ROOT_FRAME)).err?.code, 'ENOENT');
  t.is((await b.call('setattr', { path: '/d', attrs: { mode: 0o700 } }, ROOT_FRAME)).err, undefined);
  await eventually(() => a.pushes.length === 1, 5000, 'push of b\'s setattr');
  await sleep(100);
  t.deepEqual(b.pushes, []);
  t.deepEqual(pushed(a), [['/d']]);
});

test('a client whose hello asks for no pushes (self-heal, rebalance) is sent none', async (t) => {
  const { a, brick } = await clients(t);
  const quiet = await RawBrickClient.connect(brick.port, brick.dir, { credentials: { pushes: false } });
  t.teardown(() => quiet.close());
  await a.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await quiet.call('setattr', { path: '/d', attrs: { mode: 0o700 } }, ROOT_FRAME);
  await eventually(() => a.pushes.length === 1, 5000, 'push of the quiet client\'s setattr to a');
  await a.call('setattr', { path: '/d', attrs: { mode: 0o755 } }, ROOT_FRAME);
  await sleep(200);
  t.deepEqual(quiet.pushes, [], 'asked for none, got none');
  t.deepEqual(pushed(a), [['/d']], 'its own changes still reach the others');
});

test('features.cache-invalidation off: nothing is pushed', async (t) => {
  const { a, b } = await clients(t, { 'features.cache-invalidation': 'off' });
  await a.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await a.call('setattr', { path: '/d', attrs: { mode: 0o700 } }, ROOT_FRAME);
  await sleep(200);
  t.deepEqual(b.pushes, []);
});

test('SIGHUP: a running brick applies a changed cache-invalidation option from its volfile', async (t) => {
  const { a, b, brick } = await clients(t);
  const log = (): string => fs.readFileSync(brick.log, 'utf8');
  fs.writeFileSync(brick.volfile, fs.readFileSync(brick.volfile, 'utf8').replace('option cache-invalidation on', 'option cache-invalidation off'));
  brick.proc!.kill('SIGHUP');
  await eventually(() => log().includes('options reloaded'), 5000, 'reload in the brick log');
  await a.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await sleep(200);
  t.deepEqual(b.pushes, [], 'off: nothing pushed');
  // A volfile that cannot apply changes nothing: the brick goes on as it was.
  fs.writeFileSync(brick.volfile, fs.readFileSync(brick.volfile, 'utf8').replace('option cache-invalidation off', 'option cache-invalidation maybe'));
  brick.proc!.kill('SIGHUP');
  await eventually(() => log().includes('not applied'), 5000, 'refusal in the brick log');
  fs.writeFileSync(brick.volfile, fs.readFileSync(brick.volfile, 'utf8').replace('option cache-invalidation maybe', 'option cache-invalidation on'));
  brick.proc!.kill('SIGHUP');
  await eventually(() => log().split('options reloaded').length === 3, 5000, 'second reload in the brick log');
  await a.call('rmdir', { path: '/d' }, ROOT_FRAME);
  await eventually(() => b.pushes.length === 1, 5000, 'on again: pushed');
  t.deepEqual(pushed(b), [['/d']]);
});
