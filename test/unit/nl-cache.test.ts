import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import { constants as fsConstants } from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { S_IFDIR, XATTR_GFID } from '../../lib/fops.js';
import { Fd, ROOT_ID } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { NlCache } from '../../client/xlators/performance/nl-cache.js';
import { StubChild } from '../helpers/stub-child.js';

const { O_CREAT, O_EXCL } = fsConstants;

/** The paths of the lookups that reached the child. */
function lookups(child: StubChild): Array<string | undefined> {
  return child.pathsOf('lookup');
}

function make(timeout = '1'): { nl: NlCache; child: StubChild } {
  const child = new StubChild('stub');
  const nl = new NlCache({ name: 'nl', type: 'performance/nl-cache', options: { 'nl-cache-timeout': timeout }, children: [child] });
  return { nl, child };
}

const enoent = { instanceOf: FsError, code: 'ENOENT' } as const;

test('after mkdir, a new name in it is ENOENT without asking the child; once created, it is asked', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/new' }, ROOT_FRAME), enoent);
  await t.throwsAsync(nl.call('lookup', { path: '/d/x', xattrs: ['user.a'] }, ROOT_FRAME), enoent, 'a missing name has no xattrs either');
  t.deepEqual(lookups(child), []);
  await nl.call('create', { path: '/d/new', mode: 0o644, flags: 0, fd: Fd.forPath('/d/new', 0) }, ROOT_FRAME);
  await nl.call('lookup', { path: '/d/new' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/new']);
  t.like(nl.statedump(), { directories: 1, hits: 2, misses: 1 });
});

test('after readdir, listed names go to the child and others are ENOENT here', async (t) => {
  const { nl, child } = make();
  child.fs.writeFile('/d/a');
  child.fs.writeFile('/d/b');
  await nl.call('readdir', { path: '/d' }, ROOT_FRAME);
  await nl.call('lookup', { path: '/d/a' }, ROOT_FRAME);
  await nl.call('lookup', { path: '/d/b' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/c' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/a', '/d/b']);
});

test('lookups in unknown directories always reach the child', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/d');
  await t.throwsAsync(nl.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  await t.throwsAsync(nl.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  await nl.call('readdir', { path: '/d' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/e/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/x', '/d/x', '/e/x']);
});

test('the root itself is never answered from its own listing', async (t) => {
  const { nl, child } = make();
  await nl.call('readdir', { path: '/' }, ROOT_FRAME);
  await nl.call('lookup', { path: '/' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/']);
});

test('a lookup through the child that finds a name adds it to a known set', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/d');
  const listed = child.hold('readdir');
  const listing = nl.call('readdir', { path: '/d' }, ROOT_FRAME); // read before another client makes /d/n
  child.fs.writeFile('/d/n');
  const found = child.hold('lookup');
  const looking = nl.call('lookup', { path: '/d/n' }, ROOT_FRAME); // /d unknown yet: goes down, finds it
  listed();
  await listing;
  found();
  await looking;
  await nl.call('lookup', { path: '/d/n' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/n', '/d/n']);
});

test('known state expires after nl-cache-timeout', async (t) => {
  const { nl, child } = make('1');
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  child.fs.writeFile('/d/other');
  await t.throwsAsync(nl.call('lookup', { path: '/d/other' }, ROOT_FRAME), enoent);
  await new Promise((r) => setTimeout(r, 1100));
  await nl.call('lookup', { path: '/d/other' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/other']);
  t.like(nl.statedump(), { directories: 0 });
});

test('timeout 0 disables the cache', async (t) => {
  const { nl, child } = make('0');
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await nl.call('readdir', { path: '/d' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/x']);
  t.like(nl.statedump(), { directories: 0 });
});

test('unlink makes the name negative again', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await nl.call('create', { path: '/d/f', mode: 0o644, flags: 0, fd: Fd.forPath('/d/f', 0) }, ROOT_FRAME);
  await nl.call('unlink', { path: '/d/f' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/f' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), []);
});

test('rename moves the name to the new parent', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/a', mode: 0o755 }, ROOT_FRAME);
  await nl.call('mkdir', { path: '/b', mode: 0o755 }, ROOT_FRAME);
  await nl.call('create', { path: '/a/f', mode: 0o644, flags: 0, fd: Fd.forPath('/a/f', 0) }, ROOT_FRAME);
  await nl.call('rename', { from: '/a/f', to: '/b/g' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/a/f' }, ROOT_FRAME), enoent);
  await nl.call('lookup', { path: '/b/g' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/b/g']);
});

test('rename onto a name that may exist keeps the old name (hard links of one file stay both)', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/a', mode: 0o755 }, ROOT_FRAME);
  await nl.call('create', { path: '/a/f', mode: 0o644, flags: 0, fd: Fd.forPath('/a/f', 0) }, ROOT_FRAME);
  await nl.call('link', { target: '/a/f', path: '/a/g' }, ROOT_FRAME);
  // rename(2) of one name of a file onto another of the same file changes nothing: both stay.
  await nl.call('rename', { from: '/a/f', to: '/a/g' }, ROOT_FRAME);
  await t.notThrowsAsync(nl.call('lookup', { path: '/a/f' }, ROOT_FRAME), 'the old name is still there');
  t.deepEqual(lookups(child), ['/a/f'], 'answered by the child, not the cache');
});

test('renaming a directory forgets what was known below it and what it replaced', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/a', mode: 0o755 }, ROOT_FRAME);
  await nl.call('mkdir', { path: '/a/sub', mode: 0o755 }, ROOT_FRAME);
  await nl.call('mkdir', { path: '/b', mode: 0o755 }, ROOT_FRAME); // known empty, replaced by /a
  await nl.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME);
  await nl.call('lookup', { path: '/b/sub' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/a/sub/x' }, ROOT_FRAME), enoent);
  await t.throwsAsync(nl.call('lookup', { path: '/b/sub/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/b/sub', '/a/sub/x', '/b/sub/x']);
});

test('a directory\'s known names are its own (keyed by gfid): renamed, it keeps them under its new path', async (t) => {
  const { nl, child } = make('600');
  const gfid = 'aabbccddeeff00112233445566778899';
  child.fs.mkdirp('/a/d', { xattrs: { [XATTR_GFID]: Buffer.from(gfid, 'hex') } });
  child.fs.writeFile('/a/d/f');
  // The bridge's inodes.
  const a = nl.inodes.entry(ROOT_ID, 'a', S_IFDIR);
  const d = nl.inodes.entry(a.id, 'd', S_IFDIR, gfid);
  await nl.call('readdir', { path: '/a/d', inode: d }, ROOT_FRAME);
  await nl.call('rename', { from: '/a/d', to: '/e', inode: d }, ROOT_FRAME);
  nl.inodes.move(a.id, 'd', ROOT_ID, 'e');
  await t.throwsAsync(nl.call('lookup', { path: '/e/x' }, ROOT_FRAME), enoent);
  await nl.call('lookup', { path: '/e/f' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/a/d/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/e/f', '/a/d/x'], 'only the listed name and the old path reach the child');
  // A push for the new path (another client made a name there) finds it through the table.
  nl.invalidate(['/e/y'], child);
  child.fs.writeFile('/e/y');
  await nl.call('lookup', { path: '/e/y' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/e/f', '/a/d/x', '/e/y']);
});

test('a lookup while a create of the same name is in flight reaches the child', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  const release = child.hold('create');
  const creating = nl.call('create', { path: '/d/f', mode: 0o644, flags: 0, fd: Fd.forPath('/d/f', 0) }, ROOT_FRAME);
  const looking = nl.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  release();
  await creating;
  await looking;
  t.deepEqual(lookups(child), ['/d/f']);
});

test('a create that fails leaves the name to the child', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  child.fs.writeFile('/d/f');
  // O_EXCL: without it a create of a name that exists opens it (as a brick does).
  await t.throwsAsync(nl.call('create', { path: '/d/f', mode: 0o644, flags: O_CREAT | O_EXCL, fd: Fd.forPath('/d/f', O_CREAT | O_EXCL) }, ROOT_FRAME), { code: 'EEXIST' });
  await nl.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/f']);
});

test('a listing that a create in its directory overlapped is not believed', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/d');
  const listed = child.hold('readdir');
  const listing = nl.call('readdir', { path: '/d' }, ROOT_FRAME); // read before the create: lacks f
  await nl.call('create', { path: '/d/f', mode: 0o644, flags: 0, fd: Fd.forPath('/d/f', 0) }, ROOT_FRAME);
  listed();
  t.deepEqual((await listing).entries, []);
  await nl.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/g' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/f', '/d/g'], 'the directory stayed unknown');
});

test('a listing that overlapped a create started before it is not believed', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/d');
  const sent = child.hold('create', 'before');
  const creating = nl.call('create', { path: '/d/f', mode: 0o644, flags: 0, fd: Fd.forPath('/d/f', 0) }, ROOT_FRAME);
  t.deepEqual((await nl.call('readdir', { path: '/d' }, ROOT_FRAME)).entries, []); // read before the create lands
  sent();
  await creating;
  await nl.call('lookup', { path: '/d/f' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/f']);
});

test('a listing of a path renamed away meanwhile is not believed for what came there next', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/a/b');
  child.fs.writeFile('/x/b/f');
  const listed = child.hold('readdir');
  const listing = nl.call('readdir', { path: '/a/b' }, ROOT_FRAME); // the old /a/b: empty
  await nl.call('rename', { from: '/a', to: '/c' }, ROOT_FRAME);
  await nl.call('rename', { from: '/x', to: '/a' }, ROOT_FRAME);
  listed();
  t.deepEqual((await listing).entries, []);
  await nl.call('lookup', { path: '/a/b/f' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/a/b/f']);
});

test('a failed mkdir or readdir makes nothing known', async (t) => {
  const { nl, child } = make();
  child.fs.mkdirp('/d');
  await t.throwsAsync(nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME), { code: 'EEXIST' });
  child.failAlways('readdir', 'EIO');
  await t.throwsAsync(nl.call('readdir', { path: '/d' }, ROOT_FRAME), { code: 'EIO' });
  await t.throwsAsync(nl.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/x']);
  t.like(nl.statedump(), { directories: 0 });
});

test('rmdir of a known directory forgets it until it is made again', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await nl.call('rmdir', { path: '/d' }, ROOT_FRAME);
  child.fs.writeFile('/d/x'); // made again by another client
  await nl.call('lookup', { path: '/d/x' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/x'], 'the old empty set is gone');
  child.fs.remove('/d');
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/y' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/x'], 'a new mkdir makes it known again');
});

test('a brick coming up or going down forgets everything', async (t) => {
  const { nl, child } = make();
  await nl.call('mkdir', { path: '/d', mode: 0o755 }, ROOT_FRAME);
  nl.notify('CHILD_UP', child);
  await t.throwsAsync(nl.call('lookup', { path: '/d/x' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), ['/d/x']);
});

test('invalidate (another client changed a name): the parent directory is no longer known, and it is passed up', async (t) => {
  const { nl, child } = make('600');
  const seen: string[][] = [];
  class Up extends Xlator {
    override invalidate(paths: readonly string[]): void {
      seen.push([...paths]);
    }
  }
  new Up({ name: 'up', type: 'test/up', options: {}, children: [nl] });
  child.fs.mkdirp('/d');
  child.fs.mkdirp('/e');
  await nl.call('readdir', { path: '/d' }, ROOT_FRAME);
  await nl.call('readdir', { path: '/e' }, ROOT_FRAME);
  await t.throwsAsync(nl.call('lookup', { path: '/d/new' }, ROOT_FRAME), enoent);
  t.deepEqual(lookups(child), []);
  // Another client makes /d/new: the brick's push names it.
  child.fs.writeFile('/d/new');
  nl.invalidate(['/d/new'], child);
  t.deepEqual(seen, [['/d/new']]);
  await nl.call('lookup', { path: '/d/new' }, ROOT_FRAME);
  t.deepEqual(lookups(child), ['/d/new'], 'the name is asked for at once, not after the 600 s timeout');
  await t.throwsAsync(nl.call('lookup', { path: '/e/x' }, ROOT_FRAME), enoent, 'other directories stay known');
  t.deepEqual(lookups(child), ['/d/new']);
  t.like(nl.statedump(), { invalidations: 1 });
});

test('invalidate of a directory (renamed or removed elsewhere) forgets it and every known directory below it', async (t) => {
  const { nl, child } = make('600');
  child.fs.mkdirp('/a/b/c');
  child.fs.mkdirp('/z');
  for (const d of ['/a', '/a/b', '/a/b/c', '/z']) await nl.call('readdir', { path: d }, ROOT_FRAME);
  nl.invalidate(['/a/b'], child);
  t.like(nl.statedump(), { directories: 1 }, '/a (a name in it changed), /a/b and /a/b/c go; /z stays');
  await t.throwsAsync(nl.call('lookup', { path: '/z/x' }, ROOT_FRAME), enoent);
  await t.throwsAsync(nl.call('lookup', { path: '/a/b/c/x' }, ROOT_FRAME));
  t.deepEqual(lookups(child), ['/a/b/c/x']);
});

test('a listing in flight when its directory is invalidated is not believed', async (t) => {
  const { nl, child } = make('600');
  child.fs.mkdirp('/d');
  const release = child.hold('readdir');
  const listing = nl.call('readdir', { path: '/d' }, ROOT_FRAME);
  await new Promise((r) => setImmediate(r));
  child.fs.writeFile('/d/late');
  nl.invalidate(['/d/late'], child);
  release();
  await listing;
  await t.throwsAsync(nl.call('lookup', { path: '/d/other' }, ROOT_FRAME));
  t.deepEqual(lookups(child), ['/d/other'], 'the directory did not become known');
});
