import { ROOT_FRAME } from '../../lib/frame.js';
import { FrameSpy, userFrame } from '../helpers/frame-spy.js';
import test from 'ava';
import fs from 'node:fs';
import { FsError } from '../../lib/errors.js';
import type { FopArgs, FopName, FopReply, Iatt } from '../../lib/fops.js';
import { Xlator } from '../../lib/xlator.js';
import { OpenBehind } from '../../client/xlators/performance/open-behind.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT } = fs.constants;

const iatt = (size: number): Iatt => ({
  mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blocks: 0, blksize: 4096, ino: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
});

/**
 * A child holding files in memory, as a brick does: an open fd keeps its file's bytes after
 * the name is unlinked, readfile reads by name. Every call is recorded ("open /a 0",
 * "readfile /a 0+10", "read 10 0+10", "release 10"...).
 */
class MemChild extends Xlator {
  readonly files = new Map<string, { data: Buffer }>();
  readonly calls: string[] = [];
  /** readfile answers ENOSYS (a stripe, a replica set unsure of its copies). */
  noReadfile = false;
  private readonly open = new Map<number, { data: Buffer }>();
  private nextFd = 10;

  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    const reply = (r: unknown): Promise<FopReply<F>> => Promise.resolve(r as FopReply<F>);
    const a = args as Record<string, unknown>;
    switch (fop) {
      case 'open':
      case 'create': {
        const { path, flags } = args as FopArgs<'open'>;
        this.calls.push(`${fop} ${path} ${flags}`);
        if (fop === 'create' && !this.files.has(path)) this.files.set(path, { data: Buffer.alloc(0) });
        const file = this.files.get(path);
        if (!file) return Promise.reject(FsError.of('ENOENT', path));
        const fd = this.nextFd++;
        this.open.set(fd, file);
        return reply(fop === 'create' ? { fd, iatt: iatt(file.data.length) } : { fd });
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
        const { fd, offset, size } = args as FopArgs<'read'>;
        this.calls.push(`read ${fd} ${offset}+${size}`);
        const file = this.open.get(fd);
        if (!file) return Promise.reject(FsError.of('EBADF'));
        return reply({ data: file.data.subarray(offset, offset + size) });
      }
      case 'write': {
        const { fd, offset, data } = args as FopArgs<'write'>;
        this.calls.push(`write ${fd} ${offset}+${data.length}`);
        const file = this.open.get(fd)!;
        const next = Buffer.alloc(Math.max(file.data.length, offset + data.length));
        file.data.copy(next);
        data.copy(next, offset);
        file.data = next;
        return reply({ size: data.length });
      }
      case 'lookup': {
        this.calls.push(`lookup ${String(a.path)}`);
        const file = this.files.get(a.path as string);
        return file ? reply({ iatt: iatt(file.data.length) }) : Promise.reject(FsError.of('ENOENT'));
      }
      case 'fstat':
        this.calls.push(`fstat ${String(a.fd)}`);
        return reply({ iatt: iatt(this.open.get(a.fd as number)!.data.length) });
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
      case 'release':
        this.calls.push(`${fop} ${String(a.fd)}`);
        if (fop === 'release') this.open.delete(a.fd as number);
        return reply({});
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

test('a read-only open makes no child call; a read goes down as readfile of its path, range and all', async (t) => {
  const { child, ob } = setup({ '/a': 'hello, world' });
  const { fd } = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
  t.deepEqual(child.calls, []);
  t.is(text(await ob.call('read', { fd, offset: 7, size: 100 }, ROOT_FRAME)), 'world');
  t.deepEqual(child.calls, ['readfile /a 7+100']);
  t.like(ob.statedump(), { openedBehind: 1, readfiles: 1, behindFds: 1 });
});

test('flush and release of a never-opened fd make no child call; fstat is a lookup', async (t) => {
  const { child, ob } = setup({ '/a': 'abc' });
  const { fd } = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
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
  const { fd } = await ob.call('open', { path: '/a', flags }, ROOT_FRAME);
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
  const { fd } = await ob.call('open', { path: '/big', flags: O_RDONLY }, ROOT_FRAME);
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
  const { fd } = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
  const other = await ob.call('open', { path: '/b', flags: O_RDONLY }, ROOT_FRAME);
  await ob.call('unlink', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /a ${O_RDONLY}`, 'unlink /a']);
  t.is(text(await ob.call('read', { fd, offset: 0, size: 100 }, ROOT_FRAME)), 'still here');
  t.is(child.calls.at(-1), 'read 10 0+100');
  // The other file's fd stayed behind.
  t.is(text(await ob.call('read', { fd: other.fd, offset: 0, size: 100 }, ROOT_FRAME)), 'other');
  t.is(child.calls.at(-1), 'readfile /b 0+100');
  await ob.call('release', { fd }, ROOT_FRAME);
  t.is(child.calls.at(-1), 'release 10');
  t.like(ob.statedump(), { realOpens: { namespace: 1 } });
});

test('rename moves the path of behind fds; a rename over a behind fd\'s file opens it first', async (t) => {
  const { child, ob } = setup({ '/a': 'AAA', '/b': 'BBB' });
  const a = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
  const b = await ob.call('open', { path: '/b', flags: O_RDONLY }, ROOT_FRAME);
  await ob.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /b ${O_RDONLY}`, 'rename /a /b']);
  t.is(text(await ob.call('read', { fd: a.fd, offset: 0, size: 10 }, ROOT_FRAME)), 'AAA');
  t.is(child.calls.at(-1), 'readfile /b 0+10', 'read by the new name');
  t.is(text(await ob.call('read', { fd: b.fd, offset: 0, size: 10 }, ROOT_FRAME)), 'BBB', 'the replaced file reads on through its real fd');
  t.is(child.calls.at(-1), 'read 10 0+10');
});

test('a rename of a directory opens the behind fds under it; rmdir too', async (t) => {
  const { child, ob } = setup({ '/d/f': 'in d' });
  const { fd } = await ob.call('open', { path: '/d/f', flags: O_RDONLY }, ROOT_FRAME);
  await ob.call('rename', { from: '/d', to: '/e' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /d/f ${O_RDONLY}`, 'rename /d /e']);
  t.is(text(await ob.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)), 'in d');
  t.is(child.calls.at(-1), 'read 10 0+10');
  child.files.set('/g/h', { data: Buffer.from('in g') });
  const g = await ob.call('open', { path: '/g/h', flags: O_RDONLY }, ROOT_FRAME);
  child.calls.length = 0;
  await ob.call('rmdir', { path: '/g' }, ROOT_FRAME);
  t.deepEqual(child.calls, [`open /g/h ${O_RDONLY}`, 'rmdir /g']);
  await ob.call('release', { fd: g.fd }, ROOT_FRAME);
});

test('reads by path wait for a rename of their file in flight', async (t) => {
  const { child, ob } = setup({ '/a': 'moving' });
  const { fd } = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
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
    const { fd } = await ob.call('open', { path: '/a', flags }, ROOT_FRAME);
    t.deepEqual(child.calls, [`open /a ${flags}`], `flags ${flags}`);
    await ob.call('read', { fd, offset: 0, size: 1 }, ROOT_FRAME);
    t.regex(child.calls.at(-1)!, /^read \d+ 0\+1$/);
    await ob.call('flush', { fd }, ROOT_FRAME);
    await ob.call('release', { fd }, ROOT_FRAME);
    t.regex(child.calls.at(-1)!, /^release \d+$/);
  }
  const c = await ob.call('create', { path: '/new', mode: 0o644, flags: O_RDWR | O_CREAT }, ROOT_FRAME);
  await ob.call('write', { fd: c.fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  t.regex(child.calls.at(-1)!, /^write \d+ 0\+1$/);
  t.like(ob.statedump(), { openedBehind: 0, passedThrough: O_DIRECT ? 5 : 4 });
});

test('fsync, write or fstat after a real open on a behind fd use the real fd', async (t) => {
  const { child, ob } = setup({ '/a': 'abc' });
  const { fd } = await ob.call('open', { path: '/a', flags: O_RDONLY }, ROOT_FRAME);
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
  const { fd } = await ob.call('open', { path: '/gone', flags: O_RDONLY }, ROOT_FRAME);
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
  const { fd } = await ob.call('open', { path: '/big', flags: O_RDONLY }, userFrame(1000));
  await ob.call('read', { fd, offset: 0, size: 10 }, userFrame(1001));
  await ob.call('read', { fd, offset: 10, size: 10 }, userFrame(1002));
  await ob.call('read', { fd, offset: 20, size: 10 }, userFrame(1003));
  t.deepEqual(spy.uids, ['readfile 1001', 'readfile 1002', 'open 1000', 'read 1003']);
  // Opened for real before its name goes: still the opener's frame.
  await ob.call('open', { path: '/b', flags: O_RDONLY }, userFrame(1004));
  await ob.call('unlink', { path: '/b' }, userFrame(1005));
  t.deepEqual(spy.uids.slice(4), ['open 1004', 'unlink 1005']);
});
