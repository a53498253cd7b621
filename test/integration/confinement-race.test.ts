// The escape race of issue 24, item 1, against a real brick process over a real socket: a
// file frozen by the migrate fop holds the path fops that change it; while they wait, the
// hostile client swaps their parent directory for a symlink to a directory outside the
// brick (a temp directory standing in for /etc), then thaws. Every queued fop must fail or
// act inside the brick: storage/posix resolves the parent beneath the brick root, without
// following symlinks, when it acts (after the wait), never the path string it checked when
// the request arrived. A second test swaps the parent back and forth on the brick's own disk
// while a client keeps changing names under it.
import { ROOT_FRAME } from '../../lib/frame.js';
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { decodeServerFrame, encodeFrame, WIRE_VERSION, type ReplyFrame } from '../../lib/rpc/frame.js';
import { startDistribute } from '../helpers/cluster.js';
import { sleep, tmpDir } from '../helpers/proc.js';
import { RawBrickClient } from '../helpers/wire.js';

const { O_WRONLY, O_TRUNC, O_CREAT, O_EXCL } = fs.constants;

/** Pipelined requests on one connection, their replies collected by id (call() expects them in order). */
class Pipeline {
  private nextId = 10_000;
  private readonly got = new Map<number, ReplyFrame>();
  private wake?: () => void;
  constructor(readonly c: RawBrickClient) {
    c.ws.on('message', (d: Buffer) => {
      const r = decodeServerFrame(d);
      if (r === undefined || 'push' in r) return;
      this.got.set(r.id, r);
      this.wake?.();
    });
  }

  send(fop: string, args: Record<string, unknown>): number {
    const id = this.nextId++;
    this.c.ws.send(encodeFrame({ v: WIRE_VERSION, id, fop, args, cred: ROOT_FRAME }));
    return id;
  }

  /** How many of these requests were answered within ms (none, while the fops are held). */
  async answeredWithin(ids: number[], ms: number): Promise<number> {
    await sleep(ms);
    return ids.filter((id) => this.got.has(id)).length;
  }

  async reply(id: number, timeoutMs = 10_000): Promise<ReplyFrame> {
    const until = Date.now() + timeoutMs;
    while (!this.got.has(id)) {
      if (Date.now() > until) throw new Error(`no reply to request ${id}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
    return this.got.get(id)!;
  }
}

interface Snapshot { names: string[]; files: Record<string, { mode: number; uid: number; gid: number; data: string }> }

/** What the outside directory holds: names, and each file's mode, owner and content. */
function snapshot(dir: string): Snapshot {
  const names = fs.readdirSync(dir).sort();
  const files: Snapshot['files'] = {};
  for (const n of names) {
    const st = fs.lstatSync(path.join(dir, n));
    files[n] = { mode: st.mode, uid: st.uid, gid: st.gid, data: st.isFile() ? fs.readFileSync(path.join(dir, n), 'utf8') : '' };
  }
  return { names, files };
}

const VICTIMS = ['f-setattr', 'f-create', 'f-rename', 'f-unlink', 'f-xattr'] as const;

/** An outside directory ("/etc") holding files of the victims' names, root's, mode 0644. */
function outsideDir(t: ExecutionContext): string {
  const outside = tmpDir(t, 'brickfs-outside-');
  for (const n of VICTIMS) fs.writeFileSync(path.join(outside, n), `outside ${n}\n`, { mode: 0o644 });
  fs.writeFileSync(path.join(outside, 'passwd'), 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
  return outside;
}

test('path fops held by a freeze act inside the brick after their parent is swapped for a symlink out', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const outside = outsideDir(t);
  const before = snapshot(outside);
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const q = new Pipeline(await RawBrickClient.connect(brick.port, brick.dir));
  t.teardown(() => q.c.close());

  // Inside the brick: /d with one file per queued fop, each watched and frozen (a mover's).
  t.is((await c.call('mkdir', { path: '/d', mode: 0o755 })).err, undefined);
  for (const n of VICTIMS) {
    const r = await c.call('create', { path: `/d/${n}`, mode: 0o644, flags: O_WRONLY });
    t.is(r.err, undefined, n);
    const { fd } = r.ok as { fd: number };
    await c.call('write', { fd, offset: 0, data: Buffer.from(`inside ${n}\n`) });
    await c.call('release', { fd });
    t.is((await c.call('migrate', { path: `/d/${n}`, owner: 'mover', op: 'watch' })).err, undefined, n);
    t.is((await c.call('migrate', { path: `/d/${n}`, owner: 'mover', op: 'freeze' })).err, undefined, n);
  }

  // Queued behind the freezes: each changes a frozen file by path.
  const ids = {
    setattr: q.send('setattr', { path: '/d/f-setattr', attrs: { mode: 0o4777, uid: 4242, gid: 4242 } }),
    // Not exclusive, with O_TRUNC: the name exists, so this is an open that truncates, held by the freeze.
    create: q.send('create', { path: '/d/f-create', mode: 0o644, flags: O_WRONLY | O_TRUNC }),
    rename: q.send('rename', { from: '/d/f-rename', to: '/d/passwd' }),
    unlink: q.send('unlink', { path: '/d/f-unlink' }),
    setxattr: q.send('setxattr', { path: '/d/f-xattr', name: 'user.pwned', value: Buffer.from('1'), flags: 0 }),
  };
  t.is(await q.answeredWithin(Object.values(ids), 300), 0, 'the fops wait for the thaw');

  // The swap, by the same hostile client over the wire: /d goes aside, a symlink to "/etc" takes its name.
  t.is((await c.call('rename', { from: '/d', to: '/d-aside' })).err, undefined);
  t.is((await c.call('symlink', { path: '/d', target: outside })).err, undefined);
  t.is(fs.readlinkSync(path.join(brick.dir, 'd')), outside);
  t.is(await q.answeredWithin(Object.values(ids), 100), 0, 'still held');

  for (const n of VICTIMS) t.is((await c.call('migrate', { path: `/d-aside/${n}`, owner: 'mover', op: 'thaw' })).err, undefined, n);
  const replies: Record<string, string> = {};
  for (const [fop, id] of Object.entries(ids)) {
    const r = await q.reply(id);
    replies[fop] = r.err ? r.err.code : 'ok';
    if (fop === 'create' && r.ok) await q.reply(q.send('release', { fd: (r.ok as { fd: number }).fd }));
  }
  t.log('queued fops answered', replies);

  // Nothing outside changed: no mode, owner, content, name or xattr.
  t.deepEqual(snapshot(outside), before);
  const x = await import('@napi-rs/xattr');
  t.deepEqual(x.listAttributesSync(path.join(outside, 'f-xattr')).filter((n) => n.startsWith('user.')), []);
  // Each fop was refused (its parent is now a symlink: EPERM), none acted through the link.
  for (const [fop, code] of Object.entries(replies)) t.is(code, 'EPERM', fop);
  // The brick's own files are where they were, untouched.
  for (const n of VICTIMS) t.is(fs.readFileSync(path.join(brick.dir, 'd-aside', n), 'utf8'), `inside ${n}\n`);
  t.is(fs.statSync(path.join(brick.dir, 'd-aside', 'f-setattr')).mode & 0o7777, 0o644);
  // And the brick still serves.
  t.is((await c.call('lookup', { path: '/d-aside/f-rename' })).err, undefined);
});

test('a parent swapped for a symlink out on the brick\'s disk, again and again, never lets a change through', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const outside = outsideDir(t);
  const before = snapshot(outside);
  const q = new Pipeline(await RawBrickClient.connect(brick.port, brick.dir));
  t.teardown(() => q.c.close());
  const d = path.join(brick.dir, 'd');
  fs.mkdirSync(d);
  for (const n of VICTIMS) fs.writeFileSync(path.join(d, n), `inside ${n}\n`, { mode: 0o644 });

  // A swapper on the brick's disk: /d is a directory, then a symlink to "/etc", and back.
  let swaps = 0;
  let stop = false;
  const swapper = (async () => {
    while (!stop) {
      fs.renameSync(d, d + '.real');
      fs.symlinkSync(outside, d);
      await sleep(0);
      fs.unlinkSync(d);
      fs.renameSync(d + '.real', d);
      swaps++;
      await sleep(0);
    }
  })();
  const flags = O_WRONLY | O_CREAT | O_EXCL;
  for (let round = 0; round < 200; round++) {
    const sent = [
      q.send('setattr', { path: '/d/f-setattr', attrs: { mode: 0o4777, uid: 4242, gid: 4242 } }),
      q.send('create', { path: '/d/f-create', mode: 0o644, flags: O_WRONLY | O_TRUNC }),
      q.send('create', { path: `/d/new-${round}`, mode: 0o4755, flags }),
      q.send('rename', { from: '/d/f-rename', to: '/d/passwd' }),
      q.send('rename', { from: '/d/passwd', to: '/d/f-rename' }),
      q.send('unlink', { path: '/d/f-unlink' }),
      q.send('setxattr', { path: '/d/f-xattr', name: 'user.pwned', value: Buffer.from('1'), flags: 0 }),
      q.send('mkdir', { path: `/d/dir-${round}`, mode: 0o777 }),
      q.send('symlink', { path: `/d/link-${round}`, target: '/etc/shadow' }),
      q.send('mknod', { path: `/d/node-${round}`, mode: 0o10644, rdev: 0 }),
    ];
    const fds: number[] = [];
    for (const id of sent) {
      const r = await q.reply(id);
      const fd = (r.ok as { fd?: number } | undefined)?.fd;
      if (fd !== undefined) fds.push(fd);
    }
    for (const fd of fds) await q.reply(q.send('release', { fd }));
    if (round % 20 === 0) await sleep(1);
  }
  stop = true;
  await swapper;
  t.log(`${swaps} swaps`);
  t.true(swaps > 0);
  t.deepEqual(snapshot(outside), before);
  const x = await import('@napi-rs/xattr');
  t.deepEqual(x.listAttributesSync(path.join(outside, 'f-xattr')).filter((n) => n.startsWith('user.')), []);
});
