import { ROOT_FRAME } from '../../lib/frame.js';
import { FrameSpy, userFrame } from '../helpers/frame-spy.js';
import test from 'ava';
import fs from 'node:fs';
import { bulkPool } from '../../lib/buffer-pool.js';
import { FsError } from '../../lib/errors.js';
import { S_IFDIR, S_IFREG, type FopArgs, type FopName, type FopReply, type Iatt } from '../../lib/fops.js';
import type { Frame } from '../../lib/frame.js';
import { Fd, ROOT_ID, type Inode } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';
import { WriteBehind } from '../../client/xlators/performance/write-behind.js';

const iatt: Iatt = {
  mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, blksize: 4096, ino: 1, atimeMs: 0, mtimeMs: 0, ctimeMs: 0,
};

interface ChildWrite {
  fd: Fd;
  offset: number;
  data: Buffer;
  /** A writev's extents (offset and data are its first). */
  extents?: Array<{ offset: number; data: Buffer }>;
  answered: boolean;
  /** Completes the write with the bytes written (all of them unless told). */
  answer(size?: number): void;
  fail(err: FsError): void;
}

/** A child whose writes complete only when the test says so; every other fop answers at once. */
class StubChild extends Xlator {
  /** What reached the child, in order: "write 0+4", "read", "lookup /f"... */
  readonly seen: string[] = [];
  readonly writes: ChildWrite[] = [];
  /** When set, setattr fails with it. */
  setattrError?: FsError;
  /** When set, writev answers ENOSYS (a child without it). */
  noWritev = false;
  override call<F extends FopName>(fop: F, args: FopArgs<F>): Promise<FopReply<F>> {
    if (fop === 'writev' && this.noWritev) return Promise.reject(FsError.of('ENOSYS'));
    if (fop === 'write' || fop === 'writev') {
      const a = fop === 'write' ? { ...(args as FopArgs<'write'>), extents: undefined } : args as FopArgs<'writev'>;
      const extents = a.extents ?? [a as FopArgs<'write'>];
      const total = extents.reduce((n, e) => n + e.data.length, 0);
      this.seen.push(`${fop} ${extents.map((e) => `${e.offset}+${e.data.length}`).join(',')}`);
      return new Promise((resolve, reject) => {
        const w: ChildWrite = {
          fd: a.fd, offset: extents[0]!.offset, data: extents[0]!.data, extents: a.extents, answered: false,
          answer: (size = total) => { w.answered = true; resolve({ size } as FopReply<F>); },
          fail: (err) => { w.answered = true; reject(err); },
        };
        this.writes.push(w);
      });
    }
    const path = (args as { path?: string }).path;
    this.seen.push(path === undefined ? fop : `${fop} ${path}`);
    if (fop === 'setattr' && this.setattrError) return Promise.reject(this.setattrError);
    const replies: Partial<Record<FopName, unknown>> = {
      lookup: { iatt }, fstat: { iatt }, setattr: { iatt }, read: { data: Buffer.alloc(0) },
      create: { iatt }, open: {},
      flush: {}, fsync: {}, release: {}, rename: {}, unlink: {}, ftruncate: {},
    };
    return Promise.resolve(replies[fop] as FopReply<F>);
  }
}

/** A write-behind over a stub child; hold-ms 0 (an idle file's write goes at once) unless told. */
function make(options: Record<string, string> = {}): { wb: WriteBehind; child: StubChild } {
  const child = new StubChild({ name: 'stub', type: 'test/stub', options: {}, children: [] });
  const wb = new WriteBehind({ name: 'wb', type: 'performance/write-behind', options: { 'hold-ms': '0', ...options }, children: [child] });
  return { wb, child };
}

/**
 * The inode of path in x's inode table, with the directories on the way, as the FUSE
 * bridge's lookups make them: every fd and path fop of one name meets the same inode.
 */
function inodeOf(x: Xlator, path: string): Inode {
  const names = path.split('/').filter(Boolean);
  let node = x.inodes.root;
  names.forEach((name, i) => { node = x.inodes.entry(node.id, name, i === names.length - 1 ? S_IFREG : S_IFDIR); });
  return node;
}

/** Creates path through x as the bridge does: a new Fd on the file's inode, given to create. */
async function create(x: Xlator, path: string, flags = fs.constants.O_RDWR, frame: Frame = ROOT_FRAME): Promise<Fd> {
  const fd = new Fd(inodeOf(x, path), flags);
  await x.call('create', { path, mode: 0o644, flags, fd }, frame);
  return fd;
}

/** Opens path through x as the bridge does. */
async function open(x: Xlator, path: string, flags: number): Promise<Fd> {
  const fd = new Fd(inodeOf(x, path), flags);
  await x.call('open', { path, flags, fd }, ROOT_FRAME);
  return fd;
}

/** Lets every pending promise callback run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));


/** Tracks whether a promise has settled yet, without letting its rejection go unhandled. */
function watch<T>(p: Promise<T>): { done: boolean; result: Promise<T> } {
  const s = { done: false, result: p };
  p.then(() => { s.done = true; }, () => { s.done = true; });
  return s;
}

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

/** Creates /f and writes a 4 KiB block of each [offset, fill] in order; the fd. */
async function createAndWrite(wb: WriteBehind, blocks: Array<[offset: number, fill: number]>): Promise<Fd> {
  const fd = await create(wb, '/f');
  for (const [offset, fill] of blocks) await wb.call('write', { fd, offset, data: bytes(4096, fill) }, ROOT_FRAME);
  return fd;
}

const enospc = (): FsError => FsError.of('ENOSPC', 'brick full');

test('a write resolves before the child answers, and the child gets a copy of the data', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  const buf = Buffer.from('hello');
  t.deepEqual(await wb.call('write', { fd, offset: 0, data: buf }, ROOT_FRAME), { size: 5 });
  t.is(child.writes.length, 1);
  t.false(child.writes[0]!.answered, 'the caller had its answer before the child did');
  buf.fill(0x78); // FUSE reuses the buffer once the write is answered
  child.writes[0]!.answer();
  t.is(child.writes[0]!.data.toString(), 'hello');
});

// Serial: it reads the process-wide pool's count of slabs handed out.
test.serial('big acknowledged writes are copied into pooled slabs, each given back once the child answered', async (t) => {
  const before = bulkPool.outstanding;
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  const big = bytes(64 * 1024, 0x61);
  await wb.call('write', { fd, offset: 0, data: big }, ROOT_FRAME);
  big.fill(0x78); // FUSE reuses the buffer once the write is answered
  // Two 32 KiB writes queued behind the first merge into one pooled batch of 64 KiB.
  await wb.call('write', { fd, offset: 65536, data: bytes(32 * 1024, 0x62) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 98304, data: bytes(32 * 1024, 0x63) }, ROOT_FRAME);
  t.true(bulkPool.outstanding > before, 'the copies are pooled slabs');
  t.deepEqual(child.writes[0]!.data, bytes(64 * 1024, 0x61));
  child.writes[0]!.fail(enospc());
  await settle();
  t.deepEqual(child.writes[1]!.data, Buffer.concat([bytes(32 * 1024, 0x62), bytes(32 * 1024, 0x63)]));
  child.writes[1]!.answer();
  await settle();
  for (const w of child.writes) if (!w.answered) w.answer();
  await settle();
  t.is(bulkPool.outstanding, before, 'failed, merged and single writes all gave their slabs back');
});

test('hold-ms: an idle file\'s small write waits for the next ones to merge with, then goes when the hold is over', async (t) => {
  const { wb, child } = make({ 'hold-ms': '500' });
  const fd = await create(wb, '/f');
  const start = Date.now();
  await wb.call('write', { fd, offset: 0, data: Buffer.from('aaaa') }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 4, data: Buffer.from('bbbb') }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.seen.slice(1), [], 'held');
  while (child.seen.length < 2 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 10));
  t.true(Date.now() - start >= 490, 'not before the hold was over');
  t.deepEqual(child.seen.slice(1), ['write 0+8'], 'one write, after the hold');
  child.writes[0]!.answer();
  await settle();
  await wb.call('write', { fd, offset: 8, data: Buffer.from('cccc') }, ROOT_FRAME);
  const flushed = wb.call('flush', { fd }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+8', 'write 8+4'], 'a flush sends the held batch at once');
  child.writes[1]!.answer();
  await flushed;
});

test('hold-ms: a batch that reaches aggregate-size goes at once', async (t) => {
  const { wb, child } = make({ 'hold-ms': '1000', 'aggregate-size': '8192' });
  const fd = await createAndWrite(wb, [[0, 1]]);
  await settle();
  t.deepEqual(child.seen.slice(1), []);
  await wb.call('write', { fd, offset: 4096, data: bytes(4096, 2) }, ROOT_FRAME);
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+8192']);
  child.writes[0]!.answer();
  await wb.call('release', { fd }, ROOT_FRAME);
});

test('contiguous small writes queued while one is in flight go down merged', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('aaaa') }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 4, data: Buffer.from('bbbb') }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 8, data: Buffer.from('cccc') }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 12, data: Buffer.from('dddd') }, ROOT_FRAME);
  t.deepEqual(child.seen.slice(1), ['write 0+4'], 'the later writes wait for the one in flight');
  child.writes[0]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4', 'write 4+12']);
  t.is(child.writes[1]!.data.toString(), 'bbbbccccdddd');
});

test('a merged write never exceeds aggregate-size, and full batches are pipelined', async (t) => {
  const { wb, child } = make({ 'aggregate-size': '8K' });
  const fd = await create(wb, '/f');
  for (let i = 0; i < 4; i++) await wb.call('write', { fd, offset: i * 4096, data: bytes(4096, i) }, ROOT_FRAME);
  // 0 goes at once; 1+2 make a full 8K batch that goes while 0 is in flight; 3 may still grow.
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 4096+8192']);
  t.deepEqual(child.writes[1]!.data, Buffer.concat([bytes(4096, 1), bytes(4096, 2)]));
  child.writes[0]!.answer();
  child.writes[1]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 4096+8192', 'write 12288+4096']);
  t.true(child.writes.every((w) => w.data.length <= 8192));
});

test('flush waits for the pending writes before it goes down', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  const flush = watch(wb.call('flush', { fd }, ROOT_FRAME));
  await settle();
  t.false(flush.done);
  t.false(child.seen.includes('flush'));
  child.writes[0]!.answer();
  await flush.result;
  t.deepEqual(child.seen.slice(1), ['write 0+1', 'flush']);
});

test('flush-behind: close returns before the pending writes land; the flush, then the release, go down after them', async (t) => {
  const { wb, child } = make({ 'flush-behind': 'on' });
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  await wb.call('flush', { fd }, ROOT_FRAME);
  t.deepEqual(child.seen.slice(1), ['write 0+1'], 'close answered with the write still in flight');
  const release = watch(wb.call('release', { fd }, ROOT_FRAME));
  await settle();
  t.false(release.done);
  child.writes[0]!.answer();
  await release.result;
  t.deepEqual(child.seen.slice(1), ['write 0+1', 'flush', 'release']);
});

test('flush-behind: a failure already known is still reported by close', async (t) => {
  const { wb, child } = make({ 'flush-behind': 'on' });
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  child.writes[0]!.fail(enospc());
  await settle();
  t.is((await t.throwsAsync<FsError>(wb.call('flush', { fd }, ROOT_FRAME)))?.code, 'ENOSPC');
});

test('a failed background write fails the next flush of its fd, once', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  child.writes[0]!.fail(enospc());
  const err = await t.throwsAsync<FsError>(wb.call('flush', { fd }, ROOT_FRAME), { instanceOf: FsError });
  t.is(err?.code, 'ENOSPC');
  t.false(child.seen.includes('flush'), 'the failing flush does not go down');
  await t.notThrowsAsync(wb.call('flush', { fd }, ROOT_FRAME), 'reported once');
});

test('a failed background write fails the next write of its fd, once; so does a short write', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('abc') }, ROOT_FRAME);
  child.writes[0]!.fail(enospc());
  await settle();
  const err = await t.throwsAsync<FsError>(wb.call('write', { fd, offset: 3, data: Buffer.from('d') }, ROOT_FRAME));
  t.is(err?.code, 'ENOSPC');
  t.is(child.writes.length, 1, 'the rejected write is not sent');
  t.deepEqual(await wb.call('write', { fd, offset: 3, data: Buffer.from('d') }, ROOT_FRAME), { size: 1 });
  child.writes[1]!.answer(0);
  const short = await t.throwsAsync<FsError>(wb.call('fsync', { fd, datasync: false }, ROOT_FRAME));
  t.is(short?.code, 'EIO');
  await t.notThrowsAsync(wb.call('fsync', { fd, datasync: false }, ROOT_FRAME));
});

test('the error sticks to the fd that wrote, not to another fd of the file', async (t) => {
  const { wb, child } = make();
  const a = await create(wb, '/f');
  const b = await open(wb, '/f', fs.constants.O_RDWR);
  await wb.call('write', { fd: a, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  child.writes[0]!.fail(enospc());
  await t.notThrowsAsync(wb.call('fsync', { fd: b, datasync: false }, ROOT_FRAME));
  await t.throwsAsync(wb.call('fsync', { fd: a, datasync: false }, ROOT_FRAME), { code: 'ENOSPC' });
});

test('read, fstat and lookup of the file wait for its pending writes', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  const other = await open(wb, '/f', fs.constants.O_RDONLY);
  await wb.call('write', { fd, offset: 0, data: Buffer.from('data') }, ROOT_FRAME);
  const read = watch(wb.call('read', { fd: other, offset: 0, size: 4 }, ROOT_FRAME));
  const fstat = watch(wb.call('fstat', { fd }, ROOT_FRAME));
  const lookup = watch(wb.call('lookup', { path: '/f' }, ROOT_FRAME));
  await settle();
  t.false(read.done || fstat.done || lookup.done);
  t.deepEqual(child.seen.slice(2), ['write 0+4']);
  child.writes[0]!.answer();
  await Promise.all([read.result, fstat.result, lookup.result]);
  t.deepEqual(child.seen.slice(2), ['write 0+4', 'read', 'fstat', 'lookup /f']);
});

test('a lookup of a path without pending writes goes down at once', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  const p = wb.call('lookup', { path: '/g' }, ROOT_FRAME);
  t.is(child.seen.at(-1), 'lookup /g', 'wound synchronously, with no wait');
  await p;
  const before = child.seen.length;
  const q = wb.call('lookup', { path: '/f' }, ROOT_FRAME);
  t.is(child.seen.length, before, 'the busy path waits');
  child.writes[0]!.answer();
  await q;
});

test('overlapping writes are never in flight together; others are', async (t) => {
  const { wb, child } = make({ 'aggregate-size': '4K' });
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(4096, 1) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 8192, data: bytes(4096, 2) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 2048, data: bytes(4096, 3) }, ROOT_FRAME);
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 8192+4096'], 'the overlapping write waits');
  child.writes[1]!.answer();
  await settle();
  t.is(child.writes.length, 2, 'still waits: what it overlaps is still in flight');
  child.writes[0]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 8192+4096', 'write 2048+4096']);
  t.deepEqual(child.writes[2]!.data, bytes(4096, 3));
});

test('a write beyond cache-size waits until earlier writes completed', async (t) => {
  const { wb, child } = make({ 'cache-size': '8K', 'aggregate-size': '4K' });
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(4096, 1) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 4096, data: bytes(4096, 2) }, ROOT_FRAME);
  const third = watch(wb.call('write', { fd, offset: 8192, data: bytes(4096, 3) }, ROOT_FRAME));
  await settle();
  t.false(third.done, 'the window is full');
  t.is(child.writes.length, 2);
  child.writes[0]!.answer();
  t.deepEqual(await third.result, { size: 4096 });
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 4096+4096', 'write 8192+4096']);
});

test('a write larger than cache-size goes through and returns the child reply', async (t) => {
  const { wb, child } = make({ 'cache-size': '4K' });
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(100, 1) }, ROOT_FRAME);
  const big = watch(wb.call('write', { fd, offset: 100, data: bytes(8192, 2) }, ROOT_FRAME));
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+100'], 'it waits for the queue before it');
  child.writes[0]!.answer();
  await settle();
  t.false(big.done, 'and then for its own reply');
  child.writes[1]!.answer(5000);
  t.deepEqual(await big.result, { size: 5000 });
});

test('O_APPEND writes go through one at a time, after the writes before them', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  const app = await open(wb, '/f', fs.constants.O_WRONLY | fs.constants.O_APPEND);
  await wb.call('write', { fd, offset: 1 << 20, data: bytes(10, 1) }, ROOT_FRAME);
  const append = watch(wb.call('write', { fd: app, offset: 0, data: bytes(10, 2) }, ROOT_FRAME));
  await settle();
  t.is(child.writes.length, 1, 'the append waits even without overlapping offsets');
  child.writes[0]!.answer();
  await settle();
  t.is(child.writes.length, 2);
  t.false(append.done);
  child.writes[1]!.answer();
  await append.result;
});

test('the pending state follows its file across a rename: a lookup of the new name waits, the old name\'s does not', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/d/a');
  const d = wb.inodes.find('/d')!;
  await wb.call('rename', { from: '/d/a', to: '/d/b', inode: fd.inode }, ROOT_FRAME);
  // As the bridge does once the rename is answered.
  wb.inodes.move(d.id, 'a', d.id, 'b');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  await wb.call('lookup', { path: '/d/a' }, ROOT_FRAME);
  const lookup = watch(wb.call('lookup', { path: '/d/b' }, ROOT_FRAME));
  await settle();
  t.false(lookup.done);
  child.writes[0]!.answer();
  await lookup.result;
  t.deepEqual(child.seen.slice(-3), ['write 0+1', 'lookup /d/a', 'lookup /d/b'], 'the old name did not wait');

  // And with the directory it is in.
  await wb.call('rename', { from: '/d', to: '/e', inode: d }, ROOT_FRAME);
  wb.inodes.move(ROOT_ID, 'd', ROOT_ID, 'e');
  await wb.call('write', { fd, offset: 1, data: Buffer.from('y') }, ROOT_FRAME);
  const below = watch(wb.call('lookup', { path: '/e/b' }, ROOT_FRAME));
  await settle();
  t.false(below.done);
  t.deepEqual(wb.statedump().files, [{ path: '/e/b', pendingBytes: 1, queued: 0, inflight: 1, waitingForWindow: 0 }]);
  child.writes[1]!.answer();
  await below.result;
});

test('the pending state is the file\'s, whatever its name: a lookup of a hard link waits, a setattr of it goes behind', async (t) => {
  const { wb, child } = make();
  const inode = wb.inodes.entry(ROOT_ID, 'f', S_IFREG, 'gfid-f');
  const fd = new Fd(inode, fs.constants.O_RDWR);
  await wb.call('create', { path: '/f', mode: 0o644, flags: fs.constants.O_RDWR, fd }, ROOT_FRAME);
  t.is(wb.inodes.entry(ROOT_ID, 'h', S_IFREG, 'gfid-f'), inode, 'one inode for both names');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  const lookup = watch(wb.call('lookup', { path: '/h', inode }, ROOT_FRAME));
  await wb.call('setattr', { path: '/h', attrs: { mode: 0o600 } }, ROOT_FRAME);
  await settle();
  t.false(lookup.done);
  t.deepEqual(child.seen.slice(1), ['write 0+1'], 'the setattr was answered and waits behind the write');
  child.writes[0]!.answer();
  await lookup.result;
  await wb.call('flush', { fd }, ROOT_FRAME);
  t.deepEqual(child.seen.slice(1), ['write 0+1', 'lookup /h', 'setattr /f', 'flush']);
});

test('rename waits for the pending writes of both names', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/t');
  await wb.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME);
  const rename = watch(wb.call('rename', { from: '/s', to: '/t' }, ROOT_FRAME));
  await settle();
  t.false(rename.done);
  t.false(child.seen.includes('rename'));
  child.writes[0]!.answer();
  await rename.result;
});

test('release waits for pending writes; statedump shows what is pending', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(10, 1) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 10, data: bytes(5, 1) }, ROOT_FRAME);
  const dump = wb.statedump();
  t.is(dump.pendingBytes, 15);
  t.deepEqual(dump.files, [{ path: '/f', pendingBytes: 15, queued: 1, inflight: 1, waitingForWindow: 0 }]);
  const release = watch(wb.call('release', { fd }, ROOT_FRAME));
  await settle();
  t.false(release.done);
  child.writes[0]!.answer();
  await settle();
  child.writes[1]!.answer();
  await release.result;
  t.deepEqual(child.seen.slice(1), ['write 0+10', 'write 10+5', 'release']);
  t.is(wb.statedump().pendingBytes, 0);
  t.is(wb.statedump().openFds, 0);
});

test('fini waits until every acknowledged write reached the child', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(10, 1) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 10, data: bytes(10, 1) }, ROOT_FRAME);
  const fini = watch(wb.fini());
  child.writes[0]!.answer();
  await settle();
  t.false(fini.done);
  child.writes[1]!.answer();
  await fini.result;
  t.is(child.writes.length, 2);
});

test('a setattr of a file open for writing goes behind: answered at once, sent after the writes before it, before the writes after it', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(4096, 1) }, ROOT_FRAME);
  const r = await wb.call('setattr', { path: '/f', attrs: { uid: 1000, gid: 1000 } }, ROOT_FRAME);
  t.is((r as { iatt?: unknown }).iatt, undefined, 'answered without attributes: it has not happened yet');
  t.false(child.seen.includes('setattr /f'), 'not sent while a write is in flight');
  await wb.call('write', { fd, offset: 4096, data: bytes(4096, 2) }, ROOT_FRAME);
  t.is(child.writes.length, 1, 'the write after the setattr waits for it');
  child.writes[0]!.answer();
  await settle();
  t.true(child.seen.includes('setattr /f'));
  await settle();
  t.is(child.writes.length, 2);
  t.deepEqual(child.seen.filter((x) => x.startsWith('write') || x.startsWith('setattr')), ['write 0+4096', 'setattr /f', 'write 4096+4096']);
  child.writes[1]!.answer();
  await wb.call('flush', { fd }, ROOT_FRAME);
});

test('a failed setattr that went behind is reported by the next flush (close), once', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  child.setattrError = FsError.of('ENOTCONN', 'brick gone');
  await wb.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, ROOT_FRAME);
  await t.throwsAsync(wb.call('flush', { fd }, ROOT_FRAME), { code: 'ENOTCONN' });
  await t.notThrowsAsync(wb.call('flush', { fd }, ROOT_FRAME));
});

test('after close (flush), a setattr of the file goes through and its error reaches the caller', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('flush', { fd }, ROOT_FRAME);
  child.setattrError = FsError.of('EPERM', 'no');
  await t.throwsAsync(wb.call('setattr', { path: '/f', attrs: { mtimeMs: 1 } }, ROOT_FRAME), { code: 'EPERM' });
  child.setattrError = undefined;
  const r = await wb.call('setattr', { path: '/f', attrs: { mtimeMs: 1 } }, ROOT_FRAME);
  t.truthy(r.iatt, 'the child answered');
  const m = make({ 'metadata-behind': 'off' });
  const o = await create(m.wb, '/g');
  await m.wb.call('setattr', { path: '/g', attrs: { uid: 1 } }, ROOT_FRAME);
  t.true(m.child.seen.includes('setattr /g'), 'metadata-behind off: sent before the answer');
  await m.wb.call('release', { fd: o }, ROOT_FRAME);
});

test('a truncation never goes behind', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('setattr', { path: '/f', attrs: { size: 0 } }, ROOT_FRAME);
  t.true(child.seen.includes('setattr /f'));
  await wb.call('release', { fd }, ROOT_FRAME);
});

test('consecutive setattrs that went behind go down as one, later fields winning', async (t) => {
  const { wb, child } = make();
  const fd = await create(wb, '/f');
  await wb.call('write', { fd, offset: 0, data: bytes(10, 1) }, ROOT_FRAME);
  await wb.call('setattr', { path: '/f', attrs: { uid: 5, gid: 5 } }, ROOT_FRAME);
  await wb.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, ROOT_FRAME);
  await wb.call('setattr', { path: '/f', attrs: { mode: 0o640, mtimeMs: 9 } }, ROOT_FRAME);
  const attrs: unknown[] = [];
  const call = child.call.bind(child);
  child.call = ((fop: FopName, args: FopArgs<FopName>) => {
    if (fop === 'setattr') attrs.push((args as FopArgs<'setattr'>).attrs);
    return call(fop, args);
  }) as typeof child.call;
  child.writes[0]!.answer();
  await wb.call('flush', { fd }, ROOT_FRAME);
  t.deepEqual(attrs, [{ uid: 5, gid: 5, mode: 0o640, mtimeMs: 9 }]);
});

test('writes that are not adjacent, queued behind one in flight, go down as one writev: runs merged, in order', async (t) => {
  const { wb, child } = make();
  const fd = await createAndWrite(wb, [[0, 1], [65536, 2], [69632, 3], [8192, 4]]);
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096'], 'an idle file\'s write goes alone; the rest waits behind it');
  child.writes[0]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'writev 65536+8192,8192+4096']);
  const [run, single] = child.writes[1]!.extents!;
  t.deepEqual(run!.data, Buffer.concat([bytes(4096, 2), bytes(4096, 3)]));
  t.deepEqual(single!.data, bytes(4096, 4));
  child.writes[1]!.answer();
  await settle();
  t.is((wb.statedump() as { writevs: number }).writevs, 1);
  await t.notThrowsAsync(wb.call('fsync', { fd, datasync: false }, ROOT_FRAME));
});

test('a writev stops before a write overlapping one in flight; what follows that write waits with it', async (t) => {
  const { wb, child } = make();
  await createAndWrite(wb, [[0, 1], [8192, 2], [2048, 3], [16384, 4]]);
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 8192+4096'], '2048 overlaps the write in flight: it and 16384 wait');
  child.writes[0]!.answer();
  await settle();
  // Free to go now, but small and behind a write in flight: held a little, to grow.
  t.is(child.writes.length, 2);
  child.writes[1]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 8192+4096', 'writev 2048+4096,16384+4096']);
  t.deepEqual(child.writes[2]!.extents!.map((e) => e.data), [bytes(4096, 3), bytes(4096, 4)]);
});

test('a child without writev (ENOSYS) gets the runs as single writes in order, and no writev after', async (t) => {
  const { wb, child } = make();
  child.noWritev = true;
  const fd = await createAndWrite(wb, [[0, 1], [65536, 2], [8192, 3]]);
  child.writes[0]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 65536+4096'], 'one after another: runs may overlap');
  child.writes[1]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 65536+4096', 'write 8192+4096']);
  child.writes[2]!.answer();
  await wb.call('write', { fd, offset: 0, data: bytes(4096, 4) }, ROOT_FRAME);
  await wb.call('write', { fd, offset: 32768, data: bytes(4096, 5) }, ROOT_FRAME);
  await settle();
  t.false(child.seen.some((x) => x.startsWith('writev')), 'no writev reached the child');
  child.writes[3]!.answer();
  await settle();
  child.writes[4]!.answer();
  await t.notThrowsAsync(wb.call('fsync', { fd, datasync: false }, ROOT_FRAME));
});

test('a short writev fails the next fsync of its fd', async (t) => {
  const { wb, child } = make();
  const fd = await createAndWrite(wb, [[0, 1], [65536, 2], [8192, 3]]);
  child.writes[0]!.answer();
  await settle();
  child.writes[1]!.answer(4096);
  const err = await t.throwsAsync<FsError>(wb.call('fsync', { fd, datasync: false }, ROOT_FRAME));
  t.is(err?.code, 'EIO');
});

test('queued writes and setattrs go down with the frame of their caller; merged writes with the first one\'s', async (t) => {
  const child = new StubChild({ name: 'stub', type: 'test/stub', options: {}, children: [] });
  const spy = new FrameSpy({ name: 'spy', type: 'test/spy', options: {}, children: [child] });
  const wb = new WriteBehind({ name: 'wb', type: 'performance/write-behind', options: { 'hold-ms': '0' }, children: [spy] });
  const fd = await create(wb, '/f', fs.constants.O_RDWR, userFrame(1000));
  await wb.call('write', { fd, offset: 0, data: bytes(4096, 1) }, userFrame(1001));
  // Queued behind the first, merged into one write.
  await wb.call('write', { fd, offset: 4096, data: bytes(4096, 2) }, userFrame(1002));
  await wb.call('write', { fd, offset: 8192, data: bytes(4096, 3) }, userFrame(1003));
  await wb.call('setattr', { path: '/f', attrs: { mode: 0o600 } }, userFrame(1004));
  child.writes[0]!.answer();
  await settle();
  t.deepEqual(child.seen.slice(1), ['write 0+4096', 'write 4096+8192']);
  const synced = wb.call('fsync', { fd, datasync: false }, userFrame(1005));
  child.writes[1]!.answer();
  await synced;
  t.deepEqual(spy.uids, ['create 1000', 'write 1001', 'write 1002', 'setattr 1004', 'fsync 1005']);
});
