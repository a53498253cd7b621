// A replicated create opens the new file's write burst in the same round trip (real brick
// processes, no FUSE): the lock + pre-op goes right behind the create on each replica, so the
// first write does not wait for one; when that cannot be had, no mark is left behind.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import '../../client/xlators/index.js';
import { XATTR_AFR, type FopName } from '../../lib/fops.js';
import type { Xlator } from '../../lib/xlator.js';
import { holdFop, replicateClient, startReplicated } from '../helpers/replica.js';

/** Records what a replica is asked for ("fop path [lock|unlock]"), and when a create is answered ("<- create"). */
function record(x: Xlator): string[] {
  const seen: string[] = [];
  const call = x.call.bind(x);
  x.call = ((f: FopName, a: Record<string, unknown>) => {
    const lock = a.lock ? ' lock' : a.unlock ? ' unlock' : '';
    seen.push(`${f} ${String(a.path ?? '')}${lock}`.trim());
    const r = call(f, a as never);
    if (f === 'create') void r.then(() => seen.push('<- create'), () => seen.push('<- create failed'));
    return r;
  }) as Xlator['call'];
  return seen;
}

/** The packed changelog of a brick's copy, as int32s (all zero at rest). */
function counters(file: string): number[] {
  const v = xattr.getAttributeSync(file, XATTR_AFR);
  return v ? Array.from({ length: v.length / 4 }, (_, i) => v.readInt32BE(i * 4)) : [];
}

test('create takes the burst\'s lock + pre-op with it; the first write goes at once; the post-op settles it', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const r = await replicateClient(t, vol);
  const seen = r.children.map(record);
  const { fd } = await r.call('create', { path: '/f', mode: 0o644, flags: fs.constants.O_RDWR });
  await r.call('write', { fd, offset: 0, data: Buffer.from('one\n') });
  await r.call('write', { fd, offset: 4, data: Buffer.from('two\n') });
  await r.call('flush', { fd });
  await r.call('release', { fd });
  for (const s of seen) {
    // The parent's entry transaction ("xattrop / lock", "xattrop / unlock") aside.
    const onFile = s.filter((c) => !c.startsWith('xattrop / '));
    t.deepEqual(onFile.slice(0, 5), ['create /f', 'xattrop /f lock', '<- create', 'write', 'write'], 'lock + pre-op sent before the create is answered, none before the writes');
    t.is(s.filter((c) => c === 'xattrop /f lock').length, 1, 'one lock + pre-op for the file');
    t.is(s.filter((c) => c === 'xattrop /f unlock').length, 1, 'one post-op + unlock');
  }
  for (const b of vol.bricks) {
    t.is(fs.readFileSync(path.join(b.dir, 'f'), 'utf8'), 'one\ntwo\n');
    t.deepEqual(counters(path.join(b.dir, 'f')), [0, 0, 0, 0], `${b.dir}: settled`);
  }
});

test('create of a file another client holds locked: no burst from the create, no mark left, the writes wait their turn', async (t) => {
  const vol = await startReplicated(t, 2, 1);
  const other = await replicateClient(t, vol);
  const r = await replicateClient(t, vol);
  // The other client writes /f and its burst's post-op is held: it keeps the lock.
  const o = await other.call('create', { path: '/f', mode: 0o644, flags: fs.constants.O_RDWR });
  await other.call('write', { fd: o.fd, offset: 0, data: Buffer.from('theirs\n') });
  const held = other.children.map((c) => holdFop(c, 'xattrop'));
  const { fd } = await r.call('create', { path: '/f', mode: 0o644, flags: fs.constants.O_RDWR });
  const writing = r.call('write', { fd, offset: 0, data: Buffer.from('mine!!\n') });
  await new Promise((res) => setTimeout(res, 200));
  // Still held by the other client: our write waits for its lock.
  for (const b of vol.bricks) t.is(fs.readFileSync(path.join(b.dir, 'f'), 'utf8'), 'theirs\n');
  for (const h of held) h.release();
  await writing;
  await r.call('flush', { fd });
  await r.call('release', { fd });
  await other.call('flush', { fd: o.fd });
  await other.call('release', { fd: o.fd });
  for (const b of vol.bricks) {
    t.is(fs.readFileSync(path.join(b.dir, 'f'), 'utf8'), 'mine!!\n');
    t.deepEqual(counters(path.join(b.dir, 'f')), [0, 0, 0, 0], `${b.dir}: no mark left by the create that could not lock`);
  }
});
