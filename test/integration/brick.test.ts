// A real brick process fed bad input over a real socket: every bad frame or path gets an
// error reply, nothing outside the brick is touched, and the brick keeps serving.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { startDistribute } from '../helpers/cluster.js';
import { BRICK_MAIN, eventually, spawnOwned, tmpDir } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

async function setup(t: Parameters<typeof startDistribute>[0]) {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  return { brick, c };
}

async function stillServes(t: import('ava').ExecutionContext, c: RawBrickClient): Promise<void> {
  const r = await c.call('lookup', { path: '/hello' }, ROOT_FRAME);
  t.is(r.err, undefined);
  t.is((r.ok as { iatt: { size: number } }).iatt.size, 2);
}

test('undecodable, text, versionless and non-map frames get EPROTO; the brick keeps serving', async (t) => {
  const { c } = await setup(t);
  c.sendRaw(Buffer.from([0xc1, 0xff, 0x00, 0x13]));
  t.is((await c.next()).err?.code, 'EPROTO');
  c.sendRaw('{"fop":"lookup"}');
  t.is((await c.next()).err?.code, 'EPROTO');
  const p = new Packr({ useRecords: false });
  c.sendRaw(p.pack([1, 2, 3]));
  t.is((await c.next()).err?.code, 'EPROTO');
  c.sendRaw(p.pack({ id: 5, fop: 'lookup', args: { path: '/hello' } }));
  const noVersion = await c.next();
  t.is(noVersion.err?.code, 'EPROTO');
  t.is(noVersion.id, 5);
  c.sendRaw(p.pack({ v: 1, id: 6, fop: 'lookup', args: 'nope' }));
  t.is((await c.next()).err?.code, 'EPROTO');
  await stillServes(t, c);
});

test('an oversized frame gets EMSGSIZE and the brick keeps serving', async (t) => {
  const { c } = await setup(t);
  c.sendRaw(Buffer.alloc(17 * 1024 * 1024, 7));
  t.is((await c.next(15_000)).err?.code, 'EMSGSIZE');
  await stillServes(t, c);
});

test('unknown fops get ENOSYS, wrong argument types EINVAL, unopened fds EBADF', async (t) => {
  const { c } = await setup(t);
  t.is((await c.call('format_disk', {})).err?.code, 'ENOSYS');
  t.is((await c.call('lookup', { path: 42 }, ROOT_FRAME)).err?.code, 'EINVAL');
  t.is((await c.call('lookup', { path: 'relative' }, ROOT_FRAME)).err?.code, 'EINVAL');
  for (const fd of [0, 1, 2, 99]) t.is((await c.call('write', { fd, offset: 0, data: Buffer.from('x') }, ROOT_FRAME)).err?.code, 'EBADF');
  await stillServes(t, c);
});

test('paths with .. never leave the brick', async (t) => {
  const { brick, c } = await setup(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(outside, 'secret'), 'top secret');
  const rel = path.relative(brick.dir, path.join(outside, 'secret'));
  for (const p of [`/${rel}`, '/../etc/passwd', '/a/../../etc/passwd', '/./hello', '//hello']) {
    const r = await c.call('lookup', { path: p }, ROOT_FRAME);
    t.is(r.err?.code, 'EPERM', p);
  }
  t.is((await c.call('unlink', { path: `/${rel}` }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('create', { path: '/../escaped', mode: 0o644, flags: 0o101 }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'top secret');
  t.false(fs.existsSync(path.join(path.dirname(brick.dir), 'escaped')));
  await stillServes(t, c);
});

test('symlinks leading out of the brick are never followed', async (t) => {
  const { brick, c } = await setup(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(outside, 'secret'), 'top secret');
  fs.symlinkSync(outside, path.join(brick.dir, 'evil-dir'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(brick.dir, 'evil-file'));
  // Through a symlinked directory: refused.
  t.is((await c.call('lookup', { path: '/evil-dir/secret' }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('open', { path: '/evil-dir/secret', flags: 0 }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('create', { path: '/evil-dir/new', mode: 0o644, flags: 0o101 }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('unlink', { path: '/evil-dir/secret' }, ROOT_FRAME)).err?.code, 'EPERM');
  t.is((await c.call('rename', { from: '/hello', to: '/evil-dir/stolen' }, ROOT_FRAME)).err?.code, 'EPERM');
  // The symlink itself: opened without following, listed as a link, never read through.
  t.is((await c.call('open', { path: '/evil-file', flags: 0 }, ROOT_FRAME)).err?.code, 'ELOOP');
  t.is((await c.call('readdir', { path: '/evil-dir' }, ROOT_FRAME)).err?.code, 'ENOTDIR');
  const st = await c.call('lookup', { path: '/evil-file' }, ROOT_FRAME);
  t.is(((st.ok as { iatt: { mode: number } }).iatt.mode & 0o170000), 0o120000);
  await c.call('setattr', { path: '/evil-file', attrs: { mode: 0o777, size: 0 } }, ROOT_FRAME);
  t.is(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'top secret');
  t.is(fs.statSync(path.join(outside, 'secret')).mode & 0o777, 0o644);
  t.false(fs.existsSync(path.join(outside, 'new')));
  t.false(fs.existsSync(path.join(outside, 'stolen')));
  await stillServes(t, c);
});

test('a client asking for a subvolume the brick does not export is turned away', async (t) => {
  const vol = await startDistribute(t, 1);
  const c = await RawBrickClient.connect(vol.bricks[0]!.port, '/not/exported');
  t.teardown(() => c.close());
  t.is(await c.closed, 4003);
});

test('many pipelined requests on one connection are all answered, matched by id', async (t) => {
  const { c } = await setup(t);
  const { encodeFrame, WIRE_VERSION } = await import('../../lib/rpc/frame.js');
  for (let id = 1000; id < 1200; id++) c.ws.send(encodeFrame({ v: WIRE_VERSION, id, fop: 'lookup', args: { path: id % 2 ? '/hello' : '/missing' }, cred: ROOT_FRAME }));
  const seen = new Map<number, string>();
  for (let i = 0; i < 200; i++) {
    const r = await c.next();
    seen.set(r.id, r.err ? r.err.code : 'ok');
  }
  t.is(seen.size, 200);
  for (let id = 1000; id < 1200; id++) t.is(seen.get(id), id % 2 ? 'ok' : 'ENOENT');
});

test('reads of every size at once, pipelined on one fd, each get their own bytes (small ones synchronous unless a read is in the pool)', async (t) => {
  const { brick, c } = await setup(t);
  const { encodeFrame, WIRE_VERSION } = await import('../../lib/rpc/frame.js');
  const data = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 31 + (i >> 12)) % 253));
  fs.writeFileSync(path.join(brick.dir, 'big'), data);
  const opened = await c.call('open', { path: '/big', flags: 0 }, ROOT_FRAME);
  const fd = (opened.ok as { fd: number }).fd;
  // 1 MiB reads go to the thread pool; the 4 KiB and 60 KiB ones around them, and a read past
  // the end, go either way depending on what is in the pool when they arrive.
  const reads = Array.from({ length: 120 }, (_, i) => {
    const size = i % 10 === 0 ? 1 << 20 : i % 3 === 0 ? 60 * 1024 : 4096;
    const offset = i === 119 ? data.length - 100 : ((i * 7919 * 4096) % (data.length - size));
    return { id: 5000 + i, size, offset };
  });
  for (const r of reads) c.ws.send(encodeFrame({ v: WIRE_VERSION, id: r.id, fop: 'read', args: { fd, size: r.size, offset: r.offset }, cred: ROOT_FRAME }));
  const got = new Map<number, Buffer>();
  for (let i = 0; i < reads.length; i++) {
    const r = await c.next();
    t.is(r.err, undefined);
    got.set(r.id, Buffer.from((r.ok as { data: Uint8Array }).data));
  }
  for (const r of reads) t.true(got.get(r.id)!.equals(data.subarray(r.offset, r.offset + r.size)), `read ${r.id}: ${r.size} bytes at ${r.offset}`);
  await stillServes(t, c);
});

test('an xattrop can take an entry lock before it and drop one after it; a busy lock adds nothing', async (t) => {
  const { brick, c } = await setup(t);
  const other = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => other.close());
  const one = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
  const counter = async (): Promise<number> => {
    const r = await c.call('xattrop', { path: '/hello', add: { 'user.n': one(0) } }, ROOT_FRAME);
    return ((r.ok as { xattrs: Record<string, Uint8Array> }).xattrs['user.n'] as Buffer).readInt32BE(0);
  };
  const taken = await c.call('xattrop', { path: '/hello', add: { 'user.n': one(1) }, lock: { name: 'x', owner: 'a' } }, ROOT_FRAME);
  t.is(taken.err, undefined);
  t.true((taken.ok as { locked?: boolean }).locked);
  // Another connection finds the lock held, as entrylk and as a compound request.
  t.is((await other.call('entrylk', { path: '/hello', name: 'x', owner: 'b', cmd: 'trylock' }, ROOT_FRAME)).err?.code, 'EAGAIN');
  t.is((await other.call('xattrop', { path: '/hello', add: { 'user.n': one(5) }, lock: { name: 'x', owner: 'b' } }, ROOT_FRAME)).err?.code, 'EAGAIN');
  t.is(await counter(), 1, 'the refused request added nothing');
  // A waiting lock is granted once the compound unlock lands.
  const waiting = other.call('entrylk', { path: '/hello', name: 'x', owner: 'b', cmd: 'lock' }, ROOT_FRAME);
  const dropped = await c.call('xattrop', { path: '/hello', add: { 'user.n': one(-1) }, unlock: { name: 'x', owner: 'a' } }, ROOT_FRAME);
  t.is(dropped.err, undefined);
  t.is((await waiting).err, undefined);
  t.is(await counter(), 0);
  // A failed xattrop does not keep the lock it took.
  t.is((await c.call('xattrop', { path: '/missing', add: { 'user.n': one(1) }, lock: { name: 'y', owner: 'a' } }, ROOT_FRAME)).err?.code, 'ENOENT');
  t.is((await other.call('entrylk', { path: '/missing', name: 'y', owner: 'b', cmd: 'trylock' }, ROOT_FRAME)).err, undefined);
  // Locks taken by a compound request go with their connection.
  t.is((await c.call('xattrop', { path: '/hello', add: { 'user.n': one(0) }, lock: { name: 'z', owner: 'a' } }, ROOT_FRAME)).err, undefined);
  c.close();
  let freed = false;
  for (let i = 0; i < 50 && !freed; i++) {
    freed = (await other.call('entrylk', { path: '/hello', name: 'z', owner: 'b', cmd: 'trylock' }, ROOT_FRAME)).err === undefined;
    if (!freed) await new Promise((r) => setTimeout(r, 100));
  }
  t.true(freed, 'the lock of a closed connection is dropped');
});

test('the whole-directory entry lock excludes every entry name of its directory, waits for them and holds them up, in arrival order', async (t) => {
  const { brick, c } = await setup(t);
  const { ENTRYLK_WHOLE_DIR: ALL } = await import('../../lib/fops.js');
  // One request in flight per raw connection: a waiting lock gets a connection of its own.
  const other = await RawBrickClient.connect(brick.port, brick.dir);
  const third = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { other.close(); third.close(); });
  const lk = (x: RawBrickClient, name: string, owner: string, cmd: string, p = '/'): Promise<{ err?: { code: string } }> =>
    x.call('entrylk', { path: p, name, owner, cmd }, ROOT_FRAME) as Promise<{ err?: { code: string } }>;
  const one = Buffer.alloc(12);
  // A name held (as a transaction's lock + pre-op takes it): the whole directory waits.
  t.is((await c.call('xattrop', { path: '/', add: { 'user.n': one }, lock: { name: 'x', owner: 'a' } }, ROOT_FRAME)).err, undefined);
  t.is((await lk(other, ALL, 'h', 'trylock')).err?.code, 'EAGAIN');
  let granted = false;
  const whole = lk(other, ALL, 'h', 'lock').then((r) => { granted = true; return r; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(granted, 'granted while a name of the directory is held');
  // Another directory, and internal names (the inode lock) of this one, are not held up.
  t.is((await lk(c, 'x', 'a', 'trylock', '/sub')).err, undefined);
  t.is((await lk(c, '\u0000inode', 'a', 'trylock')).err, undefined);
  // A new name lock queues behind the waiting whole-directory request (no starvation).
  t.is((await c.call('xattrop', { path: '/', add: { 'user.n': one }, lock: { name: 'y', owner: 'a' } }, ROOT_FRAME)).err?.code, 'EAGAIN');
  const y = lk(third, 'y', 'a3', 'lock');
  // The post-op + unlock of the name hands the directory over; the queued name waits for it.
  t.is((await c.call('xattrop', { path: '/', add: { 'user.n': one }, unlock: { name: 'x', owner: 'a' } }, ROOT_FRAME)).err, undefined);
  t.is((await whole).err, undefined);
  let yGranted = false;
  void y.then(() => { yGranted = true; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(yGranted, 'a name granted while the whole directory is held');
  t.is((await lk(other, ALL, 'h', 'unlock')).err, undefined);
  t.is((await y).err, undefined);
  // A connection that goes away lets go of its whole-directory lock and of its requests.
  t.is((await lk(third, 'y', 'a3', 'unlock')).err, undefined);
  t.is((await lk(other, ALL, 'h', 'trylock')).err, undefined);
  other.close();
  let freed = false;
  for (let i = 0; i < 50 && !freed; i++) {
    freed = (await lk(c, 'z', 'a', 'trylock')).err === undefined;
    if (!freed) await new Promise((r) => setTimeout(r, 100));
  }
  t.true(freed, 'the whole-directory lock of a closed connection is dropped');
});

test('a lock request that waits tells the holder\'s connection (a contended push with its own owner), and no one else', async (t) => {
  const { brick, c } = await setup(t);
  const { ENTRYLK_WHOLE_DIR: ALL } = await import('../../lib/fops.js');
  const other = await RawBrickClient.connect(brick.port, brick.dir);
  const third = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { other.close(); third.close(); });
  const one = Buffer.alloc(12);
  t.is((await c.call('xattrop', { path: '/', add: { 'user.n': one }, lock: { name: ALL, owner: 'burst' } }, ROOT_FRAME)).err, undefined);
  // A trylock that fails waits for nothing: no push.
  t.is((await other.call('entrylk', { path: '/', name: 'f', owner: 'b', cmd: 'trylock' }, ROOT_FRAME)).err?.code, 'EAGAIN');
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(c.pushes, []);
  // A request that waits does.
  const waiting = other.call('entrylk', { path: '/', name: 'f', owner: 'b', cmd: 'lock' }, ROOT_FRAME);
  await eventually(() => c.pushes.length === 1, 5000, 'contended push');
  t.deepEqual(c.pushes[0], { v: (await import('../../lib/rpc/frame.js')).WIRE_VERSION, push: 'contended', path: '/', name: ALL, owner: 'burst' });
  t.deepEqual(third.pushes, []);
  t.deepEqual(other.pushes, []);
  t.is((await c.call('xattrop', { path: '/', add: { 'user.n': one }, unlock: { name: ALL, owner: 'burst' } }, ROOT_FRAME)).err, undefined);
  t.is((await waiting).err, undefined);
});

test('unlink with linkfileOnly removes a link file and leaves a real file of that name', async (t) => {
  const { c } = await setup(t);
  const { LINKFILE_MODE, XATTR_LINKTO } = await import('../../lib/fops.js');
  const made = await c.call('mknod', { path: '/link', mode: LINKFILE_MODE, rdev: 0, xattrs: { [XATTR_LINKTO]: Buffer.from('tv-client-1') } }, ROOT_FRAME);
  t.is(made.err, undefined);
  t.is((await c.call('unlink', { path: '/hello', linkfileOnly: true }, ROOT_FRAME)).err?.code, 'ENOENT');
  t.is((await c.call('lookup', { path: '/hello' }, ROOT_FRAME)).err, undefined, 'the real file stays');
  t.is((await c.call('unlink', { path: '/link', linkfileOnly: true }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('lookup', { path: '/link' }, ROOT_FRAME)).err?.code, 'ENOENT');
  t.is((await c.call('unlink', { path: '/link', linkfileOnly: true }, ROOT_FRAME)).err?.code, 'ENOENT');
});

test('unlink with dataOnly leaves a link file (ENOENT) and removes a real file', async (t) => {
  const { c } = await setup(t);
  const { LINKFILE_MODE, XATTR_LINKTO } = await import('../../lib/fops.js');
  t.is((await c.call('mknod', { path: '/link', mode: LINKFILE_MODE, rdev: 0, xattrs: { [XATTR_LINKTO]: Buffer.from('tv-client-1') } }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('unlink', { path: '/link', dataOnly: true }, ROOT_FRAME)).err?.code, 'ENOENT');
  t.is((await c.call('lookup', { path: '/link' }, ROOT_FRAME)).err, undefined, 'the link file stays');
  t.is((await c.call('unlink', { path: '/hello', dataOnly: true }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('lookup', { path: '/hello' }, ROOT_FRAME)).err?.code, 'ENOENT');
});

test('a directory the brick has served, then replaced by a symlink leading out (rename, symlink, link), is refused', async (t) => {
  const { brick, c } = await setup(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(outside, 'secret'), 'top secret');
  // The brick has checked these parents before they are swapped (it remembers checked ones).
  for (const d of ['/d1', '/d2', '/d3']) {
    t.is((await c.call('mkdir', { path: d, mode: 0o755 }, ROOT_FRAME)).err, undefined);
    t.is((await c.call('lookup', { path: `${d}/secret` }, ROOT_FRAME)).err?.code, 'ENOENT');
  }
  t.is((await c.call('rmdir', { path: '/d1' }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('symlink', { path: '/d1', target: outside }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('symlink', { path: '/elsewhere', target: outside }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('rename', { from: '/d2', to: '/d2-old' }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('rename', { from: '/elsewhere', to: '/d2' }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('rmdir', { path: '/d3' }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('link', { target: '/d1', path: '/d3' }, ROOT_FRAME)).err, undefined);
  for (const d of ['/d1', '/d2', '/d3']) {
    t.is((await c.call('lookup', { path: `${d}/secret` }, ROOT_FRAME)).err?.code, 'EPERM', d);
    t.is((await c.call('readfile', { path: `${d}/secret`, offset: 0, size: 100 }, ROOT_FRAME)).err?.code, 'EPERM', d);
    t.is((await c.call('create', { path: `${d}/new`, mode: 0o644, flags: 0o101 }, ROOT_FRAME)).err?.code, 'EPERM', d);
  }
  t.false(fs.existsSync(path.join(outside, 'new')));
  t.is(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'top secret');
  t.true(fs.lstatSync(path.join(brick.dir, 'd3')).isSymbolicLink());
});

test('the self-heal index holds a path exactly while one of its changelog counters is non-zero', async (t) => {
  const { c } = await setup(t);
  const { XATTR_AFR_PREFIX } = await import('../../lib/fops.js');
  const counters = (...n: number[]): Buffer => { const b = Buffer.alloc(12); n.forEach((x, i) => b.writeInt32BE(x, i * 4)); return b; };
  const indexed = async (): Promise<string[]> => ((await c.call('indexlist', {}, ROOT_FRAME)).ok as { paths: string[] }).paths.sort();
  const a = `${XATTR_AFR_PREFIX}tv-client-0`;
  const b = `${XATTR_AFR_PREFIX}tv-client-1`;
  t.is((await c.call('mkdir', { path: '/dir', mode: 0o755 }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), []);
  // Two transactions overlap on one directory: the entry stays until both are done.
  for (let i = 0; i < 2; i++) t.is((await c.call('xattrop', { path: '/dir', add: { [a]: counters(0, 0, 1), [b]: counters(0, 0, 1) } }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('xattrop', { path: '/hello', add: { [a]: counters(1, 0, 0), [b]: counters(1, 0, 0) } }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), ['/dir', '/hello']);
  t.is((await c.call('xattrop', { path: '/dir', add: { [a]: counters(0, 0, -1), [b]: counters(0, 0, -1) } }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), ['/dir', '/hello']);
  t.is((await c.call('xattrop', { path: '/dir', add: { [a]: counters(0, 0, -1), [b]: counters(0, 0, -1) } }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), ['/hello']);
  // A counter this request does not carry still blames: the entry stays.
  t.is((await c.call('xattrop', { path: '/hello', add: { [a]: counters(-1, 0, 0) } }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), ['/hello']);
  t.is((await c.call('xattrop', { path: '/hello', add: { [b]: counters(-1, 0, 0) } }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), []);
  // A pending entry follows a rename and goes with an unlink.
  t.is((await c.call('xattrop', { path: '/hello', add: { [a]: counters(1, 0, 0) } }, ROOT_FRAME)).err, undefined);
  t.is((await c.call('rename', { from: '/hello', to: '/moved' }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), ['/moved']);
  t.is((await c.call('unlink', { path: '/moved' }, ROOT_FRAME)).err, undefined);
  t.deepEqual(await indexed(), []);
});

test('a brick removes its pidfile when it stops, but not one that another process has taken over', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  await brick.kill('SIGTERM');
  const pidfile = path.join(vol.root, 'brick0.pid');
  /** Runs the brick with a pidfile and stops it; `takenOver`: another process rewrote the pidfile meanwhile. */
  const runAndStop = async (takenOver: boolean): Promise<void> => {
    const p = spawnOwned(t, process.execPath, [BRICK_MAIN, '--volfile', brick.volfile, '--pidfile', pidfile], brick.log);
    await eventually(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8').trim() === String(p.pid), 10_000, 'the brick\'s pidfile');
    if (takenOver) fs.writeFileSync(pidfile, '4194000\n');
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  };
  await runAndStop(false);
  t.false(fs.existsSync(pidfile), 'its own pidfile is removed');
  await runAndStop(true);
  t.is(fs.readFileSync(pidfile, 'utf8'), '4194000\n', 'another process\'s pidfile stays');
});
