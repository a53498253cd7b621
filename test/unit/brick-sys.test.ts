// native/brick-sys through brick/xlators/storage/sys.ts. Runs as root (mknod of devices,
// fchownat, the caller's credentials), as the machine and CI do. Expectations come from the system where
// there is one: nodes made by mknod(1)/mkfifo(1) and a socket made by Node's net server.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FsError } from '../../lib/errors.js';
import type { Iatt } from '../../lib/fops.js';
import { asCaller } from '../../brick/xlators/storage/credentials.js';
import * as sys from '../../brick/xlators/storage/sys.js';

const { S_IFMT, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG, S_IFLNK, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/** A fresh temporary directory, removed after the test. */
function tmpDir(t: ExecutionContext, tag = 'brick-sys-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), tag));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A directory fd (O_PATH when asked), closed after the test. */
function dirFd(t: ExecutionContext, dir: string, oPath = false): number {
  const fd = oPath
    ? sys.openat2(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY)
    : fs.openSync(dir, O_RDONLY | sys.O_DIRECTORY);
  t.teardown(() => fs.closeSync(fd));
  return fd;
}

interface SysErr extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

/** Asserts fn throws a system error with one of codes (and its negative errno); returns it. */
function throwsCode(t: ExecutionContext, fn: () => unknown, codes: string | string[], syscall?: string): SysErr | undefined {
  const want = Array.isArray(codes) ? codes : [codes];
  const e = t.throws(fn) as SysErr | undefined;
  if (!e) return undefined;
  t.true(want.includes(e.code), `code ${e.code}, wanted ${want.join(' or ')}: ${e.message}`);
  t.is(e.errno, -(os.constants.errno as Record<string, number>)[e.code]!, `errno of ${e.code}`);
  if (syscall) t.is(e.syscall, syscall);
  return e;
}

const typeOf = (mode: number): number => mode & S_IFMT;

test('mknodat/mknod make fifos, sockets, char and block devices as mknod(1), mkfifo(1) and a socket server do', async (t) => {
  const ours = tmpDir(t);
  const theirs = tmpDir(t);
  const fd = dirFd(t, ours);
  const perms = 0o644 & ~process.umask();

  // [name, mode type, major, minor]; 259:300000 needs glibc's wide encoding (minor >= 256, major >= 256).
  const devs: Array<[string, number, number, number]> = [
    ['null', S_IFCHR, 1, 3],
    ['loop', S_IFBLK, 7, 0],
    ['wide', S_IFBLK, 259, 300000],
  ];
  for (const [name, type, ma, mi] of devs) {
    sys.mknodat(fd, name, type | 0o644, sys.makedev(ma, mi));
    execFileSync('mknod', ['-m', '644', path.join(theirs, name), type === S_IFCHR ? 'c' : 'b', String(ma), String(mi)]);
  }
  sys.mknodat(fd, 'fifo', S_IFIFO | 0o644, 0);
  execFileSync('mkfifo', ['-m', '644', path.join(theirs, 'fifo')]);
  sys.mknod(path.join(ours, 'fifo2'), S_IFIFO | 0o644, 0);
  sys.mknodat(fd, 'sock', S_IFSOCK | 0o644, 0);
  sys.mknodat(fd, 'reg', S_IFREG | 0o644, 0);
  fs.writeFileSync(path.join(theirs, 'reg'), '');

  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path.join(theirs, 'sock'), resolve);
  });
  const theirSock = fs.lstatSync(path.join(theirs, 'sock'));
  await new Promise<void>((resolve) => server.close(() => resolve()));

  const compare = (name: string, other: fs.Stats) => {
    const a = fs.lstatSync(path.join(ours, name));
    t.is(typeOf(a.mode), typeOf(other.mode), `${name}: type`);
    t.is(a.rdev, other.rdev, `${name}: rdev`);
    t.is(a.mode & 0o7777, perms, `${name}: permissions`);
    return a;
  };
  for (const name of ['null', 'loop', 'wide', 'fifo', 'reg']) compare(name, fs.lstatSync(path.join(theirs, name)));
  compare('fifo2', fs.lstatSync(path.join(theirs, 'fifo')));
  t.true(compare('sock', theirSock).isSocket());
  t.true(fs.lstatSync(path.join(ours, 'null')).isCharacterDevice());
  t.true(fs.lstatSync(path.join(ours, 'wide')).isBlockDevice());
  t.true(fs.lstatSync(path.join(ours, 'fifo')).isFIFO());

  // major/minor as stat(1) reads them (hex %t/%T), and makedev against the real /dev/null.
  for (const [name, , ma, mi] of devs) {
    const [tHex, THex] = execFileSync('stat', ['-c', '%t %T', path.join(theirs, name)], { encoding: 'utf8' }).trim().split(' ');
    const rdev = fs.lstatSync(path.join(theirs, name)).rdev;
    t.is(sys.major(rdev), parseInt(tHex!, 16), `${name}: major`);
    t.is(sys.minor(rdev), parseInt(THex!, 16), `${name}: minor`);
    t.is(sys.major(rdev), ma);
    t.is(sys.minor(rdev), mi);
  }
  const devNull = fs.lstatSync('/dev/null');
  if (devNull.isCharacterDevice()) t.is(sys.makedev(1, 3), devNull.rdev);

  throwsCode(t, () => sys.mknodat(fd, 'fifo', S_IFIFO | 0o644, 0), 'EEXIST', 'mknodat');
  throwsCode(t, () => sys.mknod(path.join(ours, 'fifo'), S_IFIFO | 0o644, 0), 'EEXIST', 'mknod');
  throwsCode(t, () => sys.mknod(path.join(ours, 'missing', 'x'), S_IFIFO | 0o644, 0), 'ENOENT', 'mknod');
});

test('openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS refuses symlinks and escapes, opens what is beneath', (t) => {
  if (!sys.hasOpenat2) {
    t.log(`no openat2 on this kernel (${os.release()}): it must say so`);
    throwsCode(t, () => sys.openat2(sys.AT_FDCWD, '/', sys.O_PATH), ['ENOSYS', 'EPERM'], 'openat2');
    return;
  }
  const root = tmpDir(t);
  fs.mkdirSync(path.join(root, 'sub'));
  fs.writeFileSync(path.join(root, 'sub', 'file'), 'hello');
  fs.symlinkSync('/etc', path.join(root, 'etc'));
  fs.symlinkSync('sub', path.join(root, 'inner'));
  fs.symlinkSync('sub/file', path.join(root, 'flink'));
  const rootFd = dirFd(t, root);
  const strict = sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS;

  throwsCode(t, () => sys.openat2(rootFd, 'etc/passwd', O_RDONLY, 0, strict), ['ELOOP', 'EXDEV'], 'openat2');
  throwsCode(t, () => sys.openat2(rootFd, 'etc/passwd', O_RDONLY, 0, sys.RESOLVE_BENEATH), 'EXDEV');
  throwsCode(t, () => sys.openat2(rootFd, '../x', O_RDONLY, 0, strict), 'EXDEV');
  throwsCode(t, () => sys.openat2(rootFd, 'sub/../../x', O_RDONLY, 0, strict), 'EXDEV');
  throwsCode(t, () => sys.openat2(rootFd, '/etc/passwd', O_RDONLY, 0, strict), 'EXDEV');
  throwsCode(t, () => sys.openat2(rootFd, 'inner/file', O_RDONLY, 0, strict), 'ELOOP');
  throwsCode(t, () => sys.openat2(rootFd, 'flink', O_RDONLY, 0, strict), 'ELOOP');
  throwsCode(t, () => sys.openat2(rootFd, 'flink', O_RDONLY | sys.O_NOFOLLOW, 0, 0), 'ELOOP');
  throwsCode(t, () => sys.openat2(rootFd, 'sub/file', O_RDONLY | sys.O_DIRECTORY, 0, strict), 'ENOTDIR');
  // O_CREAT through a symlink would create its target: refused, and nothing is created.
  throwsCode(t, () => sys.openat2(rootFd, 'flink', O_CREAT | O_WRONLY, 0o644, strict), 'ELOOP');

  const open = (p: string, flags: number, resolve: number): number => {
    const fd = sys.openat2(rootFd, p, flags, 0, resolve);
    t.teardown(() => fs.closeSync(fd));
    return fd;
  };
  const fd = open('sub/file', O_RDONLY, strict);
  const buf = Buffer.alloc(16);
  t.is(buf.toString('utf8', 0, fs.readSync(fd, buf, 0, 16, 0)), 'hello');
  t.is(fs.fstatSync(fd).ino, fs.lstatSync(path.join(root, 'sub', 'file')).ino);
  // Symlinks that stay beneath are fine without RESOLVE_NO_SYMLINKS; RESOLVE_IN_ROOT clamps "..".
  t.is(fs.fstatSync(open('inner/file', O_RDONLY, sys.RESOLVE_BENEATH)).ino, fs.fstatSync(fd).ino);
  t.is(fs.fstatSync(open('../../sub/file', O_RDONLY, sys.RESOLVE_IN_ROOT)).ino, fs.fstatSync(fd).ino);
  // An O_PATH directory fd serves the *at calls; an O_PATH|O_NOFOLLOW fd is the link itself.
  const sub = open('sub', sys.O_PATH | sys.O_DIRECTORY, strict);
  t.is(sys.fstatat(sub, 'file').size, 5);
  const link = open('flink', sys.O_PATH | sys.O_NOFOLLOW, strict);
  t.is(typeOf(sys.fstatat(link, '', sys.AT_EMPTY_PATH).mode), S_IFLNK);
  t.is(sys.readlinkat(link, ''), 'sub/file');
  // The fd is close-on-exec, and O_CREAT | O_EXCL takes the mode.
  const fdFlags = /flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  t.true((parseInt(fdFlags ?? '0', 8) & sys.O_CLOEXEC) !== 0, `fd flags ${fdFlags}`);
  open('sub/new', O_CREAT | O_EXCL | O_WRONLY, strict);
  t.is(typeOf(fs.lstatSync(path.join(root, 'sub', 'new')).mode), S_IFREG);
  throwsCode(t, () => sys.openat2(rootFd, 'sub/new', O_CREAT | O_EXCL | O_WRONLY, 0o600, strict), 'EEXIST');
});

test('the *at calls act on a final symlink itself, never on its target', (t) => {
  const root = tmpDir(t);
  const outside = tmpDir(t, 'brick-sys-outside-');
  const fd = dirFd(t, root, true);
  const p = (n: string) => path.join(root, n);
  fs.writeFileSync(p('target'), 'data');
  fs.symlinkSync('target', p('link'));
  fs.mkdirSync(p('dirtarget'));
  fs.symlinkSync('dirtarget', p('dlink'));
  fs.symlinkSync(path.join(outside, 'made'), p('esc'));
  const made = path.join(outside, 'made');

  // fstatat: the link's own attributes, the same fields fs.lstatSync has.
  for (const name of ['link', 'target', 'dlink', 'esc']) {
    const st = sys.fstatat(fd, name);
    const ls = fs.lstatSync(p(name));
    for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'blksize', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs'] as const) {
      t.is(st[k], ls[k], `${name}.${k}`);
    }
  }
  const iatt: Iatt = sys.fstatat(fd, 'link');
  t.is(typeOf(iatt.mode), S_IFLNK);
  t.is(sys.readlinkat(fd, 'link'), 'target');
  throwsCode(t, () => sys.readlinkat(fd, 'target'), 'EINVAL', 'readlinkat');

  // fchownat: the link's owner changes, the target's does not.
  sys.fchownat(fd, 'link', 1234, 5678);
  t.is(fs.lstatSync(p('link')).uid, 1234);
  t.is(fs.lstatSync(p('link')).gid, 5678);
  t.is(fs.statSync(p('target')).uid, 0);
  sys.fchownat(fd, 'link', -1, 42);
  t.is(fs.lstatSync(p('link')).uid, 1234);
  t.is(fs.lstatSync(p('link')).gid, 42);

  // utimensat: the link's times; null leaves one as is, 'now' is now.
  const before = fs.statSync(p('target'));
  const atime0 = fs.lstatSync(p('link')).atimeMs;
  sys.utimensat(fd, 'link', null, 1_000_000_000_000);
  t.is(fs.lstatSync(p('link')).mtimeMs, 1_000_000_000_000);
  t.is(fs.lstatSync(p('link')).atimeMs, atime0);
  sys.utimensat(fd, 'link', 1_234_567_890_123.456, null);
  t.true(Math.abs(fs.lstatSync(p('link')).atimeMs - 1_234_567_890_123.456) < 1e-3);
  sys.utimensat(fd, 'link', sys.UTIME_NOW, sys.UTIME_NOW);
  t.true(Math.abs(fs.lstatSync(p('link')).mtimeMs - Date.now()) < 5000);
  t.is(fs.statSync(p('target')).mtimeMs, before.mtimeMs);
  t.is(fs.statSync(p('target')).atimeMs, before.atimeMs);

  // Creating on a name that is a (dangling, escaping) symlink: EEXIST, nothing made outside.
  throwsCode(t, () => sys.mkdirat(fd, 'esc', 0o755), 'EEXIST', 'mkdirat');
  throwsCode(t, () => sys.mknodat(fd, 'esc', S_IFIFO | 0o644, 0), 'EEXIST', 'mknodat');
  throwsCode(t, () => sys.mknodat(fd, 'esc', S_IFREG | 0o644, 0), 'EEXIST', 'mknodat');
  throwsCode(t, () => sys.symlinkat('x', fd, 'esc'), 'EEXIST', 'symlinkat');
  t.false(fs.existsSync(made));

  // linkat: a hard link to the symlink itself; AT_SYMLINK_FOLLOW is refused.
  sys.linkat(fd, 'link', fd, 'hard');
  t.true(fs.lstatSync(p('hard')).isSymbolicLink());
  t.is(fs.lstatSync(p('hard')).ino, fs.lstatSync(p('link')).ino);
  throwsCode(t, () => sys.linkat(fd, 'link', fd, 'hard2', sys.AT_SYMLINK_FOLLOW), 'EINVAL', 'linkat');
  t.false(fs.existsSync(p('hard2')));
  throwsCode(t, () => sys.linkat(fd, 'link', fd, 'target'), 'EEXIST', 'linkat');

  // renameat2: moves the link, not its target; NOREPLACE and EXCHANGE.
  const linkIno = fs.lstatSync(p('link')).ino;
  sys.renameat2(fd, 'link', fd, 'moved');
  t.false(fs.existsSync(p('link')));
  t.is(fs.lstatSync(p('moved')).ino, linkIno);
  t.true(fs.lstatSync(p('moved')).isSymbolicLink());
  t.is(fs.readFileSync(p('target'), 'utf8'), 'data');
  const e = throwsCode(t, () => sys.renameat2(fd, 'moved', fd, 'target', sys.RENAME_NOREPLACE), 'EEXIST', 'renameat2');
  t.regex(e?.message ?? '', /renameat2 'moved' -> 'target'/);
  const targetIno = fs.lstatSync(p('target')).ino;
  sys.renameat2(fd, 'moved', fd, 'target', sys.RENAME_EXCHANGE);
  t.is(fs.lstatSync(p('target')).ino, linkIno);
  t.is(fs.lstatSync(p('moved')).ino, targetIno);

  // unlinkat: removes the link; AT_REMOVEDIR does not go through a link to a directory.
  throwsCode(t, () => sys.unlinkat(fd, 'dlink', sys.AT_REMOVEDIR), 'ENOTDIR', 'unlinkat');
  sys.unlinkat(fd, 'dlink');
  t.false(fs.existsSync(p('dlink')));
  t.true(fs.statSync(p('dirtarget')).isDirectory());
  sys.unlinkat(fd, 'esc');
  t.false(fs.existsSync(p('esc')));
  throwsCode(t, () => sys.unlinkat(fd, 'dirtarget'), 'EISDIR', 'unlinkat');
  fs.writeFileSync(p('dirtarget/f'), '');
  throwsCode(t, () => sys.unlinkat(fd, 'dirtarget', sys.AT_REMOVEDIR), 'ENOTEMPTY', 'unlinkat');
  fs.unlinkSync(p('dirtarget/f'));
  sys.unlinkat(fd, 'dirtarget', sys.AT_REMOVEDIR);
  t.false(fs.existsSync(p('dirtarget')));
});

test('a name is one path component: "/" and ".." are refused before the kernel sees them', (t) => {
  const root = tmpDir(t);
  fs.mkdirSync(path.join(root, 'sub'));
  fs.writeFileSync(path.join(root, 'sub', 'file'), '');
  const fd = dirFd(t, path.join(root, 'sub'));
  const before = fs.lstatSync(root);
  const calls: Array<[string, () => unknown]> = [
    ['fstatat', () => sys.fstatat(fd, '../sub')],
    ['fstatat', () => sys.fstatat(fd, '..')],
    ['fchownat', () => sys.fchownat(fd, '..', 1234, 1234)],
    ['utimensat', () => sys.utimensat(fd, '..', 0, 0)],
    ['mkdirat', () => sys.mkdirat(fd, '../made', 0o755)],
    ['mknodat', () => sys.mknodat(fd, '/tmp/x', S_IFIFO | 0o644, 0)],
    ['unlinkat', () => sys.unlinkat(fd, './file')],
    ['renameat2', () => sys.renameat2(fd, 'file', fd, '../file')],
    ['linkat', () => sys.linkat(fd, 'file', fd, '../file')],
    ['symlinkat', () => sys.symlinkat('/etc', fd, '../etc')],
    ['readlinkat', () => sys.readlinkat(fd, 'a/b')],
  ];
  for (const [syscall, fn] of calls) throwsCode(t, fn, 'EINVAL', syscall);
  t.is(fs.lstatSync(root).uid, before.uid);
  t.is(fs.lstatSync(root).mtimeMs, before.mtimeMs);
  t.deepEqual(fs.readdirSync(root).sort(), ['sub']);
  t.true(fs.existsSync(path.join(root, 'sub', 'file')));
  // The symlink target of symlinkat is content, not a name: any path is fine there.
  sys.symlinkat('../../etc', fd, 'up');
  t.is(fs.readlinkSync(path.join(root, 'sub', 'up')), '../../etc');
  // "." is the directory itself, as is "" with AT_EMPTY_PATH.
  t.is(sys.fstatat(fd, '.').ino, fs.lstatSync(path.join(root, 'sub')).ino);
  t.is(sys.fstatat(fd, '', sys.AT_EMPTY_PATH).ino, fs.lstatSync(path.join(root, 'sub')).ino);
  throwsCode(t, () => sys.fstatat(fd, ''), 'ENOENT', 'fstatat');
  // Buffers are names too; embedded NULs are refused as Node refuses them.
  t.is(sys.fstatat(fd, Buffer.from('file')).ino, fs.lstatSync(path.join(root, 'sub', 'file')).ino);
  t.throws(() => sys.fstatat(fd, 'fi\0le'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' });
});

test('errors look like Node\'s and convert with FsError.from', (t) => {
  const root = tmpDir(t);
  const fd = dirFd(t, root);
  sys.mkdirat(fd, 'd', 0o755);
  let nodeErr: NodeJS.ErrnoException | undefined;
  try {
    fs.mkdirSync(path.join(root, 'd'));
  } catch (err) {
    nodeErr = err as NodeJS.ErrnoException;
  }
  const e = throwsCode(t, () => sys.mkdirat(fd, 'd', 0o755), 'EEXIST', 'mkdirat');
  t.true(e instanceof Error);
  t.is(e?.code, nodeErr?.code);
  t.is(e?.errno, nodeErr?.errno);
  t.is(e?.path, 'd');
  t.is(e?.message, "EEXIST: file already exists, mkdirat 'd'");
  const fe = FsError.from(e);
  t.is(fe.code, 'EEXIST');
  t.is(fe.errno, os.constants.errno.EEXIST);

  const missing = throwsCode(t, () => sys.fstatat(fd, 'nope'), 'ENOENT', 'fstatat');
  t.is(FsError.from(missing).errno, os.constants.errno.ENOENT);
  const bad = throwsCode(t, () => sys.fstatat(-1, 'nope'), 'EBADF', 'fstatat');
  t.is(FsError.from(bad).code, 'EBADF');
  // An errno lib/errors.ts has no name for still converts by number.
  const notDir = throwsCode(t, () => sys.openat2(sys.AT_FDCWD, '/dev/null', O_RDONLY | sys.O_DIRECTORY), 'ENOTDIR', 'openat2');
  t.is(FsError.from(notDir).code, 'ENOTDIR');
  // ENXIO (opening a socket node) is not in lib/errors.ts' table: FsError.from keeps its number.
  sys.mknodat(fd, 'sock', S_IFSOCK | 0o644, 0);
  const nxio = throwsCode(t, () => sys.openat2(fd, 'sock', O_RDONLY), 'ENXIO', 'openat2');
  t.is(FsError.from(nxio).errno, os.constants.errno.ENXIO);
  const long = throwsCode(t, () => sys.fstatat(fd, 'x'.repeat(5000)), 'ENAMETOOLONG', 'fstatat');
  t.is(FsError.from(long).code, 'ENAMETOOLONG');

  // Wrong argument types are programming errors: TypeError/RangeError with an ERR_* code.
  t.throws(() => (sys.fstatat as (fd: unknown, name: unknown) => unknown)('3', 'x'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => (sys.fstatat as (fd: unknown, name: unknown) => unknown)(fd, 3), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => sys.mkdirat(fd, 'y', 1.5), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => sys.makedev(-1, 0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => sys.utimensat(fd, 'd', 'later' as typeof sys.UTIME_NOW, null), { instanceOf: TypeError });
});

test('becomeCaller/becomeRoot (asCaller): this thread creates as the caller and checks access with its groups, then is root again', (t) => {
  const root = tmpDir(t);
  fs.chmodSync(root, 0o777);
  const closed = path.join(root, 'closed');
  fs.mkdirSync(closed, 0o700);
  const grouped = path.join(root, 'grouped');
  fs.mkdirSync(grouped);
  fs.chownSync(grouped, 0, 4343);
  fs.chmodSync(grouped, 0o070);
  const fd = dirFd(t, root);
  const closedFd = dirFd(t, closed);
  const caller = { uid: 65534, gid: 65533, groups: [4343], pid: 1 };

  const made = asCaller(caller, () => {
    sys.mkdirat(fd, 'theirs', 0o755);
    fs.writeFileSync(path.join(root, 'theirs-file'), '');
    throwsCode(t, () => sys.mknodat(closedFd, 'f', S_IFREG | 0o644, 0), 'EACCES', 'mknodat');
    t.throws(() => fs.readdirSync(closed), { code: 'EACCES' });
    // A supplementary group opens what the primary one does not.
    fs.writeFileSync(path.join(grouped, 'by-group'), '');
    return 'done';
  });
  t.is(made, 'done');
  for (const name of ['theirs', 'theirs-file']) {
    t.is(fs.lstatSync(path.join(root, name)).uid, 65534, name);
    t.is(fs.lstatSync(path.join(root, name)).gid, 65533, name);
  }
  t.is(fs.lstatSync(path.join(grouped, 'by-group')).uid, 65534);
  sys.mkdirat(fd, 'ours', 0o755);
  t.is(fs.lstatSync(path.join(root, 'ours')).uid, 0);
  t.is(fs.lstatSync(path.join(root, 'ours')).gid, 0);

  // Root again also when fn throws; bad ids are refused before anything changes.
  t.throws(() => asCaller(caller, () => { throw new Error('inside'); }), { message: 'inside' });
  sys.mkdirat(fd, 'ours-again', 0o755);
  t.is(fs.lstatSync(path.join(root, 'ours-again')).uid, 0);
  t.throws(() => sys.becomeCaller(-1, 0, []), { instanceOf: RangeError });
  t.throws(() => sys.becomeCaller(1, 1, [-5]), { instanceOf: RangeError });
  fs.mkdirSync(path.join(root, 'after'));
  t.is(fs.lstatSync(path.join(root, 'after')).uid, 0);
});
