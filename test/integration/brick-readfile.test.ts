// readfile on a real brick process over a real socket: bytes by path with no fd left open,
// the same confinement as every path fop, and link files never served as data.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startDistribute } from '../helpers/cluster.js';
import { tmpDir } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

async function setup(t: Parameters<typeof startDistribute>[0]) {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hello, world');
  return { brick, c };
}

function data(r: { ok?: unknown }): string {
  return Buffer.from((r.ok as { data: Uint8Array }).data).toString();
}

test('readfile reads a range by path; past the end is short; ENOENT and EISDIR as open and read would', async (t) => {
  const { brick, c } = await setup(t);
  t.is(data(await c.call('readfile', { path: '/hello', offset: 0, size: 4096 }, ROOT_FRAME)), 'hello, world');
  t.is(data(await c.call('readfile', { path: '/hello', offset: 7, size: 3 }, ROOT_FRAME)), 'wor');
  t.is(data(await c.call('readfile', { path: '/hello', offset: 100, size: 10 }, ROOT_FRAME)), '');
  t.is((await c.call('readfile', { path: '/nope', offset: 0, size: 10 }, ROOT_FRAME)).err?.code, 'ENOENT');
  fs.mkdirSync(path.join(brick.dir, 'dir'));
  t.is((await c.call('readfile', { path: '/dir', offset: 0, size: 10 }, ROOT_FRAME)).err?.code, 'EISDIR');
  t.is((await c.call('readfile', { path: 42, offset: 0, size: 10 }, ROOT_FRAME)).err?.code, 'EINVAL');
});

test('readfile never leaves the brick: .. refused, symlinks not followed, link files refused', async (t) => {
  const { brick, c } = await setup(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(outside, 'secret'), 'top secret');
  const rel = path.relative(brick.dir, path.join(outside, 'secret'));
  for (const p of [`/${rel}`, '/../etc/passwd', '/a/../../etc/passwd', '/./hello']) {
    t.is((await c.call('readfile', { path: p, offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'EPERM', p);
  }
  fs.symlinkSync(outside, path.join(brick.dir, 'evil-dir'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(brick.dir, 'evil-file'));
  t.is((await c.call('readfile', { path: '/evil-dir/secret', offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('readfile', { path: '/evil-file', offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'ELOOP');
  t.is((await c.call('readfile', { path: '/.brickfs/migrate', offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'EISDIR');
  t.is((await c.call('readfile', { path: '/.brickfs/x', offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'EPERM');
  // A DHT link file (sticky-only, empty, with a linkto) is not data: ESTALE, as open answers.
  await c.call('mknod', {
    path: '/linked', mode: 0o101000, rdev: 0, xattrs: { 'trusted.brickfs.linkto': Buffer.from('elsewhere') },
  }, ROOT_FRAME);
  t.is((await c.call('open', { path: '/linked', flags: 0 }, ROOT_FRAME)).err?.code, 'ESTALE');
  t.is((await c.call('readfile', { path: '/linked', offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'ESTALE');
});
