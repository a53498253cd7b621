// A mounted client follows its volume's volfile: `volume set` makes a new volfile, the mount
// switches to a new graph without a remount, and files open across the switch keep working.
// Also: the bricks' private directory is invisible and untouchable through a mount; and the
// rules of the switch itself (client/graph-switch.ts) over stub graphs whose fops we hold.
import { ROOT_FRAME } from '../../lib/frame.js';
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pidAlive } from '../../brick/mgmt/bricks.js';
import { ActiveGraph, VolfileWatcher } from '../../client/graph-switch.js';
import { mountPidfile, runDir } from '../../client/mount-table.js';
import { FsError } from '../../lib/errors.js';
import { S_IFREG, type FopArgs, type FopReply } from '../../lib/fops.js';
import { Graph } from '../../lib/graph.js';
import { CtxKey, type Fd, InodeTable, ROOT_ID } from '../../lib/inode.js';
import { registerXlator } from '../../lib/registry.js';
import { Xlator } from '../../lib/xlator.js';
import { formatLogText } from '../../lib/log.js';
import { findStatedump } from '../../lib/statedump.js';
import { runCliOk } from '../helpers/cli.js';
import { isMountPoint, mountVolfile, startDistribute, unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cli, eventually, shOk, sleep, tmpDir } from '../helpers/proc.js';

/** The log of the mount process serving dir (written by `brickfs mount`). */
function mountLog(dir: string): string {
  return path.join(runDir(), 'mounts', `${path.resolve(dir).replace(/\//g, '_')}.log`);
}

function readLog(dir: string): string {
  try {
    return formatLogText(fs.readFileSync(mountLog(dir), 'utf8'));
  } catch {
    return '';
  }
}


interface Mounted {
  d: TestDaemon;
  vol: string;
  mnt: string;
  pid: number;
  bricks: string[];
}

/**
 * A daemon, a started 2-brick distribute volume and a CLI mount of it at info log level;
 * teardowns unmount, kill a mount process that lingers, stop the volume and kill the daemon.
 */
async function mountedVolume(t: ExecutionContext, vol: string): Promise<Mounted> {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-switch-');
  const bricks = ['b1', 'b2'].map((b) => path.join(root, b));
  t.teardown(() => d.cli(['volume', 'stop', vol]));
  await runCliOk(t, ['volume', 'create', vol, ...bricks.map((b) => `localhost:${b}`), '--force'], { server: d.server });
  await runCliOk(t, ['volume', 'start', vol], { server: d.server });
  const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
  fs.rmSync(mountLog(mnt), { force: true });
  let pid = 0;
  t.teardown(async () => {
    await unmountQuietly(mnt);
    if (pid && pidAlive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(mountLog(mnt), { force: true });
  });
  await runCliOk(t, ['mount', `${d.server}:/${vol}`, mnt, '-o', 'log-level=info']);
  pid = Number(fs.readFileSync(mountPidfile(mnt), 'utf8').trim());
  return { d, vol, mnt, pid, bricks };
}

/** The volume's current version, as the daemon serves it with the volfile. */
async function volumeVersion(m: Mounted): Promise<number> {
  const r = await m.d.http(`/v1/volumes/${m.vol}/volfile`);
  return Number(r.headers.get('x-brickfs-volume-version'));
}

/** `volume set` and wait until the mount says it switched to the new version's graph. */
async function setAndWaitSwitch(t: ExecutionContext, m: Mounted, key: string, value: string): Promise<number> {
  const before = await volumeVersion(m);
  await runCliOk(t, ['volume', 'set', m.vol, key, value], { server: m.d.server });
  const v = await volumeVersion(m);
  t.true(v > before, `volume set bumps the version (${before} -> ${v})`);
  await eventually(() => readLog(m.mnt).includes(`switched to volfile version ${v} (graph`), 20_000, `switch to version ${v}`);
  return v;
}

/** Unmounts with the CLI; the mount point is free and the mount process gone. */
async function umountAndCheck(t: ExecutionContext, m: Mounted): Promise<void> {
  const r = await cli(['umount', m.mnt]);
  t.is(r.code, 0, r.stderr);
  t.false(isMountPoint(m.mnt));
  await eventually(() => !pidAlive(m.pid), 10_000, 'mount process exit');
}

/** The mount never answered EIO (the bridge logs every EIO it returns). */
function noIoErrors(t: ExecutionContext, m: Mounted): void {
  const log = readLog(m.mnt);
  t.notRegex(log, /\[fuse\] EIO/, log);
}

test('volume set switches a mounted client to the new graph; open files keep working', async (t) => {
  const m = await mountedVolume(t, 'sw1');
  const v1 = await volumeVersion(m);
  t.regex(readLog(m.mnt), new RegExp(`serving volfile version ${v1} \\(graph 1\\)`));
  await fs.promises.mkdir(path.join(m.mnt, 'dir'));
  const readPath = path.join(m.mnt, 'dir', 'ro');
  const readContent = Buffer.from('0123456789'.repeat(1000));
  await fs.promises.writeFile(readPath, readContent);
  const writePath = path.join(m.mnt, 'dir', 'rw');
  const wh = await fs.promises.open(writePath, 'w');
  const rh = await fs.promises.open(readPath, 'r');
  t.teardown(() => wh.close().catch(() => undefined));
  t.teardown(() => rh.close().catch(() => undefined));
  await wh.write('before the switch\n');
  const first = Buffer.alloc(5000);
  t.is((await rh.read(first, 0, 5000, 0)).bytesRead, 5000);

  const v2 = await setAndWaitSwitch(t, m, 'performance.md-cache-timeout', '0');

  // The handles opened before the switch, on the new graph now.
  await wh.write('after the switch\n');
  await wh.sync();
  const rest = Buffer.alloc(5000);
  t.is((await rh.read(rest, 0, 5000, 5000)).bytesRead, 5000);
  t.deepEqual(Buffer.concat([first, rest]), readContent);
  t.is((await wh.stat()).size, 35);
  // New handles and path fops on the new graph.
  t.is(await fs.promises.readFile(writePath, 'utf8'), 'before the switch\nafter the switch\n');
  await fs.promises.writeFile(path.join(m.mnt, 'dir', 'new'), 'new file\n');
  t.deepEqual((await fs.promises.readdir(path.join(m.mnt, 'dir'))).sort(), ['new', 'ro', 'rw']);
  t.is(await fs.promises.readFile(path.join(m.mnt, 'dir', 'new'), 'utf8'), 'new file\n');
  // The open files moved in the background, so the old graph went away.
  await eventually(() => new RegExp(`graph 1 \\(volfile version ${v1}\\) released`).test(readLog(m.mnt)), 15_000, 'old graph released');
  t.true(v2 > v1);
  // The statedump (SIGUSR1, as glusterfs) shows the graph serving now and nothing left open on it.
  process.kill(m.pid, 'SIGUSR1');
  const dump = await eventually(() => findStatedump(fs.readFileSync(mountLog(m.mnt), 'utf8')), 5000, 'statedump');
  t.like(dump, { graph: 2, version: v2, handles: 2 });
  // The data reached the bricks as plain files.
  const onBrick = m.bricks.map((b) => path.join(b, 'dir', 'rw')).find((p) => fs.existsSync(p));
  t.is(onBrick && fs.readFileSync(onBrick, 'utf8'), 'before the switch\nafter the switch\n');

  await wh.close();
  await rh.close();
  noIoErrors(t, m);
  await umountAndCheck(t, m);
});

test('an appending writer loses no byte across three graph switches', async (t) => {
  const m = await mountedVolume(t, 'sw2');
  const file = path.join(m.mnt, 'log');
  const fh = await fs.promises.open(file, 'a');
  t.teardown(() => fh.close().catch(() => undefined));
  const chunk = (i: number): Buffer => Buffer.from(`record ${String(i).padStart(8, '0')} ${'x'.repeat(4000 + (i % 97))}\n`);
  let running = true;
  let written = 0;
  let bytes = 0;
  const writer = (async () => {
    for (let i = 0; running; i++) {
      const b = chunk(i);
      const r = await fh.write(b);
      if (r.bytesWritten !== b.length) throw new Error(`short write ${r.bytesWritten} of ${b.length} at record ${i}`);
      written = i + 1;
      bytes += b.length;
    }
  })();
  // A second writer that opens and closes for each record, so opens meet the switches too.
  const other = path.join(m.mnt, 'short-lived');
  let shortRunning = true;
  let shortWritten = 0;
  const shortWriter = (async () => {
    for (let i = 0; shortRunning; i++) {
      await fs.promises.appendFile(other, `${i}\n`);
      shortWritten = i + 1;
    }
  })();
  try {
    for (const value of ['0', '3', '2']) {
      await sleep(300);
      await setAndWaitSwitch(t, m, 'performance.md-cache-timeout', value);
    }
    await sleep(300);
  } finally {
    running = false;
    shortRunning = false;
    await Promise.allSettled([writer, shortWriter]);
  }
  await writer;
  await shortWriter;
  await fh.close();
  t.true(written > 10, `the writer wrote during the switches (${written} records)`);
  const expected = Buffer.concat(Array.from({ length: written }, (_, i) => chunk(i)));
  t.is(expected.length, bytes);
  const got = await fs.promises.readFile(file);
  t.is(got.length, expected.length);
  t.true(got.equals(expected), 'content is every record in order');
  t.is(await fs.promises.readFile(other, 'utf8'), Array.from({ length: shortWritten }, (_, i) => `${i}\n`).join(''));
  t.regex(readLog(m.mnt), /switched to volfile version \d+ \(graph 4\)/);
  noIoErrors(t, m);
  await umountAndCheck(t, m);
});

test('the bricks\' private directory is not reachable through a mount', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `mkdir ${mnt}/d && echo x > ${mnt}/d/f`);
  // What the rebalancer stages on a brick.
  fs.mkdirSync(path.join(vol.bricks[0]!.dir, '.brickfs', 'migrate'), { recursive: true });
  await t.throwsAsync(fs.promises.readdir(path.join(mnt, '.brickfs')), { code: 'ENOENT' });
  await t.throwsAsync(fs.promises.stat(path.join(mnt, '.brickfs', 'migrate')), { code: 'ENOENT' });
  await t.throwsAsync(fs.promises.mkdir(path.join(mnt, '.brickfs')), { code: 'EPERM' });
  await t.throwsAsync(fs.promises.writeFile(path.join(mnt, '.brickfs'), 'x'), { code: 'EPERM' });
  await t.throwsAsync(fs.promises.symlink('d', path.join(mnt, '.brickfs')), { code: 'EPERM' });
  await t.throwsAsync(fs.promises.rename(path.join(mnt, 'd'), path.join(mnt, '.brickfs')), { code: 'EPERM' });
  t.false((await fs.promises.readdir(mnt)).includes('.brickfs'));
  // Only the top level is reserved.
  await fs.promises.mkdir(path.join(mnt, 'd', '.brickfs'));
  t.deepEqual((await fs.promises.readdir(path.join(mnt, 'd'))).sort(), ['.brickfs', 'f']);
  const ls = await cli(['umount', mnt]);
  t.is(ls.code, 0, ls.stderr);
});

/**
 * A one-translator graph that records its fops and can hold them until released. Each fd it
 * opens gets a number of this graph's own, in the fd's ctx, as a translator keeps its state.
 */
class StubTop extends Xlator {
  readonly seen: string[] = [];
  /** Every fd it has seen opened (open, release), to check who opened what. */
  readonly opened: Fd[] = [];
  held?: Promise<void>;
  finished = false;
  private nextFd = 1;
  private readonly fdKey = new CtxKey<number>(this.name);

  private async step(what: string): Promise<void> {
    this.seen.push(what);
    await this.held;
  }

  async open(a: FopArgs<'open'>): Promise<FopReply<'open'>> {
    await this.step(`open ${a.path} ${a.flags}`);
    a.fd.ctx.set(this.fdKey, this.nextFd++);
    this.opened.push(a.fd);
    return {};
  }

  async create(a: FopArgs<'create'>): Promise<FopReply<'create'>> {
    await this.open({ path: a.path, flags: a.flags, fd: a.fd });
    return { iatt: {} as FopReply<'create'>['iatt'] };
  }

  async write(a: FopArgs<'write'>): Promise<FopReply<'write'>> {
    const n = a.fd.ctx.get(this.fdKey);
    if (n === undefined) throw FsError.of('EBADF');
    await this.step(`write ${n} ${a.data.toString()}`);
    return { size: a.data.length };
  }

  async release(a: FopArgs<'release'>): Promise<FopReply<'release'>> {
    const n = a.fd.ctx.take(this.fdKey);
    if (n === undefined) throw FsError.of('EBADF');
    this.seen.push(`release ${n}`);
    return {};
  }

  override async fini(): Promise<void> {
    this.finished = true;
  }
}

function stubGraph(name: string, inodes: InodeTable): { graph: Graph; top: StubTop } {
  const top = new (StubTop as unknown as new (i: ConstructorParameters<typeof Xlator>[0]) => StubTop)({ name, type: 'test/stub', options: {}, children: [], inodes });
  return { graph: new Graph(top, new Map([[name, top]]), inodes), top };
}

test('switch rules: running fops finish on the old graph, handles move, the old graph goes', async (t) => {
  const inodes = new InodeTable();
  const a = stubGraph('a', inodes);
  const b = stubGraph('b', inodes);
  const graphs = new ActiveGraph(a.graph, 1, { retireCheckMs: 10, remigrateMs: 50 });
  t.teardown(() => graphs.fini());
  const { O_RDWR, O_WRONLY, O_APPEND, O_TRUNC } = fs.constants;
  const f = inodes.entry(ROOT_ID, 'f', S_IFREG);
  const c = inodes.entry(ROOT_ID, 'c', S_IFREG);
  const gNode = inodes.entry(ROOT_ID, 'g', S_IFREG);
  const fh = await graphs.open(f, O_WRONLY | O_APPEND | O_TRUNC, ROOT_FRAME);
  const created = await graphs.create(c, 0o644, O_RDWR, ROOT_FRAME);
  t.is(graphs.handleOn(f), fh);
  t.is(graphs.inodeOf(created.fh), c);
  // A write and an open are running on graph a when the switch happens, and the file was
  // renamed since it was opened: its inode has the new name.
  let release!: () => void;
  a.top.held = new Promise((r) => { release = r; });
  const running = graphs.fdCall(fh, 'write', { offset: 0, data: Buffer.from('w1') }, ROOT_FRAME);
  const opening = graphs.open(gNode, O_RDWR, ROOT_FRAME);
  inodes.move(ROOT_ID, 'f', ROOT_ID, 'f-renamed');
  await sleep(10);
  graphs.switchTo(b.graph, 2);
  t.is(graphs.graphId, 2);
  // The handle moves (in the background, and a new op on it waits for that): a new fd on the
  // same inode, opened in b at the new name without O_TRUNC; the old fd is released once the
  // write still running on it is done, then the new write runs in b.
  const moved = graphs.fdCall(fh, 'write', { offset: 2, data: Buffer.from('w2') }, ROOT_FRAME);
  await eventually(() => b.top.seen.includes(`open /f-renamed ${O_WRONLY | O_APPEND}`), 2000, 'reopen in graph b');
  await sleep(20);
  t.false(a.top.seen.includes('release 1'));
  t.false(b.top.seen.some((s) => s.startsWith('write')));
  release();
  await running;
  await moved;
  const inA = a.top.seen;
  t.true(inA.indexOf('write 1 w1') >= 0 && inA.indexOf('write 1 w1') < inA.indexOf('release 1'), inA.join(', '));
  t.true(b.top.seen.includes('write 1 w2'));
  const [fdA] = a.top.opened;
  const [fdB] = b.top.opened;
  t.not(fdA, fdB, 'each graph has an fd of its own');
  t.is(fdA!.inode, f);
  t.is(fdB!.inode, f, 'on the same inode');
  t.is(fdB!.flags, O_WRONLY | O_APPEND);
  t.false(f.fds.has(fdA!), 'the old fd left the inode with its release');
  t.true(f.fds.has(fdB!));
  const g = await opening;
  await eventually(() => a.top.finished, 5000, 'graph a torn down once nothing uses it');
  t.deepEqual(a.top.seen.filter((s) => s.startsWith('release')).sort(), ['release 1', 'release 2', 'release 3']);
  // The open that spanned the switch and the created file (remembered as O_RDWR) moved too.
  t.true(b.top.seen.includes(`open /g ${O_RDWR}`));
  t.true(b.top.seen.includes(`open /c ${O_RDWR}`));
  await graphs.fdCall(g, 'write', { offset: 0, data: Buffer.from('g') }, ROOT_FRAME);
  await graphs.release(g, ROOT_FRAME);
  await graphs.release(created.fh, ROOT_FRAME);
  await graphs.release(fh, ROOT_FRAME);
  t.deepEqual(b.top.seen.filter((s) => s.startsWith('release')).length, 3);
  for (const x of [f, c, gNode]) t.is(x.fds.size, 0, `${x.path}: no fd left on it`);
  t.is(graphs.handleOn(f), undefined);
  await t.throwsAsync(graphs.fdCall(fh, 'write', { offset: 0, data: Buffer.from('x') }, ROOT_FRAME), { code: 'EBADF' });
});

test('a switch to a graph built on another inode table is refused', (t) => {
  const graphs = new ActiveGraph(stubGraph('a', new InodeTable()).graph, 1);
  t.teardown(() => graphs.fini());
  const other = stubGraph('b', new InodeTable());
  t.throws(() => graphs.switchTo(other.graph, 2), { message: /inode table/ });
  t.is(graphs.graphId, 1);
});

/**
 * The daemon's volfile route in miniature: long poll, 404 on demand, every request noted;
 * its health route too, and a hung host (nothing answered, connections kept open).
 */
class FakeVolfileServer {
  version = 1;
  text = '';
  missing = false;
  hung = false;
  readonly polls: string[] = [];
  private readonly waiting = new Set<() => void>();
  private readonly server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (this.hung) return;
    if (url.pathname === '/v1/health') return void res.writeHead(200).end('{}');
    const since = Number(url.searchParams.get('newer-than'));
    this.polls.push(this.missing ? '404' : `newer-than=${since}`);
    const answer = (): void => {
      if (this.missing) res.writeHead(404).end('{"error":"no such volume"}');
      else if (this.version > since) res.writeHead(200, { 'x-brickfs-volume-version': String(this.version) }).end(this.text);
      else return void this.waiting.add(answer);
      this.waiting.delete(answer);
    };
    answer();
  });

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  publish(text: string): void {
    this.version++;
    this.text = text;
    for (const w of [...this.waiting]) w();
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

test('the watcher skips a volfile that fails and an unchanged one, survives a 404, switches on the next good one', async (t) => {
  registerXlator('test/stub', StubTop as unknown as Parameters<typeof registerXlator>[1]);
  const volfile = (comment: string): string => `# ${comment}\nvolume top\n    type test/stub\nend-volume\n`;
  const fake = new FakeVolfileServer();
  const port = await fake.listen();
  t.teardown(() => fake.close());
  const first = stubGraph('top', new InodeTable());
  const graphs = new ActiveGraph(first.graph, 1, { retireCheckMs: 10 });
  t.teardown(() => graphs.fini());
  const watcher = new VolfileWatcher({ servers: [{ host: '127.0.0.1', port }], volume: 'v', version: 1 }, graphs, volfile('one'), { readyTimeoutMs: 100 });
  watcher.start();
  t.teardown(() => watcher.stop());
  await eventually(() => fake.polls.includes('newer-than=1'), 5000, 'first poll');
  fake.publish('volume top\n    type nosuch/type\nend-volume\n');
  await eventually(() => fake.polls.includes('newer-than=2'), 5000, 'poll after the bad volfile');
  t.is(graphs.graphId, 1);
  fake.publish(volfile('one'));
  await eventually(() => fake.polls.includes('newer-than=3'), 5000, 'poll after the unchanged volfile');
  t.is(graphs.graphId, 1);
  fake.missing = true;
  fake.publish(volfile('one'));
  await eventually(() => fake.polls.filter((p) => p === '404').length >= 2, 5000, 'polls go on after a 404');
  t.is(graphs.graphId, 1);
  fake.missing = false;
  fake.publish(volfile('two'));
  await eventually(() => graphs.graphId === 2, 10_000, 'switch to the next good volfile');
  t.is(graphs.version, 5);
  await eventually(() => first.top.finished, 5000, 'first graph torn down');
});

test('the watcher moves to the next volfile server when its server hangs or is gone, stays there, and goes round the list', async (t) => {
  registerXlator('test/stub', StubTop as unknown as Parameters<typeof registerXlator>[1]);
  const volfile = (comment: string): string => `# ${comment}\nvolume top\n    type test/stub\nend-volume\n`;
  const a = new FakeVolfileServer();
  const b = new FakeVolfileServer();
  const [pa, pb] = [await a.listen(), await b.listen()];
  t.teardown(() => a.close());
  t.teardown(() => b.close());
  const graphs = new ActiveGraph(stubGraph('top', new InodeTable()).graph, 1, { retireCheckMs: 10 });
  t.teardown(() => graphs.fini());
  const servers = [{ host: '127.0.0.1', port: pa }, { host: '127.0.0.1', port: pb }];
  const watcher = new VolfileWatcher({ servers, volume: 'v', version: 1 }, graphs, volfile('one'), { readyTimeoutMs: 100, healthEveryMs: 300, healthTimeoutMs: 3000 });
  watcher.start();
  t.teardown(() => watcher.stop());
  await eventually(() => a.polls.includes('newer-than=1'), 5000, 'first poll on the first server');
  t.is(watcher.server.port, pa);

  // A host that stops answering without closing its connections: its health checks time out.
  a.hung = true;
  const started = Date.now();
  await eventually(() => b.polls.includes('newer-than=1'), 10_000, 'poll moved to the second server');
  t.true(Date.now() - started < 8000, `moved after ${Date.now() - started} ms`);
  t.is(watcher.server.port, pb);
  b.publish(volfile('two'));
  await eventually(() => graphs.graphId === 2, 5000, 'switch to the volfile of the second server');
  t.is(graphs.version, 2);

  // The first server back: the watcher stays where it is.
  a.hung = false;
  const aPolls = a.polls.length;
  await eventually(() => b.polls.includes('newer-than=2'), 5000, 'next poll on the second server');
  await sleep(500);
  t.is(a.polls.length, aPolls, 'no poll goes back to the first server while the second serves');
  t.is(watcher.server.port, pb);

  // The second one gone (connection refused): round to the first, where the version goes on.
  a.version = 2;
  a.text = volfile('two');
  b.close();
  await eventually(() => a.polls.includes('newer-than=2'), 5000, 'poll back on the first server');
  a.publish(volfile('three'));
  await eventually(() => graphs.graphId === 3, 5000, 'switch to the volfile of the first server');
  t.is(graphs.version, 3);
});
