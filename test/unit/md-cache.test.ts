import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import { S_IFREG, XATTR_GFID } from '../../lib/fops.js';
import { Fd, ROOT_ID } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { MdCache } from '../../client/xlators/performance/md-cache.js';
import { StubChild } from '../helpers/stub-child.js';

const enoent = { code: 'ENOENT' } as const;

/** A child over a memory filesystem holding /f (1 byte); it records every call (test/helpers/stub-child.ts). */
function make(timeout = '1'): { md: MdCache; child: StubChild } {
  const child = new StubChild('stub');
  child.fs.writeFile('/f', 'x', { timeMs: 0 });
  const md = new MdCache({ name: 'md', type: 'performance/md-cache', options: { 'md-cache-timeout': timeout }, children: [child] });
  return { md, child };
}

test('a repeated lookup is answered from the cache within the timeout', async (t) => {
  const { md, child } = make();
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup']);
});

test('entries expire after md-cache-timeout', async (t) => {
  const { md, child } = make('1');
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  await new Promise((r) => setTimeout(r, 1100));
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup']);
});

test('timeout 0 disables caching', async (t) => {
  const { md, child } = make('0');
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.is(child.fops.length, 2);
});

test('writes, unlink and rename through this client invalidate what they change', async (t) => {
  const { md, child } = make();
  const fd = Fd.forPath('/f', 2);
  await md.call('create', { path: '/f', mode: 0o644, flags: 2, fd }, ROOT_FRAME);
  await md.call('fstat', { fd }, ROOT_FRAME);
  t.deepEqual(child.fops, ['create'], 'fstat after create is served from the create reply');
  await md.call('write', { fd, offset: 8, data: Buffer.from('x') }, ROOT_FRAME);
  t.is((await md.call('fstat', { fd }, ROOT_FRAME)).iatt.size, 9, 'a write moves the cached size to its end');
  t.false(child.fops.includes('fstat'), 'the size after a write comes from the cache');
  await md.call('unlink', { path: '/f' }, ROOT_FRAME);
  await t.throwsAsync(md.call('lookup', { path: '/f' }, ROOT_FRAME), enoent);
  t.is(child.fops.filter((c) => c === 'lookup').length, 1);
  child.fs.writeFile('/d/x');
  await md.call('lookup', { path: '/d/x' }, ROOT_FRAME);
  await md.call('rename', { from: '/d', to: '/e' }, ROOT_FRAME);
  await t.throwsAsync(md.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  t.is(child.fops.filter((c) => c === 'lookup').length, 3, 'renaming a directory drops what lies under it');
});

test('readdir fills the cache with the entries attributes (find + stat without round trips)', async (t) => {
  const { md, child } = make();
  child.fs.writeFile('/dir/a', '12345');
  await md.call('readdir', { path: '/dir' }, ROOT_FRAME);
  t.is((await md.call('lookup', { path: '/dir/a' }, ROOT_FRAME)).iatt.size, 5);
  t.deepEqual(child.fops, ['readdir']);
});

test('an entry change updates the cached parent (times, link count) instead of dropping it', async (t) => {
  const { md, child } = make();
  child.fs.mkdirp('/d', { timeMs: 0 });
  const before = (await md.call('lookup', { path: '/d' }, ROOT_FRAME)).iatt;
  await md.call('mkdir', { path: '/d/sub', mode: 0o755 }, ROOT_FRAME);
  const after = (await md.call('lookup', { path: '/d' }, ROOT_FRAME)).iatt;
  t.is(child.fops.filter((c) => c === 'lookup').length, 1, 'the parent is still cached');
  t.is(after.nlink, before.nlink + 1);
  t.true(after.mtimeMs > before.mtimeMs);
  await md.call('rename', { from: '/d/sub', to: '/e' }, ROOT_FRAME);
  await md.call('lookup', { path: '/d' }, ROOT_FRAME);
  t.is(child.fops.filter((c) => c === 'lookup').length, 2, 'a rename of a directory drops both parents');
  // A file known to be one moves its parent's times only, as a create does.
  const fd = Fd.forPath('/d/f', 0o101);
  await md.call('create', { path: '/d/f', mode: 0o644, flags: 0o101, fd }, ROOT_FRAME);
  await md.call('release', { fd }, ROOT_FRAME);
  const beforeRename = (await md.call('lookup', { path: '/d' }, ROOT_FRAME)).iatt;
  await new Promise((r) => setTimeout(r, 5));
  await md.call('rename', { from: '/d/f', to: '/d/g' }, ROOT_FRAME);
  const afterRename = (await md.call('lookup', { path: '/d' }, ROOT_FRAME)).iatt;
  t.is(child.fops.filter((c) => c === 'lookup').length, 2, 'a rename of a known file keeps its parent cached');
  t.true(afterRename.mtimeMs > beforeRename.mtimeMs, 'with its times moved');
  t.is(afterRename.nlink, beforeRename.nlink);
});

test('a renamed file is cached under its new name (the lookup before rm or stat needs no round trip), not under the old one', async (t) => {
  const { md, child } = make('600');
  child.fs.writeFile('/d/f', Buffer.alloc(42), { timeMs: 0 });
  await md.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  const before = Date.now();
  await md.call('rename', { from: '/d/f', to: '/d/g' }, ROOT_FRAME);
  const moved = (await md.call('lookup', { path: '/d/g' }, ROOT_FRAME)).iatt;
  t.deepEqual(child.fops, ['lookup', 'rename'], 'the new name is answered from the cache');
  t.is(moved.size, 42, 'with the file\'s attributes');
  t.true(moved.ctimeMs >= before, 'and the rename\'s ctime');
  await t.throwsAsync(md.call('lookup', { path: '/d/f' }, ROOT_FRAME), enoent);
  t.deepEqual(child.fops, ['lookup', 'rename', 'lookup'], 'the old name is asked for again');
});

test('a rename racing with another client\'s change does not cache the new name from the old attributes', async (t) => {
  const { md, child } = make('600');
  child.fs.writeFile('/d/f');
  await md.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  child.tap('rename', () => md.invalidate(['/d/f'], child));
  await md.call('rename', { from: '/d/f', to: '/d/g' }, ROOT_FRAME);
  await md.call('lookup', { path: '/d/g' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'rename', 'lookup']);
});

test('a setattr answered without attributes (write-behind took it) is applied to the cached entry', async (t) => {
  const { md, child } = make();
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  // write-behind answers a setattr it took without attributes.
  child.answerWith('setattr', () => ({}) as never);
  await md.call('setattr', { path: '/f', attrs: { mode: 0o600, uid: 7, mtimeMs: 5000 } }, ROOT_FRAME);
  const after = (await md.call('lookup', { path: '/f' }, ROOT_FRAME)).iatt;
  t.deepEqual(child.fops, ['lookup', 'setattr'], 'the stat after it is served from the cache');
  t.is(after.mode, 0o100600);
  t.is(after.uid, 7);
  t.is(after.mtimeMs, 5000);
});

/** A parent that records the invalidations passed up to it. */
class Recorder extends Xlator {
  readonly seen: string[][] = [];

  override invalidate(paths: readonly string[]): void {
    this.seen.push([...paths]);
  }
}

test('invalidate (another client changed a path): its attributes and its parent\'s go, and it is passed up', async (t) => {
  const { md, child } = make('600');
  for (const p of ['/d/f', '/d/g', '/e']) child.fs.writeFile(p);
  const up = new Recorder({ name: 'up', type: 'test/recorder', options: {}, children: [md] });
  for (const p of ['/d', '/d/f', '/d/g', '/e']) await md.call('lookup', { path: p }, ROOT_FRAME);
  t.is(child.fops.length, 4);
  md.invalidate(['/d/f'], child);
  t.deepEqual(up.seen, [['/d/f']]);
  for (const p of ['/d', '/d/f', '/d/g', '/e']) await md.call('lookup', { path: p }, ROOT_FRAME);
  t.deepEqual(child.fops.slice(4), ['lookup', 'lookup'], 'only /d/f and its parent /d are asked again');
  t.like(md.statedump(), { invalidations: 1 });
});

test('invalidate of a cached directory drops what is cached below it (renamed or removed elsewhere)', async (t) => {
  const { md, child } = make('600');
  await md.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  child.calls.length = 0;
  child.fs.writeFile('/d/a', '12345');
  md.invalidate(['/d'], child);
  await md.call('lookup', { path: '/d' }, ROOT_FRAME);
  await md.call('readdir', { path: '/d' }, ROOT_FRAME);
  await md.call('lookup', { path: '/d/a' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'readdir'], '/d/a came with the listing');
  md.invalidate(['/d'], child);
  await md.call('lookup', { path: '/d/a' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'readdir', 'lookup'], 'the entry below the changed directory went with it');
});

test('a lookup in flight when an invalidation arrives is answered but not cached (its attributes may predate the change)', async (t) => {
  const { md, child } = make('600');
  const release = child.hold('lookup', 'before');
  const inFlight = md.call('lookup', { path: '/f' }, ROOT_FRAME);
  await new Promise((r) => setImmediate(r));
  md.invalidate(['/f'], child);
  release();
  t.is((await inFlight).iatt.size, 1);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup'], 'asked again');
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup'], 'a lookup after the invalidation is cached again');
});

test('a brick that comes or goes (CHILD_UP/CHILD_DOWN) empties the cache: pushes may have been lost meanwhile', async (t) => {
  const { md, child } = make('600');
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  md.notify('CHILD_UP', child);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup']);
});

test('a push of a path not known here drops the files with several names (it may be another name of one), and no other entry', async (t) => {
  const { md, child } = make('600');
  child.fs.writeFile('/h');
  child.fs.link('/h', '/h2'); // two names: nlink 2
  await md.call('lookup', { path: '/h' }, ROOT_FRAME);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  await new Promise((r) => setTimeout(r, 1100));
  await md.call('lookup', { path: '/h' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup'], 'a file with several names is kept as long as any other');
  // Another client wrote through a third name this client never saw.
  child.fs.link('/h', '/elsewhere');
  md.invalidate(['/elsewhere'], child);
  await md.call('lookup', { path: '/h' }, ROOT_FRAME);
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup', 'lookup'], 'the two-name file is asked again, the other is not');
  t.is((await md.call('lookup', { path: '/h' }, ROOT_FRAME)).iatt.nlink, 3);
});

const GFID = '0123456789abcdef0123456789abcdef';

test('a change through one name of a hard link is seen at once through the other (one entry per file, by gfid)', async (t) => {
  const { md, child } = make('600');
  child.fs.writeFile('/a', 'abc', { xattrs: { [XATTR_GFID]: Buffer.from(GFID, 'hex') } });
  child.fs.link('/a', '/b');
  // The bridge's inodes: both names are one inode.
  const ia = md.inodes.entry(ROOT_ID, 'a', S_IFREG, GFID);
  const ib = md.inodes.entry(ROOT_ID, 'b', S_IFREG, GFID);
  t.is(ia, ib);
  // Each name is learnt once (a lookup asks what a name holds: the caller's inode alone does not say).
  await md.call('lookup', { path: '/a', inode: ia }, ROOT_FRAME);
  t.is((await md.call('lookup', { path: '/b', inode: ib }, ROOT_FRAME)).iatt.size, 3);
  t.deepEqual(child.fops, ['lookup', 'lookup']);
  await md.call('setattr', { path: '/a', inode: ia, attrs: { mode: 0o600 } }, ROOT_FRAME);
  t.is((await md.call('lookup', { path: '/b', inode: ib }, ROOT_FRAME)).iatt.mode, 0o100600, 'a setattr through /a, seen through /b');
  const fd = new Fd(ia, 2);
  await md.call('open', { path: '/a', flags: 2, fd }, ROOT_FRAME);
  await md.call('write', { fd, offset: 3, data: Buffer.from('defg') }, ROOT_FRAME);
  t.is((await md.call('lookup', { path: '/b', inode: ib }, ROOT_FRAME)).iatt.size, 7, 'a write through /a, seen through /b');
  await md.call('release', { fd }, ROOT_FRAME);
  t.deepEqual(child.fops, ['lookup', 'lookup', 'setattr', 'open', 'write', 'release'], 'and never asked for again');
  // A caller without the inode finds the file by the name's gfid from the reply.
  t.is((await md.call('lookup', { path: '/b' }, ROOT_FRAME)).iatt.size, 7);
  t.is(child.fops.length, 6);
});

test('a name another client renamed away is asked for again, though the caller still holds its inode under that name', async (t) => {
  const { md, child } = make('600');
  child.fs.writeFile('/r', 'abc', { xattrs: { [XATTR_GFID]: Buffer.from(GFID, 'hex') } });
  const ir = md.inodes.entry(ROOT_ID, 'r', S_IFREG, GFID);
  await md.call('lookup', { path: '/r', inode: ir }, ROOT_FRAME);
  // Another client: mv /r /r2; the bricks push both names.
  child.fs.link('/r', '/r2');
  child.fs.remove('/r');
  md.invalidate(['/r', '/r2'], child);
  await md.call('lookup', { path: '/r2' }, ROOT_FRAME);
  // The bridge's table still has /r on the file (the rename was not made through it).
  const e = await t.throwsAsync(md.call('lookup', { path: '/r', inode: ir }, ROOT_FRAME));
  t.is((e as { code?: string }).code, 'ENOENT');
});

test('reconfigure to a shorter timeout drops what was kept under the longer one', async (t) => {
  const { md, child } = make('600');
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  md.reconfigure({ 'md-cache-timeout': '600' });
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.is(child.fops.length, 1, 'the same timeout keeps the cache');
  md.reconfigure({ 'md-cache-timeout': '1' });
  await md.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.is(child.fops.length, 2);
});
