import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import { Fd, ROOT_ID } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { QuickRead } from '../../client/xlators/performance/quick-read.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT } = fs.constants;

const iatt = (size: number): Iatt => ({
  mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blocks: 0, blksize: 4096, ino: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
});
/** The gfid of the child's inode number ino, as a brick gives one per file. */
const gfidOf = (ino: number): string => ino.toString(16).padStart(32, '0');

/**
 * A child holding files in memory, as a brick does: lookup answers the content when asked
 * (wantData) and the file is that small. Every call is recorded ("lookup /a 65536",
 * "readfile /a 0+10", "read 10 0+10"...). A lookup can be held (hold) to race changes with it.
 */
class MemChild extends Xlator {
  readonly files = new Map<string, Buffer>();
  /** Inode numbers by path: a new file gets a new one, a rename takes its own along. */
  readonly inos = new Map<string, number>();
  private nextIno = 100;
  readonly calls: string[] = [];
  private readonly fdPath = new Map<Fd, string>();
  /** The number each fd has here (a brick's fd number), for the call log. */
  private readonly fdNums = new Map<Fd, number>();
  private nextFd = 10;
  /** The next lookup waits for this promise before reading the file. */
  hold?: Promise<void>;

  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    const reply = (r: unknown): Promise<FopReply<F>> => Promise.resolve(r as FopReply<F>);
    const a = args as Record<string, unknown>;
    switch (fop) {
      case 'lookup': {
        const { path, wantData } = args as FopArgs<'lookup'>;
        this.calls.push(`lookup ${path}${wantData === undefined ? '' : ` ${wantData}`}`);
        const held = this.hold;
        this.hold = undefined;
        return (held ?? Promise.resolve()).then(() => {
          const data = this.files.get(path);
          if (!data) throw FsError.of('ENOENT', path);
          const copy = Buffer.from(data);
          const ino = this.inoOf(path);
          const at = { ...iatt(data.length), ino, gfid: gfidOf(ino) };
          return (wantData !== undefined && data.length <= wantData ? { iatt: at, data: copy } : { iatt: at }) as FopReply<F>;
        });
      }
      case 'readfile': {
        const { path, offset, size } = args as FopArgs<'readfile'>;
        this.calls.push(`readfile ${path} ${offset}+${size}`);
        const data = this.files.get(path);
        if (!data) return Promise.reject(FsError.of('ENOENT', path));
        return reply({ data: data.subarray(offset, offset + size) });
      }
      case 'open':
      case 'create': {
        const { path, flags } = args as FopArgs<'open'>;
        this.calls.push(`${fop} ${path} ${flags}`);
        if (fop === 'create' && !this.files.has(path)) this.inos.set(path, this.nextIno++);
        if (fop === 'create' || (flags & O_TRUNC)) this.files.set(path, Buffer.alloc(0));
        if (!this.files.has(path)) return Promise.reject(FsError.of('ENOENT', path));
        const fd = a.fd as Fd;
        this.fdNums.set(fd, this.nextFd++);
        this.fdPath.set(fd, path);
        return reply(fop === 'create' ? { iatt: { ...iatt(0), ino: this.inoOf(path), gfid: gfidOf(this.inoOf(path)) } } : {});
      }
      case 'read': {
        const { fd, offset, size } = args as FopArgs<'read'>;
        this.calls.push(`read ${this.num(fd)} ${offset}+${size}`);
        return reply({ data: this.files.get(this.fdPath.get(fd)!)!.subarray(offset, offset + size) });
      }
      case 'write':
      case 'writev': {
        const fd = a.fd as Fd;
        const extents = fop === 'write' ? [args as FopArgs<'write'>] : (args as FopArgs<'writev'>).extents;
        this.calls.push(`${fop} ${this.num(fd)}`);
        const path = this.fdPath.get(fd)!;
        let file = this.files.get(path)!;
        let n = 0;
        for (const { offset, data } of extents) {
          const next = Buffer.alloc(Math.max(file.length, offset + data.length));
          file.copy(next);
          data.copy(next, offset);
          file = next;
          n += data.length;
        }
        this.files.set(path, file);
        return reply({ size: n });
      }
      case 'ftruncate': {
        const { fd, size } = args as FopArgs<'ftruncate'>;
        this.calls.push(`ftruncate ${this.num(fd)} ${size}`);
        const path = this.fdPath.get(fd)!;
        const next = Buffer.alloc(size);
        this.files.get(path)!.copy(next);
        this.files.set(path, next);
        return reply({});
      }
      case 'setattr': {
        const { path, attrs } = args as FopArgs<'setattr'>;
        this.calls.push(`setattr ${path}`);
        if (attrs.size !== undefined) this.files.set(path, Buffer.alloc(attrs.size, this.files.get(path)!));
        return reply({ iatt: iatt(this.files.get(path)!.length) });
      }
      case 'rename': {
        const { from, to } = args as FopArgs<'rename'>;
        this.calls.push(`rename ${from} ${to}`);
        for (const [p, d] of [...this.files]) {
          if (p === from || p.startsWith(from + '/')) {
            this.files.delete(p);
            this.files.set(to + p.slice(from.length), d);
            this.inos.set(to + p.slice(from.length), this.inoOf(p));
            this.inos.delete(p);
          }
        }
        return reply({});
      }
      case 'unlink':
      case 'rmdir':
        this.calls.push(`${fop} ${String(a.path)}`);
        this.files.delete(a.path as string);
        this.inos.delete(a.path as string);
        return reply({});
      case 'link':
      case 'symlink':
      case 'mknod':
      case 'mkdir':
        this.calls.push(`${fop} ${String(a.path)}`);
        if (fop === 'link') {
          this.files.set(a.path as string, this.files.get(a.target as string)!);
          this.inos.set(a.path as string, this.inoOf(a.target as string));
        } else {
          this.files.set(a.path as string, Buffer.from('new'));
          this.inos.set(a.path as string, this.nextIno++);
        }
        return reply({ iatt: { ...iatt(3), ino: this.inoOf(a.path as string), gfid: gfidOf(this.inoOf(a.path as string)) } });
      case 'readdir': {
        const dir = (a.path as string) === '/' ? '' : (a.path as string);
        this.calls.push(`readdir ${String(a.path)}`);
        const entries = [...this.files.keys()].filter((p) => p.startsWith(dir + '/') && !p.slice(dir.length + 1).includes('/'))
          .map((p) => ({ name: p.slice(dir.length + 1), iatt: { ...iatt(this.files.get(p)!.length), ino: this.inoOf(p), gfid: gfidOf(this.inoOf(p)) } }));
        return reply({ entries });
      }
      case 'release':
        this.calls.push(`release ${this.num(a.fd as Fd)}`);
        this.fdPath.delete(a.fd as Fd);
        return reply({});
      default:
        return Promise.reject(FsError.of('ENOSYS', fop));
    }
  }

  /** The number the fd was given here. */
  num(fd: Fd): number {
    return this.fdNums.get(fd)!;
  }

  inoOf(path: string): number {
    let ino = this.inos.get(path);
    if (ino === undefined) this.inos.set(path, ino = this.nextIno++);
    return ino;
  }
}

/** A parent that records the invalidations that reach it. */
class Parent extends Xlator {
  readonly invalidated: string[][] = [];

  override invalidate(paths: readonly string[]): void {
    this.invalidated.push([...paths]);
  }
}

function setup(files: Record<string, string> = {}, options: Record<string, string> = {}) {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  for (const [p, s] of Object.entries(files)) child.files.set(p, Buffer.from(s));
  const qr = new QuickRead({ name: 'qr', type: 'performance/quick-read', options, children: [child] });
  const parent = new Parent({ name: 'top', type: 'test/parent', options: {}, children: [qr] });
  return { child, qr, parent };
}

const text = (r: { data: Buffer }): string => r.data.toString();

/** Opens as the bridge does: the caller makes the fd and gives it to open. */
async function openFd(qr: Xlator, path: string, flags: number): Promise<{ fd: Fd }> {
  const fd = Fd.forPath(path, flags);
  await qr.call('open', { path, flags, fd }, ROOT_FRAME);
  return { fd };
}

async function createFd(qr: Xlator, path: string, flags: number): Promise<{ fd: Fd }> {
  const fd = Fd.forPath(path, flags);
  await qr.call('create', { path, mode: 0o644, flags, fd }, ROOT_FRAME);
  return { fd };
}
const dump = (qr: QuickRead): Record<string, number> => qr.statedump() as Record<string, number>;

/** A readfile of the whole file: whether it reached the child. */
async function readfileWent(child: MemChild, qr: QuickRead, path: string): Promise<boolean> {
  const before = child.calls.length;
  await qr.call('readfile', { path, offset: 0, size: 4096 }, ROOT_FRAME);
  return child.calls.slice(before).some((c) => c.startsWith('readfile'));
}

test('a lookup asks for the content; readfile of any range is then answered without the child', async (t) => {
  const { child, qr } = setup({ '/a': 'hello, world' });
  const r = await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  t.is(r.iatt.size, 12);
  t.false('data' in r, 'the content stays here, not passed up');
  t.deepEqual(child.calls, ['lookup /a 65536']);
  t.is(text(await qr.call('readfile', { path: '/a', offset: 0, size: 4096 }, ROOT_FRAME)), 'hello, world');
  t.is(text(await qr.call('readfile', { path: '/a', offset: 7, size: 3 }, ROOT_FRAME)), 'wor');
  t.is(text(await qr.call('readfile', { path: '/a', offset: 100, size: 10 }, ROOT_FRAME)), '');
  t.deepEqual(child.calls, ['lookup /a 65536']);
  t.like(dump(qr), { hits: 3, misses: 0, entries: 1, fills: 1 });
  t.true(dump(qr).bytes! >= 12);
});

test('reads on an fd opened read-only are answered from the content; on an fd open for writing they are not', async (t) => {
  const { child, qr } = setup({ '/a': 'abcdef' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  const ro = await openFd(qr, '/a', O_RDONLY);
  t.is(text(await qr.call('read', { fd: ro.fd, offset: 2, size: 2 }, ROOT_FRAME)), 'cd');
  t.false(child.calls.some((c) => c.startsWith('read ')));
  const rw = await openFd(qr, '/a', O_RDWR);
  t.is(text(await qr.call('read', { fd: rw.fd, offset: 2, size: 2 }, ROOT_FRAME)), 'cd');
  t.true(child.calls.includes(`read ${child.num(rw.fd)} 2+2`));
});

test('lookups that ask for xattrs, or for the content themselves, pass through untouched', async (t) => {
  const { child, qr } = setup({ '/a': 'x' });
  await qr.call('lookup', { path: '/a', xattrs: ['user.x'] }, ROOT_FRAME);
  await qr.call('lookup', { path: '/a', wantData: 10 }, ROOT_FRAME);
  t.deepEqual(child.calls, ['lookup /a', 'lookup /a 10']);
  t.is(dump(qr).entries, 0);
});

test('the content answers for cache-timeout seconds after it was fetched, then reads go down', async (t) => {
  const { child, qr } = setup({ '/a': 'old', '/b': 'b', '/c': 'c' }, { 'cache-timeout': '1' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/c' }, ROOT_FRAME);
  child.files.set('/a', Buffer.from('new'));
  t.is(text(await qr.call('readfile', { path: '/a', offset: 0, size: 10 }, ROOT_FRAME)), 'old', 'another client\'s change is not seen yet');
  await new Promise((r) => setTimeout(r, 1100));
  t.is(text(await qr.call('readfile', { path: '/a', offset: 0, size: 10 }, ROOT_FRAME)), 'new');
  t.like(dump(qr), { hits: 1, misses: 1, entries: 1 });
  // Expired content nobody asks for again goes when new content comes.
  await qr.call('lookup', { path: '/b' }, ROOT_FRAME);
  t.like(dump(qr), { entries: 1, evictions: 0 });
});

test('cache-timeout 0: lookups do not ask for content', async (t) => {
  const { child, qr } = setup({ '/a': 'x' }, { 'cache-timeout': '0' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.calls, ['lookup /a']);
});

test('every change this client makes drops the content it touches', async (t) => {
  // fd: open for writing on /d/f before the content was fetched (so only the change itself can drop it).
  type Change = [string, (qr: QuickRead, fd: Fd) => Promise<unknown>, string[]];
  const reopen = async (qr: QuickRead, flags: number): Promise<void> => {
    await qr.call('release', { fd: (await openFd(qr, '/d/f', flags)).fd }, ROOT_FRAME);
  };
  const changes: Change[] = [
    ['write', (qr, fd) => qr.call('write', { fd, offset: 0, data: Buffer.from('X') }, ROOT_FRAME), ['/d/f']],
    ['writev', (qr, fd) => qr.call('writev', { fd, extents: [{ offset: 1, data: Buffer.from('Y') }] }, ROOT_FRAME), ['/d/f']],
    ['ftruncate', (qr, fd) => qr.call('ftruncate', { fd, size: 1 }, ROOT_FRAME), ['/d/f']],
    ['open O_TRUNC', (qr) => reopen(qr, O_RDONLY | O_TRUNC), ['/d/f']],
    ['open O_WRONLY', (qr) => reopen(qr, O_WRONLY), ['/d/f']],
    ['create', async (qr) => qr.call('release', { fd: (await createFd(qr, '/d/f', O_CREAT | O_WRONLY)).fd }, ROOT_FRAME), ['/d/f']],
    ['setattr (mode)', (qr) => qr.call('setattr', { path: '/d/f', attrs: { mode: 0o600 } }, ROOT_FRAME), ['/d/f']],
    ['setattr (size)', (qr) => qr.call('setattr', { path: '/d/f', attrs: { size: 1 } }, ROOT_FRAME), ['/d/f']],
    ['unlink', (qr) => qr.call('unlink', { path: '/d/f' }, ROOT_FRAME), ['/d/f']],
    ['rename from', (qr) => qr.call('rename', { from: '/d/f', to: '/d/g' }, ROOT_FRAME), ['/d/f', '/d/g']],
    ['rename to', (qr) => qr.call('rename', { from: '/d/g', to: '/d/f' }, ROOT_FRAME), ['/d/f', '/d/g']],
    ['rename of the directory', (qr) => qr.call('rename', { from: '/d', to: '/e' }, ROOT_FRAME), ['/d/f', '/d/g', '/e/f']],
    ['rmdir of the directory', (qr) => qr.call('rmdir', { path: '/d' }, ROOT_FRAME), ['/d/f', '/d/g']],
    ['link to it', (qr) => qr.call('link', { target: '/d/f', path: '/d/h' }, ROOT_FRAME), ['/d/f']],
    ['link over its name', (qr) => qr.call('link', { target: '/d/g', path: '/d/f' }, ROOT_FRAME), ['/d/f', '/d/g']],
    ['symlink', (qr) => qr.call('symlink', { target: 'x', path: '/d/f' }, ROOT_FRAME), ['/d/f']],
    ['mknod', (qr) => qr.call('mknod', { path: '/d/f', mode: 0o100644, rdev: 0 }, ROOT_FRAME), ['/d/f']],
  ];
  for (const [what, change, dropped] of changes) {
    const { child, qr } = setup({ '/d/f': 'content', '/d/g': 'other', '/e/f': 'e-content', '/x': 'unrelated' });
    const { fd } = await openFd(qr, '/d/f', O_RDWR);
    for (const p of ['/d/f', '/d/g', '/e/f', '/x']) await qr.call('lookup', { path: p }, ROOT_FRAME);
    t.is(dump(qr).entries, 4);
    await change(qr, fd);
    // Restore the names the child lost, so a read that goes down has something to read.
    for (const p of dropped) if (!child.files.has(p)) child.files.set(p, Buffer.from('back'));
    for (const p of dropped) t.true(await readfileWent(child, qr, p), `${what}: ${p} read from the child`);
    t.false(await readfileWent(child, qr, '/x'), `${what}: other content stays`);
  }
});

test('a change made while a lookup is in flight: the lookup keeps nothing', async (t) => {
  const { child, qr } = setup({ '/a': 'before' });
  const { fd } = await openFd(qr, '/a', O_RDWR);
  let release!: () => void;
  child.hold = new Promise((r) => { release = r; });
  const looking = qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  await qr.call('write', { fd, offset: 0, data: Buffer.from('AFTER!') }, ROOT_FRAME);
  release();
  await looking;
  t.is(dump(qr).staleFills, 1);
  t.true(await readfileWent(child, qr, '/a'));
  // Invalidation races the same way.
  child.hold = new Promise((r) => { release = r; });
  const again = qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  qr.invalidate(['/a'], child);
  release();
  await again;
  t.is(dump(qr).staleFills, 2);
  t.is(dump(qr).entries, 0);
});

test('a lookup without content drops what was kept of the path', async (t) => {
  const { child, qr } = setup({ '/a': 'small' }, { 'max-file-size': '10' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  t.is(dump(qr).entries, 1);
  child.files.set('/a', Buffer.from('now longer than ten bytes'));
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  t.is(dump(qr).entries, 0);
  t.true(await readfileWent(child, qr, '/a'));
});

test('invalidate() drops the paths and tells the parents', async (t) => {
  const { child, qr, parent } = setup({ '/a': 'a', '/b': 'b' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/b' }, ROOT_FRAME);
  qr.invalidate(['/a'], child);
  t.deepEqual(parent.invalidated, [['/a']]);
  t.true(await readfileWent(child, qr, '/a'));
  t.false(await readfileWent(child, qr, '/b'));
  t.is(dump(qr).invalidations, 1);
});

test('max-file-size: a larger file is asked with the cap and not kept; its reads go down', async (t) => {
  const big = 'x'.repeat(2000);
  const { child, qr } = setup({ '/big': big, '/small': 'tiny' }, { 'max-file-size': '1KiB' });
  await qr.call('lookup', { path: '/big' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/small' }, ROOT_FRAME);
  t.deepEqual(child.calls, ['lookup /big 1024', 'lookup /small 1024']);
  t.is(text(await qr.call('readfile', { path: '/big', offset: 0, size: 4096 }, ROOT_FRAME)), big);
  t.true(child.calls.includes('readfile /big 0+4096'));
  t.false(await readfileWent(child, qr, '/small'));
});

test('cache-size bounds the bytes held; the least recently used content goes first', async (t) => {
  const kib = (c: string): string => c.repeat(1024);
  const { child, qr } = setup({ '/a': kib('a'), '/b': kib('b'), '/c': kib('c'), '/d': kib('d') }, { 'cache-size': '4000' });
  for (const p of ['/a', '/b', '/c']) await qr.call('lookup', { path: p }, ROOT_FRAME);
  t.is(dump(qr).entries, 3);
  t.true(dump(qr).bytes! <= 4000);
  // /a used last: /b is now the least recently used, and goes when /d comes.
  t.false(await readfileWent(child, qr, '/a'));
  await qr.call('lookup', { path: '/d' }, ROOT_FRAME);
  t.like(dump(qr), { entries: 3, evictions: 1 });
  t.true(dump(qr).bytes! <= 4000);
  t.true(await readfileWent(child, qr, '/b'), 'the least recently used went');
  for (const p of ['/a', '/c', '/d']) t.false(await readfileWent(child, qr, p), `${p} stays`);
  // Content larger than the whole cache is never kept.
  const tiny = setup({ '/a': kib('a') }, { 'cache-size': '1000' });
  await tiny.qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  t.is(dump(tiny.qr).entries, 0);
});

test('reconfigure: a smaller cache-size evicts at once; cache-timeout 0 empties it', async (t) => {
  const { qr } = setup({ '/a': 'a'.repeat(1000), '/b': 'b'.repeat(1000) });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/b' }, ROOT_FRAME);
  qr.reconfigure({ 'cache-size': '1500' });
  t.is(dump(qr).entries, 1);
  qr.reconfigure({ 'cache-timeout': '0' });
  t.like(dump(qr), { entries: 0, bytes: 0 });
});

test('an fd follows a rename of its file and reads the content fetched at the new name', async (t) => {
  const { child, qr } = setup({ '/a': 'moved' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  const { fd } = await openFd(qr, '/a', O_RDONLY);
  await qr.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/b' }, ROOT_FRAME);
  t.is(text(await qr.call('read', { fd, offset: 0, size: 10 }, ROOT_FRAME)), 'moved');
  t.false(child.calls.some((c) => c.startsWith('read ')));
});

test('content nobody reads stops being asked for, but for a probe every 16th lookup; a read of fetched content brings it back', async (t) => {
  const files = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`/f${i}`, `content ${i}`]));
  const { child, qr } = setup(files);
  const asked = (from: number): string[] => child.calls.slice(from).filter((c) => c.endsWith(' 65536'));
  // A stat-only pass: 16 contents fetched and never read use up the credit.
  for (let i = 0; i < 16; i++) await qr.call('lookup', { path: `/f${i}` }, ROOT_FRAME);
  t.is(asked(0).length, 16);
  t.is(dump(qr).credit, 0);
  let mark = child.calls.length;
  for (let i = 16; i < 32; i++) await qr.call('lookup', { path: `/f${i}` }, ROOT_FRAME);
  t.deepEqual(asked(mark), ['lookup /f31 65536'], 'one probe in 16 lookups');
  t.is(dump(qr).unasked, 15);
  // Probes nobody reads come further apart: the next after 32 lookups.
  mark = child.calls.length;
  for (let i = 0; i < 32; i++) await qr.call('lookup', { path: `/f${i % 16}` }, ROOT_FRAME);
  t.deepEqual(asked(mark), ['lookup /f15 65536'], 'one probe in 32 lookups');
  // Reads start: the probe's content answers one, and lookups ask again.
  t.false(await readfileWent(child, qr, '/f15'));
  mark = child.calls.length;
  for (let i = 32; i < 40; i++) {
    await qr.call('lookup', { path: `/f${i}` }, ROOT_FRAME);
    t.false(await readfileWent(child, qr, `/f${i}`), `/f${i} answered from its lookup`);
  }
  t.is(asked(mark).length, 8);
  t.is(dump(qr).credit, 16, 'reads keep the credit full');
});

test('a lookup that did not ask for content keeps what is held only while the file is unchanged', async (t) => {
  const files = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`/f${i}`, `content ${i}`]));
  const { child, qr } = setup(files);
  for (let i = 0; i < 16; i++) await qr.call('lookup', { path: `/f${i}` }, ROOT_FRAME);
  t.is(dump(qr).credit, 0);
  child.files.set('/f0', Buffer.from('changed elsewhere, longer'));
  const mark = child.calls.length;
  await qr.call('lookup', { path: '/f0' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/f1' }, ROOT_FRAME);
  t.deepEqual(child.calls.slice(mark), ['lookup /f0', 'lookup /f1'], 'not asked');
  t.is(text(await qr.call('readfile', { path: '/f0', offset: 0, size: 100 }, ROOT_FRAME)), 'changed elsewhere, longer');
  t.false(await readfileWent(child, qr, '/f1'));
});

test('an fd on a file that lost its name never reads the content of the file that took it', async (t) => {
  const { child, qr } = setup({ '/a': 'first file' });
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  const old = await openFd(qr, '/a', O_RDONLY);
  // Unlinked and made again through this client, then looked up: new content, new inode.
  await qr.call('unlink', { path: '/a' }, ROOT_FRAME);
  const c = await createFd(qr, '/a', O_CREAT | O_WRONLY);
  await qr.call('write', { fd: c.fd, offset: 0, data: Buffer.from('second') }, ROOT_FRAME);
  await qr.call('release', { fd: c.fd }, ROOT_FRAME);
  await qr.call('lookup', { path: '/a' }, ROOT_FRAME);
  const mark = child.calls.length;
  await qr.call('read', { fd: old.fd, offset: 0, size: 100 }, ROOT_FRAME).catch(() => undefined);
  t.deepEqual(child.calls.slice(mark), [`read ${child.num(old.fd)} 0+100`], 'the old fd reads from the child');
  // A new fd on the new file is answered from the content.
  const fresh = await openFd(qr, '/a', O_RDONLY);
  t.is(text(await qr.call('read', { fd: fresh.fd, offset: 0, size: 100 }, ROOT_FRAME)), 'second');
  // An fd opened with nothing held reads from the child.
  const { child: c2, qr: q2 } = setup({ '/b': 'never looked up' });
  const nothing = await openFd(q2, '/b', O_RDONLY);
  await q2.call('lookup', { path: '/b' }, ROOT_FRAME);
  await q2.call('read', { fd: nothing.fd, offset: 0, size: 100 }, ROOT_FRAME);
  t.true(c2.calls.includes(`read ${c2.num(nothing.fd)} 0+100`));
});

test('a change through one name of a hard link drops the content every name reads (one entry per file, by gfid)', async (t) => {
  const { child, qr } = setup({ '/a': 'shared' });
  child.files.set('/b', child.files.get('/a')!);
  child.inos.set('/b', child.inoOf('/a'));
  const gfid = gfidOf(child.inoOf('/a'));
  // The bridge's inodes: both names are one inode.
  const ia = qr.inodes.entry(ROOT_ID, 'a', S_IFREG, gfid);
  const ib = qr.inodes.entry(ROOT_ID, 'b', S_IFREG, gfid);
  t.is(ia, ib);
  await qr.call('lookup', { path: '/a', inode: ia }, ROOT_FRAME);
  t.is(text(await qr.call('readfile', { path: '/b', inode: ib, offset: 0, size: 100 }, ROOT_FRAME)), 'shared', 'fetched by /a, read by /b');
  t.false(child.calls.some((c) => c.startsWith('readfile')));
  const fd = new Fd(ia, O_RDWR);
  await qr.call('open', { path: '/a', flags: O_RDWR, fd }, ROOT_FRAME);
  await qr.call('write', { fd, offset: 0, data: Buffer.from('SH') }, ROOT_FRAME);
  child.files.set('/b', child.files.get('/a')!);
  t.is(text(await qr.call('readfile', { path: '/b', inode: ib, offset: 0, size: 100 }, ROOT_FRAME)), 'SHared', 'a write through /a, seen through /b at once');
  t.true(child.calls.some((c) => c.startsWith('readfile /b')));
});

test('a lookup by one name in flight while the file changes through another keeps nothing', async (t) => {
  const { child, qr } = setup({ '/a': 'before' });
  child.files.set('/b', child.files.get('/a')!);
  child.inos.set('/b', child.inoOf('/a'));
  const inode = qr.inodes.entry(ROOT_ID, 'a', S_IFREG, gfidOf(child.inoOf('/a')));
  qr.inodes.entry(ROOT_ID, 'b', S_IFREG, inode.gfid);
  const fd = new Fd(inode, O_RDWR);
  await qr.call('open', { path: '/a', flags: O_RDWR, fd }, ROOT_FRAME);
  let release!: () => void;
  child.hold = new Promise((r) => { release = r; });
  const looking = qr.call('lookup', { path: '/b' }, ROOT_FRAME);
  await qr.call('write', { fd, offset: 0, data: Buffer.from('AFTER!') }, ROOT_FRAME);
  release();
  await looking;
  t.like(dump(qr), { staleFills: 1, entries: 0 });
});

// ---- prefetch of a listed directory's small files -------------------------------------------

/** Lets every lookup in flight (the child answers on a later microtask turn) settle. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Files /d/f0 ... /d/f{n-1}, each "content i". */
function dirOf(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`/d/f${i}`, `content ${i}`]));
}

test('prefetch: after a listing, the first lookup fetches the other small files, whose lookups and reads then stay here', async (t) => {
  const { child, qr } = setup(dirOf(4));
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/d/f0' }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.calls.filter((c) => c.startsWith('lookup')).sort(), ['lookup /d/f0 65536', 'lookup /d/f1 65536', 'lookup /d/f2 65536', 'lookup /d/f3 65536']);
  const mark = child.calls.length;
  for (const i of [1, 2, 3]) {
    const r = await qr.call('lookup', { path: `/d/f${i}` }, ROOT_FRAME);
    t.is(r.iatt.size, `content ${i}`.length);
    const fd = (await openFd(qr, `/d/f${i}`, O_RDONLY)).fd;
    t.is(text(await qr.call('read', { fd, offset: 0, size: 100 }, ROOT_FRAME)), `content ${i}`);
    await qr.call('release', { fd }, ROOT_FRAME);
  }
  t.deepEqual(child.calls.slice(mark).filter((c) => !c.startsWith('open') && !c.startsWith('release')), [], 'no lookup, no read reached the child');
  t.like(dump(qr), { prefetches: 3, prefetchHits: 3 });
});

test('prefetch: a prefetched entry answers one lookup; the next one asks the child again', async (t) => {
  const { child, qr } = setup(dirOf(2));
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/d/f0' }, ROOT_FRAME);
  await settle();
  await qr.call('lookup', { path: '/d/f1' }, ROOT_FRAME);
  const mark = child.calls.length;
  await qr.call('lookup', { path: '/d/f1' }, ROOT_FRAME);
  t.deepEqual(child.calls.slice(mark), ['lookup /d/f1 65536']);
});

test('prefetch: looking up a listed directory fetches its files', async (t) => {
  const { child, qr } = setup(dirOf(3));
  child.files.set('/d', Buffer.alloc(0));
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/d' }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.calls.filter((c) => c.startsWith('lookup /d/')).sort(), ['lookup /d/f0 65536', 'lookup /d/f1 65536', 'lookup /d/f2 65536']);
});

test('prefetch: a change made here or announced by a brick after the prefetch sends the lookup to the child', async (t) => {
  const { child, qr } = setup(dirOf(3));
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/d/f0' }, ROOT_FRAME);
  await settle();
  await qr.call('setattr', { path: '/d/f1', attrs: { size: 2 } }, ROOT_FRAME);
  qr.invalidate(['/d/f2'], child);
  const mark = child.calls.length;
  t.is((await qr.call('lookup', { path: '/d/f1' }, ROOT_FRAME)).iatt.size, 2);
  await qr.call('lookup', { path: '/d/f2' }, ROOT_FRAME);
  t.deepEqual(child.calls.slice(mark), ['lookup /d/f1 65536', 'lookup /d/f2 65536']);
});

/** /d listed with f0 and f1, then f0 looked up: its prefetch of f1 is held at the child until release(). */
async function heldPrefetchOfF1() {
  const s = setup(dirOf(2));
  await s.qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  // The lookup of f0 sends the prefetch of f1 first: that is the lookup held.
  let release!: () => void;
  s.child.hold = new Promise((r) => { release = r; });
  await s.qr.call('lookup', { path: '/d/f0' }, ROOT_FRAME);
  return { ...s, release };
}

test('prefetch: a change while the prefetch is in flight keeps nothing of it', async (t) => {
  const { child, qr, release } = await heldPrefetchOfF1();
  t.true(child.calls.includes('lookup /d/f1 65536'));
  await qr.call('setattr', { path: '/d/f1', attrs: { size: 3 } }, ROOT_FRAME);
  release();
  await settle();
  const mark = child.calls.length;
  t.is((await qr.call('lookup', { path: '/d/f1' }, ROOT_FRAME)).iatt.size, 3);
  t.deepEqual(child.calls.slice(mark), ['lookup /d/f1 65536'], 'the prefetch made before the change answers nothing');
  t.like(dump(qr), { staleFills: 0, prefetchHits: 0 });
});

test('prefetch: a stat-only pass over a listed directory stops prefetching once the credit is used up', async (t) => {
  const { child, qr } = setup(dirOf(60));
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  for (let i = 0; i < 60; i++) {
    await qr.call('lookup', { path: `/d/f${i}` }, ROOT_FRAME);
    await settle();
  }
  const fetched = child.calls.filter((c) => c.endsWith(' 65536')).length;
  t.true(fetched <= 20, `content fetched ${fetched} times for 60 stats, none read`);
  t.true(dump(qr).prefetches! <= 16);
});

test('prefetch: off with prefetch-files 0', async (t) => {
  const { child, qr } = setup(dirOf(4), { 'prefetch-files': '0' });
  await qr.call('readdir', { path: '/d' }, ROOT_FRAME);
  await qr.call('lookup', { path: '/d/f0' }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.calls, ['readdir /d', 'lookup /d/f0 65536']);
});

test('prefetch: a lookup of a file whose prefetch is on the way waits for it rather than asking again', async (t) => {
  const { child, qr, release } = await heldPrefetchOfF1();
  const waiting = qr.call('lookup', { path: '/d/f1' }, ROOT_FRAME);
  await settle();
  release();
  t.is((await waiting).iatt.size, 'content 1'.length);
  t.is(child.calls.filter((c) => c.startsWith('lookup /d/f1')).length, 1);
  t.like(dump(qr), { prefetchHits: 1 });
});
