// When close may return before a write burst's post-op (replicate, real brick processes, no
// FUSE). A close that returned is the promise a shell's `echo x > f && ...` relies on; if the
// only replica that took the writes dies right after, its changelog must still blame the
// replica that missed them, or a heal would copy the stale replica over acknowledged data.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { Changelog, changelogNames } from '../../client/xlators/cluster/replicate/changelog.js';
import type { Xattrs } from '../../lib/fops.js';
import { Fd } from '../../lib/inode.js';
import { delayFop, replicateClient, startReplicated } from '../helpers/replica.js';

const NAMES = ['rv-client-0', 'rv-client-1'];

/** The changelog a brick's copy of a file holds, read from disk (as row 0). */
function changelogOnDisk(file: string): Changelog {
  const row: Xattrs = {};
  for (const n of changelogNames(NAMES)) {
    const v = xattr.getAttributeSync(file, n);
    if (v) row[n] = v;
  }
  return new Changelog(NAMES, [row, undefined]);
}

test('with one replica down, close returns only after the survivor\'s post-op: it blames the missing replica, not itself', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5 });
  await vol.bricks[1]!.kill('SIGKILL');
  const r = await replicateClient(t, vol);
  const fd = Fd.forPath('/f', fs.constants.O_RDWR);
  await r.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await r.call('write', { fd, offset: 0, data: Buffer.from('acknowledged\n') }, ROOT_FRAME);
  // A slow post-op (the brick busy, the network late): a close that does not wait for it
  // returns while the survivor still holds only its pre-op marks.
  delayFop(r.children[0]!, 'xattrop', 300);
  await r.call('flush', { fd }, ROOT_FRAME);
  // What a crash of the survivor right after close would leave.
  const log = changelogOnDisk(path.join(vol.bricks[0]!.dir, 'f'));
  t.is(log.pending(0, 0, 'data'), 0, 'the survivor does not blame itself (its blame would not count)');
  t.true(log.pending(0, 1, 'data') > 0, 'the survivor blames the replica that missed the write');
  await r.call('release', { fd }, ROOT_FRAME);
});

test('with every replica up, the post-op sent behind a close has landed once release returns', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5 });
  const r = await replicateClient(t, vol);
  const fd = Fd.forPath('/f', fs.constants.O_RDWR);
  await r.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await r.call('write', { fd, offset: 0, data: Buffer.from('acknowledged\n') }, ROOT_FRAME);
  await r.call('flush', { fd }, ROOT_FRAME);
  await r.call('release', { fd }, ROOT_FRAME);
  for (const b of vol.bricks) {
    const log = changelogOnDisk(path.join(b.dir, 'f'));
    t.deepEqual([log.pending(0, 0, 'data'), log.pending(0, 1, 'data')], [0, 0], b.dir);
  }
});
