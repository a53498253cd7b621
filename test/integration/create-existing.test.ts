// A create that finds its name already taken (another client's create, or a negative entry
// in this client's kernel that went stale): without O_EXCL it opens what is there, keeping
// its gfid and content; it never stamps a new gfid on someone else's file and never writes
// into a DHT link file. Real brick processes over real sockets, no FUSE (the kernel sends
// CREATE only for a name it believes absent, so the race is set up below it).
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import { prepareGraph } from '../../client/graph-switch.js';
import { Distribute } from '../../client/xlators/cluster/distribute/index.js';
import '../../client/xlators/index.js';
import { LINKFILE_MODE, XATTR_GFID, XATTR_LINKTO } from '../../lib/fops.js';
import { Fd } from '../../lib/inode.js';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_WRONLY, O_RDWR, O_EXCL, O_TRUNC } = fs.constants;
const GFID_A = Buffer.alloc(16, 0xa1);
const GFID_B = Buffer.alloc(16, 0xb2);

test('a brick create without O_EXCL on an existing file opens it: gfid and content kept, O_TRUNC truncates, O_EXCL is EEXIST', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const file = path.join(brick.dir, 'f');

  const made = await c.call('create', { path: '/f', mode: 0o644, flags: O_WRONLY, xattrs: { [XATTR_GFID]: GFID_A } }, ROOT_FRAME);
  t.is(made.err, undefined);
  t.is((await c.call('write', { fd: (made.ok as { fd: number }).fd, offset: 0, data: Buffer.from('first\n') }, ROOT_FRAME)).err, undefined);

  const again = await c.call('create', { path: '/f', mode: 0o600, flags: O_RDWR, xattrs: { [XATTR_GFID]: GFID_B } }, ROOT_FRAME);
  t.is(again.err, undefined);
  t.is((again.ok as { iatt: { size: number } }).iatt.size, 6, 'the reply describes the file that was there');
  t.deepEqual(xattr.getAttributeSync(file, XATTR_GFID), GFID_A, 'the first create\'s gfid stays');
  t.is(fs.readFileSync(file, 'utf8'), 'first\n');
  t.is(fs.statSync(file).mode & 0o777, 0o644, 'the mode is not the second create\'s');
  const read = await c.call('read', { fd: (again.ok as { fd: number }).fd, offset: 0, size: 100 }, ROOT_FRAME);
  t.is((read.ok as { data: Buffer }).data.toString(), 'first\n', 'the fd is open on that file, for reading too');

  t.is((await c.call('create', { path: '/f', mode: 0o644, flags: O_WRONLY | O_EXCL, xattrs: { [XATTR_GFID]: GFID_B } }, ROOT_FRAME)).err?.code, 'EEXIST');
  t.is((await c.call('create', { path: '/f', mode: 0o644, flags: O_WRONLY | O_TRUNC, xattrs: { [XATTR_GFID]: GFID_B } }, ROOT_FRAME)).err, undefined);
  t.is(fs.statSync(file).size, 0, 'O_TRUNC truncates the existing file');
  t.deepEqual(xattr.getAttributeSync(file, XATTR_GFID), GFID_A);
});

test('a brick create on a DHT link file is refused with ESTALE and leaves the link file as it was', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  t.is((await c.call('mknod', { path: '/l', mode: LINKFILE_MODE, rdev: 0, xattrs: { [XATTR_LINKTO]: Buffer.from('tv-client-1') } }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('create', { path: '/l', mode: 0o644, flags: O_WRONLY, xattrs: { [XATTR_GFID]: GFID_B } }, ROOT_FRAME)).err?.code, 'ESTALE');
  const file = path.join(brick.dir, 'l');
  t.is(xattr.getAttributeSync(file, XATTR_GFID), null, 'no gfid stamped on the link file');
  t.is(fs.statSync(file).mode & 0o7777, LINKFILE_MODE & 0o7777);
  t.is(fs.statSync(file).size, 0);
});

test('distribute: a create (no O_EXCL) of a renamed file whose hashed brick holds its link file opens the data where it lives', async (t) => {
  const vol = await startDistribute(t, 2);
  const graph = await prepareGraph(fs.readFileSync(vol.volfilePath, 'utf8'), 'test', { readyTimeoutMs: 5000 });
  t.teardown(() => graph.fini());
  const dht = [...graph.byName.values()].find((x): x is Distribute => x instanceof Distribute)!;
  // A source and a target name that hash to different bricks: the rename leaves the data
  // where it was and a link file on the target's hashed brick.
  const from = '/src';
  const home = await dht.hashedChild(from, ROOT_FRAME);
  let to = '';
  for (let i = 0; !to; i++) if ((await dht.hashedChild(`/dst-${i}`, ROOT_FRAME)) !== home) to = `/dst-${i}`;
  const made = Fd.forPath(from, O_WRONLY);
  await dht.call('create', { path: from, mode: 0o644, flags: O_WRONLY, fd: made }, ROOT_FRAME);
  await dht.call('write', { fd: made, offset: 0, data: Buffer.from('payload\n') }, ROOT_FRAME);
  await dht.call('release', { fd: made }, ROOT_FRAME);
  await dht.call('rename', { from, to }, ROOT_FRAME);
  const dataFile = path.join(vol.bricks[home]!.dir, to.slice(1));
  const linkFile = path.join(vol.bricks[1 - home]!.dir, to.slice(1));
  t.is(fs.statSync(linkFile).mode & 0o7777, LINKFILE_MODE & 0o7777, 'the rename left a link file on the hashed brick');
  const gfid = xattr.getAttributeSync(dataFile, XATTR_GFID);
  const linkGfid = xattr.getAttributeSync(linkFile, XATTR_GFID);

  // Another client, whose kernel believed the name absent: O_CREAT without O_EXCL.
  const graph2 = await prepareGraph(fs.readFileSync(vol.volfilePath, 'utf8'), 'other', { readyTimeoutMs: 5000 });
  t.teardown(() => graph2.fini());
  const other = [...graph2.byName.values()].find((x): x is Distribute => x instanceof Distribute)!;
  const opened = Fd.forPath(to, O_RDWR);
  t.is((await other.call('create', { path: to, mode: 0o600, flags: O_RDWR, fd: opened }, ROOT_FRAME)).iatt.size, 8, 'the reply describes the data file');
  t.is((await other.call('read', { fd: opened, offset: 0, size: 100 }, ROOT_FRAME)).data.toString(), 'payload\n');
  await other.call('write', { fd: opened, offset: 0, data: Buffer.from('PAY') }, ROOT_FRAME);
  await other.call('release', { fd: opened }, ROOT_FRAME);
  t.is(fs.readFileSync(dataFile, 'utf8'), 'PAYload\n', 'the write reached the data file');
  t.is(fs.statSync(linkFile).size, 0, 'nothing was written into the link file');
  t.deepEqual(xattr.getAttributeSync(linkFile, XATTR_GFID), linkGfid, 'the link file\'s xattrs are as the rename left them');
  t.deepEqual(xattr.getAttributeSync(dataFile, XATTR_GFID), gfid, 'the data file keeps its gfid');

  t.is(await other.call('create', { path: to, mode: 0o600, flags: O_RDWR | O_EXCL, fd: Fd.forPath(to, O_RDWR | O_EXCL) }, ROOT_FRAME).then(() => 'created', (e: NodeJS.ErrnoException) => e.code), 'EEXIST');
});
