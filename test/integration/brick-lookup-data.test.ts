// lookup with wantData (quick-read) on a real brick process over a real socket: a small
// regular file's bytes come with its attributes; nothing for a larger file, a directory, a
// symlink, a DHT link file, or a file a rebalance is moving.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Iatt } from '../../lib/fops.js';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

async function setup(t: Parameters<typeof startDistribute>[0]) {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  return { brick, c };
}

interface LookupOk {
  iatt: Iatt;
  linkto?: string;
  data?: Uint8Array;
}

async function lookup(c: RawBrickClient, p: string, wantData?: number): Promise<LookupOk> {
  const r = await c.call('lookup', wantData === undefined ? { path: p } : { path: p, wantData }, ROOT_FRAME);
  if (r.err) throw new Error(`lookup ${p}: ${r.err.code}`);
  return r.ok as LookupOk;
}

test('a small file comes with its content; a larger one, or a lookup that does not ask, without', async (t) => {
  const { brick, c } = await setup(t);
  const small = crypto.randomBytes(5000);
  const big = crypto.randomBytes(70_000);
  fs.writeFileSync(path.join(brick.dir, 'small'), small);
  fs.writeFileSync(path.join(brick.dir, 'big'), big);
  fs.writeFileSync(path.join(brick.dir, 'empty'), '');
  const r = await lookup(c, '/small', 65536);
  t.is(r.iatt.size, 5000);
  t.true(Buffer.from(r.data!).equals(small), 'the bytes of the file');
  t.is((await lookup(c, '/small')).data, undefined, 'not asked: not sent');
  t.is((await lookup(c, '/small', 4999)).data, undefined, 'one byte over the limit');
  t.is(Buffer.from((await lookup(c, '/small', 5000)).data!).length, 5000, 'exactly the limit');
  t.is((await lookup(c, '/big', 65536)).data, undefined);
  t.is((await lookup(c, '/big', 65536)).iatt.size, 70_000, 'the attributes as always');
  t.is(Buffer.from((await lookup(c, '/empty', 65536)).data!).length, 0, 'an empty file is empty content');
  // Past the brick's own cap (1 MiB) the request is capped, not refused.
  const mib = crypto.randomBytes(1024 ** 2 + 1);
  fs.writeFileSync(path.join(brick.dir, 'mib'), mib);
  t.is((await lookup(c, '/mib', 16 * 1024 ** 2)).data, undefined);
  t.is((await c.call('lookup', { path: '/nope', wantData: 100 }, ROOT_FRAME)).err?.code, 'ENOENT');
});

test('no content for a directory, a symlink, a DHT link file, or a file being moved by a rebalance', async (t) => {
  const { brick, c } = await setup(t);
  fs.mkdirSync(path.join(brick.dir, 'dir'));
  fs.writeFileSync(path.join(brick.dir, 'target'), 'target bytes');
  fs.symlinkSync('target', path.join(brick.dir, 'sym'));
  t.is((await lookup(c, '/dir', 65536)).data, undefined);
  t.is((await lookup(c, '/sym', 65536)).data, undefined);
  await c.call('mknod', { path: '/linked', mode: 0o101000, rdev: 0, xattrs: { 'trusted.brickfs.linkto': Buffer.from('elsewhere') } }, ROOT_FRAME);
  const l = await lookup(c, '/linked', 65536);
  t.is(l.linkto, 'elsewhere');
  t.is(l.data, undefined, 'a link file never carries data');
  // A file a rebalance watches or froze: its content would soon be this brick's old copy.
  fs.writeFileSync(path.join(brick.dir, 'moving'), 'moving bytes');
  t.is(Buffer.from((await lookup(c, '/moving', 65536)).data!).toString(), 'moving bytes');
  t.falsy((await c.call('migrate', { path: '/moving', owner: 'm', op: 'watch' }, ROOT_FRAME)).err);
  t.is((await lookup(c, '/moving', 65536)).data, undefined, 'watched');
  t.falsy((await c.call('migrate', { path: '/moving', owner: 'm', op: 'freeze' }, ROOT_FRAME)).err);
  t.is((await lookup(c, '/moving', 65536)).data, undefined, 'frozen');
  t.is((await lookup(c, '/target', 65536)).data?.length, 12, 'other files are not affected');
  t.falsy((await c.call('migrate', { path: '/moving', owner: 'm', op: 'thaw' }, ROOT_FRAME)).err);
  t.is(Buffer.from((await lookup(c, '/moving', 65536)).data!).toString(), 'moving bytes', 'thawed: content again');
});

test('files of assorted sizes come back byte for byte, and no lookup leaves an fd open', async (t) => {
  const { brick, c } = await setup(t);
  const files = Array.from({ length: 50 }, (_, i) => crypto.randomBytes(i * 300));
  files.forEach((d, i) => fs.writeFileSync(path.join(brick.dir, `f${i}`), d));
  for (let i = 0; i < files.length; i++) {
    const r = await lookup(c, `/f${i}`, 65536);
    t.true(Buffer.from(r.data!).equals(files[i]!), `f${i}`);
    t.is(r.iatt.size, files[i]!.length);
  }
  // No fd is left open by a lookup.
  const fdsOf = (): number => fs.readdirSync(`/proc/${brick.proc!.pid}/fd`).length;
  const before = fdsOf();
  for (let i = 0; i < 20; i++) await lookup(c, '/f10', 65536);
  t.is(fdsOf(), before);
});
