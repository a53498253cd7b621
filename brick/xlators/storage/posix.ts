import { createHash } from 'node:crypto';
import { ROOT_FRAME, type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { promisify } from 'node:util';
import pathMod from 'node:path';
import { FsError } from '../../../lib/errors.js';
import {
  BRICK_PRIVATE_DIR, O_ACCMODE, INTERNAL_XATTR_PREFIX, LINKFILE_MODE, LOOKUP_DATA_MAX_BYTES, MIGRATE_STAGING_DIR, isChangelogXattr, S_IFDIR, S_IFLNK, S_IFMT,
  S_IFREG, XATTR_GFID, XATTR_LINKTO, XATTR_VOLUME_ID,
  type DirEntry, type FopArgs, type FopReply, type Iatt, type SetattrFields, type StatFs, type Xattrs,
} from '../../../lib/fops.js';
import { CtxKey, Fd } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorInit } from '../../../lib/xlator.js';
import { asCaller } from './credentials.js';
import { EarlyWriteback, type WritebackFd } from './early-writeback.js';
import * as sys from './sys.js';
import { claimVolumeId } from './volume-id.js';
import { MigrationGate, type GatedFd } from './migration-gate.js';

const fsp = fs.promises;
const fsRead = promisify(fs.read);
const fsWrite = promisify(fs.write);
const fsClose = promisify(fs.close);
const fsFtruncate = promisify(fs.ftruncate);
const fsFsync = promisify(fs.fsync);
const fsFdatasync = promisify(fs.fdatasync);
const fsFstat = promisify(fs.fstat);

/** The empty file every self-heal index entry is a hard link to (in the private directory, beside index/). */
const INDEX_LINK_BASE = 'index-link';

/**
 * Writes below this size are made synchronously: a small write lands in the page cache in a
 * few microseconds, while the thread-pool round trip costs ~30 us of CPU and, on a busy
 * machine, hundreds of microseconds of latency. Bulk writes (write-behind's 128 KiB) still
 * go through the pool, as does fsync.
 */
/** Set-user-ID and set-group-ID bits (Node's fs.constants lacks them). */
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** Group-execute permission: a setgid file without it is not a setgid program (a mandatory-locking mark). */
const S_IXGRP = 0o010;

/** The kernel's mark on an open made by execve(2) (__FMODE_EXEC), which FUSE passes on. */
const FMODE_EXEC = 0o40;

/** access(2)'s X_OK. */
const X_OK = 1;

/** Longest name of a directory entry on the brick's filesystem. */
const NAME_MAX = 255;
/** Starts the name of an index entry that holds its path (not a base64url character). */
const HASHED_INDEX_PREFIX = '~';

const SYNC_WRITE_MAX_BYTES = 64 * 1024;

/**
 * Reads up to this size are made synchronously while no other read of this brick is in the
 * thread pool (Posix.pread): the pool's hop, a wake-up of a worker thread and then of the
 * event loop, cost ~55 us per read here (4 KiB random reads of a cold file, by hand: 140 us
 * through the pool, 87 us synchronous, half the CPU), more than the disk read itself.
 */
const SYNC_READ_MAX_BYTES = 64 * 1024;

const { O_NOFOLLOW, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_TRUNC } = fs.constants;
/** Most extents one writev may carry (write-behind sends at most aggregate-size bytes' worth). */
const MAX_WRITEV_EXTENTS = 4096;
/** Open flags a client may ask for; everything else (O_PATH, O_DIRECTORY tricks...) is dropped. */
const ALLOWED_OPEN_FLAGS = O_RDONLY | O_WRONLY | O_RDWR | O_APPEND | O_TRUNC | O_CREAT | O_EXCL
  | fs.constants.O_SYNC | fs.constants.O_DSYNC | fs.constants.O_NONBLOCK;

/**
 * What the kernel's file_remove_privs does before a write or truncate by a caller without
 * CAP_FSETID: clears setuid, and setgid when the file is group-executable or the caller is not
 * in its group. The brick writes with root's rights (the thread pool's threads never take the
 * caller's), so the kernel would keep them: done here, before the data changes, so that a
 * client talking to the brick directly cannot change a setuid program's code and keep its
 * bit (a FUSE mount's kernel clears them itself, with a setattr first). Root (uid 0, not
 * squashed) keeps them, as CAP_FSETID does; so do the pool's services, which run as root.
 */
function dropPrivs(f: Frame, os: number): void {
  if (f.uid === 0) return;
  let st: fs.Stats;
  try {
    st = fs.fstatSync(os);
  } catch (e) {
    throw FsError.from(e);
  }
  const mode = st.mode;
  if ((mode & (S_ISUID | S_ISGID)) === 0 || (mode & S_IFMT) !== S_IFREG) return;
  let kill = mode & S_ISUID;
  if (mode & S_ISGID && (mode & S_IXGRP || (f.gid !== st.gid && !f.groups.includes(st.gid)))) kill |= S_ISGID;
  if (kill === 0) return;
  try {
    fs.fchmodSync(os, mode & 0o7777 & ~kill);
  } catch (e) {
    throw FsError.from(e);
  }
}

/** Changelog deltas and counters are int32s, big-endian, back to back. */
function assertCounters(what: string, v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length % 4 !== 0) throw FsError.of('EINVAL', `${what}: not int32 counters`);
}

/** What stat answers, from fs.Stats or the addon's fstatat. */
type StatLike = Pick<fs.Stats, 'mode' | 'nlink' | 'uid' | 'gid' | 'rdev' | 'size' | 'blocks' | 'blksize' | 'ino' | 'atimeMs' | 'mtimeMs' | 'ctimeMs'>;

export function iattOf(st: StatLike): Iatt {
  return {
    mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, size: st.size,
    blocks: st.blocks, blksize: st.blksize, ino: st.ino,
    atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
  };
}

/**
 * storage/posix's slot on an Fd it opened for a client: the system fd, with the inode number
 * (the migration gate's key) and gfid (read at open: fstat answers it as lookups do) of its
 * file; early writeback's stream and the gate's moved mark ride along.
 */
interface PosixFd extends WritebackFd, GatedFd {
  readonly os: number;
  readonly ino: number;
  readonly gfid?: string;
}

/** How every parent directory is resolved: beneath the brick root, through no symlink (nor /proc magic link). */
const BENEATH = sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS;

/**
 * An entry resolved beneath the brick root: the O_PATH fd of its parent directory, resolved
 * when the fop acts, and its name there ('.' for the brick root itself). Every system call on
 * the entry is an *at() call on (dir, name), which never follows a final symlink: no path
 * string is resolved again from the brick root, so nothing swapped in meanwhile can lead out.
 */
interface At {
  readonly dir: number;
  readonly name: string;
}

/**
 * storage/posix: the bottom of a brick. Volume paths map to the same paths under the
 * brick directory, as plain files. Confinement by construction (docs/ARCHITECTURE.md, "On
 * the brick"): "..", "." and empty components are refused; each fop resolves the parent
 * directory when it acts (after any wait) with openat2 from the brick root's fd, with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, and acts on the name with *at() calls on that fd,
 * never following a final symlink. A parent reached through a symlink is refused (EPERM).
 */
export class Posix extends Xlator implements FopImpl {
  static override readonly description = 'Stores files as plain files in a brick directory';
  static override readonly options = {
    directory: { type: 'path', required: true, description: 'The brick directory' },
    'writeback-window': {
      type: 'size', default: 4 * 1024 * 1024, min: 0, max: 1024 ** 3,
      description: 'Bytes an fd writes in sequence before the brick starts writing them to disk, while the writer goes on (0: leave it to the kernel)',
      volume: { key: 'storage.writeback-window', description: 'Bytes a file is written in sequence before its brick starts writing them to disk while the writer goes on (bytes, or with K/M/G; 0 leaves it to the kernel; default 4M); running bricks apply it at once' },
    },
    'volume-id': {
      type: 'string',
      description: 'The id of the volume this brick belongs to: written on the brick root when it has none; a root carrying another id is refused at start',
    },
    'freeze-timeout': {
      type: 'int', default: 120, min: 1, max: 86400,
      description: 'Seconds a file frozen by a rebalance (migrate freeze) holds its writes at most; then it is thawed by itself and the move of it fails',
      volume: { key: 'storage.freeze-timeout', description: 'Seconds a file being moved by a rebalance may hold its writers at most; then the brick lets them go on and that move fails (retried by the next rebalance) (default 120); running bricks apply it to new freezes' },
    },
  } as const;

  private readonly root: string;
  /** The brick directory, open (O_PATH) for the brick's life: every path is resolved beneath it. */
  private rootFd = -1;
  /** The private directory (BRICK_PRIVATE_DIR), open for the brick's life. */
  private privateFd = -1;
  /** The self-heal index (one entry per path with a non-zero changelog counter), once it exists. */
  private indexFd = -1;
  /** The index directory was found missing (and this brick has not made it since). */
  private indexMissing = false;
  /** Where each Fd opened here keeps its PosixFd; an Fd without one is not open on this brick. */
  private readonly fdKey: CtxKey<PosixFd>;
  /**
   * The fds open here, by their file's inode number: a migrate commit marks every fd of the
   * moved file; fini closes them all.
   */
  private readonly openByIno = new Map<number, Set<PosixFd>>();
  private openFds = 0;
  private readonly gate = new MigrationGate(() => this.optNumber('freeze-timeout') * 1000, (ino, owner, ms) =>
    this.log.warn(`migrate: the freeze of inode ${ino} by ${owner} thawed after ${ms / 1000} s (storage.freeze-timeout); its writes go on and the move fails`));
  private readonly writeback = new EarlyWriteback(() => this.optNumber('writeback-window'), (fd) => this.backgroundDatasync(fd));
  /** Reads in the thread pool now: while there are any, every read goes there (pread). */
  private poolReads = 0;

  constructor(init: XlatorInit) {
    super(init);
    this.root = pathMod.resolve(this.optString('directory'));
    this.fdKey = new CtxKey<PosixFd>(this.name);
  }

  override async init(): Promise<void> {
    const st = await fsp.stat(this.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`brick directory ${this.root} does not exist or is not a directory`);
    if (!sys.hasOpenat2) throw new Error('storage/posix needs openat2 (Linux 5.6 or later) to keep every fop inside the brick');
    // Modes come from the client, already under its caller's umask (the kernel applies it):
    // the brick process's own umask must not take more bits away.
    process.umask(0);
    await fsp.mkdir(pathMod.join(this.root, BRICK_PRIVATE_DIR, MIGRATE_STAGING_DIR), { recursive: true, mode: 0o700 });
    // The configured path may pass symlinks (the administrator's); from here on nothing does.
    this.rootFd = sys.openat2(sys.AT_FDCWD, this.root, sys.O_PATH | sys.O_DIRECTORY);
    const volumeId = this.opts['volume-id'];
    if (typeof volumeId === 'string' && volumeId !== '') claimVolumeId(this.rootFd, this.root, volumeId);
    this.privateFd = sys.openat2(this.rootFd, BRICK_PRIVATE_DIR, sys.O_PATH | sys.O_DIRECTORY, 0, BENEATH);
    // readdir, statfs (and xattrs on kernels before 6.13) go through /proc/self/fd/<fd>.
    if (fs.statSync(`/proc/self/fd/${this.rootFd}`, { throwIfNoEntry: false })?.ino !== st.ino) {
      throw new Error('storage/posix needs /proc mounted (it reaches directories it resolved through /proc/self/fd)');
    }
  }

  override async fini(): Promise<void> {
    for (const fds of this.openByIno.values()) {
      for (const fd of fds) {
        await this.writeback.forget(fd);
        fs.closeSync(fd.os);
      }
    }
    this.openByIno.clear();
    this.openFds = 0;
    for (const fd of [this.indexFd, this.privateFd, this.rootFd]) if (fd >= 0) fs.closeSync(fd);
    this.indexFd = this.privateFd = this.rootFd = -1;
  }

  override statedump(): Record<string, unknown> {
    return { directory: this.root, openFds: this.openFds, migration: this.gate.statedump(), writeback: this.writeback.statedump() };
  }

  /**
   * A volume path as the brick resolves it: its parent relative to the brick root ('' for
   * the root) and its last component ('.' for the root itself). Refuses what is not a
   * canonical absolute path ('..', '.', empty components) and the private directory.
   */
  private split(volPath: unknown): { parent: string; name: string } {
    if (typeof volPath !== 'string' || !volPath.startsWith('/') || volPath.includes('\0')) {
      throw FsError.of('EINVAL', `bad path ${JSON.stringify(volPath)}`);
    }
    if (volPath === '/') return { parent: '', name: '.' };
    const parts = volPath.split('/');
    // The private directory is closed to clients, except the rebalancer's staging directory.
    if (parts[1] === BRICK_PRIVATE_DIR && (parts[2] !== MIGRATE_STAGING_DIR || parts.length > 4)) {
      throw FsError.of('EPERM', `${BRICK_PRIVATE_DIR} is reserved on bricks`);
    }
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i]!;
      if (p === '..' || p === '.' || (p === '' && i !== parts.length - 1)) {
        throw FsError.of('EPERM', `path ${JSON.stringify(volPath)} escapes or is not canonical`);
      }
      if (Buffer.byteLength(p) > 255) throw FsError.of('ENAMETOOLONG');
    }
    const rel = volPath.endsWith('/') ? volPath.slice(1, -1) : volPath.slice(1);
    const slash = rel.lastIndexOf('/');
    return slash < 0 ? { parent: '', name: rel } : { parent: rel.slice(0, slash), name: rel.slice(slash + 1) };
  }

  /**
   * A parent directory (relative to the root), resolved now beneath the brick root through
   * no symlink: a new O_PATH fd, or the root's own for ''. A path that would leave the
   * brick (EXDEV) or pass a symlink, even one pointing inside (ELOOP), is refused: EPERM.
   */
  private openParent(parent: string): number {
    if (parent === '') return this.rootFd;
    try {
      return sys.openat2(this.rootFd, parent, sys.O_PATH | sys.O_DIRECTORY, 0, BENEATH);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'EXDEV') throw FsError.of('EPERM', `/${parent} passes a symlink: the brick follows none`);
      throw FsError.from(e);
    }
  }

  /**
   * Runs fn on the entry at volPath, its parent resolved now. With a caller's frame the
   * resolution runs as the caller (searching every directory on the way needs the caller's
   * permission, as the path-based calls checked it). The parent's fd is closed when fn is
   * done, when its promise settles for an async fn. fn must not wait for anything that may
   * change the namespace meanwhile and then act (the migration gate): changeAt resolves again.
   * Synchronous on purpose, like every metadata call here (lookup, create, mkdir, setattr,
   * rename, readdir...): on a local disk they take microseconds, less than the thread-pool
   * round trip an async call costs (measured under load: brick setattr 193 -> 129 us), and
   * asCaller needs them on this thread. Data (read, write, fsync, truncate) goes through the pool.
   */
  private at<T>(volPath: unknown, f: Frame | undefined, fn: (at: At) => T): T {
    const { parent, name } = this.split(volPath);
    if (parent === '') return fn({ dir: this.rootFd, name });
    const dir = f ? asCaller(f, () => this.openParent(parent)) : this.openParent(parent);
    let r: T;
    try {
      r = fn({ dir, name });
    } catch (e) {
      fs.closeSync(dir);
      throw e;
    }
    if (r instanceof Promise) return r.finally(() => fs.closeSync(dir)) as T;
    fs.closeSync(dir);
    return r;
  }

  /**
   * Opens the entry itself (openat2 on its name: beneath, a final symlink refused with ELOOP).
   * An entry that exists is opened for I/O only when it is a regular file or a directory:
   * opening a fifo blocks the brick's one thread until a peer comes (every client waits), and a
   * device node a client made with mknod would open the host's hardware, outside the brick. So
   * its type is read first by name in the resolved parent (lstat: nothing is opened). No
   * client's fop can swap the name in between: both calls run in one turn of the brick's one
   * thread (only a process on the brick host itself could, and it needs no brick to open a device).
   */
  private openAt(at: At, flags: number, mode = 0): number {
    if (!(flags & sys.O_PATH) && (flags & (O_CREAT | O_EXCL)) !== (O_CREAT | O_EXCL)) {
      const st = sys.fstatatQuiet(at.dir, at.name);
      const type = st ? st.mode & S_IFMT : S_IFREG; // missing: created as a file, or ENOENT below
      if (type === S_IFLNK) throw FsError.of('ELOOP', `${at.name} is a symlink: the brick follows none`);
      if (type !== S_IFREG && type !== S_IFDIR) throw FsError.of('EPERM', `${at.name} is a ${type === fs.constants.S_IFIFO ? 'fifo' : 'device or socket'}: the brick opens only files and directories`);
    }
    return sys.openat2(at.dir, at.name, flags | O_NOFOLLOW, mode, BENEATH);
  }

  /** What this brick keeps for fd; EBADF unless it was opened here and not released. */
  private checkFd(fd: unknown): PosixFd {
    const p = fd instanceof Fd ? fd.ctx.get(this.fdKey) : undefined;
    if (!p) throw FsError.of('EBADF', `fd ${fd instanceof Fd ? `on ${fd.path}` : String(fd)} is not open on this brick`);
    return p;
  }

  /** The Fd an open or create is to open: one not open here already. */
  private freshFd(fd: unknown): Fd {
    if (!(fd instanceof Fd)) throw FsError.of('EINVAL', 'open and create need an fd to open');
    if (fd.ctx.has(this.fdKey)) throw FsError.of('EBADF', `fd on ${fd.path} is already open on this brick`);
    return fd;
  }

  /** fd is open on the system fd os now (its slot, and its file's set). */
  private register(fd: Fd, os: number, ino: number, gfid: string | undefined): void {
    const p: PosixFd = gfid === undefined ? { os, ino } : { os, ino, gfid };
    fd.ctx.set(this.fdKey, p);
    let same = this.openByIno.get(ino);
    if (!same) this.openByIno.set(ino, (same = new Set()));
    same.add(p);
    this.openFds++;
  }

  /** Runs a change through an fd, under the migration gate of its inode. */
  private changeByFd<T>(fd: unknown, fn: (fd: PosixFd) => Promise<T>): Promise<T> {
    const p = this.checkFd(fd);
    return this.gate.change(p.ino, () => fn(p), p);
  }

  /** A read through an fd: refused (ESTALE) once the file has moved to another brick. */
  private readableFd(fd: unknown): PosixFd {
    const p = this.checkFd(fd);
    this.gate.checkFd(p);
    return p;
  }

  /**
   * Runs a change of the entry at volPath, under the migration gate when a file is being
   * moved at all: a frozen regular file holds it until thaw or commit. `pre` runs first, on
   * the entry as it is when the request arrives (checks that answer at once). fn gets the
   * entry resolved again after the wait: what was resolved before it is never acted on.
   */
  private async changeAt<T>(volPath: string, f: Frame | undefined, fn: (at: At) => T | Promise<T>, pre?: (at: At) => void): Promise<T> {
    if (!this.gate.busy) return this.at(volPath, f, (at) => { pre?.(at); return fn(at); });
    const ino = this.at(volPath, f, (at) => {
      pre?.(at);
      const st = this.statAt(at);
      return st && (st.mode & S_IFMT) === S_IFREG ? st.ino : undefined;
    });
    if (ino === undefined) return this.at(volPath, f, fn);
    return this.gate.change(ino, async () => this.at(volPath, f, fn));
  }

  /** lstat of the entry (as whoever runs now), undefined when it does not exist. */
  private statAt(at: At): sys.SysStat | undefined {
    try {
      return sys.fstatatQuiet(at.dir, at.name);
    } catch (e) {
      throw FsError.from(e);
    }
  }

  private setXattrs(at: At, xattrs: Xattrs | undefined): void {
    if (!xattrs) return;
    for (const [name, value] of Object.entries(xattrs)) {
      try {
        sys.setxattrat(at.dir, at.name, name, value);
      } catch (e) {
        throw FsError.from(e);
      }
    }
  }

  private getXattr(at: At, name: string): Buffer | undefined {
    try {
      return sys.getxattrat(at.dir, at.name, name) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** A DHT link file: sticky-only mode, empty, with a link target. Never served as data. */
  private isLinkfile(at: At, iatt: Iatt): boolean {
    return this.linkTarget(at, iatt) !== undefined;
  }

  /** Where the DHT link file at `at` (with these attributes) points; undefined when it is not one. */
  private linkTarget(at: At, st: { mode: number; size: number }): string | undefined {
    if (st.mode !== LINKFILE_MODE || st.size !== 0) return undefined;
    return this.getXattr(at, XATTR_LINKTO)?.toString();
  }

  /**
   * Distribute's guards on unlink and rename, which it sends without a lookup round trip
   * first. linkfileOnly: only its stale link file may go (a real file that took the name
   * meanwhile stays). dataOnly: the file where it last saw it; a link file there means the
   * data moved (ENOENT: distribute looks the name up after all).
   */
  private checkLinkfileGuards(at: At, volPath: string, g: { linkfileOnly?: boolean; dataOnly?: boolean }): void {
    if (!g.linkfileOnly && !g.dataOnly) return;
    const link = this.isLinkfile(at, this.lstatAt(at));
    if (g.linkfileOnly && !link) throw FsError.of('ENOENT', `${volPath} is not a link file`);
    if (g.dataOnly && link) throw FsError.of('ENOENT', `${volPath} is a link file`);
  }

  /** Refuses data and user-metadata fops on a link file: the caller's idea of where the file lives is stale. */
  private refuseLinkfile(at: At, iatt: Iatt): void {
    if (this.isLinkfile(at, iatt)) throw FsError.of('ESTALE', 'this name is a link file here; the data lives elsewhere');
  }

  /** The volume id is the management daemon's: no fop changes it, so a brick stays bound to its volume. */
  private refuseVolumeId(name: string): void {
    if (name === XATTR_VOLUME_ID) throw FsError.of('EPERM', `${XATTR_VOLUME_ID} is set by the management daemon only`);
  }

  /** Same, for fops that carry an xattr name: brickfs' own names may touch link files. */
  private refuseLinkfileFor(at: At, name: string): void {
    if (name.startsWith(INTERNAL_XATTR_PREFIX)) return;
    const st = this.statAt(at);
    if (st) this.refuseLinkfile(at, iattOf(st));
  }

  /** The gfid of an entry as Iatt carries it (hex), if it has one. */
  private gfidOf(at: At): string | undefined {
    const v = this.getXattr(at, XATTR_GFID);
    return v?.length === 16 ? v.toString('hex') : undefined;
  }

  /** Attributes of an entry with its gfid: what entry replies carry (st_ino derives from the gfid). */
  private identified(at: At, iatt: Iatt, gfid?: Buffer | Uint8Array): Iatt {
    const g = gfid?.length === 16 ? Buffer.from(gfid).toString('hex') : this.gfidOf(at);
    if (g) iatt.gfid = g;
    return iatt;
  }

  /** lstat as the caller (the permission to search the parent is the caller's). */
  private lstatAs(f: Frame, at: At): Iatt {
    const st = asCaller(f, () => this.statAt(at));
    if (!st) throw FsError.of('ENOENT', `ENOENT: no such file or directory, lstat '${at.name}'`);
    return iattOf(st);
  }

  /**
   * lstat as the brick. A missing name is common (lookups before create, on the other bricks
   * of a distribute set): fstatatQuiet answers it without an Error's ~20 us of stack capture.
   */
  private lstatAt(at: At): Iatt {
    const st = this.statAt(at);
    if (!st) throw FsError.of('ENOENT', `ENOENT: no such file or directory, lstat '${at.name}'`);
    return iattOf(st);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    return this.at(a.path, f, (at) => this.lookupAt(a, f, at));
  }

  private async lookupAt(a: FopArgs<'lookup'>, f: Frame, at: At): Promise<FopReply<'lookup'>> {
    const iatt = this.identified(at, this.lstatAs(f, at));
    const reply: FopReply<'lookup'> = { iatt };
    const linkto = this.linkTarget(at, iatt);
    if (linkto !== undefined) reply.linkto = linkto;
    if (a.xattrs?.length) {
      const out: Xattrs = {};
      for (const name of a.xattrs) {
        const v = this.getXattr(at, String(name));
        if (v) out[name] = v;
      }
      reply.xattrs = out;
    }
    // quick-read: a small regular file's content in the same request. Never a link file's
    // (its data lives elsewhere), nor a file a rebalance is moving (the copy would soon be
    // the old brick's); anything odd on the way just leaves the data out.
    const want = a.wantData;
    if (typeof want === 'number' && reply.linkto === undefined && (iatt.mode & S_IFMT) === S_IFREG
      && iatt.size <= Math.min(want, LOOKUP_DATA_MAX_BYTES) && !(this.gate.busy && this.gate.moving(iatt.ino))) {
      const data = await this.contentOf(at, iatt);
      if (data) reply.data = data;
    }
    return reply;
  }

  /**
   * The whole content of a small file for a lookup, or undefined when it cannot be read as
   * its attributes say: the file must be the same inode with the same size and times after
   * the read, so the data always goes with the attributes in the same reply. The pread is
   * read's (pread: synchronous when small and the thread pool has no read of ours).
   */
  private async contentOf(at: At, iatt: Iatt): Promise<Buffer | undefined> {
    if (iatt.size === 0) return Buffer.alloc(0);
    let fd: number;
    try {
      fd = this.openAt(at, O_RDONLY);
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.allocUnsafe(iatt.size);
      const bytesRead = await this.pread(fd, buf, iatt.size, 0);
      const st = fs.fstatSync(fd);
      const same = bytesRead === iatt.size && st.ino === iatt.ino && st.size === iatt.size
        && st.mtimeMs === iatt.mtimeMs && st.ctimeMs === iatt.ctimeMs;
      return same ? buf : undefined;
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const fd = this.readableFd(a.fd);
    const iatt = iattOf(await fsFstat(fd.os).catch((e) => { throw FsError.from(e); }));
    if (fd.gfid) iatt.gfid = fd.gfid;
    return { iatt };
  }

  /** access(2) as the brick on the entry itself (a symlink's own, which allows everything). */
  async access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    return this.at(a.path, undefined, (at) => {
      try {
        sys.faccessat(at.dir, at.name, Number(a.mode) & 7);
        return {};
      } catch (e) {
        throw FsError.from(e);
      }
    });
  }

  /**
   * The directory is opened by name in its resolved parent (O_PATH, no symlink followed) and
   * listed through that fd's /proc magic link, which leads to that very directory; each
   * entry is then stat'ed and its xattrs read relative to the same fd.
   */
  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    return this.at(a.path, f, (at) => {
      const st = this.lstatAt(at);
      if ((st.mode & S_IFMT) !== fs.constants.S_IFDIR) throw FsError.of('ENOTDIR');
      let dir: number;
      try {
        dir = this.openAt(at, sys.O_PATH | sys.O_DIRECTORY);
      } catch (e) {
        throw FsError.from(e);
      }
      try {
        let names: string[];
        try {
          names = asCaller(f, () => fs.readdirSync(`/proc/self/fd/${dir}`));
        } catch (e) {
          throw FsError.from(e);
        }
        if (a.path === '/') names = names.filter((n) => n !== BRICK_PRIVATE_DIR);
        const entries: DirEntry[] = [];
        for (const name of names) {
          const child = { dir, name };
          const s = this.statAt(child);
          if (!s) continue; // removed meanwhile
          const e: DirEntry = { name, iatt: this.identified(child, iattOf(s)) };
          const linkto = this.linkTarget(child, s);
          if (linkto !== undefined) e.linkto = linkto;
          entries.push(e);
        }
        return { entries };
      } finally {
        fs.closeSync(dir);
      }
    });
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.at(a.path, f, (at) => {
      try {
        asCaller(f, () => sys.mkdirat(at.dir, at.name, Number(a.mode) & 0o7777));
      } catch (e) {
        throw FsError.from(e);
      }
      this.setXattrs(at, a.xattrs);
      return { iatt: this.identified(at, this.lstatAt(at), a.xattrs?.[XATTR_GFID]) };
    });
  }

  /** Opens for a client, as the caller; the caller registers the fd with its inode (it stats the fd anyway). */
  private openAs(f: Frame, at: At, flags: number, mode: number): number {
    try {
      return asCaller(f, () => this.openAt(at, flags & ALLOWED_OPEN_FLAGS, mode));
    } catch (e) {
      throw FsError.from(e);
    }
  }

  /**
   * Creates exclusively, so the caller's xattrs (the gfid above all) land only on a file this
   * call made. Without O_EXCL a name that exists (another client's create, a stale negative
   * entry) is opened as open would, keeping its gfid; a DHT link file there is refused (ESTALE).
   */
  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const flags = Number(a.flags);
    const fd = this.freshFd(a.fd);
    const made = this.at(a.path, f, (at) => {
      let os: number;
      try {
        os = asCaller(f, () => this.openAt(at, (flags & ALLOWED_OPEN_FLAGS) | O_CREAT | O_EXCL, Number(a.mode) & 0o7777));
      } catch (e) {
        if (flags & O_EXCL || (e as NodeJS.ErrnoException).code !== 'EEXIST') throw FsError.from(e);
        return undefined;
      }
      return this.created(a, at, fd, os);
    });
    if (made) return made;
    // The name exists: opened as open would (after the migration gate when it truncates), resolved again.
    return this.openExisting(f, a.path, flags, true, fd);
  }

  /** A file create just made: the caller's xattrs (and a burst's marks) on it, its fd registered. */
  private created(a: FopArgs<'create'>, at: At, fd: Fd, os: number): FopReply<'create'> {
    try {
      this.setXattrs(at, a.xattrs);
      // A burst's marks on a file that had none: the counters are the deltas themselves.
      if (a.burst) {
        for (const [name, v] of Object.entries(a.burst.add)) assertCounters(`create burst ${name}`, v);
        this.setXattrs(at, a.burst.add);
        this.updateIndex(at, a.path, a.burst.add);
      }
      const iatt = this.identified(at, iattOf(fs.fstatSync(os)), a.xattrs?.[XATTR_GFID]);
      this.register(fd, os, iatt.ino, iatt.gfid);
      return { iatt, created: true, ...(a.burst ? { burst: true } : {}) };
    } catch (e) {
      try { fs.closeSync(os); } catch { /* already failing */ }
      throw FsError.from(e);
    }
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    const mode = Number(a.mode);
    const type = mode & S_IFMT;
    if (type !== fs.constants.S_IFREG && type !== fs.constants.S_IFIFO && type !== fs.constants.S_IFCHR
      && type !== fs.constants.S_IFBLK && type !== fs.constants.S_IFSOCK) {
      throw FsError.of('EINVAL', `mknod of type ${(type >> 12).toString(8)}`);
    }
    return this.at(a.path, f, (at) => {
      if (type === fs.constants.S_IFREG) {
        // Regular files (DHT link files among them): create exclusively, then set the exact mode
        // (the umask and open(2) would drop the sticky bit otherwise).
        // Synchronous, as the other metadata calls: three thread-pool round trips cost more.
        let fd: number;
        try {
          fd = asCaller(f, () => this.openAt(at, O_CREAT | O_EXCL | O_WRONLY, 0o600));
        } catch (e) {
          throw FsError.from(e);
        }
        try {
          asCaller(f, () => fs.fchmodSync(fd, mode & 0o7777));
        } finally {
          fs.closeSync(fd);
        }
      } else {
        // As the caller: the kernel refuses devices to anyone without CAP_MKNOD, as on a local disk.
        try {
          asCaller(f, () => sys.mknodat(at.dir, at.name, mode, Number(a.rdev) || 0));
        } catch (e) {
          throw FsError.from(e);
        }
      }
      this.setXattrs(at, a.xattrs);
      return { iatt: this.identified(at, this.lstatAt(at), a.xattrs?.[XATTR_GFID]) };
    });
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    await this.openExisting(f, a.path, Number(a.flags), false, this.freshFd(a.fd));
    return {};
  }

  /**
   * Opens a file that exists (O_CREAT and O_EXCL dropped); never a link file. A truncating
   * open waits at the migration gate and resolves the name after the wait. identify: the
   * attributes carry the gfid (create's reply). fd is registered as open on it.
   */
  private async openExisting(f: Frame, volPath: string, requested: number, identify: boolean, fd: Fd): Promise<{ iatt: Iatt }> {
    const flags = requested & ~(O_CREAT | O_EXCL);
    // execve(2) opens the file for reading but asks for exec permission only: the brick
    // checks that, then opens with its own rights.
    const exec = (requested & FMODE_EXEC) !== 0 && (requested & O_ACCMODE) === O_RDONLY;
    const open = (at: At): { iatt: Iatt } => {
      if (exec) {
        try {
          asCaller(f, () => sys.faccessat(at.dir, at.name, X_OK));
        } catch (e) {
          throw FsError.from(e);
        }
      }
      const os = this.openAs(exec ? ROOT_FRAME : f, at, flags, 0);
      const iatt = iattOf(fs.fstatSync(os));
      try {
        this.refuseLinkfile(at, iatt);
        // Opened twice at once (a truncating open waits at the gate): the first one keeps it.
        if (fd.ctx.has(this.fdKey)) throw FsError.of('EBADF', `fd on ${fd.path} is already open on this brick`);
      } catch (e) {
        fs.closeSync(os);
        throw e;
      }
      const gfid = this.gfidOf(at);
      this.register(fd, os, iatt.ino, gfid);
      if (identify && gfid) iatt.gfid = gfid;
      return { iatt };
    };
    return flags & O_TRUNC ? this.changeAt(volPath, f, open) : this.at(volPath, f, open);
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const fd = this.readableFd(a.fd);
    const size = Math.min(Math.max(0, Number(a.size) | 0), 16 * 1024 * 1024);
    const buf = Buffer.allocUnsafe(size);
    try {
      const bytesRead = await this.pread(fd.os, buf, size, Number(a.offset));
      return { data: bytesRead === size ? buf : buf.subarray(0, bytesRead) };
    } catch (e) {
      throw FsError.from(e);
    }
  }

  /**
   * A read by path: open, pread, close, with no fd left behind for a client to hold. The open
   * and the checks are synchronous like the other metadata calls; the pread is read's.
   */
  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    const size = Math.min(Math.max(0, Number(a.size) | 0), 16 * 1024 * 1024);
    return this.at(a.path, f, async (at) => {
      const fd = this.openAs(f, at, O_RDONLY, 0);
      try {
        const st = fs.fstatSync(fd);
        if (st.isDirectory()) throw FsError.of('EISDIR', String(a.path));
        this.refuseLinkfile(at, iattOf(st));
        const buf = Buffer.allocUnsafe(size);
        const bytesRead = await this.pread(fd, buf, size, Number(a.offset)).catch((e) => { throw FsError.from(e); });
        return { data: bytesRead === size ? buf : buf.subarray(0, bytesRead) };
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /**
   * pread of up to `size` bytes at `offset` into buf; the bytes read. A small one goes
   * synchronously unless another read is in the thread pool (SYNC_READ_MAX_BYTES): a brick
   * serving several readers at once keeps their reads in parallel there, so one that waits
   * for the disk does not hold the others behind it.
   */
  private async pread(fd: number, buf: Buffer, size: number, offset: number): Promise<number> {
    if (size <= SYNC_READ_MAX_BYTES && this.poolReads === 0) return fs.readSync(fd, buf, 0, size, offset);
    this.poolReads++;
    try {
      return (await fsRead(fd, buf, 0, size, offset)).bytesRead;
    } finally {
      this.poolReads--;
    }
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    if (!(a.data instanceof Uint8Array)) throw FsError.of('EINVAL', 'write data must be binary');
    return this.changeByFd(a.fd, async (fd) => {
      this.writeback.reportError(fd);
      dropPrivs(f, fd.os);
      const offset = Number(a.offset);
      // Counted as it is sent: bulk writes finish in the thread pool in any order.
      this.writeback.written(fd, offset, a.data.length);
      try {
        if (a.data.length < SYNC_WRITE_MAX_BYTES) return { size: fs.writeSync(fd.os, a.data, 0, a.data.length, offset) };
        const { bytesWritten } = await fsWrite(fd.os, a.data, 0, a.data.length, offset);
        return { size: bytesWritten };
      } catch (e) {
        throw FsError.from(e);
      }
    });
  }

  /** Writes in order through one fd, synchronously (small extents: no thread-pool hop each); stops at a short one. */
  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    const extents: unknown = a.extents;
    if (!Array.isArray(extents) || extents.length > MAX_WRITEV_EXTENTS) {
      throw FsError.of('EINVAL', `writev extents must be an array of at most ${MAX_WRITEV_EXTENTS}`);
    }
    for (const e of extents as Array<{ offset?: unknown; data?: unknown }>) {
      if (!(e?.data instanceof Uint8Array) || !Number.isSafeInteger(e.offset) || (e.offset as number) < 0) {
        throw FsError.of('EINVAL', 'each writev extent needs binary data and an offset');
      }
    }
    return this.changeByFd(a.fd, async (fd) => {
      this.writeback.reportError(fd);
      dropPrivs(f, fd.os);
      let size = 0;
      try {
        for (const e of a.extents) {
          const n = fs.writeSync(fd.os, e.data, 0, e.data.length, e.offset);
          size += n;
          this.writeback.written(fd, e.offset, n);
          if (n < e.data.length) break;
        }
      } catch (e) {
        // Bytes already written are reported; the failure shows on the next write.
        if (size === 0) throw FsError.from(e);
      }
      return { size };
    });
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.changeByFd(a.fd, async (fd) => {
      dropPrivs(f, fd.os);
      await fsFtruncate(fd.os, Number(a.size)).catch((e) => { throw FsError.from(e); });
      return {};
    });
  }

  /** The fdatasync early writeback starts (its own method so a test can make it fail). */
  protected backgroundDatasync(fd: number): Promise<void> {
    return fsFdatasync(fd);
  }

  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    const fd = this.checkFd(a.fd);
    await this.writeback.settled(fd);
    this.writeback.reportError(fd);
    await (a.datasync ? fsFdatasync(fd.os) : fsFsync(fd.os)).catch((e) => { throw FsError.from(e); });
    return {};
  }

  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    this.checkFd(a.fd);
    return {};
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const fd = this.checkFd(a.fd);
    a.fd.ctx.take(this.fdKey);
    const same = this.openByIno.get(fd.ino)!;
    same.delete(fd);
    if (same.size === 0) this.openByIno.delete(fd.ino);
    this.openFds--;
    this.gate.forgetFd(fd);
    const lost = await this.writeback.forget(fd);
    if (lost) this.log.warn(`fd on ${a.fd.path}: a writeback failed after its last write and no fsync asked (${lost.code}: ${lost.message})`);
    try {
      fs.closeSync(fd.os);
    } catch (e) {
      throw FsError.from(e);
    }
    return {};
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    await this.changeAt(a.path, f, (at) => {
      try {
        asCaller(f, () => sys.unlinkat(at.dir, at.name));
      } catch (e) {
        throw FsError.from(e);
      }
    }, (at) => this.checkLinkfileGuards(at, a.path, a));
    this.forgetIndex(a.path);
    return {};
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    if (a.path === '/') throw FsError.of('EBUSY', 'cannot remove the brick root');
    this.at(a.path, f, (at) => {
      try {
        asCaller(f, () => sys.unlinkat(at.dir, at.name, sys.AT_REMOVEDIR));
      } catch (e) {
        throw FsError.from(e);
      }
    });
    this.forgetIndex(a.path);
    return {};
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    if (this.split(a.from).name === '.' || this.split(a.to).name === '.') throw FsError.of('EPERM', 'cannot rename the brick root');
    let replacedLinkto: string | undefined;
    // Both parents resolved after the migration gate, the target's inside the source's.
    await this.changeAt(a.from, f, (from) => this.at(a.to, f, (to) => {
      // Under the gate: a migration that committed meanwhile left a link file here.
      this.checkLinkfileGuards(from, a.from, a);
      const target = this.statAt(to);
      replacedLinkto = target && this.linkTarget(to, target);
      try {
        asCaller(f, () => sys.renameat2(from.dir, from.name, to.dir, to.name));
      } catch (e) {
        throw FsError.from(e);
      }
    }));
    // A pending heal follows the name (only a file's own entry; a directory's children keep theirs).
    const index = this.indexDir(false);
    const entry = this.indexName(a.from);
    try {
      if (index !== undefined && sys.fstatatQuiet(index, entry)) {
        const to = this.indexName(a.to);
        // A hashed entry holds its path: it is made anew for the new one.
        if (entry.startsWith(HASHED_INDEX_PREFIX) || to.startsWith(HASHED_INDEX_PREFIX)) {
          sys.unlinkat(index, entry);
          this.addIndexEntry(index, to, a.to);
        } else {
          sys.renameat2(index, entry, index, to);
        }
      }
    } catch { /* removed meanwhile, or a path too long to have an entry */ }
    return replacedLinkto === undefined ? {} : { replacedLinkto };
  }


  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    if (this.split(a.target).name === '.') throw FsError.of('EPERM', 'cannot link the brick root');
    return this.changeAt(a.target, f, (target) => this.at(a.path, f, (at) => {
      try {
        asCaller(f, () => sys.linkat(target.dir, target.name, at.dir, at.name));
      } catch (e) {
        throw FsError.from(e);
      }
      return { iatt: this.identified(at, this.lstatAt(at)) };
    }));
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    if (typeof a.target !== 'string' || a.target.includes('\0')) throw FsError.of('EINVAL');
    // The target is stored as written; the brick never follows it (every parent is resolved
    // with RESOLVE_NO_SYMLINKS, every final name with a call that does not follow it).
    return this.at(a.path, f, (at) => {
      try {
        asCaller(f, () => sys.symlinkat(a.target, at.dir, at.name));
      } catch (e) {
        throw FsError.from(e);
      }
      // The gfid too: trusted.* xattrs sit on the link itself (setxattrat never follows it).
      this.setXattrs(at, a.xattrs);
      return { iatt: this.identified(at, this.lstatAt(at), a.xattrs?.[XATTR_GFID]) };
    });
  }

  async readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return this.at(a.path, f, (at) => {
      try {
        return { target: asCaller(f, () => sys.readlinkat(at.dir, at.name)) };
      } catch (e) {
        throw FsError.from(e);
      }
    });
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const attrs = a.attrs ?? {};
    let cur!: Iatt;
    return this.changeAt(a.path, f, async (at) => {
      await this.applyAttrs(f, at, attrs, cur, (cur.mode & S_IFMT) === S_IFLNK);
      return { iatt: this.identified(at, this.lstatAt(at)) };
    }, (at) => {
      cur = this.lstatAs(f, at);
      this.refuseLinkfile(at, cur);
    });
  }

  /**
   * Each change as the caller, so the kernel applies its rules (only the owner chmods, only
   * root chowns to another user, times other than now need ownership, a chown clears setuid).
   * Owner before mode: a chown clears setuid and setgid, which a mode set with it (a heal
   * copying both) means to keep. Clearing only setuid/setgid is the kernel's own doing after
   * a write by someone else (FUSE sends it as a setattr from the writer): done as root.
   */
  private async applyAttrs(f: Frame, at: At, attrs: SetattrFields, cur: Iatt, isLink: boolean): Promise<void> {
    try {
      if (attrs.uid !== undefined || attrs.gid !== undefined) {
        asCaller(f, () => sys.fchownat(at.dir, at.name, attrs.uid ?? -1, attrs.gid ?? -1));
      }
      if (attrs.mode !== undefined && !isLink) {
        const mode = Number(attrs.mode) & 0o7777;
        const privs = S_ISUID | S_ISGID;
        const onlyDropsPrivs = (mode & ~privs) === (cur.mode & 0o7777 & ~privs) && (mode & privs & ~cur.mode) === 0;
        if (onlyDropsPrivs) sys.fchmodat(at.dir, at.name, mode);
        else asCaller(f, () => sys.fchmodat(at.dir, at.name, mode));
      }
      if (attrs.size !== undefined) {
        if (isLink) throw FsError.of('EINVAL');
        // Opened as the caller (write permission), truncated in the thread pool.
        const fd = asCaller(f, () => this.openAt(at, O_WRONLY));
        try {
          dropPrivs(f, fd);
          await fsFtruncate(fd, Number(attrs.size));
        } finally {
          await fsClose(fd);
        }
      }
      if (attrs.atimeMs !== undefined || attrs.mtimeMs !== undefined) this.setTimes(f, at, attrs, cur);
    } catch (e) {
      throw FsError.from(e);
    }
  }

  /** Times as utimensat(2) takes them: "now" needs only write permission, a given time ownership. */
  private setTimes(f: Frame, at: At, attrs: SetattrFields, cur: Iatt): void {
    const time = (now: boolean | undefined, ms: number | undefined, was: number): sys.TimeArg => {
      if (now) return sys.UTIME_NOW;
      // Both given (no "now"): a missing one keeps its value, as lutimes would set it.
      return ms ?? (attrs.atimeNow || attrs.mtimeNow ? null : was);
    };
    asCaller(f, () => sys.utimensat(at.dir, at.name, time(attrs.atimeNow, attrs.atimeMs, cur.atimeMs), time(attrs.mtimeNow, attrs.mtimeMs, cur.mtimeMs)));
  }

  async statfs(_a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    // The root's own fd, through its magic link: statfs of the directory the brick resolved at start.
    const s = await fsp.statfs(`/proc/self/fd/${this.rootFd}`).catch((e) => { throw FsError.from(e); });
    const statfs: StatFs = {
      bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255,
    };
    return { statfs };
  }

  async getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    const name = String(a.name);
    return this.at(a.path, undefined, (at) => {
      this.refuseLinkfileFor(at, name);
      let v: Buffer | null;
      try {
        v = sys.getxattrat(at.dir, at.name, name);
      } catch (e) {
        throw FsError.from(e);
      }
      if (v === null) throw FsError.of('ENODATA');
      return { value: v };
    });
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    const name = String(a.name);
    if (!(a.value instanceof Uint8Array)) throw FsError.of('EINVAL', 'xattr value must be binary');
    const flags = Number(a.flags) || 0;
    const check = (at: At): void => {
      this.refuseLinkfileFor(at, name);
      if (flags & 3) {
        const exists = this.getXattr(at, name) !== undefined;
        if (flags & 1 && exists) throw FsError.of('EEXIST');
        if (flags & 2 && !exists) throw FsError.of('ENODATA');
      }
    };
    this.refuseVolumeId(name);
    const set = (at: At): void => this.setXattrs(at, { [name]: a.value });
    if (name.startsWith(INTERNAL_XATTR_PREFIX)) this.at(a.path, undefined, (at) => { check(at); set(at); });
    else await this.changeAt(a.path, undefined, set, check);
    return {};
  }

  /** Adds int32 counters atomically: the brick is single-threaded and this runs without awaiting. */
  async xattrop(a: FopArgs<'xattrop'>, f: Frame): Promise<FopReply<'xattrop'>> {
    return this.at(a.path, undefined, (at) => {
      const st = this.lstatAt(at);
      const out: Xattrs = {};
      let touchesChangelog = false;
      for (const [name, delta] of Object.entries(a.add ?? {})) {
        assertCounters(`xattrop ${name}`, delta);
        const cur = this.getXattr(at, name);
        const next = Buffer.alloc(Math.max(delta.length, cur?.length ?? 0));
        const d = Buffer.from(delta.buffer, delta.byteOffset, delta.byteLength);
        for (let i = 0; i < next.length; i += 4) {
          const c = cur && i < cur.length ? cur.readInt32BE(i) : 0;
          const x = i < d.length ? d.readInt32BE(i) : 0;
          next.writeInt32BE((c + x) | 0, i);
        }
        this.setXattrs(at, { [name]: next });
        out[name] = next;
        touchesChangelog ||= isChangelogXattr(name);
      }
      if (touchesChangelog) this.updateIndex(at, a.path, out);
      // Setting xattrs leaves atime alone: the lstat above still has it.
      if (typeof a.mtimeMs === 'number') {
        try {
          sys.utimensat(at.dir, at.name, st.atimeMs, a.mtimeMs);
        } catch (e) {
          throw FsError.from(e);
        }
      }
      return { xattrs: out, iatt: this.lstatAt(at) };
    });
  }

  /**
   * An index entry's name: the volume path, base64url; when that is longer than a name may be
   * (a path of more than 191 bytes), HASHED_INDEX_PREFIX and a hash of the path, the path
   * being the entry's content.
   */
  private indexName(volPath: string): string {
    const name = Buffer.from(volPath).toString('base64url');
    return name.length <= NAME_MAX ? name : HASHED_INDEX_PREFIX + createHash('sha256').update(volPath).digest('base64url');
  }

  /** The volume path an index entry stands for. */
  private indexPath(index: number, name: string): string | undefined {
    if (!name.startsWith(HASHED_INDEX_PREFIX)) return Buffer.from(name, 'base64url').toString();
    try {
      const fd = sys.openat2(index, name, O_RDONLY | O_NOFOLLOW, 0, BENEATH);
      try {
        return fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined; // removed meanwhile
    }
  }

  /**
   * The index directory's fd (BRICK_PRIVATE_DIR/index, beneath the private directory's fd),
   * kept once it exists; made when create is set, else undefined while there is none.
   */
  private indexDir(create: boolean): number | undefined {
    if (this.indexFd >= 0) return this.indexFd;
    // Only this brick makes its index: once found missing, it stays so until made here. A
    // failed open costs an Error per unlink and rename of a volume that never has one.
    if (!create && this.indexMissing) return undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        this.indexFd = sys.openat2(this.privateFd, 'index', sys.O_PATH | sys.O_DIRECTORY, 0, BENEATH);
        return this.indexFd;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !create || attempt > 0) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !create) {
            this.indexMissing = true;
            return undefined;
          }
          throw FsError.from(e);
        }
        try {
          sys.mkdirat(this.privateFd, 'index', 0o700);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw FsError.from(err);
        }
      }
    }
  }

  /** A removed name has nothing left to heal here (an lstat first: there rarely is an entry). */
  private forgetIndex(volPath: string): void {
    const index = this.indexDir(false);
    if (index === undefined) return;
    const entry = this.indexName(volPath);
    try {
      if (sys.fstatatQuiet(index, entry)) sys.unlinkat(index, entry);
    } catch { /* removed meanwhile, or a name too long to have an entry */ }
  }

  /**
   * Keeps a path in the self-heal index while any of its changelog counters is non-zero.
   * `written` holds the counters this xattrop just set: only when they are all zero are the
   * others read (an xattr read costs more than the syscall: the library makes a Buffer).
   */
  private updateIndex(at: At, volPath: string, written: Xattrs): void {
    let pending = false;
    for (const name in written) {
      if (isChangelogXattr(name) && written[name]!.some((b) => b !== 0)) {
        pending = true;
        break;
      }
    }
    if (!pending) {
      for (const name of sys.listxattrat(at.dir, at.name)) {
        if (!isChangelogXattr(name) || name in written) continue;
        const v = this.getXattr(at, name);
        if (v && v.some((b) => b !== 0)) {
          pending = true;
          break;
        }
      }
    }
    const entry = this.indexName(volPath);
    if (pending) {
      const index = this.indexDir(true)!;
      if (!sys.fstatatQuiet(index, entry)) this.addIndexEntry(index, entry, volPath);
    } else {
      const index = this.indexDir(false);
      if (index === undefined) return;
      try {
        sys.unlinkat(index, entry);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }

  /**
   * An index entry is a hard link to one empty file (as GlusterFS's index translator does it):
   * a link and an unlink cost a third of creating and removing an inode per transaction.
   * Readers only list the names. Past the link limit (or on a brick that refuses links) an
   * entry is a file of its own.
   */
  private addIndexEntry(index: number, entry: string, volPath: string): void {
    if (entry.startsWith(HASHED_INDEX_PREFIX)) {
      const fd = sys.openat2(index, entry, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW, 0o600, BENEATH);
      try {
        fs.writeSync(fd, volPath);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        sys.linkat(this.privateFd, INDEX_LINK_BASE, index, entry);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return;
        if (code !== 'ENOENT' || attempt > 0) break;
        // First entry on this brick: the base file.
        try {
          fs.closeSync(sys.openat2(this.privateFd, INDEX_LINK_BASE, O_CREAT | O_WRONLY | O_NOFOLLOW, 0o600, BENEATH));
        } catch { /* the link below says why */ }
      }
    }
    fs.closeSync(sys.openat2(index, entry, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW, 0o600, BENEATH));
  }

  async indexlist(_a: FopArgs<'indexlist'>, f: Frame): Promise<FopReply<'indexlist'>> {
    const index = this.indexDir(false);
    let names: string[] = [];
    try {
      if (index !== undefined) names = fs.readdirSync(`/proc/self/fd/${index}`);
    } catch { /* no index yet */ }
    const paths: string[] = [];
    for (const n of names) {
      const p = index === undefined ? undefined : this.indexPath(index, n);
      if (p !== undefined) paths.push(p);
    }
    return { paths };
  }

  async listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return this.at(a.path, undefined, (at) => {
      this.refuseLinkfileFor(at, '');
      try {
        return { names: sys.listxattrat(at.dir, at.name) };
      } catch (e) {
        throw FsError.from(e);
      }
    });
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    const name = String(a.name);
    this.refuseVolumeId(name);
    const check = (at: At): void => {
      this.refuseLinkfileFor(at, name);
      if (this.getXattr(at, name) === undefined) {
        this.lstatAt(at);
        throw FsError.of('ENODATA');
      }
    };
    const remove = (at: At): void => {
      try {
        sys.removexattrat(at.dir, at.name, name);
      } catch (e) {
        throw FsError.from(e);
      }
    };
    if (name.startsWith(INTERNAL_XATTR_PREFIX)) this.at(a.path, undefined, (at) => { check(at); remove(at); });
    else await this.changeAt(a.path, undefined, remove, check);
    return {};
  }

  /** The brick's part in moving a file to another brick (see the migrate fop in lib/fops.ts). */
  async migrate(a: FopArgs<'migrate'>, f: Frame): Promise<FopReply<'migrate'>> {
    const owner = String(a.owner);
    const st = this.at(a.path, undefined, (at) => this.statAt(at));
    if (!st) {
      if (a.op === 'thaw') return {};
      throw FsError.of('ENOENT');
    }
    if ((st.mode & S_IFMT) !== S_IFREG) throw FsError.of('EINVAL', 'only regular files are moved');
    switch (a.op) {
      case 'watch':
        this.gate.watch(st.ino, owner);
        return { iatt: iattOf(st) };
      case 'freeze': {
        const { dirty } = await this.gate.freeze(st.ino, owner);
        return { iatt: this.at(a.path, undefined, (at) => this.lstatAt(at)), dirty };
      }
      case 'thaw':
        this.gate.thaw(st.ino, owner);
        return {};
      case 'commit':
        if (!this.gate.holds(st.ino, owner)) throw FsError.of('EINVAL', `${a.path} is not frozen by this mover`);
        // Synchronously from unlink to marking: once unlinked, the inode number is free, and a
        // file created meanwhile (a staging copy of another move) could get it and its fds
        // would be marked moved too.
        this.at(a.path, undefined, (at) => {
          try {
            sys.unlinkat(at.dir, at.name);
          } catch (e) {
            throw FsError.from(e);
          }
        });
        this.gate.markMoved(this.openByIno.get(st.ino) ?? []);
        this.forgetIndex(a.path);
        this.gate.thaw(st.ino, owner);
        return {};
      default:
        throw FsError.of('EINVAL', `unknown migrate op ${String(a.op)}`);
    }
  }

  override clientGone(clientId: string): void {
    super.clientGone(clientId);
    this.gate.ownerGone(clientId);
  }
}

registerXlator('storage/posix', Posix);
