// Entry bursts (replicate's eager-lock for a directory's names): a row of creates and
// unlinks in one directory shares one whole-directory lock, one pre-op and one post-op per
// replica. Real brick processes, replicate client graphs of their own, no FUSE.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { FsError } from '../../lib/errors.js';
import { ENTRYLK_WHOLE_DIR, XATTR_AFR } from '../../lib/fops.js';
import type { Xlator } from '../../lib/xlator.js';
import { Fd } from '../../lib/inode.js';
import { eventually } from '../helpers/proc.js';
import { replicateClient, startReplicated } from '../helpers/replica.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_RDWR } = fs.constants;
/** Replica 2, a directory's changelog: entry changes pending about both replicas. */
const ENTRY_MARKS = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
/** ... about replica 1 only. */
const BLAMES_1 = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
const ZERO = Buffer.alloc(16);
/** Bursts that end only when something ends them (no idle timer within a test's time). */
const NO_IDLE_END = { set: { 'cluster.entry-post-op-delay-ms': '60000' } };

/** Counts the xattrops a replicate translator sends to each replica about `dir`. */
function countXattrops(r: Xlator, dir: string): number[] {
  const counts = r.children.map(() => 0);
  r.children.forEach((child, i) => {
    const call = child.call.bind(child);
    child.call = ((fop: string, a: { path?: string }) => {
      if (fop === 'xattrop' && a.path === dir) counts[i]!++;
      return call(fop as never, a as never, ROOT_FRAME);
    }) as typeof child.call;
  });
  return counts;
}

/** Whether another owner can take the directory's whole-directory lock on a brick now (and drops it again). */
async function dirLockFree(c: RawBrickClient, dir: string): Promise<boolean> {
  const r = await c.call('entrylk', { path: dir, name: ENTRYLK_WHOLE_DIR, owner: 'someone-else', cmd: 'trylock' }, ROOT_FRAME);
  if (r.err) return false;
  await c.call('entrylk', { path: dir, name: ENTRYLK_WHOLE_DIR, owner: 'someone-else', cmd: 'unlock' }, ROOT_FRAME);
  return true;
}

const dirMarks = (brickDir: string, dir: string): Buffer | null => xattr.getAttributeSync(path.join(brickDir, dir), XATTR_AFR);

async function raws(t: Parameters<typeof startReplicated>[0], vol: Awaited<ReturnType<typeof startReplicated>>): Promise<RawBrickClient[]> {
  const cs = await Promise.all(vol.bricks.map((b) => RawBrickClient.connect(b.port, b.dir)));
  t.teardown(() => cs.forEach((c) => c.close()));
  return cs;
}

test('a row of creates and unlinks in one directory takes one lock + pre-op per replica; a lookup of the directory ends it and clears the marks', async (t) => {
  const vol = await startReplicated(t, 2, 1, NO_IDLE_END);
  const r = await replicateClient(t, vol);
  const cs = await raws(t, vol);
  await r.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  const sent = countXattrops(r, '/d');
  for (let i = 0; i < 20; i++) {
    const fd = Fd.forPath(`/d/f${i}`, O_RDWR);
    await r.call('create', { path: `/d/f${i}`, mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
    await r.call('release', { fd }, ROOT_FRAME);
  }
  await r.call('mkdir', { path: '/d/sub', mode: 0o755 }, ROOT_FRAME);
  await r.call('symlink', { path: '/d/link', target: 'f0' }, ROOT_FRAME);
  for (let i = 0; i < 10; i++) await r.call('unlink', { path: `/d/f${i}` }, ROOT_FRAME);
  // 32 changes: one by one, each would take two xattrops per replica (64). A burst lives
  // at most a second, so a slow run may take a few.
  for (const n of sent) t.true(n <= 8, `xattrops on /d per replica: ${sent.join(', ')}`);
  for (const [i, b] of vol.bricks.entries()) {
    t.deepEqual(dirMarks(b.dir, 'd'), ENTRY_MARKS, `${b.dir}: pending while the burst is open`);
    t.false(await dirLockFree(cs[i]!, '/d'), `${b.dir}: the whole directory is locked`);
    t.deepEqual(fs.readdirSync(path.join(b.dir, 'd')).sort(), ['f10', 'f11', 'f12', 'f13', 'f14', 'f15', 'f16', 'f17', 'f18', 'f19', 'link', 'sub']);
  }
  await r.call('lookup', { path: '/d' }, ROOT_FRAME);
  for (const [i, b] of vol.bricks.entries()) {
    t.deepEqual(dirMarks(b.dir, 'd'), ZERO, `${b.dir}: marks cleared`);
    t.true(await dirLockFree(cs[i]!, '/d'), `${b.dir}: lock free`);
  }
});

test('renames within a directory and between two run in their bursts: marks on both parents, no transaction of their own', async (t) => {
  const vol = await startReplicated(t, 2, 1, NO_IDLE_END);
  const r = await replicateClient(t, vol);
  await r.call('mkdir', { path: '/a', mode: 0o755 }, ROOT_FRAME);
  await r.call('mkdir', { path: '/b', mode: 0o755 }, ROOT_FRAME);
  for (const n of ['f1', 'f2', 'f3']) {
    const fd = Fd.forPath(`/a/${n}`, O_RDWR);
    await r.call('create', { path: `/a/${n}`, mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
    await r.call('release', { fd }, ROOT_FRAME);
  }
  const onA = countXattrops(r, '/a');
  const onB = countXattrops(r, '/b');
  await r.call('rename', { from: '/a/f1', to: '/a/g1' }, ROOT_FRAME);
  await r.call('rename', { from: '/a/f2', to: '/b/f2' }, ROOT_FRAME);
  await r.call('rename', { from: '/a/f3', to: '/b/f3' }, ROOT_FRAME);
  await r.call('rename', { from: '/b/f3', to: '/a/f3' }, ROOT_FRAME);
  t.deepEqual(onA, [0, 0], 'the renames joined /a\'s open burst');
  t.deepEqual(onB, [1, 1], '/b: one pre-op for its burst');
  for (const b of vol.bricks) {
    t.deepEqual(dirMarks(b.dir, 'a'), ENTRY_MARKS, `${b.dir}: /a marked`);
    t.deepEqual(dirMarks(b.dir, 'b'), ENTRY_MARKS, `${b.dir}: /b marked`);
    t.deepEqual(fs.readdirSync(path.join(b.dir, 'a')).sort(), ['f3', 'g1']);
    t.deepEqual(fs.readdirSync(path.join(b.dir, 'b')).sort(), ['f2']);
  }
  // Renaming a directory ends the bursts under it first (their post-ops go by path).
  await r.call('rename', { from: '/b', to: '/c' }, ROOT_FRAME);
  for (const b of vol.bricks) t.deepEqual(dirMarks(b.dir, 'c'), ZERO, `${b.dir}: /c (was /b) settled before the rename`);
  await r.call('lookup', { path: '/a' }, ROOT_FRAME);
  await r.call('lookup', { path: '/' }, ROOT_FRAME);
  for (const b of vol.bricks) {
    t.deepEqual(dirMarks(b.dir, 'a'), ZERO, `${b.dir}: /a settled`);
    t.deepEqual(dirMarks(b.dir, '.'), ZERO, `${b.dir}: / settled`);
  }
});

test('another client\'s change in the directory ends the burst at once (the brick tells the holder), and both go on', async (t) => {
  const vol = await startReplicated(t, 2, 1, NO_IDLE_END);
  const a = await replicateClient(t, vol);
  const b = await replicateClient(t, vol);
  await a.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  const made = Fd.forPath('/d/a', O_RDWR);
  await a.call('create', { path: '/d/a', mode: 0o644, flags: O_RDWR, fd: made }, ROOT_FRAME);
  await a.call('release', { fd: made }, ROOT_FRAME);
  for (const brick of vol.bricks) t.deepEqual(dirMarks(brick.dir, 'd'), ENTRY_MARKS, 'a\'s burst is open');
  // Without the push, b's lock would wait out the brick's lock-timeout (30 s) and fail EAGAIN.
  const other = Fd.forPath('/d/b', O_RDWR);
  await b.call('create', { path: '/d/b', mode: 0o644, flags: O_RDWR, fd: other }, ROOT_FRAME);
  await b.call('release', { fd: other }, ROOT_FRAME);
  await a.call('unlink', { path: '/d/a' }, ROOT_FRAME);
  await b.call('unlink', { path: '/d/b' }, ROOT_FRAME);
  await a.call('lookup', { path: '/d' }, ROOT_FRAME);
  for (const brick of vol.bricks) {
    t.deepEqual(fs.readdirSync(path.join(brick.dir, 'd')), [], `${brick.dir}: every change landed`);
    t.deepEqual(dirMarks(brick.dir, 'd'), ZERO, `${brick.dir}: nothing pending`);
  }
});

test('a replica that fails a change in a burst stays blamed after its post-op, and a lookup heals it', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  await r.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await r.call('mkdir', { path: '/d/x', mode: 0o755 }, ROOT_FRAME);
  // Replica 1 fails one create of the row (a disk error there).
  const child = r.children[1]!;
  const call = child.call.bind(child);
  child.call = ((fop: string, args: { path?: string }) => {
    if (fop === 'mkdir' && args.path === '/d/y') return Promise.reject(FsError.of('EIO', 'injected'));
    return call(fop as never, args as never, ROOT_FRAME);
  }) as typeof child.call;
  await r.call('mkdir', { path: '/d/y', mode: 0o755 }, ROOT_FRAME);
  await r.call('mkdir', { path: '/d/z', mode: 0o755 }, ROOT_FRAME);
  child.call = call;
  const [b0, b1] = vol.bricks;
  await eventually(() => dirMarks(b0!.dir, 'd')?.equals(BLAMES_1) === true, 5000, 'replica 0 to blame replica 1 once the burst ends');
  t.false(fs.existsSync(path.join(b1!.dir, 'd/y')));
  // Another client's lookup sees the blame and heals the directory.
  const other = await replicateClient(t, vol);
  await other.call('lookup', { path: '/d' }, ROOT_FRAME);
  t.true(fs.existsSync(path.join(b1!.dir, 'd/y')), 'healed onto replica 1');
  for (const b of vol.bricks) t.deepEqual(dirMarks(b.dir, 'd'), ZERO, `${b.dir}: nothing pending after the heal`);
});
