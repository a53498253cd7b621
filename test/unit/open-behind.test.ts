import { ROOT_FRAME } from '../../lib/frame.js';
import { FrameSpy, userFrame } from '../helpers/frame-spy.js';
import test from 'ava';
import fs from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import { Fd, ROOT_ID, type Inode, type InodeTable } from '../../lib/inode.js';
import type { Frame } from '../../lib/frame.js';
import { Xlator } from '../../lib/xlator.js';
import { OpenBehind } from '../../client/xlators/performance/open-behind.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT } = fs.constants;

const iatt = (size: number): Iatt => ({
  mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blocks: 0, blksize: 4096, ino: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
});

/**
 * A child holding files in memory, as a brick does: an open fd keeps its file's bytes after
 * the name is unlinked, readfile reads by name. Every call is recorded ("open /a 0",
 * "readfile /a 0+10", "read 10 0+10", "release 10"...), an fd by the number this child gave
 * it when it was opened here (as a brick's fd table would), from 10 up.
 */
class MemChild extends Xlator {
  readonly files = new Map<string, { data: Buffer }>();
  readonly calls: string[] = [];
  /** readfile answers ENOSYS (a stripe, a replica set unsure of its copies). */
  noReadfile = false;
  private readonly open = new Map<Fd, { n: number; file: { data: Buffer } }>();
  private nextFd = 10;

  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    const reply = (r: unknown): Promise<FopReply<F>> => Promise.resolve(r as FopReply<F>);
    const a = args as Record<string, unknown>;
    /** The open fd an fd fop is about, and its number here. */
    const fdOf = (): { n: number; file: { data: Buffer } } | undefined => this.open.get(a.fd as Fd);
    switch (fop) {
      case 'open':
      case 'create': {
        const { path, flags, fd } = args as FopArgs<'open'>;
        this.calls.push(`${fop} ${path} ${flags}`);
        if (this.open.has(fd)) return Promise.reject(FsError.of('EBADF', `fd on ${path} opened twice`));
        if (fop === 'create' && !this.files.has(path)) this.files.set(path, { data: Buffer.alloc(0) });
        const file = this.files.get(path);
        if (!file) return Promise.reject(FsError.of('ENOENT', path));
        this.open.set(fd, { n: this.nextFd++, file });
        return reply(fop === 'create' ? { iatt: iatt(file.data.length) } : {});
      }
      case 'readfile': {
        const { path, offset, size } = args as FopArgs<'readfile'>;
        this.calls.push(`readfile ${path} ${offset}+${size}`);
        if (this.noReadfile) return Promise.reject(FsError.of('ENOSYS'));
        const file = this.files.get(path);
        if (!file) return Promise.reject(FsError.of('ENOENT', path));
        return reply({ data: file.data.subarray(offset, offset + size) });
      }
      case 'read': {
        const { offset, size } = args as FopArgs<'read'>;
        const f = fdOf();
        this.calls.push(`read ${f?.n ?? '?'} ${offset}+${size}`);
        if (!f) return Promise.reject(FsError.of('EBADF'));
        return reply({ data: f.file.data.subarray(offset, offset + size) });
      }
      case 'write': {
        const { offset, data } = args as FopArgs<'write'>;
        const f = fdOf();
        this.calls.push(`write ${f?.n ?? '?'} ${offset}+${data.length}`);
        if (!f) return Promise.reject(FsError.of('EBADF'));
        const next = Buffer.alloc(Math.max(f.file.data.length, offset + data.length));
        f.file.data.copy(next);
        data.copy(next, offset);
        f.file.data = next;
        return reply({ size: data.length });
      }
      case 'lookup': {
        this.calls.push(`lookup ${String(a.path)}`);
        const file = this.files.get(a.path as string);
        return file ? reply({ iatt: iatt(file.data.length) }) : Promise.reject(FsError.of('ENOENT'));
      }
      case 'fstat': {
        const f = fdOf();
        this.calls.push(`fstat ${f?.n ?? '?'}`);
        if (!f) return Promise.reject(FsError.of('EBADF'));
        return reply({ iatt: iatt(f.file.data.length) });
      }
      case 'rmdir':
        this.calls.push(`rmdir ${String(a.path)}`);
        return reply({});
      case 'unlink':
        this.calls.push(`unlink ${String(a.path)}`);
        this.files.delete(a.path as string);
        return reply({});
      case 'rename': {
        const { from, to } = args as FopArgs<'rename'>;
        this.calls.push(`rename ${from} ${to}`);
        this.files.set(to, this.files.get(from)!);
        this.files.delete(from);
        return reply({});
      }
      case 'flush':
      case 'fsync':
      case 'release': {
        const f = fdOf();
        this.calls.push(`${fop} ${f?.n ?? '?'}`);
        if (!f) return Promise.reject(FsError.of('EBADF'));
        if (fop === 'release') this.open.delete(a.fd as Fd);
        return reply({});
      }
      default:
        return Promise.reject(FsError.of('ENOSYS', fop));
    }
  }
}

function setup(files: Record<string, string> = {}) {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  for (const [p, s] of Object.entries(files)) child.files.set(p, { data: Buffer.from(s) });
  const ob = new OpenBehind({ name: 'ob', type: 'performance/open-behind', options: {}, children: [child] });
  return { child, ob };
}

const text = (r: FopReply<'read'>): string => r.data.toString();

/** Opens path through x as the FUSE bridge does: a new Fd (on a detached inode of path unless given one), passed to open. */
async function open(x: Xlator, path: string, flags: number, frame: Frame = ROOT_FRAME, fd = Fd.forPath(path, flags)): Promise<Fd> {
  await x.call('open', { path, flags, fd }, frame);
  return fd;
}

/** The inode of /name in the translator's inode table, as the bridge's lookup makes it. */
const entry = (inodes: InodeTable, name: string, gfid?: string): Inode => inodes.entry(ROOT_ID, name, S_IFREG, gfid);

test('a read-only open makes no child call; a read goes down as readfile of its path, range and all', async (t) => {
  const { child, ob } = setup({ '/a': 'hello, world' });
  const fd = await open(ob, '/a', O_RDONLY);
  t.deepEqual(child.calls, []);
  t.is(text(await ob.call('read', { fd, offset: 7, size: 100 }, ROOT_FRAME)), 'world');
  t.deepEqual(child.calls, ['readfile /a 7+100']);
  t.like(ob.statedump(), { openedBehind: 1, readfiles: 1, behindFds: 1 });
});

test('flush and release of a never-opened fd make no child call; fstat is a lookup', async (t) => {
  const { child, ob } = setup({ '/a': 'abc' });
  const fd = await open(ob, '/a', O_RDONLY);
  t.is((await ob.call('fstat', { fd }, ROOT_FRAME)).iatt.size, 3);
  t.deepEqual(child.calls, ['lookup /a']);
  await ob.call('flush', { fd }, ROOT_FRAME);
  await ob.call('release', { fd }, ROOT_FRAME);
  t.deepEqual(child.calls, ['lookup /a']);
  await t.throwsAsync(ob.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME), { code: 'EBADF' });
  t.like(ob.statedump(), { openFds: 0, localFlushes: 1, localReleases: 1 });
});

test('ENOSYS from the child: a real open with the same flags, then every read through the real fd', async (t) => {
  const { child, ob } = setup({ '/a': 'abcdef' });
  child.noReadfile = true;
  const flags = O_RDONLY | fs.constants.O_NONBLOCK;
  const fd = await open(ob, '/a', flags);
  t.is(text(await ob.call('read', { fd, offset: 1, size: 2 }, ROOT_FRAME)), 'bc');
  t.is(text(await ob.call('read', { fd, offset: 3, size: 10 }, ROOT_FRAME)), 'def');
  t.deepEqual(child.calls, ['readfile /a 1+2', `open /a ${flags}`, 'read 10 1+2', 'read 10 3+10']);
  await ob.call('flush', { fd }, ROOT_FRAME);
  await ob.call('release', { fd }, ROOT_FRAME);
  t.deepEqual(child.calls.slice(-2), ['flush 10', 'release 10']);
  t.like(ob.statedump(), { realOpens: { enosys: 1, sequential: 0, 'fd-fop': 0, namespace: 0 } });
});

test('a second read opens the file in the background; later reads use the real fd', async (t) => {
  const { child, ob } = setup({ '/big': 'x'.repeat(100) });
  const fd = await open(ob, '/big', O_RDONLY);
  t.is((await ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)).data.length, 10);
  t.deepEqual(child.calls, ['readfile /big 0+10'], 'a read of the whole request alone opens nothing');
  t.is((await ob.call('read', { fd, offset: 10, size: 10 }, ROOT_FRAME)).data.length, 10);
  t.is((await ob.call('read', { fd, offset: 20, size: 10 }, ROOT_FRAME)).data.length, 10);
  t.deepEqual(child.calls, ['readfile /big 0+10', 'readfile /big 10+10', `open /big ${O_RDONLY}`, 'read 10 20+10']);
  await ob.call('release', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'release 10');
});

test('unlink of the path really opens behind fds first; reads after it go through the real fd', async (t) => {
  const { child, ob } = setup({ '/a': 'still here', '/b': 'other' });
  const fd = await open(ob, '/a', O_RDONLY);
  const other = await open(ob, '/b', O_RDONLY);
  await ob.call('unlink', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /a ${O_RDONLY}`, 'unlink /a']);
  t.is(text(await ob.call('read', { fd, offset: 0, size: 100 }, ROOT_FRAME)), 'still here');
  t.is(child.calls.at(-1), 'read 10 0+100');
  // The other file's fd stayed behind.
  t.is(text(await ob.call('read', { fd: other, offset: 0, size: 100 }, ROOT_FRAME)), 'other');
  t.is(child.calls.at(-1), 'readfile /b 0+100');
  await ob.call('release', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'release 10');
  t.like(ob.statedump(), { realOpens: { namespace: 1 } });
});

test('a behind fd reads by the name its rename gave it; a rename over a behind fd\'s file opens it first', async (t) => {
  const { child, ob } = setup({ '/a': 'AAA', '/b': 'BBB' });
  const a = await open(ob, '/a', O_RDONLY);
  const b = await open(ob, '/b', O_RDONLY);
  await ob.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /b ${O_RDONLY}`, 'rename /a /b']);
  t.is(text(await ob.call('read', { fd: a, offset: 0, size: 10 }, ROOT_FRAME)), 'AAA');
  t.is(child.calls.at(-1), 'readfile /b 0+10', 'read by the new name');
  t.is(text(await ob.call('read', { fd: b, offset: 0, size: 10 }, ROOT_FRAME)), 'BBB', 'the replaced file reads on through its real fd');
  t.is(child.calls.at(-1), 'read 10 0+10');
});

test('a behind fd on an inode of the table reads by the name it has now: the rename\'s, until the table moved it, then the table\'s', async (t) => {
  const { child, ob } = setup({ '/a': 'AAA' });
  const inode = entry(ob.inodes, 'a');
  const fd = await open(ob, '/a', O_RDONLY, ROOT_FRAME, new Fd(inode, O_RDONLY));
  await ob.call('rename', { from: '/a', to: '/z', inode }, ROOT_FRAME);
  // Answered, and the bridge has not moved the name yet: another thread's read meanwhile.
  t.is(fd.path, '/a');
  t.is(text(await ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)), 'AAA');
  t.is(child.calls.at(-1), 'readfile /z 0+10');
  // fstat of a behind fd is a lookup of the same name (a second read would open it for real).
  ob.inodes.move(ROOT_ID, 'a', ROOT_ID, 'z');
  t.is(fd.path, '/z');
  await ob.call('fstat', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'lookup /z');
  // Back to its first name: by that name again, before and after the table follows.
  await ob.call('rename', { from: '/z', to: '/a', inode }, ROOT_FRAME);
  await ob.call('fstat', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'lookup /a');
  ob.inodes.move(ROOT_ID, 'z', ROOT_ID, 'a');
  await ob.call('fstat', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'lookup /a');
  t.false(child.calls.some((c) => c.startsWith('open')), 'still behind');
  t.like(ob.statedump(), { behindFds: 1, openFds: 1 });
});

test('a rename of another name of a behind fd\'s file (a hard link) leaves the fd behind, reading by its own name', async (t) => {
  const { child, ob } = setup({ '/a': 'linked' });
  child.files.set('/l', child.files.get('/a')!);
  const inode = entry(ob.inodes, 'a', 'g1');
  t.is(entry(ob.inodes, 'l', 'g1'), inode, 'one inode for both names');
  const fd = await open(ob, '/a', O_RDONLY, ROOT_FRAME, new Fd(inode, O_RDONLY));
  await ob.call('rename', { from: '/l', to: '/m', inode }, ROOT_FRAME);
  ob.inodes.move(ROOT_ID, 'l', ROOT_ID, 'm');
  t.is(text(await ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)), 'linked');
  t.deepEqual(child.calls, ['rename /l /m', 'readfile /a 0+10']);
});

test('a rename of a directory opens the behind fds under it; rmdir too', async (t) => {
  const { child, ob } = setup({ '/d/f': 'in d' });
  const fd = await open(ob, '/d/f', O_RDONLY);
  await ob.call('rename', { from: '/d', to: '/e' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /d/f ${O_RDONLY}`, 'rename /d /e']);
  t.is(text(await ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)), 'in d');
  t.is(child.calls.at(-1), 'read 10 0+10');
  child.files.set('/g/h', { data: Buffer.from('in g') });
  const g = await open(ob, '/g/h', O_RDONLY);
  child.calls.length = 0;
  await ob.call('rmdir', { path: '/g' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /g/h ${O_RDONLY}`, 'rmdir /g']);
  await ob.call('release', { fd: g }, ROOT_FRAME);
});

test('reads by path wait for a rename of their file in flight', async (t) => {
  const { child, ob } = setup({ '/a': 'moving' });
  const fd = await open(ob, '/a', O_RDONLY);
  const renamed = ob.call('rename', { from: '/a', to: '/z' }, ROOT_FRAME);
  const read = ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME);
  await renamed;
  t.is(text(await read), 'moving');
  t.deepEqual(child.calls, ['rename /a /z', 'readfile /z 0+10']);
});

test('write-capable, truncating, creating and direct opens go through at once', async (t) => {
  const { child, ob } = setup({ '/a': 'abc' });
  const O_DIRECT = fs.constants.O_DIRECT ?? 0;
  for (const flags of [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_RDONLY | O_CREAT, ...(O_DIRECT ? [O_RDONLY | O_DIRECT] : [])]) {
    child.calls.length = 0;
    const fd = await open(ob, '/a', flags);
    t.deepEqual(child.calls, [`open /a ${flags}`], `flags ${flags}`);
    await ob.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME);
    t.regex(child.calls.at(-1)!, /^read \d+ 0\+1$/);
    await ob.call('flush', { fd }, ROOT_FRAME);
    await ob.call('release', { fd }, ROOT_FRAME);
    t.regex(child.calls.at(-1)!, /^release \d+$/);
  }
  const c = Fd.forPath('/new', O_RDWR | O_CREAT, 0o100644);
  await ob.call('create', { path: '/new', mode: 0o644, flags: O_RDWR | O_CREAT, fd: c }, ROOT_FRAME);
  await ob.call('write', { fd: c, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  t.regex(child.calls.at(-1)!, /^write \d+ 0\+1$/);
  t.like(ob.statedump(), { openedBehind: 0, passedThrough: O_DIRECT ? 5 : 4 });
});

test('fsync, write or fstat after a real open on a behind fd use the real fd', async (t) => {
  const { child, ob } = setup({ '/a': 'abc' });
  const fd = await open(ob, '/a', O_RDONLY);
  await ob.call('fsync', { fd, datasync: false }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /a ${O_RDONLY}`, 'fsync 10']);
  t.is((await ob.call('fstat', { fd }, ROOT_FRAME)).iatt.size, 3);
  t.is(child.calls.at(-1), 'fstat 10');
  await ob.call('flush', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'flush 10');
  t.like(ob.statedump(), { realOpens: { 'fd-fop': 1 } });
});

test('a real open that fails leaves nothing to release', async (t) => {
  const { child, ob } = setup({});
  child.noReadfile = true;
  const fd = await open(ob, '/gone', O_RDONLY);
  await t.throwsAsync(ob.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME), { code: 'ENOENT' });
  await ob.call('release', { fd }, ROOT_FRAME);
  t.false(child.calls.some((c) => c.startsWith('release')));
  t.like(ob.statedump(), { realOpenFailures: 1 });
});

test('a delayed real open goes down with the frame of the open it delayed; reads with their own', async (t) => {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  child.files.set('/big', { data: Buffer.from('x'.repeat(100)) });
  child.files.set('/b', { data: Buffer.from('b') });
  const spy = new FrameSpy({ name: 'spy', type: 'test/spy', options: {}, children: [child] });
  const ob = new OpenBehind({ name: 'ob', type: 'performance/open-behind', options: {}, children: [spy] });
  const fd = await open(ob, '/big', O_RDONLY, userFrame(1000));
  await ob.call('read', { fd, offset: 0, size: 10 }, userFrame(1001));
  await ob.call('read', { fd, offset: 10, size: 10 }, userFrame(1002));
  await ob.call('read', { fd, offset: 20, size: 10 }, userFrame(1003));
  t.deepEqual(spy.uids, ['readfile 1001', 'readfile 1002', 'open 1000', 'read 1003']);
  // Opened for real before its name goes: still the opener's frame.
  await open(ob, '/b', O_RDONLY, userFrame(1004));
  await ob.call('unlink', { path: '/b' }, userFrame(1005));
  t.deepEqual(spy.uids.slice(4), ['open 1004', 'unlink 1005']);
});
