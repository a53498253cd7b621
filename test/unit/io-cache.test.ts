import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import { Fd, ROOT_ID, type Inode } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { IoCache } from '../../client/xlators/performance/io-cache.js';
import { mulberry32 } from '../../lib/prng.js';

const KiB = 1024;
const PS = 16 * KiB;
const { O_RDONLY, O_RDWR, O_TRUNC, O_CREAT } = fs.constants;

interface MemFile {
  data: Buffer;
  mtimeMs: number;
  /** The file's identity: kept while its content changes, moved by a rename, new for a new file. */
  gfid: string;
}

/**
 * A child holding files in memory, as a brick would: attributes follow the content (a
 * change moves mtime unless the test sets it), reads take the bytes there are when they
 * arrive, or when the test says so while `holding`.
 */
class MemChild extends Xlator {
  readonly files = new Map<string, MemFile>();
  readonly reads: Array<{ fd: Fd; offset: number; size: number }> = [];
  fstats = 0;
  holding = false;
  readonly held: Array<() => void> = [];
  private readonly fdPath = new Map<Fd, string>();
  private clock = 1000;

  /** Sets a file's content (a new file where there is none); mtime moves unless given. */
  put(path: string, data: Buffer, mtimeMs = ++this.clock): void {
    this.files.set(path, { data: Buffer.from(data), mtimeMs, gfid: this.files.get(path)?.gfid ?? crypto.randomBytes(16).toString('hex') });
  }

  iatt(path: string): Iatt {
    const f = this.files.get(path);
    if (!f) throw FsError.of('ENOENT', path);
    return {
      mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size: f.data.length, blocks: 0, blksize: 4096, ino: 1,
      atimeMs: 0, mtimeMs: f.mtimeMs, ctimeMs: f.mtimeMs, gfid: f.gfid,
    };
  }

  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    try {
      return Promise.resolve(this.answer(fop, args) as FopReply<F>);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private answer(fop: FopName, args: unknown): unknown {
    switch (fop) {
      case 'lookup':
        return { iatt: this.iatt((args as FopArgs<'lookup'>).path) };
      case 'readdir': {
        const dir = (args as FopArgs<'readdir'>).path;
        const prefix = dir === '/' ? '/' : dir + '/';
        const entries = [...this.files.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
          .map((p) => ({ name: p.slice(prefix.length), iatt: this.iatt(p) }));
        return { entries };
      }
      case 'fstat':
        this.fstats++;
        return { iatt: this.iatt(this.fdPath.get((args as FopArgs<'fstat'>).fd)!) };
      case 'open':
      case 'create': {
        const a = args as FopArgs<'open'>;
        if (fop === 'create' && !this.files.has(a.path)) this.put(a.path, Buffer.alloc(0));
        if (!this.files.has(a.path)) throw FsError.of('ENOENT', a.path);
        if (a.flags & O_TRUNC) this.put(a.path, Buffer.alloc(0));
        this.fdPath.set(a.fd, a.path);
        return fop === 'create' ? { iatt: this.iatt(a.path) } : {};
      }
      case 'read': {
        const a = args as FopArgs<'read'>;
        this.reads.push({ ...a });
        const go = (): { data: Buffer } => {
          const d = this.files.get(this.fdPath.get(a.fd)!)!.data;
          return { data: Buffer.from(d.subarray(Math.min(a.offset, d.length), Math.min(a.offset + a.size, d.length))) };
        };
        if (!this.holding) return go();
        return new Promise((resolve) => this.held.push(() => resolve(go())));
      }
      case 'write': {
        const a = args as FopArgs<'write'>;
        const path = this.fdPath.get(a.fd)!;
        const old = this.files.get(path)!.data;
        const next = Buffer.alloc(Math.max(old.length, a.offset + a.data.length));
        old.copy(next);
        a.data.copy(next, a.offset);
        this.put(path, next);
        return { size: a.data.length };
      }
      case 'ftruncate': {
        const a = args as FopArgs<'ftruncate'>;
        this.truncate(this.fdPath.get(a.fd)!, a.size);
        return {};
      }
      case 'setattr': {
        const a = args as FopArgs<'setattr'>;
        if (a.attrs.size !== undefined) this.truncate(a.path, a.attrs.size);
        return { iatt: this.iatt(a.path) };
      }
      case 'rename': {
        const a = args as FopArgs<'rename'>;
        for (const p of [...this.files.keys()]) {
          if (p === a.from || p.startsWith(a.from + '/')) {
            this.files.set(a.to + p.slice(a.from.length), this.files.get(p)!);
            this.files.delete(p);
          }
        }
        for (const [fd, p] of this.fdPath) if (p === a.from || p.startsWith(a.from + '/')) this.fdPath.set(fd, a.to + p.slice(a.from.length));
        return {};
      }
      case 'unlink':
        this.files.delete((args as FopArgs<'unlink'>).path);
        return {};
      case 'flush':
      case 'release':
        return {};
      default:
        throw FsError.of('ENOSYS', fop);
    }
  }

  private truncate(path: string, size: number): void {
    const old = this.files.get(path)!.data;
    const next = Buffer.alloc(size);
    old.copy(next, 0, 0, Math.min(size, old.length));
    this.put(path, next);
  }
}

/** A parent that records what invalidate() told it. */
class Parent extends Xlator {
  readonly told: string[][] = [];

  override invalidate(paths: readonly string[]): void {
    this.told.push([...paths]);
  }
}

/** An io-cache over a MemChild; cache-timeout is long unless a test is about it (a busy machine takes seconds). */
function make(options: Record<string, string> = {}): { ioc: IoCache; child: MemChild } {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  const ioc = new IoCache({ name: 'ioc', type: 'performance/io-cache', options: { 'page-size': '16K', 'cache-timeout': '60', ...options }, children: [child] });
  return { ioc, child };
}

/** Random content of n bytes at path in the child. */
function file(child: MemChild, path: string, n: number, mtimeMs?: number): Buffer {
  const b = crypto.randomBytes(n);
  child.put(path, b, mtimeMs);
  return b;
}

/** Opens as the bridge does: the caller makes the fd (on inode, or on a path of its own) and gives it to open. */
async function open(ioc: IoCache, path: string, flags = O_RDONLY, inode?: Inode): Promise<Fd> {
  const fd = inode ? new Fd(inode, flags) : Fd.forPath(path, flags);
  await ioc.call('open', { path, flags, fd }, ROOT_FRAME);
  return fd;
}

async function read(ioc: IoCache, fd: Fd, offset: number, size: number): Promise<Buffer> {
  return (await ioc.call('read', { fd, offset, size }, ROOT_FRAME)).data;
}

/** The kernel's way to read a file: lookup, open, read it whole, release. */
async function cat(ioc: IoCache, path: string, size = 1024 * KiB): Promise<Buffer> {
  await ioc.call('lookup', { path }, ROOT_FRAME);
  const fd = await open(ioc, path);
  const data = await read(ioc, fd, 0, size);
  await ioc.call('release', { fd }, ROOT_FRAME);
  return data;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const dump = (ioc: IoCache): Record<string, number> => ioc.statedump() as Record<string, number>;

test('a file read again through a new open is answered from the cache, without a child read', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/f', 40_000);
  t.deepEqual(await cat(ioc, '/f'), content);
  t.deepEqual(child.reads.map((r) => `${r.offset}+${r.size}`), ['0+49152'], 'a fill reads the whole pages the read touches');
  t.deepEqual(await cat(ioc, '/f'), content);
  t.is(child.reads.length, 1, 'the second read reached no child');
  // Any part of it, through another fd.
  const fd = await open(ioc, '/f');
  t.deepEqual(await read(ioc, fd, 10_000, 20_000), content.subarray(10_000, 30_000));
  t.deepEqual(await read(ioc, fd, 39_000, 8192), content.subarray(39_000), 'short at the end of the file');
  t.deepEqual(await read(ioc, fd, 40_000, 4096), Buffer.alloc(0), 'nothing past it');
  t.is(child.reads.length, 1);
  t.like(dump(ioc), { hits: 4, misses: 1, pages: 3, cachedBytes: 40_000 });
  t.is(child.fstats, 0, 'the lookups gave the attributes: no revalidation');
});

test('after cache-timeout the attributes are checked again: kept when unchanged, dropped when changed', async (t) => {
  const { ioc, child } = make({ 'cache-timeout': '1' });
  const content = file(child, '/f', 20_000);
  t.deepEqual(await cat(ioc, '/f'), content);
  // Changed behind the cache's back (another client): within the timeout the old bytes are served.
  const fresh = file(child, '/f', 20_000);
  const fd = await open(ioc, '/f');
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), content, 'within cache-timeout');
  t.is(child.reads.length, 1);
  await sleep(1100);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), fresh, 'after it: an fstat shows the change, the pages go');
  t.is(child.fstats, 1);
  t.is(child.reads.length, 2);
  await sleep(1100);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), fresh);
  t.is(child.fstats, 2, 'revalidated again');
  t.is(child.reads.length, 2, 'unchanged: kept');
  t.like(dump(ioc), { revalidations: 2, hits: 2, misses: 2 });
});

test('cache-timeout 0 checks the attributes before every read; a same-size change with a new mtime is seen', async (t) => {
  const { ioc, child } = make({ 'cache-timeout': '0' });
  file(child, '/f', 5000);
  const fd = await open(ioc, '/f');
  await read(ioc, fd, 0, 8192);
  await read(ioc, fd, 0, 8192);
  t.is(child.reads.length, 1);
  const fresh = file(child, '/f', 5000);
  t.deepEqual(await read(ioc, fd, 0, 8192), fresh);
  t.is(child.fstats, 3);
});

test('a write through this client drops the pages: the next read has the new bytes, through any fd', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/f', 50_000);
  const reader = await open(ioc, '/f');
  t.deepEqual(await read(ioc, reader, 0, 64 * KiB), content);
  const writer = await open(ioc, '/f', O_RDWR);
  const patch = crypto.randomBytes(100);
  await ioc.call('write', { fd: writer, offset: 20_000, data: patch }, ROOT_FRAME);
  patch.copy(content, 20_000);
  t.deepEqual(await read(ioc, reader, 0, 64 * KiB), content);
  // writev and ftruncate too.
  t.deepEqual(await cat(ioc, '/f'), content, 'cached again once the attributes are seen (lookup)');
  const reads = child.reads.length;
  t.deepEqual(await cat(ioc, '/f'), content);
  t.is(child.reads.length, reads);
  await ioc.call('ftruncate', { fd: writer, size: 10_000 }, ROOT_FRAME);
  t.deepEqual(await read(ioc, reader, 0, 64 * KiB), content.subarray(0, 10_000));
  t.true(dump(ioc).invalidations >= 2);
});

test('right after a change of ours, reads go to the child until fresh attributes are seen', async (t) => {
  const { ioc, child } = make();
  file(child, '/f', 10_000);
  let fd = await open(ioc, '/f', O_RDWR);
  await ioc.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  await read(ioc, fd, 0, 16 * KiB);
  await read(ioc, fd, 0, 16 * KiB);
  t.is(child.reads.length, 2);
  t.is(child.fstats, 0, 'no revalidation round trip added to a read after a write');
  t.like(dump(ioc), { pages: 0, passed: 2 });
  // Closed and opened again (the kernel's lookup answered above, by md-cache): still no round trip added.
  await ioc.call('release', { fd }, ROOT_FRAME);
  fd = await open(ioc, '/f', O_RDWR);
  await read(ioc, fd, 0, 16 * KiB);
  t.is(child.fstats, 0);
  await ioc.call('fstat', { fd }, ROOT_FRAME);
  await read(ioc, fd, 0, 16 * KiB);
  await read(ioc, fd, 0, 16 * KiB);
  t.is(child.reads.length, 4, 'an fstat passing through brought them: cached again');
});

test('an O_TRUNC open, a create with O_TRUNC and a setattr of the size drop the pages', async (t) => {
  const { ioc, child } = make();
  // The same mtime throughout: only the drops protect the reader here.
  file(child, '/f', 30_000, 5);
  await cat(ioc, '/f');
  const fd = await open(ioc, '/f', O_RDWR | O_TRUNC);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), Buffer.alloc(0));
  child.put('/f', Buffer.from('abc'), 5);
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), Buffer.from('abc'));
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), Buffer.from('abc'));
  const cfd = Fd.forPath('/f', O_CREAT | O_RDWR | O_TRUNC);
  await ioc.call('create', { path: '/f', mode: 0o644, flags: O_CREAT | O_RDWR | O_TRUNC, fd: cfd }, ROOT_FRAME);
  t.deepEqual(await read(ioc, cfd, 0, 64 * KiB), Buffer.alloc(0));
  child.put('/f', Buffer.from('defgh'), 5);
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), Buffer.from('defgh'));
  await ioc.call('setattr', { path: '/f', attrs: { size: 2 } }, ROOT_FRAME);
  t.deepEqual(await read(ioc, fd, 0, 64 * KiB), Buffer.from('de'));
});

test('unlink and rename drop both names and everything under a renamed directory', async (t) => {
  const { ioc, child } = make();
  // Same sizes and mtimes everywhere: the attributes cannot tell the files apart.
  file(child, '/u', 1000, 7);
  await cat(ioc, '/u');
  await ioc.call('unlink', { path: '/u' }, ROOT_FRAME);
  const u2 = file(child, '/u', 1000, 7);
  t.deepEqual(await cat(ioc, '/u'), u2, 'a new file at an unlinked name');

  file(child, '/a', 1000, 7);
  const b = file(child, '/b', 1000, 7);
  await cat(ioc, '/a');
  await cat(ioc, '/b');
  await ioc.call('rename', { from: '/b', to: '/a' }, ROOT_FRAME);
  t.deepEqual(await cat(ioc, '/a'), b, 'renamed over');
  const b2 = file(child, '/b', 1000, 7);
  t.deepEqual(await cat(ioc, '/b'), b2, 'a new file at the old name');

  file(child, '/d/f', 1000, 7);
  await cat(ioc, '/d/f');
  await ioc.call('rename', { from: '/d', to: '/e' }, ROOT_FRAME);
  const df = file(child, '/d/f', 1000, 7);
  t.deepEqual(await cat(ioc, '/d/f'), df, 'under a renamed directory');
});

test('a write through one name of a hard link drops the pages every name reads (one cache per file, by gfid)', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/a', 20_000);
  child.files.set('/b', child.files.get('/a')!);
  const gfid = child.files.get('/a')!.gfid;
  // The bridge's inodes: both names are one inode.
  const ia = ioc.inodes.entry(ROOT_ID, 'a', S_IFREG, gfid);
  const ib = ioc.inodes.entry(ROOT_ID, 'b', S_IFREG, gfid);
  t.is(ia, ib);
  await ioc.call('lookup', { path: '/a', inode: ia }, ROOT_FRAME);
  const ra = await open(ioc, '/a', O_RDONLY, ia);
  t.deepEqual(await read(ioc, ra, 0, 20_000), content);
  await ioc.call('lookup', { path: '/b', inode: ib }, ROOT_FRAME);
  const rb = await open(ioc, '/b', O_RDONLY, ib);
  t.deepEqual(await read(ioc, rb, 0, 20_000), content);
  t.is(child.reads.length, 1, 'the pages filled through /a answer /b');
  const w = await open(ioc, '/a', O_RDWR, ia);
  await ioc.call('write', { fd: w, offset: 0, data: Buffer.from('changed') }, ROOT_FRAME);
  // The child keeps a name per file: the other name shows the write too.
  child.files.set('/b', child.files.get('/a')!);
  const now = child.files.get('/a')!.data;
  t.deepEqual(await read(ioc, rb, 0, 20_000), now, 'a write through /a, seen through /b at once');
  t.is(now.subarray(0, 7).toString(), 'changed');
  await ioc.call('lookup', { path: '/b', inode: ib }, ROOT_FRAME);
  t.deepEqual(await read(ioc, rb, 0, 20_000), now);
  t.deepEqual(await read(ioc, ra, 0, 20_000), now, 'refilled once, through either name');
  t.is(child.reads.length, 3);
});

test('an fd on the bridge\'s inode keeps its file\'s pages across a rename', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/a', 20_000);
  const inode = ioc.inodes.entry(ROOT_ID, 'a', S_IFREG, child.files.get('/a')!.gfid);
  await ioc.call('lookup', { path: '/a', inode }, ROOT_FRAME);
  const fd = await open(ioc, '/a', O_RDONLY, inode);
  t.deepEqual(await read(ioc, fd, 0, 20_000), content);
  await ioc.call('rename', { from: '/a', to: '/b', inode }, ROOT_FRAME);
  ioc.inodes.move(ROOT_ID, 'a', ROOT_ID, 'b');
  await ioc.call('lookup', { path: '/b', inode }, ROOT_FRAME);
  t.deepEqual(await read(ioc, fd, 0, 20_000), content);
  const again = await open(ioc, '/b', O_RDONLY, inode);
  t.deepEqual(await read(ioc, again, 0, 20_000), content);
  t.is(child.reads.length, 2, 'refilled once after the rename, then shared by both fds');
  const w = await open(ioc, '/b', O_RDWR, inode);
  await ioc.call('write', { fd: w, offset: 0, data: Buffer.from('new') }, ROOT_FRAME);
  t.deepEqual(await read(ioc, fd, 0, 20_000), child.files.get('/b')!.data, 'a write under the new name reaches the old fd\'s pages');
});

test('invalidate() drops the paths and tells the parents', async (t) => {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  const ioc = new IoCache({ name: 'ioc', type: 'performance/io-cache', options: { 'page-size': '16K', 'cache-timeout': '60' }, children: [child] });
  const parent = new Parent({ name: 'p', type: 'test/parent', options: {}, children: [ioc] });
  file(child, '/f', 3000, 9);
  await cat(ioc, '/f');
  await cat(ioc, '/f');
  t.is(child.reads.length, 1);
  // Another client's change that kept size and mtime: only the upcall tells.
  const fresh = file(child, '/f', 3000, 9);
  ioc.invalidate(['/f'], child);
  t.deepEqual(parent.told, [['/f']]);
  t.deepEqual(await cat(ioc, '/f'), fresh);
  t.like(dump(ioc), { upcallInvalidations: 1 });
  // A directory renamed elsewhere: what was cached below it goes.
  file(child, '/d/g', 3000, 9);
  await cat(ioc, '/d/g');
  const g2 = file(child, '/d/g', 3000, 9);
  ioc.invalidate(['/d', '/e'], child);
  t.deepEqual(await cat(ioc, '/d/g'), g2);
  // A fill in flight when the push arrives is not kept.
  file(child, '/f', 3000, 9);
  ioc.invalidate(['/f'], child);
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  const fd = await open(ioc, '/f');
  child.holding = true;
  const pending = read(ioc, fd, 0, 4096);
  await settle();
  const f4 = file(child, '/f', 3000, 9);
  ioc.invalidate(['/f'], child);
  child.holding = false;
  child.held.splice(0).forEach((go) => go());
  t.deepEqual(await pending, f4);
  t.like(dump(ioc), { discardedFills: 1, pages: 1 });
});

test('cache-size bounds the pages held; the least recently used go first', async (t) => {
  const { ioc, child } = make({ 'cache-size': '48K' });
  for (const n of ['a', 'b', 'c']) file(child, `/${n}`, PS);
  for (const n of ['a', 'b', 'c']) await cat(ioc, `/${n}`);
  t.like(dump(ioc), { pages: 3, cachedBytes: 48 * KiB });
  await cat(ioc, '/a');
  t.is(child.reads.length, 3, 'a is held, and now the most recently used');
  file(child, '/d', PS);
  await cat(ioc, '/d');
  t.like(dump(ioc), { pages: 3, cachedBytes: 48 * KiB, evictions: 1 });
  const reads = child.reads.length;
  await cat(ioc, '/a');
  await cat(ioc, '/c');
  await cat(ioc, '/d');
  t.is(child.reads.length, reads, 'a, c, d held');
  await cat(ioc, '/b');
  t.is(child.reads.length, reads + 1, 'b, the least recently used, went');
});

test('priority: lower-priority files are evicted first, 0 is never cached; renames take the new name\'s priority', async (t) => {
  const { ioc, child } = make({ 'cache-size': '48K', priority: '*.h:3, /keep/*:2, *.tmp:0, bad-entry' });
  for (const p of ['/a.h', '/b.c', '/c.c', '/x.tmp']) file(child, p, PS);
  for (const p of ['/a.h', '/b.c', '/c.c', '/x.tmp', '/x.tmp']) await cat(ioc, p);
  t.is(child.reads.length, 5, '*.tmp is read through each time');
  t.like(dump(ioc), { pages: 3 });
  // a.h is the least recently used, but the only one above priority 1.
  file(child, '/d.c', PS);
  await cat(ioc, '/d.c');
  let reads = child.reads.length;
  await cat(ioc, '/a.h');
  await cat(ioc, '/c.c');
  await cat(ioc, '/d.c');
  t.is(child.reads.length, reads, 'a.h, c.c and d.c held: b.c went');
  // Now under /keep (priority 2): it outlives c.c and d.c.
  await ioc.call('rename', { from: '/d.c', to: '/keep/d.c' }, ROOT_FRAME);
  await cat(ioc, '/keep/d.c');
  file(child, '/e.c', PS);
  file(child, '/f.c', PS);
  await cat(ioc, '/e.c');
  await cat(ioc, '/f.c');
  reads = child.reads.length;
  await cat(ioc, '/keep/d.c');
  await cat(ioc, '/a.h');
  t.is(child.reads.length, reads);
});

test('max-file-size and min-file-size leave files out; O_DIRECT fds bypass', async (t) => {
  const { ioc, child } = make({ 'max-file-size': '20K', 'min-file-size': '100' });
  file(child, '/big', 30_000);
  file(child, '/tiny', 50);
  file(child, '/ok', 5000);
  for (const p of ['/big', '/tiny', '/ok', '/big', '/tiny', '/ok']) await cat(ioc, p);
  t.is(child.reads.length, 5);
  const fd = await open(ioc, '/ok', O_RDONLY | (fs.constants.O_DIRECT ?? 0));
  await read(ioc, fd, 0, 4096);
  t.is(child.reads.length, fs.constants.O_DIRECT ? 6 : 5);
});

test('a file larger than half the cache is not kept', async (t) => {
  const { ioc, child } = make({ 'cache-size': '64K' });
  const big = file(child, '/big', 40_000);
  file(child, '/ok', 30_000);
  t.deepEqual(await cat(ioc, '/big'), big);
  t.deepEqual(await cat(ioc, '/big'), big);
  await cat(ioc, '/ok');
  await cat(ioc, '/ok');
  t.is(child.reads.length, 3);
  t.like(dump(ioc), { pages: 2, cachedBytes: 30_000 });
});

test('a small read of a large file is not filled with whole pages, but is answered from pages held', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/f', 200_000);
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  const fd = await open(ioc, '/f');
  t.deepEqual(await read(ioc, fd, 50_000, 4096), content.subarray(50_000, 54_096));
  t.deepEqual(child.reads.map((r) => `${r.offset}+${r.size}`), ['50000+4096'], 'as asked');
  await read(ioc, fd, 0, 128 * KiB);
  t.deepEqual(await read(ioc, fd, 50_000, 4096), content.subarray(50_000, 54_096));
  t.is(child.reads.length, 2);
});

test('a fill that started before a write of ours is not kept', async (t) => {
  const { ioc, child } = make();
  const content = file(child, '/f', 10_000);
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  const reader = await open(ioc, '/f');
  const writer = await open(ioc, '/f', O_RDWR);
  child.holding = true;
  const pending = read(ioc, reader, 0, 16 * KiB);
  await settle();
  child.holding = false;
  await ioc.call('write', { fd: writer, offset: 0, data: Buffer.from('new') }, ROOT_FRAME);
  child.held.splice(0).forEach((go) => go());
  const first = await pending;
  t.is(first.length, content.length);
  t.like(dump(ioc), { pages: 0, discardedFills: 1 });
  await ioc.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.deepEqual((await read(ioc, reader, 0, 16 * KiB)).subarray(0, 3), Buffer.from('new'));
});

test('attributes from a listing validate pages; a different size there drops them', async (t) => {
  const { ioc, child } = make();
  file(child, '/dir/f', 3000);
  const fd = await open(ioc, '/dir/f');
  await ioc.call('readdir', { path: '/dir' }, ROOT_FRAME);
  await read(ioc, fd, 0, 4096);
  await read(ioc, fd, 0, 4096);
  t.is(child.reads.length, 1);
  t.is(child.fstats, 0);
  const fresh = file(child, '/dir/f', 3001);
  await ioc.call('readdir', { path: '/dir' }, ROOT_FRAME);
  t.like(dump(ioc), { pages: 0 });
  t.deepEqual(await read(ioc, fd, 0, 4096), fresh);
});

/**
 * Randomized: reads through io-cache always equal the child's bytes at that moment. Own
 * changes (writes, truncations, O_TRUNC opens, renames) with a long cache-timeout: any stale
 * page is a bug. With cache-timeout 0, changes behind its back (another client) too.
 */
for (const behind of [false, true]) {
  for (const seed of [1, 2, 3]) {
    test(`randomized (seed ${seed}${behind ? ', with other clients\' changes, cache-timeout 0' : ', own changes only'}): reads always see the child's bytes`, async (t) => {
      const { ioc, child } = make({ 'cache-timeout': behind ? '0' : '60', 'cache-size': '96K' });
      const rnd = mulberry32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const paths = ['/a', '/b', '/d/c'];
      for (const p of paths) file(child, p, Math.floor(rnd() * 60_000));
      const fds = new Map<Fd, string>();
      const openOne = async (path: string, flags = O_RDWR): Promise<void> => {
        const fd = await open(ioc, path, flags);
        fds.set(fd, path);
      };
      for (const p of paths) await openOne(p);
      const content = (fd: Fd): Buffer => child.files.get(fds.get(fd)!)!.data;
      let reads = 0;
      for (let i = 0; i < 400; i++) {
        const fd = pick([...fds.keys()]);
        const op = rnd();
        if (op < 0.45) {
          const offset = Math.floor(rnd() * 80_000);
          const size = pick([4096, 16 * KiB, 64 * KiB, 200 * KiB]);
          const want = content(fd).subarray(Math.min(offset, content(fd).length), Math.min(offset + size, content(fd).length));
          const got = await read(ioc, fd, offset, size);
          if (!got.equals(want)) return t.fail(`op ${i}: read ${fds.get(fd)} ${offset}+${size}: ${got.length} bytes, want ${want.length}`);
          reads++;
        } else if (op < 0.55) {
          await ioc.call('write', { fd, offset: Math.floor(rnd() * 70_000), data: crypto.randomBytes(1 + Math.floor(rnd() * 20_000)) }, ROOT_FRAME);
        } else if (op < 0.6) {
          await ioc.call('ftruncate', { fd, size: Math.floor(rnd() * 70_000) }, ROOT_FRAME);
        } else if (op < 0.63) {
          await ioc.call('setattr', { path: pick(paths), attrs: { size: Math.floor(rnd() * 70_000) } }, ROOT_FRAME);
        } else if (op < 0.66) {
          await openOne(pick(paths), O_RDWR | O_TRUNC);
        } else if (op < 0.69) {
          // Swap /a and /b by name: fds follow their files.
          for (const [from, to] of [['/a', '/t'], ['/b', '/a'], ['/t', '/b']] as const) {
            await ioc.call('rename', { from, to }, ROOT_FRAME);
            for (const [f, p] of fds) if (p === from) fds.set(f, to);
          }
        } else if (op < 0.75) {
          if (fds.size > 3) {
            await ioc.call('release', { fd }, ROOT_FRAME);
            fds.delete(fd);
          }
          await openOne(pick(paths), O_RDONLY);
        } else if (op < 0.85) {
          await ioc.call('lookup', { path: pick(paths) }, ROOT_FRAME);
        } else if (op < 0.9) {
          await ioc.call('readdir', { path: pick(['/', '/d']) }, ROOT_FRAME);
        } else if (op < 0.95) {
          await ioc.call('fstat', { fd }, ROOT_FRAME);
        } else if (behind) {
          file(child, pick(paths), Math.floor(rnd() * 60_000));
        }
      }
      t.true(reads > 100);
      t.true(dump(ioc).hits > 0, 'some reads were answered from the cache');
    });
  }
}
