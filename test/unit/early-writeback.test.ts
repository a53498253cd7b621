// Early writeback (brick/xlators/storage/early-writeback.ts): when a writeback starts, that
// only one runs per fd, and that its errors reach the fd's next write or fsync, not nobody.
// storage/posix's use of it is tested on a real directory, with the background fdatasync
// made to fail.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsError } from '../../lib/errors.js';
import { ROOT_FRAME } from '../../lib/frame.js';
import { EarlyWriteback, type WritebackFd } from '../../brick/xlators/storage/early-writeback.js';
import { Posix } from '../../brick/xlators/storage/posix.js';
import { Fd } from '../../lib/inode.js';

const KiB = 1024;

/** A datasync that records its calls and settles when told. */
function manualSync() {
  const calls: number[] = [];
  const pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  const datasync = (fd: number): Promise<void> => {
    calls.push(fd);
    return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
  };
  return { calls, pending, datasync };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An open fd as storage/posix keeps it: the system fd, its stream once it writes. */
const fdOn = (os: number): WritebackFd => ({ os });

test('a writeback starts once a window has been written in sequence, not before', (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 256 * KiB, s.datasync);
  const fd7 = fdOn(7);
  for (let off = 0; off < 192 * KiB; off += 64 * KiB) wb.written(fd7, off, 64 * KiB);
  t.deepEqual(s.calls, [], '192 KiB of a 256 KiB window');
  wb.written(fd7, 192 * KiB, 64 * KiB);
  t.deepEqual(s.calls, [7]);
});

test('writes out of sequence start nothing (random writers are left to the kernel)', (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 256 * KiB, s.datasync);
  const fd7 = fdOn(7);
  const fd8 = fdOn(8);
  const fd9 = fdOn(9);
  for (let i = 0; i < 64; i++) wb.written(fd7, ((i * 37) % 64) * 64 * KiB, 64 * KiB);
  t.deepEqual(s.calls, []);
  // Another fd's stream is its own.
  wb.written(fd8, 0, 128 * KiB);
  wb.written(fd9, 0, 256 * KiB);
  t.deepEqual(s.calls, [9]);
});

test('a stripe child\'s writes count as in sequence: each block a few blocks after the last', (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 512 * KiB, s.datasync);
  const fd7 = fdOn(7);
  const fd8 = fdOn(8);
  // Child 0 of a 3-way stripe of 128 KiB blocks: blocks 0, 3, 6, 9 of the file.
  for (let block = 0; block < 12; block += 3) wb.written(fd7, block * 128 * KiB, 128 * KiB);
  t.deepEqual(s.calls, [7]);
  // A gap of a whole window is not a sequence any more.
  const other = new EarlyWriteback(() => 512 * KiB, s.datasync);
  for (let i = 0; i < 8; i++) other.written(fd8, i * 640 * KiB, 128 * KiB);
  t.deepEqual(s.calls, [7]);
});

test('one writeback at a time per fd; the bytes written meanwhile start the next', async (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 256 * KiB, s.datasync);
  const fd7 = fdOn(7);
  wb.written(fd7, 0, 256 * KiB);
  wb.written(fd7, 256 * KiB, 256 * KiB);
  wb.written(fd7, 512 * KiB, 256 * KiB);
  t.is(s.calls.length, 1, 'the first is still running');
  s.pending[0]!.resolve();
  await tick();
  wb.written(fd7, 768 * KiB, 4 * KiB);
  t.is(s.calls.length, 2, '516 KiB written since the first started');
});

test('a window of 0 turns it off', (t) => {
  const s = manualSync();
  let window = 0;
  const wb = new EarlyWriteback(() => window, s.datasync);
  const fd7 = fdOn(7);
  wb.written(fd7, 0, 64 * 1024 * KiB);
  t.deepEqual(s.calls, []);
  window = 64 * KiB; // reconfigured: applies at the next write
  wb.written(fd7, 0, 64 * KiB);
  t.deepEqual(s.calls, [7]);
});

test('a failed writeback is reported once, by the next reportError; settled waits for it', async (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 64 * KiB, s.datasync);
  const fd7 = fdOn(7);
  wb.written(fd7, 0, 64 * KiB);
  let settled = false;
  const waiting = wb.settled(fd7).then(() => { settled = true; });
  await tick();
  t.false(settled, 'settled waits for the running writeback');
  wb.reportError(fd7);
  s.pending[0]!.reject(FsError.of('EIO', 'disk on fire'));
  await waiting;
  t.is(t.throws(() => wb.reportError(fd7))?.message.includes('disk on fire'), true);
  t.notThrows(() => wb.reportError(fd7), 'once');
  t.is(await wb.forget(fd7), undefined, 'nothing left untold');
});

test('forget waits for the running writeback and returns an error nobody was told of', async (t) => {
  const s = manualSync();
  const wb = new EarlyWriteback(() => 64 * KiB, s.datasync);
  const fd7 = fdOn(7);
  wb.written(fd7, 0, 64 * KiB);
  let forgotten = false;
  const done = wb.forget(fd7).then((e) => { forgotten = true; return e; });
  await tick();
  t.false(forgotten, 'the fd must not be closed under the running fdatasync');
  s.pending[0]!.reject(FsError.of('ENOSPC'));
  t.is((await done)?.code, 'ENOSPC');
});

/** storage/posix whose background fdatasync fails with EIO, the way a dying disk's writeback does. */
class FailingWritebackPosix extends Posix {
  backgroundSyncs = 0;
  protected override backgroundDatasync(): Promise<void> {
    this.backgroundSyncs++;
    return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 }));
  }
}

async function posixWithFile(t: ExecutionContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bfs-ewb-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const posix = new FailingWritebackPosix({ name: 'p', type: 'storage/posix', options: { directory: dir, 'writeback-window': '128KiB' }, children: [] });
  await posix.init();
  t.teardown(() => posix.fini());
  const fd = Fd.forPath('/f', fs.constants.O_RDWR);
  await posix.create({ path: '/f', flags: fs.constants.O_RDWR, mode: 0o644, fd }, ROOT_FRAME);
  return { posix, fd, file: path.join(dir, 'f') };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

test('storage/posix: a failed background writeback fails the fd\'s next write, once', async (t) => {
  const { posix, fd, file } = await posixWithFile(t);
  const chunk = Buffer.alloc(64 * KiB, 1);
  await posix.write({ fd, offset: 0, data: chunk }, ROOT_FRAME);
  t.is(posix.backgroundSyncs, 0);
  await posix.write({ fd, offset: 64 * KiB, data: chunk }, ROOT_FRAME);
  t.is(posix.backgroundSyncs, 1, 'a 128 KiB window was written in sequence');
  await settle();
  const e = await t.throwsAsync(posix.write({ fd, offset: 128 * KiB, data: chunk }, ROOT_FRAME));
  t.is((e as FsError).code, 'EIO');
  t.is(fs.statSync(file).size, 128 * KiB, 'the failing write wrote nothing');
  t.deepEqual(await posix.write({ fd, offset: 128 * KiB, data: chunk }, ROOT_FRAME), { size: 64 * KiB }, 'reported once');
  await posix.release({ fd }, ROOT_FRAME);
});

test('storage/posix: fsync reports a failed background writeback, once', async (t) => {
  const { posix, fd } = await posixWithFile(t);
  await posix.writev({ fd, extents: [{ offset: 0, data: Buffer.alloc(128 * KiB, 2) }] }, ROOT_FRAME);
  t.is(posix.backgroundSyncs, 1, 'writev counts too');
  const e = await t.throwsAsync(posix.fsync({ fd, datasync: false }, ROOT_FRAME));
  t.is((e as FsError).code, 'EIO');
  t.deepEqual(await posix.fsync({ fd, datasync: false }, ROOT_FRAME), {}, 'reported once');
  await posix.release({ fd }, ROOT_FRAME);
});
