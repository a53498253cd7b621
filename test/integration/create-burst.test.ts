// A replicated create starts the new file's write burst in the create request itself: each
// brick takes the burst's lock and sets its pre-op marks on a file it made, so the first
// write needs no lock + pre-op round trip. Real brick processes, no FUSE.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { INODE_LOCK } from '../../client/xlators/cluster/replicate/index.js';
import { XATTR_AFR } from '../../lib/fops.js';
import { Fd } from '../../lib/inode.js';
import { startDistribute } from '../helpers/cluster.js';
import { eventually } from '../helpers/proc.js';
import { replicateClient, startReplicated } from '../helpers/replica.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_RDWR, O_WRONLY } = fs.constants;
/** Replica 2, pre-op of a burst: data and metadata pending about both replicas. */
const BURST_MARKS = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
const ZERO = Buffer.alloc(16);

/** Whether another owner can take the burst's lock on a brick's path now (and drops it again). */
async function lockFree(c: RawBrickClient, p: string): Promise<boolean> {
  const r = await c.call('xattrop', { path: p, add: {}, lock: { name: INODE_LOCK, owner: 'someone-else' } }, ROOT_FRAME);
  if (r.err) return false;
  await c.call('xattrop', { path: p, add: {}, unlock: { name: INODE_LOCK, owner: 'someone-else' } }, ROOT_FRAME);
  return true;
}

function indexed(brickDir: string, volPath: string): boolean {
  return fs.existsSync(path.join(brickDir, '.brickfs', 'index', Buffer.from(volPath).toString('base64url')));
}

test('a brick create with a burst takes its lock and sets its marks on the file it made, and only then', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const burst = { lock: { name: INODE_LOCK, owner: 'me' }, add: { [XATTR_AFR]: BURST_MARKS } };

  const made = await c.call('create', { path: '/new', mode: 0o644, flags: O_WRONLY, burst }, ROOT_FRAME);
  t.is(made.err, undefined);
  t.true((made.ok as { burst?: boolean }).burst, 'the reply says the burst started');
  t.deepEqual(xattr.getAttributeSync(path.join(brick.dir, 'new'), XATTR_AFR), BURST_MARKS);
  t.true(indexed(brick.dir, '/new'), 'a file with pending marks is in the heal index');
  t.false(await lockFree(c, '/new'), 'the burst\'s lock is held');

  // A name that exists: opened, no marks, no lock kept.
  fs.writeFileSync(path.join(brick.dir, 'old'), 'there\n');
  const opened = await c.call('create', { path: '/old', mode: 0o644, flags: O_WRONLY, burst }, ROOT_FRAME);
  t.is(opened.err, undefined);
  t.falsy((opened.ok as { burst?: boolean }).burst);
  t.is(xattr.getAttributeSync(path.join(brick.dir, 'old'), XATTR_AFR), null);
  t.true(await lockFree(c, '/old'));

  // The lock busy (held by another connection, taken while an earlier file of the name
  // existed): the file is made plain.
  const c2 = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c2.close());
  fs.writeFileSync(path.join(brick.dir, 'busy'), '');
  t.is((await c2.call('xattrop', { path: '/busy', add: {}, lock: { name: INODE_LOCK, owner: 'holder' } }, ROOT_FRAME)).err, undefined);
  fs.rmSync(path.join(brick.dir, 'busy'));
  const plain = await c.call('create', { path: '/busy', mode: 0o644, flags: O_WRONLY, burst }, ROOT_FRAME);
  t.is(plain.err, undefined);
  t.falsy((plain.ok as { burst?: boolean }).burst, 'no burst without its lock');
  t.is(xattr.getAttributeSync(path.join(brick.dir, 'busy'), XATTR_AFR), null, 'and no marks');
});

test('replicate: the create\'s burst carries the first writes; close settles the marks and frees the lock on every copy', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const raws = await Promise.all(vol.bricks.map((b) => RawBrickClient.connect(b.port, b.dir)));
  t.teardown(() => raws.forEach((c) => c.close()));
  let xattrops = 0;
  for (const child of r.children) {
    const call = child.call.bind(child);
    child.call = ((fop: string, a: never) => {
      if (fop === 'xattrop') xattrops++;
      return call(fop as never, a, ROOT_FRAME);
    }) as typeof child.call;
  }

  const fd = Fd.forPath('/f', O_RDWR);
  await r.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  for (const b of vol.bricks) t.deepEqual(xattr.getAttributeSync(path.join(b.dir, 'f'), XATTR_AFR), BURST_MARKS, `${b.dir}: pre-op marks from the create`);
  const afterCreate = xattrops;
  await r.call('write', { fd, offset: 0, data: Buffer.from('one\n') }, ROOT_FRAME);
  await r.call('write', { fd, offset: 4, data: Buffer.from('two\n') }, ROOT_FRAME);
  t.is(xattrops, afterCreate, 'the writes took no lock + pre-op of their own');
  await r.call('flush', { fd }, ROOT_FRAME);
  await r.call('release', { fd }, ROOT_FRAME);
  for (const [i, b] of vol.bricks.entries()) {
    const file = path.join(b.dir, 'f');
    t.is(fs.readFileSync(file, 'utf8'), 'one\ntwo\n');
    t.deepEqual(xattr.getAttributeSync(file, XATTR_AFR), ZERO, `${b.dir}: marks settled`);
    t.false(indexed(b.dir, '/f'), `${b.dir}: out of the heal index`);
    t.true(await lockFree(raws[i]!, '/f'), `${b.dir}: lock free`);
  }
});

test('replicate: a file created and never written ends its burst by itself; the copies get one mtime', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const raws = await Promise.all(vol.bricks.map((b) => RawBrickClient.connect(b.port, b.dir)));
  t.teardown(() => raws.forEach((c) => c.close()));
  // Never written, and never released either: the burst ends on its idle timer alone.
  await r.call('create', { path: '/empty', mode: 0o644, flags: O_RDWR, fd: Fd.forPath('/empty', O_RDWR) }, ROOT_FRAME);
  await eventually(async () => (await Promise.all(raws.map((c) => lockFree(c, '/empty')))).every(Boolean), 5000, 'the burst to end');
  const files = vol.bricks.map((b) => path.join(b.dir, 'empty'));
  for (const f of files) t.deepEqual(xattr.getAttributeSync(f, XATTR_AFR), ZERO, `${f}: marks settled`);
  t.is(fs.statSync(files[0]!).mtimeMs, fs.statSync(files[1]!).mtimeMs);
});

test('replicate: when one replica makes the file without the burst, the other\'s marks are undone and writes start a burst as before', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const raws = await Promise.all(vol.bricks.map((b) => RawBrickClient.connect(b.port, b.dir)));
  t.teardown(() => raws.forEach((c) => c.close()));
  // Another owner holds the new name's burst lock on replica 1 (a lock left by a file of
  // that name that was just removed): replica 1 creates plain.
  fs.writeFileSync(path.join(vol.bricks[1]!.dir, 'g'), '');
  t.is((await raws[1]!.call('xattrop', { path: '/g', add: {}, lock: { name: INODE_LOCK, owner: 'holder' } }, ROOT_FRAME)).err, undefined);
  fs.rmSync(path.join(vol.bricks[1]!.dir, 'g'));
  const fd = Fd.forPath('/g', O_RDWR);
  await r.call('create', { path: '/g', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await eventually(() => xattr.getAttributeSync(path.join(vol.bricks[0]!.dir, 'g'), XATTR_AFR)?.equals(ZERO), 5000, 'the undo on replica 0');
  t.true(await lockFree(raws[0]!, '/g'), 'replica 0 dropped the lock');
  await raws[1]!.call('xattrop', { path: '/g', add: {}, unlock: { name: INODE_LOCK, owner: 'holder' } }, ROOT_FRAME);
  await r.call('write', { fd, offset: 0, data: Buffer.from('data\n') }, ROOT_FRAME);
  await r.call('flush', { fd }, ROOT_FRAME);
  await r.call('release', { fd }, ROOT_FRAME);
  for (const b of vol.bricks) {
    const file = path.join(b.dir, 'g');
    t.is(fs.readFileSync(file, 'utf8'), 'data\n', `${b.dir}: the write reached every copy`);
    t.deepEqual(xattr.getAttributeSync(file, XATTR_AFR), ZERO, `${b.dir}: nothing pending`);
  }
});
