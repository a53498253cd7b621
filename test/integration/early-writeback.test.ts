// Early writeback on a real brick process (storage.writeback-window): a file written in
// sequence has its writeback started while it is written, and its bytes are right; random
// writes and a window of 0 start none. The counts come from the brick's statedump (SIGUSR1).
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

const MiB = 1024 * 1024;

async function brickWithWindow(t: Parameters<typeof startDistribute>[0], window: string) {
  const vol = await startDistribute(t, 1, { set: { 'storage.writeback-window': window } });
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const started = async (): Promise<number> => {
    const dump = await brick.statedump();
    const posix = Object.values(dump).find((x) => x.type === 'storage/posix')!;
    return (posix.writeback as { started: number }).started;
  };
  return { brick, c, started };
}

async function createFile(c: RawBrickClient, name: string): Promise<number> {
  const r = await c.call('create', { path: `/${name}`, mode: 0o644, flags: fs.constants.O_RDWR }, ROOT_FRAME);
  return (r.ok as { fd: number }).fd;
}

test('a file written in sequence gets its writeback started while it is written, bytes intact', async (t) => {
  const { brick, c, started } = await brickWithWindow(t, '1M');
  const fd = await createFile(c, 'seq');
  const want = Buffer.alloc(6 * MiB);
  for (let off = 0; off < want.length; off += 256 * 1024) {
    const data = Buffer.alloc(256 * 1024, (off / (256 * 1024)) % 251);
    data.copy(want, off);
    t.deepEqual((await c.call('write', { fd, offset: off, data }, ROOT_FRAME)).ok, { size: data.length });
  }
  // At least one: the next ones start only once the first is done, and a slow disk may hold it past the last write.
  t.true(await started() >= 1, '6 MiB in sequence through 1 MiB windows');
  t.deepEqual((await c.call('fsync', { fd, datasync: false }, ROOT_FRAME)).ok, {});
  t.deepEqual((await c.call('release', { fd }, ROOT_FRAME)).ok, {});
  t.true(fs.readFileSync(path.join(brick.dir, 'seq')).equals(want));
});

test('random writes and a window of 0 start no writeback', async (t) => {
  const random = await brickWithWindow(t, '1M');
  const fd = await createFile(random.c, 'rand');
  for (let i = 0; i < 64; i++) {
    await random.c.call('write', { fd, offset: ((i * 37) % 64) * 128 * 1024, data: Buffer.alloc(128 * 1024, i) }, ROOT_FRAME);
  }
  t.is(await random.started(), 0, '8 MiB written, never 1 MiB in sequence');

  const off = await brickWithWindow(t, '0');
  const fd2 = await createFile(off.c, 'seq');
  for (let o = 0; o < 4 * MiB; o += MiB) await off.c.call('write', { fd: fd2, offset: o, data: Buffer.alloc(MiB, 1) }, ROOT_FRAME);
  t.is(await off.started(), 0);
});
