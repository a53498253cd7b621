// The replication changelog as it lies on a brick (real brick processes, no FUSE): one
// packed xattr per copy, small enough for ext4 to keep inside the inode; the per-replica
// xattrs of earlier versions are still read, healed from and cleared.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { XATTR_AFR, XATTR_AFR_PREFIX } from '../../lib/fops.js';
import { Fd } from '../../lib/inode.js';
import { replicateClient, startReplicated } from '../helpers/replica.js';

/** The changelog xattrs of a brick's copy, by name. */
function changelogXattrs(file: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const n of xattr.listAttributesSync(file)) if (n === XATTR_AFR || n.startsWith(XATTR_AFR_PREFIX)) out[n] = xattr.getAttributeSync(file, n)!;
  return out;
}

test('a written file carries one changelog xattr of 16 bytes on each copy (replica 2), zero at rest', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const fd = Fd.forPath('/f', fs.constants.O_RDWR);
  await r.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await r.call('write', { fd, offset: 0, data: Buffer.from('data\n') }, ROOT_FRAME);
  await r.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, ROOT_FRAME);
  await r.call('flush', { fd }, ROOT_FRAME);
  await r.call('release', { fd }, ROOT_FRAME);
  await r.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  for (const b of vol.bricks) {
    const onFile = changelogXattrs(path.join(b.dir, 'f'));
    t.deepEqual(Object.keys(onFile), [XATTR_AFR], `${b.dir}/f: one changelog xattr`);
    t.deepEqual([...onFile[XATTR_AFR]!], new Array(16).fill(0), `${b.dir}/f: 2 replicas x [data, metadata], all settled`);
    // The entry change (mkdir /d) went into the root's changelog, slot 0 of each replica.
    t.deepEqual(Object.keys(changelogXattrs(b.dir)), [XATTR_AFR], `${b.dir}: the root's entry changelog`);
  }
});

test('pending marks in the per-replica xattrs of earlier versions still blame: the stale copy is healed and the marks cleared', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const names = ['rv-client-0', 'rv-client-1'];
  const r = await replicateClient(t, vol);
  t.deepEqual(r.children.map((c) => c.name), names, 'the helper names replicas as this test assumes');
  const fd = Fd.forPath('/old', fs.constants.O_RDWR);
  await r.call('create', { path: '/old', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await r.call('write', { fd, offset: 0, data: Buffer.from('the good copy\n') }, ROOT_FRAME);
  await r.call('flush', { fd }, ROOT_FRAME);
  await r.call('release', { fd }, ROOT_FRAME);
  // What an earlier version left after a write that brick 1 missed: brick 0's copy blames
  // brick 1 for one data change in the old format, and brick 1's copy is behind.
  const good = path.join(vol.bricks[0]!.dir, 'old');
  const stale = path.join(vol.bricks[1]!.dir, 'old');
  const blame = Buffer.alloc(12);
  blame.writeInt32BE(1, 0);
  xattr.setAttributeSync(good, `${XATTR_AFR_PREFIX}${names[1]}`, blame);
  xattr.setAttributeSync(good, `${XATTR_AFR_PREFIX}${names[0]}`, Buffer.alloc(12));
  fs.writeFileSync(stale, 'stale\n');
  // A client that never saw the file looks it up: the changelog check heals it.
  const fresh = await replicateClient(t, vol);
  const st = await fresh.call('lookup', { path: '/old' }, ROOT_FRAME);
  t.is(st.iatt.size, 'the good copy\n'.length);
  t.is(fs.readFileSync(stale, 'utf8'), 'the good copy\n', 'the stale copy was healed from the blaming one');
  const left = changelogXattrs(good);
  t.deepEqual([...left[`${XATTR_AFR_PREFIX}${names[1]}`]!], new Array(12).fill(0), 'the old-format mark is cleared');
});
