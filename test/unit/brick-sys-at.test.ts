// The calls native/brick-sys gained for storage/posix's confinement: the xattr calls on one
// name relative to a directory fd (getxattrat & co.), fchmodat and fstatat's quiet ENOENT.
// Each acts on the name in the directory the fd was resolved to and never follows a final
// symlink. The xattr calls are run both ways: the kernel's *xattrat calls (Linux 6.13) when
// it has them, and the l*xattr on /proc/self/fd/<dirfd>/<name> fallback (BRICKFS_NO_XATTRAT=1,
// in a child process since the addon decides when it loads).
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sys from '../../brick/xlators/storage/sys.js';
import { xattrChecks } from '../helpers/xattr-at-checks.js';

const SYS = fileURLToPath(new URL('../../brick/xlators/storage/sys.js', import.meta.url));
const CHECKS = fileURLToPath(new URL('../helpers/xattr-at-checks.js', import.meta.url));

function tmpDir(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'brick-sys-at-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function dirFd(t: ExecutionContext, dir: string): number {
  const fd = sys.openat2(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY);
  t.teardown(() => fs.closeSync(fd));
  return fd;
}

function setupXattrDir(t: ExecutionContext): { dir: string; outside: string } {
  const dir = tmpDir(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'f'), 'data');
  fs.writeFileSync(path.join(outside, 'target'), 'outside');
  fs.symlinkSync(path.join(outside, 'target'), path.join(dir, 'link'));
  return { dir, outside };
}

const EXPECTED = {
  a: 'one', b: [0, 0, 0, 7], missing: null, list: ['trusted.b', 'user.a'], create: 'EEXIST', replace: 'ENODATA',
  removed: false, removeAgain: 'ENODATA', noEntry: 'ENOENT', self: 'd', link: 'l', linkUser: 'EPERM', notName: 'EINVAL',
};

test('xattrs of one name in a directory fd, never through a final symlink', (t) => {
  const { dir, outside } = setupXattrDir(t);
  t.deepEqual(xattrChecks(dir), EXPECTED);
  t.deepEqual(fs.readdirSync(outside), ['target']);
  t.deepEqual(execFileSync('getfattr', ['-d', '-m', '-', path.join(outside, 'target')], { encoding: 'utf8' }).trim(), '');
});

test('the same through /proc/self/fd/<dirfd>/<name> where the kernel lacks the *xattrat calls', (t) => {
  const { dir, outside } = setupXattrDir(t);
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    const { hasXattrat } = await import(${JSON.stringify(SYS)});
    const { xattrChecks } = await import(${JSON.stringify(CHECKS)});
    process.stdout.write(JSON.stringify({ hasXattrat, checks: xattrChecks(${JSON.stringify(dir)}) }));
  `], { env: { ...process.env, BRICKFS_NO_XATTRAT: '1' }, encoding: 'utf8' });
  const got = JSON.parse(out) as { hasXattrat: boolean; checks: Record<string, unknown> };
  t.false(got.hasXattrat);
  t.deepEqual(got.checks, EXPECTED);
  t.deepEqual(execFileSync('getfattr', ['-d', '-m', '-', path.join(outside, 'target')], { encoding: 'utf8' }).trim(), '');
});

test('fchmodat changes the name itself and refuses a symlink (EOPNOTSUPP) without touching its target', (t) => {
  const dir = tmpDir(t);
  const outside = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'f'), '', { mode: 0o644 });
  fs.writeFileSync(path.join(outside, 'target'), '', { mode: 0o644 });
  fs.chmodSync(path.join(outside, 'target'), 0o644);
  fs.symlinkSync(path.join(outside, 'target'), path.join(dir, 'link'));
  const fd = dirFd(t, dir);
  sys.fchmodat(fd, 'f', 0o4751);
  t.is(fs.statSync(path.join(dir, 'f')).mode & 0o7777, 0o4751);
  const err = t.throws(() => sys.fchmodat(fd, 'link', 0o4777)) as NodeJS.ErrnoException;
  t.is(err.code, 'EOPNOTSUPP');
  t.is(fs.statSync(path.join(outside, 'target')).mode & 0o7777, 0o644);
  t.is((t.throws(() => sys.fchmodat(fd, '../x', 0o600)) as NodeJS.ErrnoException).code, 'EINVAL');
});

test('fstatatQuiet answers undefined for a missing name and throws anything else', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abc');
  const fd = dirFd(t, dir);
  t.is(sys.fstatatQuiet(fd, 'f')?.size, 3);
  t.is(sys.fstatatQuiet(fd, 'missing'), undefined);
  t.is((t.throws(() => sys.fstatatQuiet(fd, 'f/x')) as NodeJS.ErrnoException).code, 'EINVAL');
  t.is((t.throws(() => sys.fstatat(fd, 'missing')) as NodeJS.ErrnoException).code, 'ENOENT');
});
