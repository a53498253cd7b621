import { ROOT_FRAME, type Frame } from '../../lib/frame.js';
import { FrameSpy, userFrame } from '../helpers/frame-spy.js';
import test from 'ava';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError } from '../../lib/errors.js';
import { S_IFDIR, S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import { Fd, ROOT_ID } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { ReaddirAhead } from '../../client/xlators/performance/readdir-ahead.js';

const iatt = (dir: boolean, size = 0, mode = 0o644): Iatt => ({
  mode: (dir ? 0o040000 : 0o100000) | mode, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blocks: 0, blksize: 4096, ino: 1,
  atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
});

/**
 * A child holding a tree of paths (directories and files with a size and mode) that records
 * every readdir reaching it. gate(path) holds readdirs of path: each is answered from the
 * tree as it is when the call arrives (the brick read it then) but delivered only when the
 * returned function is called. holdBefore(fop) holds the next call of fop before it touches
 * the tree (a change still on its way).
 */
class StubChild extends Xlator {
  readonly tree = new Map<string, Iatt>([['/', iatt(true)]]);
  readonly readdirs: string[] = [];
  readonly failReaddir = new Set<string>();
  private readonly gates = new Map<string, Promise<void>>();
  private readonly before = new Map<FopName, Promise<void>>();
  private readonly fds = new Map<Fd, string>();

  add(...paths: string[]): this {
    for (const p of paths) this.tree.set(p.replace(/\/$/, '') || '/', iatt(p.endsWith('/')));
    return this;
  }

  gate(path: string): () => void {
    let open!: () => void;
    this.gates.set(path, new Promise<void>((r) => (open = r)));
    return () => {
      this.gates.delete(path);
      open();
    };
  }

  holdBefore(fop: FopName): () => void {
    let open!: () => void;
    this.before.set(fop, new Promise<void>((r) => (open = r)));
    return open;
  }

  override async call<F extends FopName>(fop: F, args: FopArgs<F>, _frame: Frame): Promise<FopReply<F>> {
    const b = this.before.get(fop);
    this.before.delete(fop);
    if (b) await b;
    const a = args as Record<string, unknown>;
    if (fop === 'readdir') {
      const path = a.path as string;
      this.readdirs.push(path);
      if (this.failReaddir.has(path)) throw FsError.of('EIO');
      const entries = [...this.tree].filter(([p]) => p !== path && pathMod.dirname(p) === path)
        .map(([p, i]) => ({ name: pathMod.basename(p), iatt: { ...i } }));
      const gate = this.gates.get(path);
      if (gate) await gate;
      return { entries } as FopReply<F>;
    }
    return this.change(fop, a) as FopReply<F>;
  }

  private change(fop: FopName, a: Record<string, unknown>): unknown {
    const path = a.path as string;
    const setSize = (p: string, size: number): void => {
      this.tree.set(p, { ...this.tree.get(p)!, size });
    };
    switch (fop) {
      case 'create':
        this.tree.set(path, iatt(false));
        this.fds.set(a.fd as Fd, path);
        return { iatt: iatt(false) };
      case 'open':
        if (((a.flags as number) & fs.constants.O_TRUNC) !== 0) setSize(path, 0);
        this.fds.set(a.fd as Fd, path);
        return {};
      case 'release':
        this.fds.delete(a.fd as Fd);
        return {};
      case 'write': {
        const p = this.fds.get(a.fd as Fd)!;
        const end = (a.offset as number) + (a.data as Buffer).length;
        setSize(p, Math.max(this.tree.get(p)!.size, end));
        return { size: (a.data as Buffer).length };
      }
      case 'writev': {
        const p = this.fds.get(a.fd as Fd)!;
        for (const e of a.extents as Array<{ offset: number; data: Buffer }>) setSize(p, Math.max(this.tree.get(p)!.size, e.offset + e.data.length));
        return { size: 1 };
      }
      case 'ftruncate':
        setSize(this.fds.get(a.fd as Fd)!, a.size as number);
        return {};
      case 'setattr': {
        const before = this.tree.get(path)!;
        this.tree.set(path, { ...before, mode: (before.mode & ~0o7777) | ((a.attrs as { mode: number }).mode & 0o7777) });
        return { iatt: this.tree.get(path)! };
      }
      case 'setxattr':
      case 'removexattr':
        this.tree.set(path, { ...this.tree.get(path)!, ctimeMs: 1 });
        return {};
      case 'mkdir':
        this.tree.set(path, iatt(true));
        return { iatt: iatt(true) };
      case 'mknod':
      case 'symlink':
        this.tree.set(path, iatt(false));
        return { iatt: iatt(false) };
      case 'link': {
        const target = this.tree.get(a.target as string)!;
        this.tree.set(a.target as string, { ...target, nlink: target.nlink + 1 });
        this.tree.set(path, { ...target, nlink: target.nlink + 1 });
        return { iatt: target };
      }
      case 'unlink':
      case 'rmdir':
        this.tree.delete(path);
        return {};
      case 'rename': {
        const from = a.from as string;
        const to = a.to as string;
        for (const [p, i] of [...this.tree]) {
          if (p !== from && !p.startsWith(from + '/')) continue;
          this.tree.delete(p);
          this.tree.set(to + p.slice(from.length), i);
        }
        for (const [fd, p] of this.fds) if (p === from) this.fds.set(fd, to);
        return {};
      }
      default:
        throw FsError.of('ENOSYS');
    }
  }
}

type Options = Partial<Record<'max-prefetch' | 'parallel' | 'cache-timeout' | 'cache-size' | 'reuse-listings', string>>;

function make(options: Options = {}): { ra: ReaddirAhead; child: StubChild } {
  const child = new StubChild({ name: 'stub', type: 'test/stub', options: {}, children: [] });
  const ra = new ReaddirAhead({ name: 'rda', type: 'performance/readdir-ahead', options, children: [child] });
  return { ra, child };
}

/** Waits until no prefetch is queued or in flight. */
async function settle(ra: ReaddirAhead): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const d = ra.statedump();
    if (d.inFlight === 0 && d.queued === 0) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('prefetches did not settle');
}

const names = (r: FopReply<'readdir'>): string[] => r.entries.map((e) => e.name).sort();

test('a listing prefetches its subdirectories (not its files); their readdirs are answered without the child, once', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/x', '/b/', '/b/y/', '/f');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/b']);
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['x']);
  t.deepEqual(child.readdirs, ['/', '/a', '/b'], 'the hit reached no child');
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/b', '/a'], 'a listing answers one readdir only');
  t.like(ra.statedump(), { prefetched: 2, hits: 1, held: 1 });
});

test('reuse-listings: a listing answers the next readdirs of its directory too, until it is cache-timeout old (rm lists each directory twice)', async (t) => {
  const { ra, child } = make({ 'cache-timeout': '1', 'reuse-listings': 'on' });
  child.add('/a/', '/a/x', '/a/d/');
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['d', 'x']);
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['d', 'x']);
  t.deepEqual(child.readdirs, ['/a', '/a/d'], 'the listing that went down answered the second readdir');
  await settle(ra);
  await ra.call('readdir', { path: '/a/d' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/a/d' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/a', '/a/d'], 'and a prefetched one answers twice');
  await new Promise((r) => setTimeout(r, 1100));
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/a', '/a/d', '/a', '/a/d'], 'too old: asked again (and /a/d prefetched again)');
  t.like(ra.statedump(), { hits: 3, misses: 2, expired: 0, backedOff: 0 }, 'a used listing expiring is no waste');
  await ra.call('unlink', { path: '/a/x' }, ROOT_FRAME);
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['d'], 'an own change drops it');
  t.deepEqual(child.readdirs, ['/a', '/a/d', '/a', '/a/d', '/a']);
});

test('reuse-listings: a listing that went down while this client changed the directory is not held', async (t) => {
  const { ra, child } = make({ 'reuse-listings': 'on' });
  child.add('/a/');
  const open = child.gate('/a');
  const listing = ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await new Promise((r) => setImmediate(r));
  await ra.call('create', { path: '/a/new', mode: 0o644, flags: 0, fd: Fd.forPath('/a/new', 0) }, ROOT_FRAME);
  open();
  t.deepEqual(names(await listing), [], 'read before the create landed');
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['new']);
  t.deepEqual(child.readdirs, ['/a', '/a']);
});

test('reuse-listings: readdirs of a directory whose listing is on its way wait for it', async (t) => {
  const { ra, child } = make({ 'reuse-listings': 'on' });
  child.add('/a/', '/a/x');
  const open = child.gate('/a');
  const first = ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  const second = ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await new Promise((r) => setImmediate(r));
  open();
  t.deepEqual((await Promise.all([first, second])).map(names), [['x'], ['x']]);
  t.deepEqual(child.readdirs, ['/a']);
});

test('an answer from a prefetch prefetches further down', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/b/', '/a/b/c/');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/a/b']);
  await ra.call('readdir', { path: '/a/b' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/a/b', '/a/b/c']);
  t.like(ra.statedump(), { hits: 2 });
});

test('max-prefetch subdirectories per listing, in the order they came, at most parallel in flight', async (t) => {
  const { ra, child } = make({ 'max-prefetch': '3', parallel: '2' });
  for (let i = 0; i < 6; i++) child.add(`/d${i}/`);
  const opens = [0, 1, 2].map((i) => child.gate(`/d${i}`));
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1']);
  t.like(ra.statedump(), { inFlight: 2, queued: 1 });
  opens[0]!();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1', '/d2'], 'the next one goes when one comes back');
  opens[1]!();
  opens[2]!();
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1', '/d2']);
  t.like(ra.statedump(), { prefetched: 3, held: 3 });
});

test('past max-prefetch, the next subdirectory is prefetched as the walker uses one (or gets past it)', async (t) => {
  const { ra, child } = make({ 'max-prefetch': '2' });
  for (let i = 0; i < 6; i++) child.add(`/d${i}/`);
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1']);
  await ra.call('readdir', { path: '/d0' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1', '/d2'], 'a hit moves the window on by one');
  await ra.call('readdir', { path: '/d3' }, ROOT_FRAME); // the walker got ahead of the window
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/d0', '/d1', '/d2', '/d3', '/d4']);
  t.like(ra.statedump(), { hits: 1, misses: 2, held: 3 }, '/d1, /d2 (passed by, left to expire) and /d4');
});

test('a readdir arriving while its prefetch is in flight waits for it instead of sending another', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/x');
  const open = child.gate('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  const listing = ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await new Promise((r) => setImmediate(r));
  open();
  t.deepEqual(names(await listing), ['x']);
  t.deepEqual(child.readdirs, ['/', '/a']);
  t.like(ra.statedump(), { waited: 1, held: 0 });
});

test('a readdir of a directory whose prefetch is still queued goes down at once', async (t) => {
  const { ra, child } = make({ parallel: '1' });
  child.add('/a/', '/b/');
  const open = child.gate('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/b' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/b']);
  open();
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/b'], 'the queued prefetch was not sent after');
  t.like(ra.statedump(), { promoted: 1 });
});

test('a held listing older than cache-timeout is not used, and that directory is not prefetched again soon', async (t) => {
  const { ra, child } = make({ 'cache-timeout': '1' });
  child.add('/a/');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  await new Promise((r) => setTimeout(r, 1100));
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/'], 'the wasted one is not fetched again at once');
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/', '/a']);
  t.like(ra.statedump(), { expired: 1, backedOff: 1, hits: 0 });
});

test('listings expiring unused halve how far ahead the next listings are prefetched; used ones widen it again', async (t) => {
  const { ra, child } = make({ 'max-prefetch': '8' });
  for (const top of ['a', 'b']) for (let i = 0; i < 10; i++) child.add(`/${top}/`, `/${top}/d${i}/`);
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await settle(ra);
  t.is(child.readdirs.length, 1 + 8);
  await new Promise((r) => setTimeout(r, 1100));
  await ra.call('readdir', { path: '/b' }, ROOT_FRAME); // the 8 of /a expire here (one halving), then 4 of /b go
  await settle(ra);
  t.deepEqual(child.readdirs.slice(9), ['/b', '/b/d0', '/b/d1', '/b/d2', '/b/d3']);
  t.like(ra.statedump(), { expired: 8, window: 4 });
  for (let i = 0; i < 5; i++) {
    await settle(ra);
    await ra.call('readdir', { path: `/b/d${i}` }, ROOT_FRAME);
  }
  t.like(ra.statedump(), { hits: 5, window: 5 }, 'a window of listings used widens it by one');
});

test('cache-timeout 0 prefetches nothing', async (t) => {
  const { ra, child } = make({ 'cache-timeout': '0' });
  child.add('/a/');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a']);
});

test('a failed prefetch is counted and its readdir goes to the child', async (t) => {
  const { ra, child } = make();
  child.add('/a/');
  child.failReaddir.add('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  child.failReaddir.clear();
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/a']);
  t.like(ra.statedump(), { failed: 1 });
});

test('cache-size bounds the entries held: the oldest listings make room, one too big is not held', async (t) => {
  const { ra, child } = make({ 'cache-size': '6' });
  child.add('/a/', '/a/1', '/a/2', '/b/', '/b/1', '/c/', '/c/1', '/c/2', '/d/');
  for (let i = 0; i < 7; i++) child.add(`/d/${i}`);
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  const d = ra.statedump();
  t.true((d.heldEntries as number) <= 6, `held ${String(d.heldEntries)}`);
  t.true((d.evicted as number) >= 2, 'the oldest went, and /d (8 entries) was never held');
  const before = child.readdirs.length;
  await ra.call('readdir', { path: '/c' }, ROOT_FRAME);
  t.is(child.readdirs.length, before, 'the newest listing is still held');
  await ra.call('readdir', { path: '/d' }, ROOT_FRAME);
  t.is(child.readdirs.length, before + 1);
});

/** Each own change, what it changes, and the directory whose held listing must not be used after it. */
const changes: Array<[string, string, (ra: ReaddirAhead) => Promise<unknown>, (r: FopReply<'readdir'>) => unknown]> = [
  ['create', '/a', (ra) => ra.call('create', { path: '/a/new', mode: 0o644, flags: 0, fd: Fd.forPath('/a/new', 0) }, ROOT_FRAME), names],
  ['mkdir', '/a', (ra) => ra.call('mkdir', { path: '/a/new', mode: 0o755 }, ROOT_FRAME), names],
  ['mknod', '/a', (ra) => ra.call('mknod', { path: '/a/new', mode: 0o10644, rdev: 0 }, ROOT_FRAME), names],
  ['symlink', '/a', (ra) => ra.call('symlink', { target: 'x', path: '/a/new' }, ROOT_FRAME), names],
  ['link (new name)', '/a', (ra) => ra.call('link', { target: '/b/f', path: '/a/new' }, ROOT_FRAME), names],
  ['link (the target\'s link count)', '/b', (ra) => ra.call('link', { target: '/b/f', path: '/a/new' }, ROOT_FRAME), (r) => r.entries.map((e) => e.iatt.nlink)],
  ['unlink', '/a', (ra) => ra.call('unlink', { path: '/a/f' }, ROOT_FRAME), names],
  ['rmdir', '/a', (ra) => ra.call('rmdir', { path: '/a/sub' }, ROOT_FRAME), names],
  ['rename (old parent)', '/a', (ra) => ra.call('rename', { from: '/a/f', to: '/b/g' }, ROOT_FRAME), names],
  ['rename (new parent)', '/b', (ra) => ra.call('rename', { from: '/a/f', to: '/b/g' }, ROOT_FRAME), names],
  ['rename of a directory (what was under it)', '/b', (ra) => ra.call('rename', { from: '/b', to: '/c' }, ROOT_FRAME).then(() => ra.call('rename', { from: '/a', to: '/b' }, ROOT_FRAME)), names],
  ['an entry change (the directory\'s own attributes in its parent)', '/a', (ra) => ra.call('create', { path: '/a/sub/new', mode: 0o644, flags: 0, fd: Fd.forPath('/a/sub/new', 0) }, ROOT_FRAME), names],
  ['setattr of a child', '/a', (ra) => ra.call('setattr', { path: '/a/f', attrs: { mode: 0o600 } }, ROOT_FRAME), (r) => r.entries.map((e) => e.iatt.mode)],
  ['setxattr of a child', '/a', (ra) => ra.call('setxattr', { path: '/a/f', name: 'user.x', value: Buffer.from('1'), flags: 0 }, ROOT_FRAME), (r) => r.entries.map((e) => e.iatt.ctimeMs)],
  ['write through an fd', '/a', async (ra) => {
    const fd = Fd.forPath('/a/f', fs.constants.O_WRONLY);
    await ra.call('open', { path: '/a/f', flags: fs.constants.O_WRONLY, fd }, ROOT_FRAME);
    await ra.call('write', { fd, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME);
  }, (r) => r.entries.map((e) => e.iatt.size)],
  ['writev through an fd', '/a', async (ra) => {
    const fd = Fd.forPath('/a/f', fs.constants.O_WRONLY);
    await ra.call('open', { path: '/a/f', flags: fs.constants.O_WRONLY, fd }, ROOT_FRAME);
    await ra.call('writev', { fd, extents: [{ offset: 10, data: Buffer.from('x') }] }, ROOT_FRAME);
  }, (r) => r.entries.map((e) => e.iatt.size)],
  ['ftruncate through an fd opened by create', '/a', async (ra) => {
    const fd = Fd.forPath('/a/g', 0);
    await ra.call('create', { path: '/a/g', mode: 0o644, flags: 0, fd }, ROOT_FRAME);
    await ra.call('readdir', { path: '/' }, ROOT_FRAME); // a fresh prefetch of /a after the create
    await settle(ra);
    await ra.call('ftruncate', { fd, size: 77 }, ROOT_FRAME);
  }, (r) => r.entries.map((e) => e.iatt.size)],
  ['write through an fd of a file renamed since (its path follows its inode)', '/b', async (ra) => {
    // The bridge's inodes: the fd is on /a/f's, and the table moves the name after the rename.
    const a = ra.inodes.entry(ROOT_ID, 'a', S_IFDIR);
    const b = ra.inodes.entry(ROOT_ID, 'b', S_IFDIR);
    const fd = new Fd(ra.inodes.entry(a.id, 'f', S_IFREG), fs.constants.O_WRONLY);
    await ra.call('open', { path: '/a/f', flags: fs.constants.O_WRONLY, fd }, ROOT_FRAME);
    await ra.call('rename', { from: '/a/f', to: '/b/g', inode: fd.inode }, ROOT_FRAME);
    ra.inodes.move(a.id, 'f', b.id, 'g');
    await ra.call('readdir', { path: '/' }, ROOT_FRAME);
    await settle(ra);
    await ra.call('write', { fd, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME);
  }, (r) => r.entries.map((e) => e.iatt.size)],
  ['write through one name of a hard link (the listing of the other name\'s directory)', '/b', async (ra) => {
    const gfid = '00112233445566778899aabbccddeeff';
    const a = ra.inodes.entry(ROOT_ID, 'a', S_IFDIR);
    const b = ra.inodes.entry(ROOT_ID, 'b', S_IFDIR);
    const inode = ra.inodes.entry(a.id, 'f', S_IFREG, gfid);
    if (ra.inodes.entry(b.id, 'f', S_IFREG, gfid) !== inode) throw new Error('two names, one inode');
    const fd = new Fd(inode, fs.constants.O_WRONLY);
    await ra.call('open', { path: '/a/f', flags: fs.constants.O_WRONLY, fd }, ROOT_FRAME);
    await ra.call('write', { fd, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME);
  }, names],
  ['open with O_TRUNC', '/a', async (ra) => {
    await ra.call('open', { path: '/a/f', flags: fs.constants.O_WRONLY | fs.constants.O_TRUNC, fd: Fd.forPath('/a/f', fs.constants.O_WRONLY | fs.constants.O_TRUNC) }, ROOT_FRAME);
  }, (r) => r.entries.map((e) => e.iatt.size)],
];

for (const [what, dir, change, view] of changes) {
  test(`own change drops the held listing: ${what}`, async (t) => {
    const { ra, child } = make();
    child.add('/a/', '/a/f', '/a/sub/', '/b/', '/b/f');
    child.tree.set('/a/f', { ...child.tree.get('/a/f')!, size: 3 });
    await ra.call('readdir', { path: '/' }, ROOT_FRAME);
    await settle(ra);
    await change(ra);
    const before = child.readdirs.length;
    const r = await ra.call('readdir', { path: dir }, ROOT_FRAME);
    t.is(child.readdirs[before], dir, 'asked the child');
    t.deepEqual(view(r), view(await child.call('readdir', { path: dir }, ROOT_FRAME)));
    t.true((ra.statedump().dropped as number) >= 1);
  });
}

test('a prefetch in flight when a change went down is not used (the reply was read before it)', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/f');
  const open = child.gate('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await ra.call('create', { path: '/a/new', mode: 0o644, flags: 0, fd: Fd.forPath('/a/new', 0) }, ROOT_FRAME);
  open();
  await settle(ra);
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), ['f', 'new']);
  t.deepEqual(child.readdirs, ['/', '/a', '/a']);
  t.like(ra.statedump(), { held: 0, hits: 0 });
});

test('a prefetch sent while a change was on its way is not used', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/f');
  const land = child.holdBefore('unlink');
  const unlinking = ra.call('unlink', { path: '/a/f' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra); // the prefetch of /a came back with f, which the unlink is about to remove
  land();
  await unlinking;
  t.deepEqual(names(await ra.call('readdir', { path: '/a' }, ROOT_FRAME)), []);
  t.deepEqual(child.readdirs, ['/', '/a', '/a']);
});

test('a readdir waiting on a prefetch that a change spoiled goes to the child', async (t) => {
  const { ra, child } = make();
  child.add('/a/');
  const open = child.gate('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  const listing = ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await ra.call('mkdir', { path: '/a/new', mode: 0o755 }, ROOT_FRAME);
  open();
  t.deepEqual(names(await listing), ['new']);
  t.deepEqual(child.readdirs, ['/', '/a', '/a', '/a/new'], 'asked again (and /a/new prefetched from the answer)');
});

test('invalidate drops the listings of the paths and of their parents, and goes up', async (t) => {
  const { ra, child } = make();
  child.add('/a/', '/a/f', '/b/', '/c/');
  const seen: string[][] = [];
  const parent = new (class extends Xlator {
    override invalidate(paths: readonly string[]): void {
      seen.push([...paths]);
    }
  })({ name: 'top', type: 'test/top', options: {}, children: [ra] });
  t.is(ra.parents[0], parent);
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  ra.invalidate(['/a/f', '/b'], child);
  t.deepEqual(seen, [['/a/f', '/b']]);
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/b' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/c' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/b', '/c', '/a', '/b'], '/c stayed held');
  t.like(ra.statedump(), { hits: 1, dropped: 2 });
});

test('invalidate of a directory drops the listings below it (renamed or removed by another client), and its grandparent\'s', async (t) => {
  const { ra, child } = make();
  child.add('/top/', '/top/a/', '/top/a/sub/', '/top/a/sub/deep/', '/top/b/');
  await ra.call('readdir', { path: '/top' }, ROOT_FRAME);
  await settle(ra);
  await ra.call('readdir', { path: '/top/a' }, ROOT_FRAME); // /top/a/sub now held
  await settle(ra);
  await ra.call('readdir', { path: '/top/a/sub' }, ROOT_FRAME); // /top/a/sub/deep now held
  await settle(ra);
  ra.invalidate(['/top/a/sub'], child);
  const before = child.readdirs.length;
  await ra.call('readdir', { path: '/top/a/sub/deep' }, ROOT_FRAME);
  await ra.call('readdir', { path: '/top/b' }, ROOT_FRAME);
  t.deepEqual(child.readdirs.slice(before), ['/top/a/sub/deep'], '/top/b, a sibling of the parent, stayed held');
});

test('a child going down or up drops everything held', async (t) => {
  const { ra, child } = make();
  child.add('/a/');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  ra.notify('CHILD_DOWN', child);
  await ra.call('readdir', { path: '/a' }, ROOT_FRAME);
  t.deepEqual(child.readdirs, ['/', '/a', '/a']);
});

test('fini waits for prefetches in flight and sends no more', async (t) => {
  const { ra, child } = make({ parallel: '1' });
  child.add('/a/', '/b/');
  const open = child.gate('/a');
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  const done = ra.fini();
  open();
  await done;
  t.deepEqual(child.readdirs, ['/', '/a']);
  t.like(ra.statedump(), { inFlight: 0, queued: 0, held: 0 });
});

test('prefetched listings go down with the frame of the readdir that listed their parent', async (t) => {
  const child = new StubChild({ name: 'stub', type: 'test/stub', options: {}, children: [] });
  const spy = new FrameSpy({ name: 'spy', type: 'test/spy', options: {}, children: [child] });
  const ra = new ReaddirAhead({ name: 'ra', type: 'performance/readdir-ahead', options: {}, children: [spy] });
  child.add('/a/', '/a/x/', '/b/');
  await ra.call('readdir', { path: '/' }, userFrame(1000));
  await settle(ra);
  t.deepEqual(spy.uids, ['readdir 1000', 'readdir 1000', 'readdir 1000']);
  await ra.call('readdir', { path: '/a' }, userFrame(1001));
  await settle(ra);
  t.deepEqual(child.readdirs, ['/', '/a', '/b', '/a/x']);
  t.deepEqual(spy.uids.slice(3), ['readdir 1001'], 'the hit reached no child; the prefetch it started carries its frame');
});

test('a listing is keyed by its directory\'s gfid: a readdir carrying the inode uses the prefetch, and a change by path (through the inode table) drops it', async (t) => {
  const { ra, child } = make({ 'reuse-listings': 'true' });
  const gfid = 'ffeeddccbbaa99887766554433221100';
  child.add('/a/', '/a/f');
  child.tree.set('/a', { ...child.tree.get('/a')!, gfid });
  await ra.call('readdir', { path: '/' }, ROOT_FRAME);
  await settle(ra);
  const inode = ra.inodes.entry(ROOT_ID, 'a', S_IFDIR, gfid);
  const before = child.readdirs.length;
  t.deepEqual(names(await ra.call('readdir', { path: '/a', inode }, ROOT_FRAME)), ['f']);
  t.is(child.readdirs.length, before, 'answered from the prefetch, found by gfid');
  await ra.call('create', { path: '/a/new', mode: 0o644, flags: 0, fd: Fd.forPath('/a/new', 0) }, ROOT_FRAME);
  t.deepEqual(names(await ra.call('readdir', { path: '/a', inode }, ROOT_FRAME)), ['f', 'new']);
  t.is(child.readdirs[before], '/a', 'the change found the listing through the table');
});
