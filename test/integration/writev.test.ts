// The writev fop on a real brick process (write-behind's batch of writes that are not
// adjacent): extents land in order, overlapping ones included; malformed extents are refused
// and change nothing; the brick keeps serving.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

async function openFile(t: Parameters<typeof startDistribute>[0]) {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const r = await c.call('create', { path: '/f', mode: 0o644, flags: fs.constants.O_RDWR }, ROOT_FRAME);
  const fd = (r.ok as { fd: number }).fd;
  return { c, fd, file: path.join(brick.dir, 'f') };
}

test('writev applies its extents in order, an overlapping later one winning', async (t) => {
  const { c, fd, file } = await openFile(t);
  const extents = [
    { offset: 0, data: Buffer.alloc(4096, 1) },
    { offset: 65536, data: Buffer.alloc(8192, 2) },
    { offset: 2048, data: Buffer.alloc(4096, 3) },
  ];
  const r = await c.call('writev', { fd, extents }, ROOT_FRAME);
  t.is(r.err, undefined);
  t.deepEqual(r.ok, { size: 16384 });
  const want = Buffer.alloc(65536 + 8192);
  want.fill(1, 0, 4096);
  want.fill(3, 2048, 6144);
  want.fill(2, 65536);
  t.true(fs.readFileSync(file).equals(want));
});

test('malformed writev extents are refused (EINVAL) and write nothing', async (t) => {
  const { c, fd, file } = await openFile(t);
  for (const extents of [
    'not an array',
    [{ offset: 0, data: 'text, not bytes' }],
    [{ offset: 0, data: Buffer.from('ok') }, { offset: -1, data: Buffer.from('x') }],
    [{ data: Buffer.from('no offset') }],
    Array.from({ length: 5000 }, (_, i) => ({ offset: i, data: Buffer.from('x') })),
  ]) {
    t.is((await c.call('writev', { fd, extents }, ROOT_FRAME)).err?.code, 'EINVAL', JSON.stringify(extents).slice(0, 60));
  }
  t.is(fs.statSync(file).size, 0, 'nothing was written');
  t.is((await c.call('writev', { fd: 9999, extents: [] }, ROOT_FRAME)).err?.code, 'EBADF');
  t.deepEqual((await c.call('writev', { fd, extents: [{ offset: 1, data: Buffer.from('y') }] }, ROOT_FRAME)).ok, { size: 1 });
});
