// A write, a truncate or a chown by someone other than root clears setuid (and setgid where
// it marks a program) as the kernel's file_remove_privs does on a local disk, also for a
// client that talks to the brick directly and skips the kernel (which a FUSE mount does not).
// Every expectation is what ext4 does for the same operation by the same user (setpriv).
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Frame } from '../../lib/frame.js';
import { startDistribute } from '../helpers/cluster.js';
import { makeScratch, USERS } from '../helpers/posix.js';
import { RawBrickClient } from '../helpers/wire.js';

type Op = 'write' | 'writev' | 'ftruncate' | 'truncate' | 'chgrp';
type Who = 'root' | 'u4242';

interface Case {
  owner: [number, number];
  mode: number;
  who: Who;
  op: Op;
}

/** The callers as the brick gets them (u4242 is in groups 4242 and 4343, as USERS.u4242). */
const FRAMES: Record<Who, Frame> = {
  root: { uid: 0, gid: 0, groups: [], pid: 5001 },
  u4242: { uid: 4242, gid: 4242, groups: [4242, 4343], pid: 5002 },
};

const files: Array<Pick<Case, 'owner' | 'mode'>> = [
  { owner: [4242, 4242], mode: 0o6755 }, // the writer's own setuid+setgid program
  { owner: [0, 0], mode: 0o4777 }, // a world-writable setuid-root program
  { owner: [0, 4343], mode: 0o2775 }, // setgid program of a group the writer is in
  { owner: [0, 4343], mode: 0o2666 }, // setgid without group exec (a locking mark), writer in its group
  { owner: [0, 5555], mode: 0o2666 }, // the same, writer not in its group
];
const cases: Case[] = [];
for (const f of files) {
  for (const op of ['write', 'writev', 'ftruncate', 'truncate'] as const) cases.push({ ...f, who: 'u4242', op });
  cases.push({ ...f, who: 'root', op: 'write' });
}
cases.push({ owner: [4242, 4242], mode: 0o6755, who: 'u4242', op: 'chgrp' });

const LOCAL_OP = String.raw`import errno, os, sys
op, p = sys.argv[1], sys.argv[2]
try:
    if op in ('write', 'writev'):
        fd = os.open(p, os.O_WRONLY); os.pwrite(fd, b'x', 0); os.close(fd)
    elif op == 'ftruncate':
        fd = os.open(p, os.O_WRONLY); os.ftruncate(fd, 1); os.close(fd)
    elif op == 'truncate': os.truncate(p, 1)
    elif op == 'chgrp': os.chown(p, -1, 4343)
except OSError as e:
    print(errno.errorcode[e.errno]); sys.exit(1)
`;

/** The same operation on ext4, as the user: its errno name, or '' when it succeeded. */
function onExt4(script: string, c: Case, file: string): Promise<string> {
  const [cmd, args] = c.who === 'root' ? ['/usr/bin/python3', [script, c.op, file]] : ['setpriv', [...USERS[c.who], '--', '/usr/bin/python3', script, c.op, file]];
  return new Promise((resolve) => execFile(cmd, args, (err, stdout, stderr) => resolve(err ? (stdout.trim() || stderr.trim() || 'failed') : '')));
}

/** The same operation sent to the brick by a client that skips the kernel. */
async function onBrick(conn: RawBrickClient, c: Case, volPath: string): Promise<string> {
  const cred = FRAMES[c.who];
  const err = (r: { err?: { code: string } }): string => r.err?.code ?? '';
  if (c.op === 'truncate') return err(await conn.call('setattr', { path: volPath, attrs: { size: 1 } }, cred));
  if (c.op === 'chgrp') return err(await conn.call('setattr', { path: volPath, attrs: { gid: 4343 } }, cred));
  const opened = await conn.call('open', { path: volPath, flags: fs.constants.O_WRONLY }, cred);
  if (opened.err) return opened.err.code;
  const fd = (opened.ok as { fd: number }).fd;
  const data = Buffer.from('x');
  const r = c.op === 'write' ? await conn.call('write', { fd, offset: 0, data }, cred)
    : c.op === 'writev' ? await conn.call('writev', { fd, extents: [{ offset: 0, data }] }, cred)
      : await conn.call('ftruncate', { fd, size: 1 }, cred);
  await conn.call('release', { fd }, cred);
  return err(r);
}

function make(file: string, c: Case): void {
  fs.writeFileSync(file, '#!/bin/sh\necho hi\n');
  fs.chownSync(file, ...c.owner);
  fs.chmodSync(file, c.mode);
}

test('setuid and setgid are cleared by writes, truncates and chowns through the wire exactly as ext4 clears them', async (t) => {
  const scratch = makeScratch(t);
  const script = path.join(path.dirname(scratch.ext4), 'op.py');
  fs.writeFileSync(script, LOCAL_OP, { mode: 0o644 });
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const conn = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => conn.close());
  const want: string[] = [];
  const got: string[] = [];
  for (const [i, c] of cases.entries()) {
    const name = `f${i}`;
    const label = `${c.who} ${c.op} on ${c.mode.toString(8)} ${c.owner.join(':')}`;
    const local = path.join(scratch.ext4, name);
    const remote = path.join(brick.dir, name);
    make(local, c);
    make(remote, c);
    const e1 = await onExt4(script, c, local);
    const e2 = await onBrick(conn, c, `/${name}`);
    want.push(`${label} -> ${e1 || 'ok'} ${(fs.statSync(local).mode & 0o7777).toString(8)}`);
    got.push(`${label} -> ${e2 || 'ok'} ${(fs.statSync(remote).mode & 0o7777).toString(8)}`);
  }
  t.deepEqual(got, want);
  // The attack of the issue: no setuid-root program stays setuid after a user rewrote it.
  t.true(want.some((l) => /^u4242 write on 4777 0:0 -> ok 777$/.test(l)), want.join('\n'));
});
