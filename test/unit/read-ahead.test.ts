import { ROOT_FRAME } from '../../lib/frame.js';
import { FrameSpy, userFrame } from '../helpers/frame-spy.js';
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { FsError } from '../../lib/errors.js';
import { S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import { Fd, ROOT_ID } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { ReadAhead } from '../../client/xlators/performance/read-ahead.js';

const iatt: Iatt = {
  mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, blksize: 4096, ino: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
};

/** A read that reached the child. */
interface ChildRead {
  fd: Fd;
  offset: number;
  size: number;
}

/**
 * A child holding files in memory. Reads take the bytes there are when they arrive (as a
 * brick's pread would) and answer at once, or when the test says so while `holding`.
 */
class MemChild extends Xlator {
  readonly files = new Map<string, Buffer>();
  readonly reads: ChildRead[] = [];
  /** Fops other than read, in order: "release /f" (an fd by its path), "write 4096+5"... */
  readonly seen: string[] = [];
  /** Writes are applied and answered when the test says so, as a brick that has not got to them yet. */
  holdingWrites = false;
  readonly heldWrites: Array<() => void> = [];
  /** Reads at these offsets fail with EIO this many more times. */
  readonly failAt = new Map<number, number>();
  holding = false;
  readonly held: Array<() => void> = [];
  /** What each fd open here is open on (a brick keeps that by inode: it follows renames below). */
  private readonly fdPath = new Map<Fd, string>();

  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    const reply = (r: unknown): Promise<FopReply<F>> => Promise.resolve(r as FopReply<F>);
    switch (fop) {
      case 'open':
      case 'create': {
        const a = args as FopArgs<'open'>;
        if (fop === 'create' && !this.files.has(a.path)) this.files.set(a.path, Buffer.alloc(0));
        if (!this.files.has(a.path)) return Promise.reject(FsError.of('ENOENT', a.path));
        if (a.flags & fs.constants.O_TRUNC) this.files.set(a.path, Buffer.alloc(0));
        this.fdPath.set(a.fd, a.path);
        return reply(fop === 'create' ? { iatt } : {});
      }
      case 'read': {
        const a = args as FopArgs<'read'>;
        this.reads.push({ fd: a.fd, offset: a.offset, size: a.size });
        const content = this.content(a.fd);
        const data = Buffer.from(content.subarray(Math.min(a.offset, content.length), Math.min(a.offset + a.size, content.length)));
        const fails = this.failAt.get(a.offset) ?? 0;
        if (fails > 0) this.failAt.set(a.offset, fails - 1);
        const answer = (): Promise<FopReply<F>> => (fails > 0 ? Promise.reject(FsError.of('EIO', `read at ${a.offset}`)) : reply({ data }));
        if (!this.holding) return answer();
        return new Promise((resolve, reject) => this.held.push(() => answer().then(resolve, reject)));
      }
      case 'write': {
        const a = args as FopArgs<'write'>;
        this.seen.push(`write ${a.offset}+${a.data.length}`);
        const apply = (): Promise<FopReply<F>> => {
          const path = this.fdPath.get(a.fd)!;
          const old = this.files.get(path)!;
          const next = Buffer.alloc(Math.max(old.length, a.offset + a.data.length));
          old.copy(next);
          a.data.copy(next, a.offset);
          this.files.set(path, next);
          return reply({ size: a.data.length });
        };
        if (!this.holdingWrites) return apply();
        return new Promise((resolve) => this.heldWrites.push(() => void apply().then(resolve)));
      }
      case 'ftruncate': {
        const a = args as FopArgs<'ftruncate'>;
        this.seen.push(`ftruncate ${a.size}`);
        this.truncate(this.fdPath.get(a.fd)!, a.size);
        return reply({});
      }
      case 'setattr': {
        const a = args as FopArgs<'setattr'>;
        this.seen.push(`setattr ${a.path}`);
        if (a.attrs.size !== undefined) this.truncate(a.path, a.attrs.size);
        return reply({ iatt });
      }
      case 'rename': {
        const a = args as FopArgs<'rename'>;
        this.files.set(a.to, this.files.get(a.from)!);
        this.files.delete(a.from);
        for (const [fd, p] of this.fdPath) if (p === a.from) this.fdPath.set(fd, a.to);
        return reply({});
      }
      case 'unlink':
        this.files.delete((args as FopArgs<'unlink'>).path);
        return reply({});
      case 'flush':
      case 'release':
        const fd = (args as FopArgs<'release'>).fd;
        this.seen.push(`${fop} ${fd.path}`);
        if (fop === 'release') this.fdPath.delete(fd);
        return reply({});
      default:
        return Promise.reject(FsError.of('ENOSYS', fop));
    }
  }

  /** Answers every held read. */
  releaseHeld(): void {
    for (const go of this.held.splice(0)) go();
  }

  private content(fd: Fd): Buffer {
    return this.files.get(this.fdPath.get(fd)!) ?? Buffer.alloc(0);
  }

  private truncate(path: string, size: number): void {
    const old = this.files.get(path)!;
    const next = Buffer.alloc(size);
    old.copy(next, 0, 0, Math.min(size, old.length));
    this.files.set(path, next);
  }
}

const KiB = 1024;

function make(options: Record<string, string> = {}): { ra: ReadAhead; child: MemChild } {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  const ra = new ReadAhead({ name: 'ra', type: 'performance/read-ahead', options: { 'page-size': '16K', 'page-count': '2', ...options }, children: [child] });
  return { ra, child };
}

/** Random content of n bytes, stored at path in the child. */
function file(child: MemChild, path: string, n: number): Buffer {
  const b = crypto.randomBytes(n);
  child.files.set(path, Buffer.from(b));
  return b;
}

/**
 * Opens /name through ra as the FUSE bridge does: a new Fd on the inode the table has for the
 * name, so every fd and path fop of one name meets the same inode.
 */
async function openRead(ra: ReadAhead, path: string, flags = fs.constants.O_RDONLY): Promise<Fd> {
  const fd = new Fd(ra.inodes.entry(ROOT_ID, path.slice(1), S_IFREG), flags);
  await ra.call('open', { path, flags, fd }, ROOT_FRAME);
  return fd;
}

async function read(ra: ReadAhead, fd: Fd, offset: number, size: number): Promise<Buffer> {
  return (await ra.call('read', { fd, offset, size }, ROOT_FRAME)).data;
}

/** Lets every pending promise callback run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The child reads (offset+size) since the given count. */
const readsSince = (child: MemChild, from: number): string[] => child.reads.slice(from).map((r) => `${r.offset}+${r.size}`);

test('sequential reads fetch the next pages concurrently; later reads come from them with the right bytes', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  t.deepEqual(await read(ra, fd, 0, 4 * KiB), content.subarray(0, 4 * KiB));
  t.deepEqual(readsSince(child, 0), ['0+4096'], 'a first read is only itself');
  // Sequential: the page under the read and page-count (2) pages after it, all at once.
  t.deepEqual(await read(ra, fd, 4 * KiB, 4 * KiB), content.subarray(4 * KiB, 8 * KiB));
  t.deepEqual(readsSince(child, 1), ['0+16384', '16384+16384', '32768+16384']);
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB, 12 * KiB));
  t.deepEqual(await read(ra, fd, 12 * KiB, 4 * KiB), content.subarray(12 * KiB, 16 * KiB));
  t.is(child.reads.length, before, 'answered from the pages: nothing reached the child');
  // Into page 1: the window slides one page on; a read spanning pages 1 and 2 comes from both.
  t.deepEqual(await read(ra, fd, 16 * KiB, 4 * KiB), content.subarray(16 * KiB, 20 * KiB));
  t.deepEqual(readsSince(child, before), ['49152+16384']);
  t.deepEqual(await read(ra, fd, 20 * KiB, 20 * KiB), content.subarray(20 * KiB, 40 * KiB));
  t.like(ra.statedump(), { hits: 5, misses: 1, prefetches: 5 });
  t.true(child.reads.every((r) => r.size === 16 * KiB || r.offset === 0), 'read-ahead reads whole pages');
});

test('random reads fetch nothing ahead: each goes to the child as it is', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 200_000);
  const fd = await openRead(ra, '/f');
  const offsets = [150_000, 3_000, 70_000, 10_000, 190_000, 40_000];
  for (const o of offsets) t.deepEqual(await read(ra, fd, o, 4 * KiB), content.subarray(o, o + 4 * KiB));
  t.deepEqual(readsSince(child, 0), offsets.map((o) => `${o}+4096`));
  t.like(ra.statedump(), { prefetches: 0, hits: 0, misses: offsets.length, pages: 0 });
});

test('a seek drops the pages fetched ahead and goes to the child', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 200_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  t.true((ra.statedump().pages as number) > 0);
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 150_000, 4 * KiB), content.subarray(150_000, 154_096));
  t.deepEqual(readsSince(child, before), ['150000+4096']);
  t.like(ra.statedump(), { pages: 0, cachedBytes: 0 });
});

test('reads that arrive out of order inside the held pages are answered from them, not taken for a seek', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 200_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 16 * KiB);
  await read(ra, fd, 16 * KiB, 16 * KiB);
  const before = child.reads.length;
  // The kernel's concurrent reads of 32-48 and 48-64 KiB, the second first.
  t.deepEqual(await read(ra, fd, 48 * KiB, 16 * KiB), content.subarray(48 * KiB, 64 * KiB));
  t.deepEqual(await read(ra, fd, 32 * KiB, 16 * KiB), content.subarray(32 * KiB, 48 * KiB));
  t.deepEqual(await read(ra, fd, 64 * KiB, 16 * KiB), content.subarray(64 * KiB, 80 * KiB));
  t.true(readsSince(child, before).every((r) => r.endsWith('+16384')), 'only page fetches reached the child');
  t.like(ra.statedump(), { hits: 4, misses: 1 });
});

test('a write through the translator drops the pages: a later read returns the new bytes', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  const writer = await openRead(ra, '/f', fs.constants.O_RDWR);
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  // Page 1 (16-32 KiB) is held now; another fd of the file writes into it.
  const fresh = Buffer.alloc(100, 0x5a);
  await ra.call('write', { fd: writer, offset: 20 * KiB, data: fresh }, ROOT_FRAME);
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB, 12 * KiB));
  t.deepEqual(await read(ra, fd, 12 * KiB, 4 * KiB), content.subarray(12 * KiB, 16 * KiB));
  const got = await read(ra, fd, 16 * KiB, 8 * KiB);
  const want = Buffer.from(content.subarray(16 * KiB, 24 * KiB));
  fresh.copy(want, 4 * KiB);
  t.deepEqual(got, want, 'the bytes written, not the page fetched before the write');
  // The fd's own writes too, and a truncation.
  const own = await openRead(ra, '/f', fs.constants.O_RDWR);
  await read(ra, own, 0, 4 * KiB);
  await read(ra, own, 4 * KiB, 4 * KiB);
  await ra.call('write', { fd: own, offset: 9 * KiB, data: Buffer.from('mine') }, ROOT_FRAME);
  t.is((await read(ra, own, 9 * KiB, 4)).toString(), 'mine');
  await ra.call('ftruncate', { fd: writer, size: 10 * KiB }, ROOT_FRAME);
  t.is((await read(ra, fd, 24 * KiB, 4 * KiB)).length, 0, 'past the new end of file');
  t.true((ra.statedump().invalidations as number) >= 3);
});

test('a write through an fd opened elsewhere (not through read-ahead) drops the pages of its file only', async (t) => {
  const { ra, child } = make();
  file(child, '/f', 100_000);
  file(child, '/other', 100_000);
  const fd = await openRead(ra, '/f');
  const other = await openRead(ra, '/other');
  for (const x of [fd, other]) {
    await read(ra, x, 0, 4 * KiB);
    await read(ra, x, 4 * KiB, 4 * KiB);
  }
  await settle();
  const both = ra.statedump().pages as number;
  // Opened on the file's inode straight at the child: read-ahead has no slot on it.
  const elsewhere = new Fd(fd.inode, fs.constants.O_RDWR);
  await child.call('open', { path: '/f', flags: fs.constants.O_RDWR, fd: elsewhere });
  await ra.call('write', { fd: elsewhere, offset: 8 * KiB, data: Buffer.from('from elsewhere') }, ROOT_FRAME);
  const left = ra.statedump().pages as number;
  t.true(left > 0 && left < both, `the pages of /other stay: ${left} of ${both}`);
  t.is((await read(ra, fd, 8 * KiB, 14)).toString(), 'from elsewhere');
});

test('a page fetched while a write was in flight is not served after it', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  const writer = await openRead(ra, '/f', fs.constants.O_RDWR);
  await read(ra, fd, 0, 4 * KiB);
  child.holding = true;
  // The fetches take the old bytes now and answer later, after the write.
  const second = read(ra, fd, 4 * KiB, 4 * KiB);
  await settle();
  t.is(child.held.length, 3);
  await ra.call('write', { fd: writer, offset: 8 * KiB, data: Buffer.from('new bytes') }, ROOT_FRAME);
  child.releaseHeld();
  // A read that started before the write may see either version; this one saw the old.
  t.deepEqual(await second, content.subarray(4 * KiB, 8 * KiB));
  child.holding = false;
  t.is((await read(ra, fd, 8 * KiB, 9)).toString(), 'new bytes');
});

test('nothing is fetched while a write to the file is in flight', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  const writer = await openRead(ra, '/f', fs.constants.O_RDWR);
  await read(ra, fd, 0, 4 * KiB);
  child.holdingWrites = true;
  const writing = ra.call('write', { fd: writer, offset: 12 * KiB, data: Buffer.from('written') }, ROOT_FRAME);
  // Sequential reads while the write is in flight go to the child as they are.
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 4 * KiB, 4 * KiB), content.subarray(4 * KiB, 8 * KiB));
  t.deepEqual(readsSince(child, before), ['4096+4096']);
  t.like(ra.statedump(), { prefetches: 0 });
  child.heldWrites.splice(0).forEach((go) => go());
  await writing;
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB, 12 * KiB));
  t.is((await read(ra, fd, 12 * KiB, 7)).toString(), 'written');
  t.true((ra.statedump().prefetches as number) > 0, 'read-ahead again once the write is answered');
});

test('setattr of the size by path and an O_TRUNC open drop the pages of the file, by whatever name it has now; a rename or unlink keeps them', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/a', 100_000);
  const fd = await openRead(ra, '/a');
  const prefetch = async (): Promise<void> => {
    await read(ra, fd, 0, 4 * KiB);
    await read(ra, fd, 4 * KiB, 4 * KiB);
    t.true((ra.statedump().pages as number) > 0);
  };
  await prefetch();
  await ra.call('rename', { from: '/a', to: '/b', inode: fd.inode }, ROOT_FRAME);
  // As the bridge does once the rename is answered.
  ra.inodes.move(ROOT_ID, 'a', ROOT_ID, 'b');
  t.true((ra.statedump().pages as number) > 0, 'rename: the file\'s bytes did not change');
  // A truncation by the new name reaches the fd opened by the old one.
  await ra.call('setattr', { path: '/b', attrs: { size: 6 * KiB } }, ROOT_FRAME);
  t.is(ra.statedump().pages, 0, 'setattr size');
  t.is((await read(ra, fd, 4 * KiB, 4 * KiB)).length, 2 * KiB);
  await ra.call('setattr', { path: '/b', attrs: { size: 100_000 } }, ROOT_FRAME);
  await prefetch();
  await ra.call('setattr', { path: '/b', attrs: { mode: 0o600 } }, ROOT_FRAME);
  t.true((ra.statedump().pages as number) > 0, 'a mode change keeps them');
  const trunc = await openRead(ra, '/b', fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  t.is(ra.statedump().pages, 0, 'O_TRUNC open');
  t.is((await read(ra, fd, 8 * KiB, 4 * KiB)).length, 0);
  // Written again through the fd that truncated it.
  await ra.call('write', { fd: trunc, offset: 0, data: content }, ROOT_FRAME);
  await ra.call('release', { fd: trunc }, ROOT_FRAME);
  await prefetch();
  await ra.call('unlink', { path: '/b', inode: fd.inode }, ROOT_FRAME);
  ra.inodes.remove(ROOT_ID, 'b');
  t.true((ra.statedump().pages as number) > 0, 'unlink: the fd reads on from the same file');
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB, 12 * KiB), 'answered from the pages');
  t.is(child.reads.length, before);
});

test('a truncation through another name of the file (a hard link) drops the pages of its fds', async (t) => {
  const { ra, child } = make();
  file(child, '/a', 100_000);
  child.files.set('/h', child.files.get('/a')!);
  const inode = ra.inodes.entry(ROOT_ID, 'a', S_IFREG, 'gfid-a');
  t.is(ra.inodes.entry(ROOT_ID, 'h', S_IFREG, 'gfid-a'), inode, 'one inode for both names');
  const fd = new Fd(inode, fs.constants.O_RDONLY);
  await ra.call('open', { path: '/a', flags: fs.constants.O_RDONLY, fd }, ROOT_FRAME);
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  t.true((ra.statedump().pages as number) > 0);
  await ra.call('setattr', { path: '/h', inode, attrs: { size: 0 } }, ROOT_FRAME);
  t.is(ra.statedump().pages, 0);
});

test('end of file: nothing is fetched past a short reply, and a read past it returns 0 bytes', async (t) => {
  const { ra, child } = make({ 'page-size': '4K', 'page-count': '4' });
  // A short file: its first read shows the end, so the sequential read after it fetches nothing past it.
  const small = file(child, '/small', 100);
  const s = await openRead(ra, '/small');
  t.deepEqual(await read(ra, s, 0, 4 * KiB), small);
  t.is((await read(ra, s, 100, 4 * KiB)).length, 0);
  t.is((await read(ra, s, 200, 4 * KiB)).length, 0);
  t.true(child.reads.every((r) => r.offset < 4 * KiB), `reads: ${readsSince(child, 0).join(' ')}`);
  // A file of 2.5 pages read sequentially: the page-count fetches go out together; once the
  // short one is back, no more.
  const content = file(child, '/f', 10_000);
  const fd = await openRead(ra, '/f');
  const start = child.reads.length;
  t.deepEqual(await read(ra, fd, 0, 4 * KiB), content.subarray(0, 4 * KiB));
  t.deepEqual(await read(ra, fd, 4 * KiB, 4 * KiB), content.subarray(4 * KiB, 8 * KiB));
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB), 'the short end');
  const afterEof = child.reads.length;
  t.is((await read(ra, fd, 10_000, 4 * KiB)).length, 0, 'at the end');
  t.is((await read(ra, fd, 10_000 + 4 * KiB, 4 * KiB)).length, 0, 'past the end');
  t.is((await read(ra, fd, 50_000, 4 * KiB)).length, 0, 'far past the end');
  t.true(child.reads.slice(afterEof).every((r) => r.size === 4 * KiB && r.offset >= 10_000), 'only the reads themselves');
  const past = readsSince(child, start).filter((r) => Number(r.split('+')[0]) >= 12 * KiB);
  t.true(past.length <= 3 + 2, `only the first window and the reads themselves went past the end: ${past.join(' ')}`);
  // What the child would have answered, read by read.
  const fd2 = await openRead(ra, '/f');
  for (let o = 0; o < 16 * KiB; o += 3000) t.deepEqual(await read(ra, fd2, o, 3000), content.subarray(o, o + 3000), `at ${o}`);
});

test('a failed prefetch is forgotten: the read goes to the child and gets its answer', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  // The fetch of page 0, which this read waits for, fails once; the read itself does not.
  child.failAt.set(0, 1);
  t.deepEqual(await read(ra, fd, 4 * KiB, 4 * KiB), content.subarray(4 * KiB, 8 * KiB));
  t.deepEqual(child.reads.at(-1), { fd, offset: 4 * KiB, size: 4 * KiB }, 'the real read went to the child');
  t.like(ra.statedump(), { prefetchFailures: 1 });
  // The failed page is not held: the next read fetches it again, and is answered from it.
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 8 * KiB, 4 * KiB), content.subarray(8 * KiB, 12 * KiB));
  t.deepEqual(readsSince(child, before), ['0+16384']);
  // When the child fails the read too, the read reports the child's error.
  const other = await openRead(ra, '/f');
  await read(ra, other, 16 * KiB, 4 * KiB);
  child.failAt.set(16 * KiB, 1);
  child.failAt.set(20 * KiB, 1);
  const err = await t.throwsAsync<FsError>(read(ra, other, 20 * KiB, 4 * KiB));
  t.is(err?.code, 'EIO');
  t.deepEqual(child.reads.at(-1), { fd: other, offset: 20 * KiB, size: 4 * KiB }, 'the real read, failing on its own');
  // Once the child answers again, so do we.
  t.deepEqual(await read(ra, other, 24 * KiB, 4 * KiB), content.subarray(24 * KiB, 28 * KiB));
});

test('a read of a page still on its way waits for it', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  child.holding = true;
  const a = read(ra, fd, 4 * KiB, 4 * KiB);
  const b = read(ra, fd, 8 * KiB, 4 * KiB);
  let done = false;
  void b.then(() => { done = true; });
  await settle();
  t.false(done);
  t.is(child.held.length, 3, 'the second read asked for nothing more');
  child.releaseHeld();
  t.deepEqual(await a, content.subarray(4 * KiB, 8 * KiB));
  t.deepEqual(await b, content.subarray(8 * KiB, 12 * KiB));
});

test('held bytes stay within cache-size across fds; the oldest pages go first', async (t) => {
  const cap = 3 * 16 * KiB;
  const { ra, child } = make({ 'cache-size': String(cap), 'page-count': '4' });
  const files = ['/x', '/y', '/z'].map((p) => ({ p, content: file(child, p, 300_000) }));
  const fds = await Promise.all(files.map((f) => openRead(ra, f.p)));
  let max = 0;
  for (let o = 0; o < 200_000; o += 8 * KiB) {
    for (let i = 0; i < fds.length; i++) {
      t.deepEqual(await read(ra, fds[i]!, o, 8 * KiB), files[i]!.content.subarray(o, o + 8 * KiB));
      max = Math.max(max, ra.statedump().cachedBytes as number);
    }
  }
  t.true(max <= cap, `held ${max} bytes with a cap of ${cap}`);
  t.true((ra.statedump().evictions as number) > 0);
  t.true((ra.statedump().hits as number) > 0, 'read-ahead still helped');
  // No room at all: no read-ahead, every read goes through.
  const none = make({ 'cache-size': '0' });
  file(none.child, '/f', 50_000);
  const fd = await openRead(none.ra, '/f');
  for (let o = 0; o < 40_000; o += 4 * KiB) await read(none.ra, fd, o, 4 * KiB);
  t.like(none.ra.statedump(), { prefetches: 0, cachedBytes: 0 });
});

test('release frees the fd\'s pages, after its fetches are done; flush drops them too', async (t) => {
  const { ra, child } = make();
  file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  t.true((ra.statedump().cachedBytes as number) > 0);
  await ra.call('flush', { fd }, ROOT_FRAME);
  t.like(ra.statedump(), { pages: 0, cachedBytes: 0, openFds: 1 });
  child.holding = true;
  const reading = read(ra, fd, 8 * KiB, 4 * KiB);
  await settle();
  t.true(child.held.length > 0);
  const released = ra.call('release', { fd }, ROOT_FRAME);
  await settle();
  t.false(child.seen.includes('release /f'), 'not before the fetches in flight are answered');
  child.releaseHeld();
  await reading;
  await released;
  t.true(child.seen.includes('release /f'));
  t.like(ra.statedump(), { pages: 0, cachedBytes: 0, openFds: 0, files: 0 });
});

test('O_DIRECT and write-only fds bypass read-ahead', async (t) => {
  const { ra, child } = make();
  const content = file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f', fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  for (let o = 0; o < 64 * KiB; o += 4 * KiB) t.deepEqual(await read(ra, fd, o, 4 * KiB), content.subarray(o, o + 4 * KiB));
  t.is(child.reads.length, 16);
  t.like(ra.statedump(), { prefetches: 0, bypassed: 16 });
});

test('whole-page reads above 128 KiB (the kernel reading ahead itself) leave the fd to the kernel; 128 KiB reads do not', async (t) => {
  const { ra, child } = make({ 'page-size': '256K', 'page-count': '2' });
  const content = file(child, '/f', 4 * 256 * KiB);
  const fd = await openRead(ra, '/f');
  for (let o = 0; o < 4 * 256 * KiB; o += 256 * KiB) t.deepEqual(await read(ra, fd, o, 256 * KiB), content.subarray(o, o + 256 * KiB));
  t.deepEqual(readsSince(child, 0), [0, 1, 2, 3].map((i) => `${i * 256 * KiB}+${256 * KiB}`), 'each read went down as it was, nothing ahead');
  t.like(ra.statedump(), { prefetches: 0, kernelReadsAhead: 1, bypassed: 3 });
  // A reader whose kernel sends 128 KiB reads (its default window, or libfuse 2) gets pages.
  const { ra: ra2, child: child2 } = make({ 'page-size': '128K', 'page-count': '2' });
  const small = file(child2, '/g', 8 * 128 * KiB);
  const fd2 = await openRead(ra2, '/g');
  for (let o = 0; o < 4 * 128 * KiB; o += 128 * KiB) t.deepEqual(await read(ra2, fd2, o, 128 * KiB), small.subarray(o, o + 128 * KiB));
  t.like(ra2.statedump(), { kernelReadsAhead: 0 });
  t.true((ra2.statedump().prefetches as number) > 0 && (ra2.statedump().hits as number) > 0, JSON.stringify(ra2.statedump()));
});

test('reconfigure: a new page count applies to the next fetches', async (t) => {
  const { ra, child } = make();
  file(child, '/f', 400_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  t.is(ra.statedump().prefetches, 3);
  ra.reconfigure({ 'page-size': '16K', 'page-count': '6' });
  t.is(ra.statedump().pages, 0, 'pages cut at the old size are dropped');
  await read(ra, fd, 8 * KiB, 4 * KiB);
  t.like(ra.statedump(), { pageCount: 6, prefetches: 3 + 7 });
  t.throws(() => ra.reconfigure({ 'page-count': '0' }));
});

test('a brick event drops every page', async (t) => {
  const { ra, child } = make();
  file(child, '/f', 100_000);
  const fd = await openRead(ra, '/f');
  await read(ra, fd, 0, 4 * KiB);
  await read(ra, fd, 4 * KiB, 4 * KiB);
  t.true((ra.statedump().pages as number) > 0);
  ra.notify('CHILD_DOWN', child);
  t.like(ra.statedump(), { pages: 0, cachedBytes: 0 });
});

test('invalidate (another client wrote the file): its pages go and the next read gets the new bytes from the child', async (t) => {
  const { ra, child } = make();
  file(child, '/f', 64 * KiB);
  file(child, '/other', 64 * KiB);
  const fd = await openRead(ra, '/f');
  const other = await openRead(ra, '/other');
  for (let off = 0; off < 16 * KiB; off += 4 * KiB) await read(ra, other, off, 4 * KiB);
  await settle();
  const otherPages = ra.statedump().pages as number;
  t.true(otherPages > 0);
  for (let off = 0; off < 16 * KiB; off += 4 * KiB) await read(ra, fd, off, 4 * KiB);
  await settle();
  t.true((ra.statedump().pages as number) > otherPages);
  // Another client rewrites /f behind our back; read-ahead holds its old pages.
  const fresh = file(child, '/f', 64 * KiB);
  ra.invalidate(['/f'], child);
  t.is(ra.statedump().pages, otherPages, 'the pages of /f went, those of /other stay');
  const before = child.reads.length;
  t.deepEqual(await read(ra, fd, 16 * KiB, 4 * KiB), fresh.subarray(16 * KiB, 20 * KiB));
  t.true(readsSince(child, before).length > 0, 'asked the child again');
});

test('pages fetched ahead go down with the frame of the read that called for them', async (t) => {
  const child = new MemChild({ name: 'mem', type: 'test/mem', options: {}, children: [] });
  const spy = new FrameSpy({ name: 'spy', type: 'test/spy', options: {}, children: [child] });
  const ra = new ReadAhead({ name: 'ra', type: 'performance/read-ahead', options: { 'page-size': '16K', 'page-count': '2' }, children: [spy] });
  file(child, '/f', 100_000);
  const fd = new Fd(ra.inodes.entry(ROOT_ID, 'f', S_IFREG), fs.constants.O_RDONLY);
  await ra.call('open', { path: '/f', flags: fs.constants.O_RDONLY, fd }, userFrame(1000));
  await ra.call('read', { fd, offset: 0, size: 4 * KiB }, userFrame(1001));
  await ra.call('read', { fd, offset: 4 * KiB, size: 4 * KiB }, userFrame(1002));
  t.deepEqual(spy.uids, ['open 1000', 'read 1001', 'read 1002', 'read 1002', 'read 1002']);
});
