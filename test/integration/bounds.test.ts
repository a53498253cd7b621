// Per-connection bounds of a brick (docs/ARCHITECTURE.md, "Bounds"), tried by a hostile
// client built from our own wire code against a real brick process: whatever one connection
// does, the brick's memory and fds stay bounded and every other client is still served.
import { ROOT_FRAME } from '../../lib/frame.js';
import { encodeFrame, WIRE_VERSION, type ReplyFrame } from '../../lib/rpc/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startDistribute } from '../helpers/cluster.js';
import { eventually, sleep } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

/** A field of /proc/PID/status in MiB (VmRSS: resident now; VmHWM: the peak so far). */
function procMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** What a brick's resident memory stays under while a client leaves 1.6 GiB of replies unread. */
const RSS_BOUND_MIB = 512;

// The tests that move hundreds of MiB run one at a time: beside other test files on a small
// machine, they would otherwise hold up those files' bricks past their reply timeouts.
test.serial('100 pipelined 16 MiB reads whose replies are not read leave the brick\'s memory bounded; replies flow again once the client reads', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const pid = brick.proc!.pid!;
  const size = 16 << 20;
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) data.writeUInt32BE(i, i);
  fs.writeFileSync(path.join(brick.dir, 'big'), data);
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  const hog = await RawBrickClient.connect(brick.port, brick.dir);
  const other = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { hog.close(); other.close(); });
  const fd = ((await hog.call('open', { path: '/big', flags: 0 })).ok as { fd: number }).fd;
  const before = procMiB(pid, 'VmRSS');
  // The hog stops reading its socket, then asks for 1.6 GiB.
  hog.ws.pause();
  const n = 100;
  for (let i = 0; i < n; i++) hog.ws.send(encodeFrame({ v: WIRE_VERSION, id: 10_000 + i, fop: 'read', args: { fd, offset: 0, size }, cred: ROOT_FRAME }));
  // Long enough for the brick to serve all 100 reads from the page cache if nothing holds it back.
  let peakRss = 0;
  for (const until = Date.now() + 4000; Date.now() < until;) {
    peakRss = Math.max(peakRss, procMiB(pid, 'VmRSS'));
    // Another client of the brick is served meanwhile.
    const r = await other.call('lookup', { path: '/hello' });
    t.is(r.err, undefined);
    await sleep(50);
  }
  const peak = Math.max(peakRss, procMiB(pid, 'VmHWM'));
  t.log(`brick RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB (VmHWM) with ${n} unread 16 MiB replies; bound ${RSS_BOUND_MIB} MiB`);
  t.true(peak < RSS_BOUND_MIB, `brick peaked at ${peak.toFixed(0)} MiB`);
  // Backpressure, not loss: once the hog reads, the reads are answered with their bytes,
  // the first 16 of them (the rest would only be more of the same 1.6 GiB).
  hog.ws.resume();
  const seen = new Set<number>();
  for (let i = 0; i < 16; i++) {
    const r: ReplyFrame = await hog.next(30_000);
    t.is(r.err, undefined);
    t.true(r.id >= 10_000 && r.id < 10_000 + n && !seen.has(r.id));
    seen.add(r.id);
    const got = (r.ok as { data: Uint8Array }).data;
    t.is(got.length, size);
    const b = Buffer.from(got.buffer, got.byteOffset, got.length);
    t.true(b.readUInt32BE(8192) === 8192 && b.readUInt32BE(size - 4096) === size - 4096);
  }
  hog.close();
  t.is((await other.call('lookup', { path: '/hello' })).err, undefined);
});

test.serial('48 pipelined 16 MiB writes held by a freeze: the brick stops reading the connection instead of buffering them', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const pid = brick.proc!.pid!;
  fs.writeFileSync(path.join(brick.dir, 'f'), 'x');
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  const hog = await RawBrickClient.connect(brick.port, brick.dir);
  const mover = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { hog.close(); mover.close(); });
  const fd = ((await hog.call('open', { path: '/f', flags: 2 })).ok as { fd: number }).fd;
  t.is((await mover.call('migrate', { path: '/f', owner: 'm', op: 'freeze' })).err, undefined);
  const n = 48;
  const chunk = Buffer.alloc((16 << 20) - 1024, 1);
  for (let i = 0; i < n; i++) hog.ws.send(encodeFrame({ v: WIRE_VERSION, id: 500 + i, fop: 'write', args: { fd, offset: 0, data: chunk }, cred: ROOT_FRAME }));
  // Long enough for the brick to read all 768 MiB if nothing holds it back.
  for (const until = Date.now() + 4000; Date.now() < until;) {
    t.is((await mover.call('lookup', { path: '/hello' })).err, undefined);
    await sleep(100);
  }
  const peak = procMiB(pid, 'VmHWM');
  t.log(`brick peaked at ${peak.toFixed(0)} MiB with ${n} writes of 16 MiB held; bound ${RSS_BOUND_MIB} MiB`);
  t.true(peak < RSS_BOUND_MIB, `brick peaked at ${peak.toFixed(0)} MiB`);
  // Thawed, the writes go on (the first 8 answers: the rest would be more of the same).
  t.is((await mover.call('migrate', { path: '/f', owner: 'm', op: 'thaw' })).err, undefined);
  for (let i = 0; i < 8; i++) {
    const r = await hog.next(30_000);
    t.is(r.err, undefined);
    t.true(r.id >= 500 && r.id < 500 + n);
  }
  t.is(fs.statSync(path.join(brick.dir, 'f')).size, chunk.length);
  hog.close();
});

test('requests beyond server.outstanding-rpc-limit wait their turn; a release or an unlock is never held behind them', async (t) => {
  const vol = await startDistribute(t, 1, { set: { 'server.outstanding-rpc-limit': '4' } });
  const brick = vol.bricks[0]!;
  fs.writeFileSync(path.join(brick.dir, 'f'), 'x');
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  const mover = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { c.close(); mover.close(); });
  const fd = ((await c.call('open', { path: '/f', flags: 2 })).ok as { fd: number }).fd;
  t.is((await c.call('entrylk', { path: '/', name: 'n', owner: 'a', cmd: 'lock' })).err, undefined);
  t.is((await mover.call('migrate', { path: '/f', owner: 'm', op: 'freeze' })).err, undefined);
  // Six writes wait for the thaw: four of them run (held by the freeze), two are queued, and
  // a lookup after them waits too.
  for (let i = 0; i < 6; i++) c.ws.send(encodeFrame({ v: WIRE_VERSION, id: 100 + i, fop: 'write', args: { fd, offset: i, data: Buffer.from('y') }, cred: ROOT_FRAME }));
  c.ws.send(encodeFrame({ v: WIRE_VERSION, id: 200, fop: 'lookup', args: { path: '/hello' }, cred: ROOT_FRAME }));
  // An unlock goes past them.
  c.ws.send(encodeFrame({ v: WIRE_VERSION, id: 300, fop: 'entrylk', args: { path: '/', name: 'n', owner: 'a', cmd: 'unlock' }, cred: ROOT_FRAME }));
  const unlocked = await c.next(3000);
  t.is(unlocked.id, 300);
  t.is(unlocked.err, undefined);
  let arrived = 0;
  c.ws.on('message', () => arrived++);
  await sleep(500);
  t.is(arrived, 0, 'the lookup is queued behind the held writes');
  const dump = await brick.statedump();
  const server = Object.values(dump).find((x) => x.type === 'protocol/server') as unknown as { connections: Array<{ inflight: number; queued: number }> };
  t.true(server.connections.some((x) => x.inflight === 4 && x.queued === 3), JSON.stringify(server.connections));
  t.is((await mover.call('migrate', { path: '/f', owner: 'm', op: 'thaw' })).err, undefined);
  const ids = new Set<number>();
  for (let i = 0; i < 7; i++) {
    const r = await c.next(5000);
    t.is(r.err, undefined);
    ids.add(r.id);
  }
  t.deepEqual([...ids].sort((a, b) => a - b), [100, 101, 102, 103, 104, 105, 200]);
});

test.serial('a client that opens until refused gets EMFILE at its own cap; the brick raised its fd limit; another client still opens', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const pid = brick.proc!.pid!;
  // The brick runs with its soft fd limit at the hard limit (Node raises it at start).
  const limits = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))!;
  t.is(limits[1], limits[2], 'soft fd limit raised to the hard limit');
  // server.open-fd-limit's default, or half of the brick's fd limit when that is less.
  const cap = limits[1] === 'unlimited' ? 4096 : Math.min(4096, Math.floor(Number(limits[1]) / 2));
  fs.writeFileSync(path.join(brick.dir, 'f'), 'x');
  const hog = await RawBrickClient.connect(brick.port, brick.dir);
  const other = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { hog.close(); other.close(); });
  // Opens, pipelined a thousand at a time, until one is refused (or 25,000: more fds than the brick has).
  let opened = 0;
  let refused: ReplyFrame | undefined;
  let first: number | undefined;
  let id = 1;
  while (!refused && opened < 25_000) {
    for (let i = 0; i < 1000; i++) hog.ws.send(encodeFrame({ v: WIRE_VERSION, id: id++, fop: 'open', args: { path: '/f', flags: 0 }, cred: ROOT_FRAME }));
    for (let i = 0; i < 1000; i++) {
      const r = await hog.next(10_000);
      if (r.err) refused ??= r;
      else {
        opened++;
        first ??= (r.ok as { fd: number }).fd;
      }
    }
  }
  t.log(`the hog opened ${opened} fds before ${refused?.err?.code ?? 'no refusal'}`);
  t.is(refused?.err?.code, 'EMFILE');
  t.is(opened, cap, 'refused at server.open-fd-limit (default 4096)');
  // Another client is not refused.
  const r = await other.call('open', { path: '/f', flags: 0 });
  t.is(r.err, undefined, r.err?.message);
  t.is((await other.call('create', { path: '/g', mode: 0o644, flags: 0o101 })).err, undefined);
  // A release makes room for the hog again; a connection's end releases all it held.
  t.is((await hog.call('release', { fd: first! })).err, undefined);
  const again = await hog.call('open', { path: '/f', flags: 0 });
  t.is(again.err, undefined);
  const fdsOf = (): number => fs.readdirSync(`/proc/${pid}/fd`).length;
  const held = fdsOf();
  hog.close();
  await eventually(() => fdsOf() <= held - cap, 10_000, 'the hog\'s fds released');
});

test('a freeze lasts at most storage.freeze-timeout: the writes it held then go through, and the thaw is logged', async (t) => {
  const vol = await startDistribute(t, 1, { set: { 'storage.freeze-timeout': '2' } });
  const brick = vol.bricks[0]!;
  fs.writeFileSync(path.join(brick.dir, 'f'), 'x');
  const writer = await RawBrickClient.connect(brick.port, brick.dir);
  const freezer = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => { writer.close(); freezer.close(); });
  const fd = ((await writer.call('open', { path: '/f', flags: 2 })).ok as { fd: number }).fd;
  t.is((await freezer.call('migrate', { path: '/f', owner: 'm', op: 'watch' })).err, undefined);
  const frozenAt = Date.now();
  t.is((await freezer.call('migrate', { path: '/f', owner: 'm', op: 'freeze' })).err, undefined);
  const written = writer.call('write', { fd, offset: 0, data: Buffer.from('y') });
  let done = false;
  void written.then(() => { done = true; });
  await sleep(1000);
  t.false(done, 'the write waits while the file is frozen');
  // The freezer stays connected and says nothing: the freeze ends by itself.
  const r = await written;
  const waited = Date.now() - frozenAt;
  t.is(r.err, undefined);
  t.true(waited >= 1900 && waited < 6000, `the write waited ${waited} ms`);
  t.is(fs.readFileSync(path.join(brick.dir, 'f'), 'utf8'), 'y');
  await eventually(() => /thawed after 2 s/.test(fs.readFileSync(brick.log, 'utf8')), 5000, 'the thaw in the brick log');
  // The mover's freeze is gone: it may not commit the move, and a new freeze says the file changed.
  t.is((await freezer.call('migrate', { path: '/f', owner: 'm', op: 'commit' })).err?.code, 'EINVAL');
  const again = await freezer.call('migrate', { path: '/f', owner: 'm', op: 'freeze' });
  t.is((again.ok as { dirty: boolean }).dirty, true);
  t.is((await freezer.call('migrate', { path: '/f', owner: 'm', op: 'thaw' })).err, undefined);
  t.is(fs.existsSync(path.join(brick.dir, 'f')), true);
});
