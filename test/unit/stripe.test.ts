// cluster/stripe over in-memory stub children (test/helpers/stub-child.ts): one fd open on
// every child, its block size kept on the fd, blocks placed round-robin, and an open that
// fails on one child taken back on the others.
import test from 'ava';
import { constants as fsConstants } from 'node:fs';
import { Stripe } from '../../client/xlators/cluster/stripe/index.js';
import { decodeGeometry, XATTR_STRIPE } from '../../client/xlators/cluster/stripe/blocks.js';
import { FsError } from '../../lib/errors.js';
import { ROOT_FRAME } from '../../lib/frame.js';
import { Fd } from '../../lib/inode.js';
import { StubChild, stubChildren } from '../helpers/stub-child.js';

const { O_CREAT, O_RDWR, O_RDONLY } = fsConstants;
const B = 4096;

function make(n = 2, blockSize = B): { stripe: Stripe; kids: StubChild[] } {
  const kids = stubChildren(n, 'brick');
  const stripe = new Stripe({ name: 'stripe', type: 'cluster/stripe', options: { 'block-size': String(blockSize) }, children: kids });
  for (const k of kids) stripe.notify('CHILD_UP', k);
  return { stripe, kids };
}

/** n bytes of a pattern that differs from block to block. */
function pattern(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (Math.floor(i / B) * 31 + i) & 0xff));
}

test('create opens the one fd on every child; blocks land round-robin and read back whole', async (t) => {
  const { stripe, kids } = make(2);
  const fd = Fd.forPath('/f', O_CREAT | O_RDWR);
  await stripe.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  for (const k of kids) t.is(k.callsOf('create')[0]!.args.fd, fd, `${k.name} got the same fd`);
  const data = pattern(3 * B - 100);
  t.is((await stripe.call('write', { fd, offset: 0, data }, ROOT_FRAME)).size, data.length);
  // Block 0 and 2 on brick-0, block 1 on brick-1, each at its own offset.
  t.deepEqual(kids[0]!.fs.readFile('/f').subarray(0, B), data.subarray(0, B));
  t.deepEqual(kids[0]!.fs.readFile('/f').subarray(2 * B), data.subarray(2 * B));
  t.deepEqual(kids[1]!.fs.readFile('/f').subarray(B, 2 * B), data.subarray(B, 2 * B));
  t.is(kids[1]!.fs.readFile('/f').length, 2 * B);
  t.deepEqual((await stripe.call('read', { fd, offset: 0, size: 4 * B }, ROOT_FRAME)).data, data, 'no more than the logical size');
  t.is((await stripe.call('fstat', { fd }, ROOT_FRAME)).iatt.size, data.length);
  t.like(stripe.statedump(), { openFds: 1 });
  await stripe.call('release', { fd }, ROOT_FRAME);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0]);
  for (const k of kids) t.is(k.callsOf('release')[0]!.args.fd, fd);
  t.like(stripe.statedump(), { openFds: 0 });
  await t.throwsAsync(stripe.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME), { instanceOf: FsError, code: 'EBADF' });
});

test('each fd keeps the block size its file was striped with, read from the file at open', async (t) => {
  const { stripe, kids } = make(2, 2 * B);
  const fd = Fd.forPath('/big-blocks', O_CREAT | O_RDWR);
  await stripe.call('create', { path: '/big-blocks', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await stripe.call('write', { fd, offset: 0, data: pattern(4 * B) }, ROOT_FRAME);
  await stripe.call('release', { fd }, ROOT_FRAME);
  t.is(decodeGeometry(kids[1]!.fs.xattr('/big-blocks', XATTR_STRIPE)!)?.blockSize, 2 * B);
  // The same bricks under a stripe whose new files get smaller blocks.
  const small = new Stripe({ name: 'stripe2', type: 'cluster/stripe', options: { 'block-size': String(B) }, children: kids });
  for (const k of kids) small.notify('CHILD_UP', k);
  const rfd = Fd.forPath('/big-blocks', O_RDONLY);
  await small.call('open', { path: '/big-blocks', flags: rfd.flags, fd: rfd }, ROOT_FRAME);
  t.deepEqual((await small.call('read', { fd: rfd, offset: 0, size: 4 * B }, ROOT_FRAME)).data, pattern(4 * B));
  await small.call('release', { fd: rfd }, ROOT_FRAME);
});

test('an open that fails on one child is released on the others and leaves the fd unopened', async (t) => {
  const { stripe, kids } = make(3);
  for (const k of kids) k.fs.writeFile('/f', 'x');
  kids[2]!.fail('open', 'EACCES');
  const fd = Fd.forPath('/f', O_RDONLY);
  await t.throwsAsync(stripe.call('open', { path: '/f', flags: fd.flags, fd }, ROOT_FRAME), { instanceOf: FsError, code: 'EACCES' });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(kids.map((k) => k.callsOf('release').map((c) => c.args.fd)), [[fd], [fd], []]);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0, 0]);
  t.like(stripe.statedump(), { openFds: 0 });
  await t.throwsAsync(stripe.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME), { instanceOf: FsError, code: 'EBADF' });
  // The same fd opens once every child answers.
  await stripe.call('open', { path: '/f', flags: fd.flags, fd }, ROOT_FRAME);
  t.deepEqual(kids.map((k) => k.openFds), [1, 1, 1]);
  await stripe.call('release', { fd }, ROOT_FRAME);
});
