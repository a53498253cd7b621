// cluster/replicate over in-memory stub children (test/helpers/stub-child.ts): writes on
// every replica and the changelog around them (docs/replicate.md), blame of a replica that
// failed, reads from one healthy replica, quorum, and whose frame each request carries.
import test from 'ava';
import { constants as fsConstants } from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { ENTRYLK_WHOLE_DIR, S_IFDIR, S_IFREG, XATTR_AFR } from '../../lib/fops.js';
import { INTERNAL_PID, ROOT_FRAME } from '../../lib/frame.js';
import { nameHash } from '../../lib/hash.js';
import { Fd, InodeTable, ROOT_ID, type Inode } from '../../lib/inode.js';
import { INODE_LOCK, Replicate } from '../../client/xlators/cluster/replicate/index.js';
import { counters, StubChild, stubChildren, userFrame } from '../helpers/stub-child.js';

const { O_CREAT, O_RDWR, O_RDONLY, O_WRONLY } = fsConstants;
const USER = userFrame(1000, 100);

function make(n: number, options: Record<string, string> = {}, inodes?: InodeTable): { afr: Replicate; kids: StubChild[] } {
  const kids = stubChildren(n, 'rep');
  const afr = new Replicate({
    name: 'afr', type: 'cluster/replicate', options: { 'entry-post-op-delay-ms': '0', ...options }, children: kids, inodes,
  });
  return { afr, kids };
}

/**
 * The changelog of a set of n replicas as docs/replicate.md puts it on disk: two big-endian
 * int32 counters per replica, [data or entry, metadata]; pending[j] = [data, metadata] about j.
 */
function changelog(n: number, pending: Record<number, [number, number]>): Buffer {
  const b = Buffer.alloc(n * 8);
  for (const [j, [d, m]] of Object.entries(pending)) {
    b.writeInt32BE(d, Number(j) * 8);
    b.writeInt32BE(m, Number(j) * 8 + 4);
  }
  return b;
}

/** The changelog counters a child holds for a path (all zero when it never got any). */
function afrOf(k: StubChild, path: string, n: number): number[] {
  const c = counters(k.fs.xattr(path, XATTR_AFR));
  return c.length ? c : new Array<number>(n * 2).fill(0);
}

/** A path whose name hashes to `i` mod m (replicate spreads reads over sources by it). */
function pathHashing(i: number, m: number, prefix = '/f'): string {
  for (let k = 0; ; k++) if (nameHash(`${prefix}${k}`) % m === i) return `${prefix}${k}`;
}

test('a write reaches every replica, and the changelog is clear once the burst ends', async (t) => {
  const { afr, kids } = make(2);
  const fd = Fd.forPath('/f', O_CREAT | O_RDWR);
  t.false('fd' in await afr.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, USER), 'create answers no fd of its own');
  t.is((await afr.call('write', { fd, offset: 0, data: Buffer.from('hello') }, USER)).size, 5);
  await afr.call('write', { fd, offset: 5, data: Buffer.from(' world') }, USER);
  // Mid-burst, every copy carries the pre-op marks (data and metadata, about every replica).
  for (const k of kids) t.deepEqual(afrOf(k, '/f', 2), [1, 1, 1, 1], `${k.name} is marked while the burst is open`);
  await afr.call('fsync', { fd, datasync: false }, USER);
  await afr.call('release', { fd }, USER);
  await afr.fini();
  for (const k of kids) {
    t.is(k.fs.readFile('/f').toString(), 'hello world', `${k.name} has every write`);
    t.deepEqual(afrOf(k, '/f', 2), [0, 0, 0, 0], `${k.name}: nothing pending about the file`);
    t.deepEqual(afrOf(k, '/', 2), [0, 0, 0, 0], `${k.name}: nothing pending about the directory`);
    t.deepEqual(k.heldLocks(), [], 'every lock released');
    t.is(k.openFds, 0);
    t.is(k.callsOf('write').length, 2);
  }
});

test('a replica that fails a write is blamed by the others; the write still succeeds', async (t) => {
  const { afr, kids } = make(3);
  for (const k of kids) k.fs.writeFile('/f', 'old!');
  kids[1]!.fail('write', 'ENOSPC', { path: '/f' });
  const fd = Fd.forPath('/f', O_WRONLY);
  t.deepEqual(await afr.call('open', { path: '/f', flags: O_WRONLY, fd }, USER), {});
  t.is((await afr.call('write', { fd, offset: 0, data: Buffer.from('new!') }, USER)).size, 4);
  await afr.call('release', { fd }, USER);
  await afr.fini();
  t.is(kids[0]!.fs.readFile('/f').toString(), 'new!');
  t.is(kids[1]!.fs.readFile('/f').toString(), 'old!');
  t.is(kids[2]!.fs.readFile('/f').toString(), 'new!');
  // Data and metadata of the burst about rep-1 stay pending on the replicas that did the write.
  for (const i of [0, 2]) t.deepEqual(afrOf(kids[i]!, '/f', 3), [0, 0, 1, 1, 0, 0], `rep-${i} blames rep-1`);
  t.deepEqual(afrOf(kids[1]!, '/f', 3).filter((_, s) => s !== 2 && s !== 3), [0, 0, 0, 0], 'rep-1 blames nobody else');
  for (const k of kids) t.deepEqual(k.heldLocks(), []);
});

test('reads come from one healthy replica: never a blamed one, and only one', async (t) => {
  // The path's hash would pick rep-1 if the changelog were not read.
  const path = pathHashing(1, 3);
  const { afr, kids } = make(3, { 'self-heal': 'false' });
  kids[0]!.fs.writeFile(path, 'good', { xattrs: { [XATTR_AFR]: changelog(3, { 1: [1, 0] }) } });
  kids[1]!.fs.writeFile(path, 'STALE');
  kids[2]!.fs.writeFile(path, 'good', { xattrs: { [XATTR_AFR]: changelog(3, { 1: [1, 0] }) } });
  const fd = Fd.forPath(path, O_RDONLY);
  await afr.call('open', { path, flags: O_RDONLY, fd }, USER);
  t.is((await afr.call('read', { fd, offset: 0, size: 64 }, USER)).data.toString(), 'good');
  t.is((await afr.call('read', { fd, offset: 1, size: 64 }, USER)).data.toString(), 'ood');
  const readers = kids.filter((k) => k.callsOf('read').length > 0);
  t.is(readers.length, 1, 'one replica answers the reads');
  t.not(readers[0], kids[1], 'not the blamed one');
  t.is(readers[0]!.callsOf('read').length, 2);
  t.is((await afr.call('readfile', { path, offset: 0, size: 64 }, USER)).data.toString(), 'good', 'a read by path too');
  // (readfile asks the path's hashed replica at once, beside the changelog check, and drops
  // that answer when the check picks another: rep-1's readfile may be asked, never used.)
  t.deepEqual(kids[1]!.callsOf('read'), [], 'rep-1 is never read through the fd');
  await afr.call('release', { fd }, USER);
  await afr.fini();
});

test('with no replica blamed, the reads of a file still go to one replica (spread by path)', async (t) => {
  const { afr, kids } = make(3);
  for (const k of kids) k.fs.writeFile('/g', 'same');
  const fd = Fd.forPath('/g', O_RDONLY);
  await afr.call('open', { path: '/g', flags: O_RDONLY, fd }, USER);
  for (let i = 0; i < 3; i++) await afr.call('read', { fd, offset: 0, size: 4 }, USER);
  t.deepEqual(kids.map((k) => k.callsOf('read').length).filter((n) => n > 0), [3]);
  t.is(kids[nameHash('/g') % 3]!.callsOf('read').length, 3, 'the replica the path hashes to');
  await afr.call('release', { fd }, USER);
});

test('quorum auto: with two of three replicas down, changes are refused (EROFS) and nothing is left behind; reads go on', async (t) => {
  const { afr, kids } = make(3);
  kids[0]!.fs.writeFile('/f', 'data');
  kids[1]!.down();
  kids[2]!.down();
  await t.throwsAsync(afr.call('create', { path: '/new', mode: 0o644, flags: O_CREAT | O_RDWR, fd: Fd.forPath('/new', O_CREAT | O_RDWR) }, USER), { instanceOf: FsError, code: 'EROFS' });
  await t.throwsAsync(afr.call('mkdir', { path: '/d', mode: 0o755 }, USER), { instanceOf: FsError, code: 'EROFS' });
  await t.throwsAsync(afr.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, USER), { instanceOf: FsError, code: 'EROFS' });
  const fd = Fd.forPath('/f', O_RDWR);
  await afr.call('open', { path: '/f', flags: O_RDWR, fd }, USER);
  await t.throwsAsync(afr.call('write', { fd, offset: 0, data: Buffer.from('x') }, USER), { instanceOf: FsError, code: 'EROFS' });
  t.is((await afr.call('read', { fd, offset: 0, size: 10 }, USER)).data.toString(), 'data', 'reads are allowed');
  await afr.call('release', { fd }, USER);
  await afr.fini();
  t.false(kids[0]!.fs.exists('/new'));
  t.false(kids[0]!.fs.exists('/d'));
  t.is(kids[0]!.fs.readFile('/f').toString(), 'data');
  t.is(kids[0]!.fs.get('/f').mode & 0o7777, 0o644);
  t.deepEqual(afrOf(kids[0]!, '/f', 3), [0, 0, 0, 0, 0, 0], 'the pre-op marks were undone');
  t.deepEqual(afrOf(kids[0]!, '/', 3), [0, 0, 0, 0, 0, 0]);
  t.deepEqual(kids[0]!.heldLocks(), []);
});

test('quorum auto with two replicas: exactly half is enough only with the first replica', async (t) => {
  {
    const { afr, kids } = make(2);
    kids[1]!.down();
    await afr.call('mkdir', { path: '/d', mode: 0o755 }, USER);
    await afr.fini();
    t.true(kids[0]!.fs.exists('/d'), 'rep-0 alone has quorum');
    t.deepEqual(afrOf(kids[0]!, '/', 2), [0, 0, 1, 0], 'and blames rep-1 for the entry it missed');
  }
  {
    const { afr, kids } = make(2);
    kids[0]!.down();
    await t.throwsAsync(afr.call('mkdir', { path: '/d', mode: 0o755 }, USER), { instanceOf: FsError, code: 'EROFS' });
    await afr.fini();
    t.false(kids[1]!.fs.exists('/d'), 'rep-1 alone has not');
  }
});

test('quorum-type fixed counts quorum-count replicas; none needs one', async (t) => {
  {
    const { afr, kids } = make(3, { 'quorum-type': 'fixed', 'quorum-count': '3' });
    kids[2]!.down();
    await t.throwsAsync(afr.call('mkdir', { path: '/d', mode: 0o755 }, USER), { instanceOf: FsError, code: 'EROFS' });
    await afr.fini();
    t.false(kids[0]!.fs.exists('/d'));
  }
  {
    const { afr, kids } = make(3, { 'quorum-type': 'none' });
    kids[0]!.down();
    kids[1]!.down();
    await afr.call('mkdir', { path: '/d', mode: 0o755 }, USER);
    await afr.fini();
    t.true(kids[2]!.fs.exists('/d'));
  }
});

test('the caller\'s frame reaches the replicas for its fop; locks and changelog xattrops go as root (uid 0, pid -1)', async (t) => {
  const { afr, kids } = make(2, { 'entry-burst': 'false' });
  const fd = Fd.forPath('/f', O_CREAT | O_RDWR);
  await afr.call('create', { path: '/f', mode: 0o640, flags: O_CREAT | O_RDWR, fd }, USER);
  await afr.call('write', { fd, offset: 0, data: Buffer.from('abc') }, USER);
  await afr.call('release', { fd }, USER);
  await afr.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, USER);
  await afr.call('mkdir', { path: '/d', mode: 0o755 }, USER);
  await afr.fini();
  for (const k of kids) {
    const own = k.callsOf('create', 'write', 'release', 'setattr', 'mkdir');
    t.deepEqual(own.map((c) => c.fop), ['create', 'write', 'release', 'setattr', 'mkdir']);
    for (const c of own) t.is(c.frame, USER, `${k.name}: ${c.fop} carries the caller's frame`);
    const bookkeeping = k.callsOf('xattrop', 'entrylk');
    t.true(bookkeeping.some((c) => c.fop === 'xattrop' && c.path === '/f'), `${k.name}: the file's changelog was written`);
    t.true(bookkeeping.some((c) => c.path === '/'), `${k.name}: the directory's changelog or lock was taken for the entry changes`);
    for (const c of bookkeeping) {
      t.is(c.frame, ROOT_FRAME, `${k.name}: ${c.fop} on ${c.path} goes as root`);
      t.like(c.frame, { uid: 0, gid: 0, pid: INTERNAL_PID.xlator });
    }
    t.like(k.fs.get('/f'), { uid: 1000, gid: 100 }, 'the file is the caller\'s');
    t.like(k.fs.get('/d'), { uid: 1000, gid: 100 });
  }
});

test('an open that fails on one replica: writes skip it and blame it, and release goes only where the fd is open', async (t) => {
  const { afr, kids } = make(3);
  for (const k of kids) k.fs.writeFile('/f', 'old!');
  kids[1]!.fail('open', 'EIO', { path: '/f' });
  const fd = Fd.forPath('/f', O_RDWR);
  await afr.call('open', { path: '/f', flags: O_RDWR, fd }, USER);
  t.is((await afr.call('write', { fd, offset: 0, data: Buffer.from('new!') }, USER)).size, 4);
  await afr.call('release', { fd }, USER);
  await afr.fini();
  t.deepEqual(kids[1]!.callsOf('write', 'flush', 'release'), [], 'nothing goes through the fd to the replica it is not open on');
  t.is(kids[1]!.fs.readFile('/f').toString(), 'old!');
  for (const i of [0, 2]) {
    t.is(kids[i]!.fs.readFile('/f').toString(), 'new!');
    t.deepEqual(afrOf(kids[i]!, '/f', 3), [0, 0, 1, 1, 0, 0], `rep-${i} blames rep-1, which missed the write`);
  }
  for (const k of kids) {
    t.is(k.openFds, 0, `${k.name}: released`);
    t.deepEqual(k.heldLocks(), []);
  }
});

test('release takes replicate\'s state off the fd: a later fop on it is EBADF', async (t) => {
  const { afr, kids } = make(2);
  const fd = Fd.forPath('/f', O_CREAT | O_RDWR);
  await afr.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, USER);
  t.like(afr.statedump(), { openFds: 1 });
  await afr.call('release', { fd }, USER);
  t.like(afr.statedump(), { openFds: 0 });
  await t.throwsAsync(afr.call('write', { fd, offset: 0, data: Buffer.from('x') }, USER), { instanceOf: FsError, code: 'EBADF' });
  await t.throwsAsync(afr.call('fstat', { fd }, USER), { instanceOf: FsError, code: 'EBADF' });
  await afr.fini();
  for (const k of kids) t.is(k.openFds, 0);
});

test('an fd follows its file across a rename: the writes after it run their burst on the new name', async (t) => {
  const { afr, kids } = make(2);
  const table = new InodeTable();
  const inode = table.entry(ROOT_ID, 'f', S_IFREG);
  const fd = new Fd(inode, O_CREAT | O_RDWR);
  await afr.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, USER);
  await afr.call('write', { fd, offset: 0, data: Buffer.from('one') }, USER);
  await afr.call('rename', { from: '/f', to: '/g', inode }, USER);
  // What the FUSE bridge does once the rename succeeded: the inode takes the new name.
  table.move(ROOT_ID, 'f', ROOT_ID, 'g');
  t.is(fd.path, '/g');
  for (const k of kids) t.deepEqual(afrOf(k, '/g', 2), [0, 0, 0, 0], `${k.name}: the burst on the old name ended before the rename`);
  for (const k of kids) k.calls.length = 0;
  await afr.call('write', { fd, offset: 3, data: Buffer.from('two') }, USER);
  for (const k of kids) {
    t.deepEqual(afrOf(k, '/g', 2), [1, 1, 1, 1], `${k.name}: the new burst marks the file by its new name`);
    t.deepEqual(k.callsOf('xattrop').map((c) => c.path), ['/g'], `${k.name}: its lock and pre-op went to the new name`);
  }
  await afr.call('fsync', { fd, datasync: false }, USER);
  await afr.call('release', { fd }, USER);
  await afr.fini();
  for (const k of kids) {
    t.false(k.fs.exists('/f'));
    t.is(k.fs.readFile('/g').toString(), 'onetwo', `${k.name} has both writes`);
    t.deepEqual(afrOf(k, '/g', 2), [0, 0, 0, 0], `${k.name}: nothing pending`);
    t.deepEqual(k.heldLocks(), []);
    t.is(k.openFds, 0);
  }
});

/** The inode locks (a file's own, as write bursts take them) a child holds, by path. */
function inodeLocks(k: StubChild): string[] {
  return k.heldLocks().filter((l) => l.includes(JSON.stringify(INODE_LOCK))).map((l) => l.split(' ')[0]!);
}

/** The lock names the xattrops a child got took or dropped, with their paths. */
function lockOps(k: StubChild): string[] {
  return k.callsOf('xattrop', 'entrylk').flatMap((c) => {
    const a = c.args as { lock?: { name: string }; unlock?: { name: string }; cmd?: string; name?: string };
    if (c.fop === 'entrylk') return [`${a.cmd} ${c.path}`];
    return [...(a.lock ? [`lock+mark ${c.path}`] : []), ...(a.unlock ? [`clear+unlock ${c.path}`] : []), ...(!a.lock && !a.unlock ? [`xattrop ${c.path}`] : [])];
  });
}

/** A set of n replicas over an inode table, with /f created through it (its write bursts end only when told). */
async function withCreated(n: number): Promise<{ afr: Replicate; kids: StubChild[]; table: InodeTable; inode: Inode; fd: Fd }> {
  const table = new InodeTable();
  const { afr, kids } = make(n, { 'post-op-delay-ms': '60000' }, table);
  const inode = table.entry(ROOT_ID, 'f', S_IFREG);
  const fd = new Fd(inode, O_CREAT | O_RDWR);
  await afr.call('create', { path: '/f', mode: 0o644, flags: fd.flags, fd }, USER);
  return { afr, kids, table, inode, fd };
}

test('a rename of a file mid-burst: the burst posts under the old name first, the replica that missed a write stays blamed under the new one, and nothing stays locked', async (t) => {
  const { afr, kids, table, inode, fd } = await withCreated(3);
  kids[1]!.fail('write', 'ENOSPC', { path: '/f' });
  await afr.call('write', { fd, offset: 0, data: Buffer.from('one') }, USER);
  for (const k of kids) t.deepEqual(inodeLocks(k), ['/f'], `${k.name}: the burst holds its lock under the old name`);
  await afr.call('rename', { from: '/f', to: '/g', inode }, USER);
  table.move(ROOT_ID, 'f', ROOT_ID, 'g');
  for (const k of kids) t.deepEqual(inodeLocks(k), [], `${k.name}: the burst's lock on the old name went with its post-op`);
  for (const i of [0, 2]) t.deepEqual(afrOf(kids[i]!, '/g', 3), [0, 0, 1, 1, 0, 0], `rep-${i} blames rep-1 on the file under its new name`);
  // A file made at the old name meanwhile takes its own burst there at once.
  const other = new Fd(table.entry(ROOT_ID, 'f', S_IFREG), O_CREAT | O_RDWR);
  await afr.call('create', { path: '/f', mode: 0o644, flags: other.flags, fd: other }, USER);
  t.is((await afr.call('write', { fd: other, offset: 0, data: Buffer.from('new') }, USER)).size, 3);
  for (const k of kids) k.calls.length = 0;
  await afr.call('write', { fd, offset: 3, data: Buffer.from('two') }, USER);
  for (const k of kids) t.deepEqual(lockOps(k), ['lock+mark /g'], `${k.name}: the next write starts a burst under the new name`);
  for (const f of [fd, other]) {
    await afr.call('fsync', { fd: f, datasync: false }, USER);
    await afr.call('release', { fd: f }, USER);
  }
  await afr.fini();
  for (const i of [0, 2]) {
    t.is(kids[i]!.fs.readFile('/g').toString(), 'onetwo');
    t.deepEqual(afrOf(kids[i]!, '/g', 3), [0, 0, 1, 1, 0, 0], `rep-${i} still blames rep-1, which missed the first write`);
  }
  for (const k of kids) {
    t.is(k.fs.readFile('/f').toString(), 'new');
    t.deepEqual(afrOf(k, '/f', 3), [0, 0, 0, 0, 0, 0]);
    t.deepEqual(k.heldLocks(), []);
  }
});

test('a rename the burst did not see (made by another client, learned by the table): its post-op lands on the file under the new name, its unlock where the lock was taken', async (t) => {
  const { afr, kids, table, fd } = await withCreated(2);
  await afr.call('write', { fd, offset: 0, data: Buffer.from('data') }, USER);
  for (const k of kids) k.fs.add('/g', k.fs.drop('/f'));
  table.move(ROOT_ID, 'f', ROOT_ID, 'g');
  for (const k of kids) k.calls.length = 0;
  await afr.call('fsync', { fd, datasync: false }, USER);
  for (const k of kids) {
    t.deepEqual(lockOps(k).sort(), ['unlock /f', 'xattrop /g'], `${k.name}: post-op on the file, unlock on the name that took the lock`);
    t.deepEqual(afrOf(k, '/g', 2), [0, 0, 0, 0], `${k.name}: nothing pending on the file`);
    t.deepEqual(inodeLocks(k), []);
  }
  await afr.call('release', { fd }, USER);
  await afr.fini();
});

test('hard links: the burst is the file\'s, whatever name its fds and fops use; an unlink of the name that took its lock posts it first', async (t) => {
  const table = new InodeTable();
  const { afr, kids } = make(2, { 'post-op-delay-ms': '60000' }, table);
  for (const k of kids) {
    k.fs.writeFile('/a', '');
    k.fs.link('/a', '/b');
  }
  const inode = table.entry(ROOT_ID, 'a', S_IFREG, 'g1');
  t.is(table.entry(ROOT_ID, 'b', S_IFREG, 'g1'), inode, 'one inode for both names');
  const fdA = new Fd(inode, O_RDWR);
  const fdB = new Fd(inode, O_RDWR);
  await afr.call('open', { path: '/a', flags: O_RDWR, fd: fdA }, USER);
  await afr.call('open', { path: '/b', flags: O_RDWR, fd: fdB }, USER);
  for (const k of kids) k.calls.length = 0;
  await afr.call('write', { fd: fdA, offset: 0, data: Buffer.from('aa') }, USER);
  await afr.call('write', { fd: fdB, offset: 2, data: Buffer.from('bb') }, USER);
  await afr.call('setattr', { path: '/b', inode, attrs: { mode: 0o600 } }, USER);
  for (const k of kids) t.deepEqual(lockOps(k), ['lock+mark /a'], `${k.name}: one lock and pre-op for the writes and the setattr of both names`);
  t.like(afr.statedump(), { writeBursts: 1 });
  await afr.call('unlink', { path: '/a', inode }, USER);
  table.remove(ROOT_ID, 'a');
  for (const k of kids) {
    t.deepEqual(inodeLocks(k), [], `${k.name}: the burst's lock under the unlinked name went before it`);
    t.deepEqual(afrOf(k, '/b', 2), [0, 0, 0, 0], `${k.name}: its post-op landed on the file`);
    t.is(k.fs.readFile('/b').toString(), 'aabb');
    t.is(k.fs.get('/b').mode & 0o777, 0o600);
  }
  for (const fd of [fdA, fdB]) await afr.call('release', { fd }, USER);
  await afr.fini();
});

test('a directory\'s entry burst hangs on its inode: after a rename of the directory its changes take a burst under the new name', async (t) => {
  const table = new InodeTable();
  const { afr, kids } = make(2, { 'entry-post-op-delay-ms': '60000' }, table);
  for (const k of kids) k.fs.mkdirp('/d');
  const dir = table.entry(ROOT_ID, 'd', S_IFDIR);
  for (const k of kids) k.calls.length = 0;
  for (const n of ['x', 'y', 'z']) await afr.call('mkdir', { path: `/d/${n}`, mode: 0o755 }, USER);
  for (const k of kids) t.deepEqual(lockOps(k), ['lock+mark /d'], `${k.name}: three mkdirs, one whole-directory lock and pre-op`);
  t.like(afr.statedump(), { entryBursts: 1 });
  await afr.call('rename', { from: '/d', to: '/e', inode: dir }, USER);
  table.move(ROOT_ID, 'd', ROOT_ID, 'e');
  for (const k of kids) t.deepEqual(k.heldLocks().filter((l) => l.startsWith('/d ')), [], `${k.name}: the burst under the old name ended first`);
  for (const k of kids) k.calls.length = 0;
  await afr.call('mkdir', { path: '/e/w', mode: 0o755 }, USER);
  await afr.call('mkdir', { path: '/e/v', mode: 0o755 }, USER);
  for (const k of kids) {
    t.deepEqual(lockOps(k), ['lock+mark /e'], `${k.name}: the next changes share a burst under the new name`);
    t.true(k.heldLocks().some((l) => l.startsWith(`/e ${JSON.stringify(ENTRYLK_WHOLE_DIR)} `)), `${k.name}: the burst holds the new name's whole-directory lock`);
  }
  await afr.fini();
  for (const k of kids) {
    t.deepEqual(k.heldLocks(), []);
    t.deepEqual(afrOf(k, '/e', 2), [0, 0, 0, 0]);
    t.deepEqual(k.fs.list('/e').sort(), ['v', 'w', 'x', 'y', 'z']);
  }
});

test('a data heal copies through fds of its own and releases every one of them', async (t) => {
  const { afr, kids } = make(3);
  const blames1 = { [XATTR_AFR]: changelog(3, { 1: [1, 0] }) };
  kids[0]!.fs.writeFile('/f', 'good data', { xattrs: blames1 });
  kids[1]!.fs.writeFile('/f', 'STALE, and longer');
  kids[2]!.fs.writeFile('/f', 'good data', { xattrs: blames1 });
  const st = await afr.call('lookup', { path: '/f' }, USER);
  t.is(st.iatt.size, 'good data'.length);
  t.is(kids[1]!.fs.readFile('/f').toString(), 'good data', 'the blamed copy was healed');
  for (const k of kids) t.deepEqual(afrOf(k, '/f', 3), [0, 0, 0, 0, 0, 0], `${k.name}: the changelog was reset`);
  const opens = kids.flatMap((k) => k.callsOf('open'));
  t.true(opens.length >= 2, 'the source and the sink were opened');
  for (const c of opens) t.true(c.args.fd instanceof Fd, 'each open carries an fd the heal made');
  t.true(kids[1]!.callsOf('write').every((c) => c.args.fd === kids[1]!.callsOf('open')[0]!.args.fd), 'the sink is written through the fd it was opened with');
  for (const k of kids) {
    t.is(k.openFds, 0, `${k.name}: every fd of the heal was released`);
    t.deepEqual(k.heldLocks(), []);
  }
  await afr.fini();
});
