// storage/posix on a real directory: what it keeps of an open file lives in its slot on the
// Fd it was given, and a migrate commit answers ESTALE on every Fd open on the moved file
// (found by the file's identity) and on no other.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import { Posix } from '../../brick/xlators/storage/posix.js';
import type { FsError } from '../../lib/errors.js';
import { ROOT_FRAME } from '../../lib/frame.js';
import { Fd } from '../../lib/inode.js';
import { tmpDir } from '../helpers/proc.js';

const { O_RDWR, O_RDONLY, O_CREAT } = fs.constants;

async function posix(t: ExecutionContext): Promise<{ p: Posix; dir: string }> {
  const dir = tmpDir(t);
  const p = new Posix({ name: 'p', type: 'storage/posix', options: { directory: dir }, children: [] });
  await p.init();
  t.teardown(() => p.fini());
  return { p, dir };
}

async function create(p: Posix, path: string): Promise<Fd> {
  const fd = Fd.forPath(path, O_RDWR | O_CREAT);
  await p.create({ path, mode: 0o644, flags: O_RDWR | O_CREAT, fd }, ROOT_FRAME);
  return fd;
}

const code = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as FsError).code;
  }
};

test('each Fd is its own open file; one opened twice is refused; release ends it', async (t) => {
  const { p } = await posix(t);
  const w = await create(p, '/f');
  await p.write({ fd: w, offset: 0, data: Buffer.from('hello') }, ROOT_FRAME);
  const r = Fd.forPath('/f', O_RDONLY);
  t.deepEqual(await p.open({ path: '/f', flags: O_RDONLY, fd: r }, ROOT_FRAME), {});
  t.is((await p.read({ fd: r, offset: 0, size: 10 }, ROOT_FRAME)).data.toString(), 'hello');
  t.is(await code(p.write({ fd: r, offset: 0, data: Buffer.from('x') }, ROOT_FRAME)), 'EBADF', 'opened read-only');
  t.is(await code(p.open({ path: '/f', flags: O_RDONLY, fd: r }, ROOT_FRAME)), 'EBADF', 'already open');
  t.like(p.statedump(), { openFds: 2 });
  await p.release({ fd: w }, ROOT_FRAME);
  t.is(await code(p.fstat({ fd: w }, ROOT_FRAME)), 'EBADF');
  t.is(await code(p.release({ fd: w }, ROOT_FRAME)), 'EBADF');
  t.is(await code(p.read({ fd: Fd.forPath('/f', O_RDONLY), offset: 0, size: 1 }, ROOT_FRAME)), 'EBADF', 'never opened here');
  t.is((await p.fstat({ fd: r }, ROOT_FRAME)).iatt.size, 5);
  await p.release({ fd: r }, ROOT_FRAME);
  t.like(p.statedump(), { openFds: 0 });
});

test('migrate commit: every Fd open on the moved file answers ESTALE, a write held by the freeze too; others and later files do not', async (t) => {
  const { p } = await posix(t);
  const moved = await create(p, '/m');
  await p.write({ fd: moved, offset: 0, data: Buffer.from('old') }, ROOT_FRAME);
  const reader = Fd.forPath('/m', O_RDONLY);
  await p.open({ path: '/m', flags: O_RDONLY, fd: reader }, ROOT_FRAME);
  const bystander = await create(p, '/other');

  const owner = 'conn:mover';
  await p.migrate({ path: '/m', owner, op: 'watch' }, ROOT_FRAME);
  await p.migrate({ path: '/m', owner, op: 'freeze' }, ROOT_FRAME);
  const held = code(p.write({ fd: moved, offset: 0, data: Buffer.from('new') }, ROOT_FRAME));
  await p.migrate({ path: '/m', owner, op: 'commit' }, ROOT_FRAME);
  t.is(await held, 'ESTALE', 'the write waited for the freeze, then found the file gone');
  t.is(await code(p.write({ fd: moved, offset: 0, data: Buffer.from('x') }, ROOT_FRAME)), 'ESTALE');
  t.is(await code(p.read({ fd: reader, offset: 0, size: 3 }, ROOT_FRAME)), 'ESTALE');
  t.is(await code(p.fstat({ fd: moved }, ROOT_FRAME)), 'ESTALE');
  t.like(p.statedump(), { migration: { movedFds: 2 } });

  t.deepEqual(await p.write({ fd: bystander, offset: 0, data: Buffer.from('x') }, ROOT_FRAME), { size: 1 });
  // A file made now may get the moved file's inode number once its fds are gone.
  await p.release({ fd: moved }, ROOT_FRAME);
  await p.release({ fd: reader }, ROOT_FRAME);
  t.like(p.statedump(), { migration: { movedFds: 0 } });
  const later = await create(p, '/later');
  t.deepEqual(await p.write({ fd: later, offset: 0, data: Buffer.from('y') }, ROOT_FRAME), { size: 1 });
  await p.release({ fd: later }, ROOT_FRAME);
  await p.release({ fd: bystander }, ROOT_FRAME);
});
