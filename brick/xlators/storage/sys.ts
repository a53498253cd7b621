// Typed access to native/brick-sys (brick_sys.c): the system calls the brick needs that Node
// lacks. All synchronous, on the calling thread. Failures throw Errors shaped like Node's
// system errors (.code 'EEXIST', .errno -17, .syscall, .path, .dest), so FsError.from()
// (lib/errors.ts) converts them; wrong argument types throw TypeError/RangeError (ERR_*).
//
// Confinement: every call that takes a `name` takes ONE path component (no '/', not '..';
// else EINVAL) relative to a directory fd, and never follows a final symlink
// (AT_SYMLINK_NOFOLLOW is always added; linkat refuses AT_SYMLINK_FOLLOW). Resolve the
// parent directory first with openat2(rootFd, relPath, O_PATH | O_DIRECTORY,
// 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and act on the name under the fd it returns.
// The xattr calls (getxattrat & co.) work the same way.
//
// Loading this module loads the addon; it throws a clear Error when the addon was not
// built (import it dynamically to fall back instead).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Iatt } from '../../../lib/fops.js';

/** A path or name: a string (UTF-8) or the raw bytes. */
export type PathArg = string | Buffer;

/** A utimensat time: ms since the epoch, null = leave as is (UTIME_OMIT), 'now' = UTIME_NOW. */
export type TimeArg = number | null | typeof UTIME_NOW;
export const UTIME_NOW = 'now';

/** fstatat's answer: what an Iatt holds, plus the device (st_dev). ino is exact up to 2^53. */
export interface SysStat extends Iatt {
  dev: number;
}

/** brick_sys.c's exports, exactly. */
interface Native {
  readonly hasOpenat2: boolean;
  readonly hasXattrat: boolean;
  readonly RESOLVE_NO_XDEV: number;
  readonly RESOLVE_NO_MAGICLINKS: number;
  readonly RESOLVE_NO_SYMLINKS: number;
  readonly RESOLVE_BENEATH: number;
  readonly RESOLVE_IN_ROOT: number;
  readonly RESOLVE_CACHED: number;
  readonly O_PATH: number;
  readonly O_DIRECTORY: number;
  readonly O_NOFOLLOW: number;
  readonly O_CLOEXEC: number;
  readonly AT_FDCWD: number;
  readonly AT_SYMLINK_NOFOLLOW: number;
  readonly AT_SYMLINK_FOLLOW: number;
  readonly AT_EMPTY_PATH: number;
  readonly AT_REMOVEDIR: number;
  readonly RENAME_NOREPLACE: number;
  readonly RENAME_EXCHANGE: number;
  readonly RENAME_WHITEOUT: number;
  readonly XATTR_CREATE: number;
  readonly XATTR_REPLACE: number;
  mknodat(dirfd: number, name: PathArg, mode: number, rdev: number): void;
  mknod(path: PathArg, mode: number, rdev: number): void;
  makedev(major: number, minor: number): number;
  major(rdev: number): number;
  minor(rdev: number): number;
  openat2(dirfd: number, path: PathArg, flags: number, mode: number, resolve: number): number;
  fchownat(dirfd: number, name: PathArg, uid: number, gid: number, flags: number): void;
  mkdirat(dirfd: number, name: PathArg, mode: number): void;
  fchmodat(dirfd: number, name: PathArg, mode: number): void;
  unlinkat(dirfd: number, name: PathArg, flags: number): void;
  faccessat(dirfd: number, name: PathArg, mode: number): void;
  renameat2(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags: number): void;
  linkat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags: number): void;
  symlinkat(target: PathArg, newdirfd: number, name: PathArg): void;
  readlinkat(dirfd: number, name: PathArg): string;
  fstatat(dirfd: number, name: PathArg, flags: number): SysStat;
  fstatatInto(dirfd: number, name: PathArg, out: Float64Array): boolean;
  getxattrat(dirfd: number, name: PathArg, attr: string): Buffer | null;
  setxattrat(dirfd: number, name: PathArg, attr: string, value: Uint8Array, flags: number): void;
  listxattrat(dirfd: number, name: PathArg): string[];
  removexattrat(dirfd: number, name: PathArg, attr: string): void;
  utimensat(dirfd: number, name: PathArg, atimeMs: TimeArg, mtimeMs: TimeArg, flags: number): void;
  becomeCaller(uid: number, gid: number, groups: readonly number[]): void;
  becomeRoot(): void;
}

/** Where build-brick-sys.mjs puts the addon (this file runs from dist/brick/xlators/storage). */
export const ADDON_PATH = fileURLToPath(new URL('../../../../native/brick-sys/build/Release/brick_sys.node', import.meta.url));

function load(): Native {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as Native;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(`brick-sys: cannot load the native addon ${ADDON_PATH} (${why}): run node scripts/build-brick-sys.mjs`, { cause: err });
  }
}

const native = load();

/** Whether the kernel has openat2 (Linux 5.6+); without it openat2() throws ENOSYS. */
export const hasOpenat2: boolean = native.hasOpenat2;

/** openat2 resolve bits (linux/openat2.h). */
export const RESOLVE_NO_XDEV = native.RESOLVE_NO_XDEV;
export const RESOLVE_NO_MAGICLINKS = native.RESOLVE_NO_MAGICLINKS;
export const RESOLVE_NO_SYMLINKS = native.RESOLVE_NO_SYMLINKS;
export const RESOLVE_BENEATH = native.RESOLVE_BENEATH;
export const RESOLVE_IN_ROOT = native.RESOLVE_IN_ROOT;
export const RESOLVE_CACHED = native.RESOLVE_CACHED;
/** Open flags as this machine's C library has them (O_PATH is missing from fs.constants). */
export const O_PATH = native.O_PATH;
export const O_DIRECTORY = native.O_DIRECTORY;
export const O_NOFOLLOW = native.O_NOFOLLOW;
export const O_CLOEXEC = native.O_CLOEXEC;
/** *at() flags. AT_SYMLINK_NOFOLLOW is added by every call anyway; AT_SYMLINK_FOLLOW is refused. */
export const AT_FDCWD = native.AT_FDCWD;
export const AT_SYMLINK_NOFOLLOW = native.AT_SYMLINK_NOFOLLOW;
export const AT_SYMLINK_FOLLOW = native.AT_SYMLINK_FOLLOW;
export const AT_EMPTY_PATH = native.AT_EMPTY_PATH;
export const AT_REMOVEDIR = native.AT_REMOVEDIR;
/** renameat2 flags. */
export const RENAME_NOREPLACE = native.RENAME_NOREPLACE;
export const RENAME_EXCHANGE = native.RENAME_EXCHANGE;
export const RENAME_WHITEOUT = native.RENAME_WHITEOUT;
/** setxattrat flags. */
export const XATTR_CREATE = native.XATTR_CREATE;
export const XATTR_REPLACE = native.XATTR_REPLACE;
/**
 * Whether the kernel has the *xattrat calls (Linux 6.13+). Without them the xattr calls below
 * use l*xattr on "/proc/self/fd/<dirfd>/<name>", which reaches the same entry (the magic link
 * of the directory fd, then the name, a final symlink not followed): /proc must be mounted.
 * BRICKFS_NO_XATTRAT=1 in the environment forces that way (to test it).
 */
export const hasXattrat: boolean = native.hasXattrat;

/** Makes a node (fifo, char/block device, unix socket, regular file: mode has its S_IF* type) named name in dirfd. The umask applies. */
export function mknodat(dirfd: number, name: PathArg, mode: number, rdev = 0): void {
  native.mknodat(dirfd, name, mode, rdev);
}

/** mknod(2) on a path (relative paths from the cwd). */
export function mknod(path: PathArg, mode: number, rdev = 0): void {
  native.mknod(path, mode, rdev);
}

/** glibc's makedev: the st_rdev (fs.Stats rdev) of a major and minor (each below 2^32). */
export function makedev(major: number, minor: number): number {
  return native.makedev(major, minor);
}

export function major(rdev: number): number {
  return native.major(rdev);
}

export function minor(rdev: number): number {
  return native.minor(rdev);
}

/**
 * openat2(2): a new fd (always O_CLOEXEC; close it with fs.closeSync). mode is used only
 * with O_CREAT or O_TMPFILE (the kernel refuses it otherwise, so it is dropped there).
 * resolve is a mask of RESOLVE_*. Throws ENOSYS when !hasOpenat2.
 */
export function openat2(dirfd: number, path: PathArg, flags: number, mode = 0, resolve = 0): number {
  return native.openat2(dirfd, path, flags, mode, resolve);
}

/** lchown of name in dirfd (-1 leaves the uid or gid as is). flags: AT_EMPTY_PATH (name '' = dirfd itself). */
export function fchownat(dirfd: number, name: PathArg, uid: number, gid: number, flags = 0): void {
  native.fchownat(dirfd, name, uid, gid, flags);
}

/** chmod of name in dirfd itself (a final symlink is not followed: EOPNOTSUPP). */
export function fchmodat(dirfd: number, name: PathArg, mode: number): void {
  native.fchmodat(dirfd, name, mode);
}

export function mkdirat(dirfd: number, name: PathArg, mode = 0o777): void {
  native.mkdirat(dirfd, name, mode);
}

/**
 * Throws (EACCES) unless this thread's filesystem credentials may access name in dirfd with
 * mode (R_OK 4 | W_OK 2 | X_OK 1): the kernel's check, as the caller under becomeCaller. A
 * final symlink is checked as itself.
 */
export function faccessat(dirfd: number, name: PathArg, mode: number): void {
  native.faccessat(dirfd, name, mode);
}

/** unlink (or with AT_REMOVEDIR rmdir) name in dirfd; a symlink is removed, not its target. */
export function unlinkat(dirfd: number, name: PathArg, flags = 0): void {
  native.unlinkat(dirfd, name, flags);
}

/** renameat2(2); flags: RENAME_NOREPLACE, RENAME_EXCHANGE or RENAME_WHITEOUT. */
export function renameat2(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags = 0): void {
  native.renameat2(olddirfd, oldname, newdirfd, newname, flags);
}

/** A hard link to oldname itself (a symlink is linked, not followed). flags: AT_EMPTY_PATH (links the fd olddirfd, e.g. an O_TMPFILE). */
export function linkat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags = 0): void {
  native.linkat(olddirfd, oldname, newdirfd, newname, flags);
}

/** A symlink name in newdirfd pointing at target (target is stored as given, any path). */
export function symlinkat(target: PathArg, newdirfd: number, name: PathArg): void {
  native.symlinkat(target, newdirfd, name);
}

/** The target of the symlink name in dirfd (name '' reads an O_PATH fd of a symlink), as UTF-8. */
export function readlinkat(dirfd: number, name: PathArg): string {
  return native.readlinkat(dirfd, name);
}

/** lstat of name in dirfd. flags: AT_EMPTY_PATH (name '' = dirfd itself). */
export function fstatat(dirfd: number, name: PathArg, flags = 0): SysStat {
  return native.fstatat(dirfd, name, flags);
}

const statOut = new Float64Array(13);

/**
 * lstat of name in dirfd; undefined for a missing name (ENOENT) instead of an Error (which
 * costs a stack capture). The addon fills an array, the object is made here: a third of the
 * cost of the addon making it (the brick's hot path: every lookup).
 */
export function fstatatQuiet(dirfd: number, name: PathArg): SysStat | undefined {
  if (!native.fstatatInto(dirfd, name, statOut)) return undefined;
  const o = statOut;
  return {
    dev: o[0]!, ino: o[1]!, mode: o[2]!, nlink: o[3]!, uid: o[4]!, gid: o[5]!, rdev: o[6]!, size: o[7]!,
    blksize: o[8]!, blocks: o[9]!, atimeMs: o[10]!, mtimeMs: o[11]!, ctimeMs: o[12]!,
  };
}

/** The value of xattr attr of name in dirfd (the link itself for a symlink); null when it has none (ENODATA). */
export function getxattrat(dirfd: number, name: PathArg, attr: string): Buffer | null {
  return native.getxattrat(dirfd, name, attr);
}

/** Sets xattr attr of name in dirfd. flags: XATTR_CREATE or XATTR_REPLACE. */
export function setxattrat(dirfd: number, name: PathArg, attr: string, value: Uint8Array, flags = 0): void {
  native.setxattrat(dirfd, name, attr, value, flags);
}

/** The xattr names of name in dirfd. */
export function listxattrat(dirfd: number, name: PathArg): string[] {
  return native.listxattrat(dirfd, name);
}

/** Removes xattr attr of name in dirfd (ENODATA when it has none). */
export function removexattrat(dirfd: number, name: PathArg, attr: string): void {
  native.removexattrat(dirfd, name, attr);
}

/** Sets the times of name in dirfd (the link itself for a symlink). null leaves a time as is, UTIME_NOW ('now') sets it to now. */
export function utimensat(dirfd: number, name: PathArg, atimeMs: TimeArg, mtimeMs: TimeArg, flags = 0): void {
  native.utimensat(dirfd, name, atimeMs, mtimeMs, flags);
}

/**
 * This thread's filesystem credentials become the caller's: fsuid, fsgid and supplementary
 * groups (a raw setgroups, per thread). Throws EPERM when they did not take, back to root's.
 */
export function becomeCaller(uid: number, gid: number, groups: readonly number[]): void {
  native.becomeCaller(uid, gid, groups);
}

/** Back to the brick's own credentials (root, its own groups) on this thread. */
export function becomeRoot(): void {
  native.becomeRoot();
}
