// cluster/distribute over in-memory stub children (test/helpers/stub-child.ts): where files
// land, directories and their layouts, link files, readdir, a child that is away, and open
// fds following a file the rebalancer moved.
import test from 'ava';
import { constants as fsConstants } from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError } from '../../lib/errors.js';
import { isDir, LINKFILE_MODE, S_IFREG, XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO, type FopName } from '../../lib/fops.js';
import { ROOT_FRAME } from '../../lib/frame.js';
import { Fd, ROOT_ID, type Inode } from '../../lib/inode.js';
import { nameHash } from '../../lib/hash.js';
import { computeLayout, decodeRange, findRange } from '../../lib/layout.js';
import { Distribute } from '../../client/xlators/cluster/distribute/index.js';
import { StubChild, stubChildren, userFrame } from '../helpers/stub-child.js';

const { O_CREAT, O_RDWR, O_RDONLY } = fsConstants;
const USER = userFrame(1000, 100);

function make(n = 3, options: Record<string, string> = {}): { dht: Distribute; kids: StubChild[] } {
  const kids = stubChildren(n, 'brick');
  const dht = new Distribute({ name: 'dht', type: 'cluster/distribute', options, children: kids });
  return { dht, kids };
}

/** The child a name hashes to under the layout distribute computes for its directory. */
function hashedOf(path: string, n: number): number {
  return findRange(computeLayout(n, pathMod.dirname(path)), nameHash(pathMod.basename(path)));
}

/** A name in dir that hashes to child `want` (and, with `not`, never to those). */
function nameOn(dir: string, want: number, n: number, prefix = 'f'): string {
  for (let i = 0; i < 10000; i++) {
    const p = pathMod.join(dir, `${prefix}${i}`);
    if (hashedOf(p, n) === want) return p;
  }
  throw new Error(`no name in ${dir} hashes to ${want}`);
}

const FD_FOPS: FopName[] = ['read', 'write', 'writev', 'fstat', 'ftruncate', 'fsync'];

/**
 * What a finished migration leaves (client/rebalance): the data on `to`, a link file on the
 * name's hashed child when that is another, nothing on `from`, whose fds still open on the
 * file answer ESTALE (storage/posix's commit; here every fd fop on `from`, whatever name the
 * fd was opened by: the tests using it have no other file open). Returns the remover.
 */
function moveFile(kids: StubChild[], path: string, from: number, to: number): () => void {
  const data = kids[from]!.fs.readFile(path);
  for (const k of kids) k.fs.remove(path);
  kids[to]!.fs.writeFile(path, data);
  const hashed = hashedOf(path, kids.length);
  if (hashed !== to) kids[hashed]!.fs.linkfile(path, kids[to]!.name);
  return kids[from]!.failAlways(FD_FOPS, 'ESTALE');
}

/** Which children hold path, as data or link file. */
function holders(kids: StubChild[], path: string): number[] {
  return kids.flatMap((k, i) => (k.fs.exists(path) ? [i] : []));
}

test('created files land on their hashed child only, owned by the caller, with a gfid', async (t) => {
  const { dht, kids } = make(3);
  const names = [0, 1, 2].map((c) => nameOn('/', c, 3));
  for (const p of names) {
    const fd = Fd.forPath(p, O_CREAT | O_RDWR);
    await dht.call('create', { path: p, mode: 0o640, flags: fd.flags, fd }, USER);
    await dht.call('write', { fd, offset: 0, data: Buffer.from(`data of ${p}`) }, USER);
    await dht.call('release', { fd }, USER);
  }
  for (const [c, p] of names.entries()) {
    t.deepEqual(holders(kids, p), [c], `${p} is on brick-${c} only`);
    const n = kids[c]!.fs.get(p);
    t.is(kids[c]!.fs.readFile(p).toString(), `data of ${p}`);
    t.is(n.uid, 1000);
    t.is(n.gid, 100);
    t.is(n.mode & 0o7777, 0o640);
    t.is(n.xattrs.get(XATTR_GFID)?.length, 16, 'distribute gives each file its gfid');
    const create = kids[c]!.callsOf('create');
    t.is(create.length, 1);
    t.is(create[0]!.frame, USER, 'the create goes with the caller\'s frame');
  }
});

test('the root gets a layout on first use, written as root (the translator\'s own repair)', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const want = computeLayout(3, '/');
  for (const [i, k] of kids.entries()) {
    const d = decodeRange(k.fs.xattr('/', XATTR_LAYOUT));
    t.deepEqual(d?.range, want[i], `brick-${i} carries its range of /`);
    t.is(d?.count, 3);
    const set = k.callsOf('setxattr');
    t.is(set.length, 1);
    t.is(set[0]!.frame, ROOT_FRAME);
    t.is(k.callsOf('lookup')[0]!.frame, USER, 'the lookups are the caller\'s');
  }
});

test('mkdir makes the directory on every child, each copy with its range of the layout and one gfid', async (t) => {
  const { dht, kids } = make(3);
  const r = await dht.call('mkdir', { path: '/d', mode: 0o750 }, USER);
  t.true(isDir(r.iatt));
  const want = computeLayout(3, '/d');
  const gfids = new Set<string>();
  for (const [i, k] of kids.entries()) {
    const n = k.fs.get('/d');
    t.true(isDir(k.fs.iatt(n)), `/d on brick-${i}`);
    t.is(n.uid, 1000);
    t.is(n.mode & 0o7777, 0o750);
    const d = decodeRange(n.xattrs.get(XATTR_LAYOUT));
    t.deepEqual(d?.range, want[i]);
    t.true(d?.settled);
    gfids.add(n.xattrs.get(XATTR_GFID)!.toString('hex'));
  }
  t.is(gfids.size, 1, 'the same gfid on every copy');
  // The ranges cover the whole hash space: a file made in /d lands on its hashed child.
  const p = nameOn('/d', 2, 3);
  const fd = Fd.forPath(p, O_CREAT | O_RDWR);
  await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('release', { fd }, USER);
  t.deepEqual(holders(kids, p), [2]);
});

test('a lookup of a file living elsewhere follows the link file on its hashed child, without asking every child', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER); // layouts of / written
  const p = nameOn('/', 0, 3);
  // The data on brick-2, a link file on the hashed brick-0 (as a rename or rebalance leaves).
  kids[2]!.fs.writeFile(p, 'elsewhere');
  kids[0]!.fs.linkfile(p, 'brick-2');
  for (const k of kids) k.calls.length = 0;
  const r = await dht.call('lookup', { path: p }, USER);
  t.is(r.iatt.size, 9, 'the attributes are the data\'s, not the link file\'s');
  t.not(r.iatt.mode, LINKFILE_MODE);
  t.deepEqual(kids[0]!.pathsOf('lookup'), [p]);
  t.deepEqual(kids[2]!.pathsOf('lookup'), [p]);
  t.deepEqual(kids[1]!.calls, [], 'brick-1 is not asked');
  const fd = Fd.forPath(p, O_RDONLY);
  await dht.call('open', { path: p, flags: fd.flags, fd }, USER);
  t.is((await dht.call('read', { fd, offset: 0, size: 100 }, USER)).data.toString(), 'elsewhere');
  t.deepEqual(kids[0]!.callsOf('open', 'read'), [], 'open and read go to the data\'s child');
});

test('without the link file a settled layout\'s miss on the hashed child is final (lookup-optimize)', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  kids[2]!.fs.writeFile(p, 'stray');
  for (const k of kids) k.calls.length = 0;
  await t.throwsAsync(dht.call('lookup', { path: p }, USER), { instanceOf: FsError, code: 'ENOENT' });
  t.deepEqual(kids[2]!.calls, [], 'the other children are not asked');
});

test('a rename to a name hashing to another child renames the data in place and leaves a link file there', async (t) => {
  const { dht, kids } = make(3);
  const from = nameOn('/', 1, 3, 'src');
  const to = nameOn('/', 2, 3, 'dst');
  const fd = Fd.forPath(from, O_CREAT | O_RDWR);
  await dht.call('create', { path: from, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('write', { fd, offset: 0, data: Buffer.from('payload') }, USER);
  await dht.call('release', { fd }, USER);
  const gfid = kids[1]!.fs.xattr(from, XATTR_GFID)!;
  await dht.call('rename', { from, to }, USER);
  t.deepEqual(holders(kids, from), [], 'the old name is gone everywhere');
  t.deepEqual(holders(kids, to), [1, 2]);
  t.is(kids[1]!.fs.readFile(to).toString(), 'payload', 'the data stayed on brick-1 under the new name');
  t.true(kids[2]!.fs.isLinkfile(to), 'brick-2, where the new name hashes, has a link file');
  t.is(kids[2]!.fs.xattr(to, XATTR_LINKTO)?.toString(), 'brick-1');
  t.deepEqual(kids[2]!.fs.xattr(to, XATTR_GFID), gfid, 'with the file\'s gfid');
  // Another client (a new distribute over the same bricks) finds the file through the link file.
  const other = new Distribute({ name: 'dht2', type: 'cluster/distribute', options: {}, children: kids });
  const rfd = Fd.forPath(to, O_RDONLY);
  await other.call('open', { path: to, flags: rfd.flags, fd: rfd }, USER);
  t.is((await other.call('read', { fd: rfd, offset: 0, size: 64 }, USER)).data.toString(), 'payload');
});

test('a rename back onto the hashed child removes the link file the first one left', async (t) => {
  const { dht, kids } = make(3);
  const a = nameOn('/', 1, 3, 'a');
  const b = nameOn('/', 2, 3, 'b');
  const c = nameOn('/', 1, 3, 'c');
  kids[1]!.fs.writeFile(a, 'x');
  await dht.call('rename', { from: a, to: b }, USER);
  t.true(kids[2]!.fs.isLinkfile(b));
  await dht.call('rename', { from: b, to: c }, USER);
  t.deepEqual(holders(kids, b), [], 'the link file of the middle name went with it');
  t.deepEqual(holders(kids, c), [1]);
  t.false(kids[1]!.fs.isLinkfile(c));
});

test('readdir merges every child\'s entries, lists directories once and hides link files', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('mkdir', { path: '/sub', mode: 0o755 }, USER);
  const files = [0, 1, 2].map((c) => nameOn('/', c, 3));
  for (const p of files) {
    const fd = Fd.forPath(p, O_CREAT | O_RDWR);
    await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
    await dht.call('write', { fd, offset: 0, data: Buffer.from(p) }, USER);
    await dht.call('release', { fd }, USER);
  }
  const moved = nameOn('/', 0, 3, 'moved');
  await dht.call('rename', { from: files[2]!, to: moved }, USER); // data on brick-2, link file on brick-0
  const raw = (await kids[0]!.call('readdir', { path: '/' }, ROOT_FRAME)).entries;
  t.truthy(raw.find((e) => e.name === pathMod.basename(moved) && e.linkto === 'brick-2'), 'the child itself lists the link file');
  const { entries } = await dht.call('readdir', { path: '/' }, USER);
  const names = entries.map((e) => e.name).sort();
  t.deepEqual(names, ['sub', ...[files[0]!, files[1]!, moved].map((p) => pathMod.basename(p))].sort(), 'each name once');
  const m = entries.find((e) => e.name === pathMod.basename(moved))!;
  t.is(m.iatt.size, files[2]!.length, 'the moved file is listed with its data\'s attributes');
  t.falsy(m.linkto);
  t.true(entries.every((e) => e.iatt.mode !== LINKFILE_MODE));
});

test('with the hashed child not answering (ENOTCONN), a lookup asks every other child and finds the data', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  kids[1]!.fs.writeFile(p, 'on one');
  kids[0]!.fs.linkfile(p, 'brick-1');
  kids[0]!.failAlways('lookup', 'ENOTCONN', { path: p });
  const r = await dht.call('lookup', { path: p }, USER);
  t.is(r.iatt.size, 6);
  t.deepEqual(kids[2]!.pathsOf('lookup').filter((x) => x === p), [p], 'brick-2 was asked too');
});

test('a name found nowhere while a child is down is ENOTCONN, not ENOENT (it may be on the missing child)', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  kids[0]!.failAlways('lookup', 'ENOTCONN', { path: p });
  await t.throwsAsync(dht.call('lookup', { path: p }, USER), { instanceOf: FsError, code: 'ENOTCONN' });
  t.deepEqual(kids[1]!.pathsOf('lookup').filter((x) => x === p), [p]);
  t.deepEqual(kids[2]!.pathsOf('lookup').filter((x) => x === p), [p]);
});

test('lookup-optimize off: a miss on the hashed child asks everyone, and a down child makes the miss ENOTCONN', async (t) => {
  const { dht, kids } = make(3, { 'lookup-optimize': 'false' });
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  const q = nameOn('/', 0, 3, 'g');
  kids[2]!.fs.writeFile(q, 'stray');
  t.is((await dht.call('lookup', { path: q }, USER)).iatt.size, 5, 'a stray file (no link file) is found on a non-hashed child');
  kids[1]!.failAlways('lookup', 'ENOTCONN', { path: p });
  await t.throwsAsync(dht.call('lookup', { path: p }, USER), { instanceOf: FsError, code: 'ENOTCONN' });
  kids[1]!.reset();
  await t.throwsAsync(dht.call('lookup', { path: p }, USER), { instanceOf: FsError, code: 'ENOENT' }, 'with every child answering, ENOENT');
});

test('readdir with one child down lists the others\' files (its own are hidden, the listing does not fail)', async (t) => {
  const { dht, kids } = make(3);
  const files = [0, 1, 2].map((c) => nameOn('/', c, 3));
  for (const [c, p] of files.entries()) kids[c]!.fs.writeFile(p, 'x');
  await dht.call('lookup', { path: '/' }, USER);
  kids[1]!.down();
  const { entries } = await dht.call('readdir', { path: '/' }, USER);
  t.deepEqual(entries.map((e) => e.name).sort(), [files[0]!, files[2]!].map((p) => pathMod.basename(p)).sort());
});

test('an fd on a file the rebalancer moved is reopened where the file is now, and the old child lets go of it', async (t) => {
  const { dht, kids } = make(3);
  const p = nameOn('/', 0, 3);
  const fd = Fd.forPath(p, O_CREAT | O_RDWR);
  await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('write', { fd, offset: 0, data: Buffer.from('one') }, USER);
  moveFile(kids, p, 0, 1);
  for (const k of kids) k.calls.length = 0;
  t.is((await dht.call('write', { fd, offset: 3, data: Buffer.from('two') }, USER)).size, 3);
  t.is(kids[1]!.fs.readFile(p).toString(), 'onetwo', 'the write that met ESTALE was done on the new child');
  const [reopen] = kids[1]!.callsOf('open');
  t.is(reopen!.args.fd, fd, 'the same fd is opened on the new child');
  t.is(reopen!.args.path, p);
  t.is(reopen!.args.flags, O_RDWR, 'without O_CREAT');
  t.is(reopen!.frame, ROOT_FRAME, 'the reopen is the translator\'s own work');
  t.deepEqual(kids[0]!.callsOf('release').map((c) => c.args.fd), [fd], 'the old child released it');
  t.deepEqual(kids.map((k) => k.openFds), [0, 1, 0]);
  t.like(dht.statedump(), { openFds: 1 });
  await dht.call('fsync', { fd, datasync: false }, USER);
  t.deepEqual(kids[0]!.callsOf('fsync'), [], 'later fops go to the new child at once');
  t.is(kids[1]!.callsOf('fsync').length, 1);
  await dht.call('release', { fd }, USER);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0, 0]);
  t.like(dht.statedump(), { openFds: 0 });
  await t.throwsAsync(dht.call('fstat', { fd }, USER), { instanceOf: FsError, code: 'EBADF' }, 'a released fd is not open any more');
});

test('a file moved back to a child the fd was open on before is opened there afresh (its slot went with the release)', async (t) => {
  const { dht, kids } = make(3);
  const p = nameOn('/', 0, 3);
  const fd = Fd.forPath(p, O_CREAT | O_RDWR);
  await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('write', { fd, offset: 0, data: Buffer.from('abc') }, USER);
  const unfreeze = moveFile(kids, p, 0, 1);
  t.is((await dht.call('read', { fd, offset: 0, size: 10 }, USER)).data.toString(), 'abc');
  unfreeze();
  moveFile(kids, p, 1, 0);
  await dht.call('write', { fd, offset: 3, data: Buffer.from('def') }, USER);
  t.is(kids[0]!.fs.readFile(p).toString(), 'abcdef');
  t.deepEqual(kids.map((k) => k.openFds), [1, 0, 0]);
  t.is(kids[0]!.callsOf('open').length, 1, 'one reopen on brick-0');
  await dht.call('release', { fd }, USER);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0, 0]);
});

test('a fop on its way to the old child while another reopened the fd runs again on the new one', async (t) => {
  const { dht, kids } = make(3);
  const p = nameOn('/', 0, 3);
  const fd = Fd.forPath(p, O_CREAT | O_RDWR);
  await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('write', { fd, offset: 0, data: Buffer.from('0123456789') }, USER);
  // The data moves to brick-1; brick-0 answers the first write ESTALE and holds the second
  // until it has released the fd (then it no longer knows it: EBADF).
  const data = kids[0]!.fs.readFile(p);
  kids[1]!.fs.writeFile(p, data);
  kids[0]!.fs.remove(p);
  kids[0]!.fs.linkfile(p, 'brick-1');
  kids[0]!.fail('write', 'ESTALE', { when: (c) => c.args.offset === 0 });
  const go = kids[0]!.hold('write', 'before', { when: (c) => c.args.offset === 10 });
  const first = dht.call('write', { fd, offset: 0, data: Buffer.from('A') }, USER);
  const second = dht.call('write', { fd, offset: 10, data: Buffer.from('B') }, USER);
  await first;
  t.is(kids[0]!.callsOf('release').length, 1, 'the reopen released brick-0\'s fd');
  go();
  t.is((await second).size, 1);
  t.is(kids[1]!.fs.readFile(p).toString(), 'A123456789B');
  t.deepEqual(kids.map((k) => k.openFds), [0, 1, 0]);
});

test('an fd reopened after a move uses its file\'s name now: the fd\'s inode followed a rename made since the open', async (t) => {
  const { dht, kids } = make(3);
  const a = nameOn('/', 1, 3, 'a');
  const b = nameOn('/', 1, 3, 'b');
  // As the FUSE bridge does: the fd is on the mount's inode of the name, which the inode
  // table moves once the rename succeeded.
  const inode = dht.inodes.entry(ROOT_ID, pathMod.basename(a), S_IFREG | 0o644);
  const fd = new Fd(inode, O_CREAT | O_RDWR);
  await dht.call('create', { path: a, mode: 0o644, flags: fd.flags, fd }, USER);
  await dht.call('write', { fd, offset: 0, data: Buffer.from('kept') }, USER);
  await dht.call('rename', { from: a, to: b, inode }, USER);
  dht.inodes.move(ROOT_ID, pathMod.basename(a), ROOT_ID, pathMod.basename(b));
  t.is(fd.path, b);
  moveFile(kids, b, 1, 2);
  await dht.call('write', { fd, offset: 4, data: Buffer.from('+more') }, USER);
  t.deepEqual(kids[2]!.pathsOf('open'), [b], 'reopened by its new name');
  t.is(kids[2]!.fs.readFile(b).toString(), 'kept+more');
  await dht.call('release', { fd }, USER);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0, 0]);
});

test('a create meeting a link file on the hashed child opens the existing file where it lives, on the caller\'s fd', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  kids[2]!.fs.writeFile(p, 'there');
  kids[0]!.fs.linkfile(p, 'brick-2');
  const fd = Fd.forPath(p, O_CREAT | O_RDWR);
  const r = await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, USER);
  t.is(r.iatt.size, 5);
  t.is(kids[2]!.callsOf('open')[0]!.args.fd, fd);
  t.is((await dht.call('read', { fd, offset: 0, size: 10 }, USER)).data.toString(), 'there');
  await dht.call('release', { fd }, USER);
  t.deepEqual(kids.map((k) => k.openFds), [0, 0, 0]);
});

// ---- state follows the inode (as the FUSE bridge passes and moves the mount's inodes) ----

/** Creates a file as the FUSE bridge does: on the table's inode of its name, identified by the reply's gfid. */
async function createOnInode(dht: Distribute, path: string, data: string): Promise<Inode> {
  const inode = dht.inodes.entry(ROOT_ID, pathMod.basename(path), S_IFREG | 0o644);
  const fd = new Fd(inode, O_CREAT | O_RDWR);
  const r = await dht.call('create', { path, mode: 0o644, flags: fd.flags, fd }, USER);
  dht.inodes.entry(ROOT_ID, pathMod.basename(path), r.iatt.mode, r.iatt.gfid);
  await dht.call('write', { fd, offset: 0, data: Buffer.from(data) }, USER);
  await dht.call('release', { fd }, USER);
  return inode;
}

/** Opens and reads a file through an fd on inode. */
async function readOn(dht: Distribute, inode: Inode): Promise<string> {
  const fd = new Fd(inode, O_RDONLY);
  await dht.call('open', { path: inode.path, flags: fd.flags, fd }, USER);
  const r = await dht.call('read', { fd, offset: 0, size: 100 }, USER);
  await dht.call('release', { fd }, USER);
  return r.data.toString();
}

test('a file renamed through the inode table is still found on its child: no lookup, and the link file takes the inode\'s gfid', async (t) => {
  const { dht, kids } = make(3);
  const a = nameOn('/', 1, 3, 'a');
  const b = nameOn('/', 2, 3, 'b');
  const inode = await createOnInode(dht, a, 'moved by name');
  for (const k of kids) k.calls.length = 0;
  await dht.call('rename', { from: a, to: b, inode }, USER);
  dht.inodes.move(ROOT_ID, pathMod.basename(a), ROOT_ID, pathMod.basename(b));
  t.deepEqual(kids.flatMap((k) => k.pathsOf('lookup')), [], 'neither the source (its inode knows where it is) nor, on a settled layout, the target is looked up');
  t.deepEqual(kids[2]!.fs.xattr(b, XATTR_GFID)?.toString('hex'), inode.gfid, 'the link file carries the gfid the inode knows');
  for (const k of kids) k.calls.length = 0;
  t.is(await readOn(dht, inode), 'moved by name');
  await dht.call('setattr', { path: b, inode, attrs: { mode: 0o600 } }, USER);
  t.deepEqual(kids.flatMap((k) => k.callsOf('lookup')), [], 'open and setattr go to the data\'s child at once');
  t.deepEqual(kids.map((k) => k.callsOf('open', 'setattr').length), [0, 2, 0]);
  t.is(kids[1]!.fs.get(b).mode & 0o777, 0o600);
});

test('a directory renamed through the inode table keeps its layout: no lookup of it, no layout rewritten, files land by the layout its copies carry', async (t) => {
  const { dht, kids } = make(3);
  const r = await dht.call('mkdir', { path: '/d', mode: 0o755 }, USER);
  const dir = dht.inodes.entry(ROOT_ID, 'd', r.iatt.mode, r.iatt.gfid);
  // A name whose child differs under the layouts of /d and of /e (the rotation follows the path at mkdir).
  const name = Array.from({ length: 1000 }, (_, i) => `x${i}`)
    .find((x) => hashedOf(`/d/${x}`, 3) !== hashedOf(`/e/${x}`, 3))!;
  await dht.call('rename', { from: '/d', to: '/e', inode: dir }, USER);
  dht.inodes.move(ROOT_ID, 'd', ROOT_ID, 'e');
  for (const k of kids) k.calls.length = 0;
  await createOnInode(dht, `/e/${name}`, 'kept');
  t.deepEqual(kids.flatMap((k) => k.pathsOf('lookup')), [], 'the layout came from the directory\'s inode');
  t.deepEqual(kids.flatMap((k) => k.callsOf('setxattr', 'mkdir')), [], 'nothing rewritten');
  t.deepEqual(holders(kids, `/e/${name}`), [hashedOf(`/d/${name}`, 3)], 'placed by the layout made for /d');
  // Another client, with no inode of /e, takes the layout its copies carry as this graph's.
  const other = new Distribute({ name: 'dht2', type: 'cluster/distribute', options: {}, children: kids });
  for (const k of kids) k.calls.length = 0;
  t.is((await other.call('lookup', { path: `/e/${name}` }, USER)).iatt.size, 4);
  t.deepEqual(kids.flatMap((k) => k.callsOf('setxattr', 'mkdir')), [], 'it rewrites no layout either');
  t.like(dht.statedump(), { layoutsByPath: 0 });
});

test('what a reply said before the inode existed (a first lookup, a listing, mkdir) is taken over by the inode of its gfid', async (t) => {
  const { dht, kids } = make(3);
  await dht.call('lookup', { path: '/' }, USER);
  const p = nameOn('/', 0, 3);
  const q = nameOn('/', 1, 3, 'g');
  kids[2]!.fs.writeFile(p, 'via lookup', { xattrs: { [XATTR_GFID]: Buffer.alloc(16, 1) } });
  kids[0]!.fs.linkfile(p, 'brick-2');
  kids[1]!.fs.writeFile(q, 'via listing', { xattrs: { [XATTR_GFID]: Buffer.alloc(16, 2) } });
  const r = await dht.call('lookup', { path: p }, USER);
  const pi = dht.inodes.entry(ROOT_ID, pathMod.basename(p), r.iatt.mode, r.iatt.gfid);
  const listed = (await dht.call('readdir', { path: '/', inode: dht.inodes.root }, USER)).entries.find((e) => e.name === pathMod.basename(q))!;
  const qi = dht.inodes.entry(ROOT_ID, listed.name, listed.iatt.mode, listed.iatt.gfid);
  for (const k of kids) k.calls.length = 0;
  t.is(await readOn(dht, pi), 'via lookup');
  t.is(await readOn(dht, qi), 'via listing');
  t.deepEqual(kids.flatMap((k) => k.callsOf('lookup')), []);
  await dht.call('unlink', { path: q, inode: qi }, USER);
  t.deepEqual(kids.map((k) => k.callsOf('unlink').length), [0, 1, 0], 'unlinked where the listing saw it');
  t.like(dht.statedump(), { unclaimed: 0 });
});

test('hard links share the inode: a fop through either name goes to the data\'s child without a lookup', async (t) => {
  const { dht, kids } = make(3);
  const a = nameOn('/', 0, 3, 'a');
  const b = nameOn('/', 2, 3, 'b');
  const inode = await createOnInode(dht, a, 'one file');
  const r = await dht.call('link', { target: a, path: b, inode }, USER);
  t.is(dht.inodes.entry(ROOT_ID, pathMod.basename(b), r.iatt.mode, r.iatt.gfid), inode, 'the new name is the same inode');
  t.true(kids[2]!.fs.isLinkfile(b), 'a link file where the new name hashes');
  for (const k of kids) k.calls.length = 0;
  await dht.call('setattr', { path: b, inode, attrs: { mode: 0o640 } }, USER);
  await dht.call('unlink', { path: a, inode }, USER);
  dht.inodes.remove(ROOT_ID, pathMod.basename(a));
  t.is(inode.path, b);
  t.is(await readOn(dht, inode), 'one file');
  t.deepEqual(kids.flatMap((k) => k.callsOf('lookup')), []);
  t.deepEqual(holders(kids, b), [0, 2]);
  t.is(kids[0]!.fs.get(b).mode & 0o777, 0o640);
});
