// Entry self-heal of a directory against another client's entry change in flight in it
// (replicate, real brick processes, no FUSE). A change marks the directory on every replica
// (pre-op) before it is done there, and clears the marks after (post-op): a heal that reads
// those marks in between must not take them for an interrupted change and "heal" the name
// away from the replica where the change already landed. That is how a rebalance lost files
// (test/mount/rebalance.test.ts, 2×2 → 3×2): its renames of moved files into place raced the
// mount's heals of the directory, one heal each way, and the name went from both replicas.
import { ROOT_FRAME } from '../../lib/frame.js';
import { Fd } from '../../lib/inode.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import '../../client/xlators/index.js';
import { delayFop, replicateClient, startReplicated } from '../helpers/replica.js';

test('a heal of a directory waits for an entry change in flight in it: a name renamed in is on every replica after', async (t) => {
  const vol = await startReplicated(t, 2, 1, { pingTimeoutS: 5 });
  const mover = await replicateClient(t, vol);
  const mount = await replicateClient(t, vol);
  await mover.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  const fd = Fd.forPath('/stage', fs.constants.O_RDWR);
  await mover.call('create', { path: '/stage', mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
  await mover.call('write', { fd, offset: 0, data: Buffer.from('moved here\n') }, ROOT_FRAME);
  await mover.call('release', { fd }, ROOT_FRAME);
  // The rename lands on replica 1 at once and on replica 0 later (a busy brick).
  delayFop(mover.children[0]!, 'rename', 600);
  const renaming = mover.call('rename', { from: '/stage', to: '/d/x' }, ROOT_FRAME);
  const onDisk = (b: number): boolean => fs.existsSync(path.join(vol.bricks[b]!.dir, 'd/x'));
  for (let i = 0; i < 100 && !onDisk(1); i++) await new Promise((r) => setTimeout(r, 5));
  t.true(onDisk(1) && !onDisk(0), 'the rename is half done');
  // Replica 0's directory changed last (another name's change landed there after).
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(vol.bricks[0]!.dir, 'd'), later, later);
  // Another client looks the directory up meanwhile: both copies carry the rename's pre-op.
  await mount.call('lookup', { path: '/d' }, ROOT_FRAME);
  await renaming;
  await new Promise((r) => setTimeout(r, 200));
  t.true(onDisk(0), '/d/x on replica 0');
  t.true(onDisk(1), '/d/x on replica 1 (a heal removed it as if it had been deleted)');
});
