// Replicate's metadata burst: an owner, mode or time change of a path with no burst open
// keeps its lock and metadata pre-op for a moment, so the changes that follow (tar's
// utimens, chown and chmod of each directory) are one round trip each. Real brick
// processes, no FUSE.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { INODE_LOCK } from '../../client/xlators/cluster/replicate/index.js';
import { XATTR_AFR } from '../../lib/fops.js';
import type { Xlator } from '../../lib/xlator.js';
import { eventually } from '../helpers/proc.js';
import { replicateClient, startReplicated } from '../helpers/replica.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_RDWR } = fs.constants;

/** Replica 2 counters as [data or entry, metadata] per replica, big-endian int32 (all zero when the xattr is missing). */
function counters(file: string): number[] {
  const v = xattr.getAttributeSync(file, XATTR_AFR) ?? Buffer.alloc(16);
  return [0, 4, 8, 12].map((o) => v.readInt32BE(o));
}

async function lockFree(c: RawBrickClient, p: string): Promise<boolean> {
  const r = await c.call('xattrop', { path: p, add: {}, lock: { name: INODE_LOCK, owner: 'someone-else' } });
  if (r.err) return false;
  await c.call('xattrop', { path: p, add: {}, unlock: { name: INODE_LOCK, owner: 'someone-else' } });
  return true;
}

/** Counts the xattrops (pre-ops and post-ops) replicate sends to its children. */
function countXattrops(r: Xlator): () => number {
  let n = 0;
  for (const child of r.children) {
    const call = child.call.bind(child);
    child.call = ((fop: string, a: never) => {
      if (fop === 'xattrop') n++;
      return call(fop as never, a);
    }) as typeof child.call;
  }
  return () => n;
}

async function setup(t: ExecutionContext) {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const raws = await Promise.all(vol.bricks.map((b) => RawBrickClient.connect(b.port, b.dir)));
  t.teardown(() => raws.forEach((c) => c.close()));
  const settled = (p: string): Promise<boolean> => eventually(async () => (await Promise.all(raws.map((c) => lockFree(c, p)))).every(Boolean), 5000, `the burst on ${p} to end`);
  return { vol, r, raws, settled };
}

test('a directory\'s utimens, chown and chmod run under one lock and pre-op; the post-op and unlock follow by themselves', async (t) => {
  const { vol, r, raws, settled } = await setup(t);
  await r.call('mkdir', { path: '/d', mode: 0o700 });
  const xattrops = countXattrops(r);
  await r.call('setattr', { path: '/d', attrs: { mtimeMs: Date.UTC(2001, 1, 3) } });
  t.is(xattrops(), 2, 'lock and pre-op, one request per replica');
  for (const [i, b] of vol.bricks.entries()) {
    t.deepEqual(counters(path.join(b.dir, 'd')), [0, 1, 0, 1], `${b.dir}: metadata pending about both`);
    t.false(await lockFree(raws[i]!, '/d'), `${b.dir}: the lock is held`);
  }
  await r.call('setattr', { path: '/d', attrs: { uid: 1234, gid: 5678 } });
  await r.call('setattr', { path: '/d', attrs: { mode: 0o751 } });
  t.is(xattrops(), 2, 'the next changes took no lock or pre-op of their own');
  await settled('/d');
  t.is(xattrops(), 4, 'one post-op per replica');
  for (const b of vol.bricks) {
    const dir = path.join(b.dir, 'd');
    const st = fs.statSync(dir);
    t.deepEqual([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs], [0o751, 1234, 5678, Date.UTC(2001, 1, 3)], `${b.dir}: every change`);
    t.deepEqual(counters(dir), [0, 0, 0, 0], `${b.dir}: marks settled`);
  }
});

test('with a replica down, a metadata change is answered only once its post-op has landed', async (t) => {
  const { vol, r, raws } = await setup(t);
  await r.call('mkdir', { path: '/d', mode: 0o700 });
  await vol.bricks[1]!.kill();
  await eventually(async () => {
    await r.call('setattr', { path: '/d', attrs: { mode: 0o705 } });
    return true;
  }, 5000, 'a setattr with replica 1 gone');
  // Answered: replica 0 already blames replica 1 and no longer itself, and its lock is free.
  t.deepEqual(counters(path.join(vol.bricks[0]!.dir, 'd')), [0, 0, 0, 1]);
  t.true(await lockFree(raws[0]!, '/d'));
  t.is(fs.statSync(path.join(vol.bricks[0]!.dir, 'd')).mode & 0o777, 0o705);
});

test('a write after a metadata burst on a file ends it and starts a write burst that marks data too', async (t) => {
  const { vol, r, settled } = await setup(t);
  const { fd } = await r.call('create', { path: '/f', mode: 0o644, flags: O_RDWR });
  await r.call('flush', { fd });
  await settled('/f');
  await r.call('setattr', { path: '/f', attrs: { mode: 0o600 } });
  for (const b of vol.bricks) t.deepEqual(counters(path.join(b.dir, 'f')), [0, 1, 0, 1], `${b.dir}: metadata burst`);
  await r.call('write', { fd, offset: 0, data: Buffer.from('data\n') });
  for (const b of vol.bricks) t.deepEqual(counters(path.join(b.dir, 'f')), [1, 1, 1, 1], `${b.dir}: write burst, data and metadata`);
  await r.call('flush', { fd });
  await r.call('release', { fd });
  await settled('/f');
  for (const b of vol.bricks) {
    const file = path.join(b.dir, 'f');
    t.is(fs.readFileSync(file, 'utf8'), 'data\n');
    t.is(fs.statSync(file).mode & 0o777, 0o600);
    t.deepEqual(counters(file), [0, 0, 0, 0], `${b.dir}: marks settled`);
  }
});

test('renaming a directory ends the metadata bursts on it and under it before it moves', async (t) => {
  const { vol, r, settled } = await setup(t);
  await r.call('mkdir', { path: '/a', mode: 0o755 });
  await r.call('mkdir', { path: '/a/b', mode: 0o755 });
  await r.call('setattr', { path: '/a/b', attrs: { mode: 0o700 } });
  await r.call('setattr', { path: '/a', attrs: { mode: 0o711 } });
  await r.call('rename', { from: '/a', to: '/c' });
  await settled('/c');
  await settled('/c/b');
  for (const b of vol.bricks) {
    t.deepEqual(counters(path.join(b.dir, 'c')), [0, 0, 0, 0], `${b.dir}: /c settled`);
    t.deepEqual(counters(path.join(b.dir, 'c', 'b')), [0, 0, 0, 0], `${b.dir}: /c/b settled`);
    t.is(fs.statSync(path.join(b.dir, 'c', 'b')).mode & 0o777, 0o700);
  }
});
