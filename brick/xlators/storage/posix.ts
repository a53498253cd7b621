import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { promisify } from 'node:util';
import pathMod from 'node:path';
import * as xattr from '@napi-rs/xattr';
import { FsError } from '../../../lib/errors.js';
import {
  BRICK_PRIVATE_DIR, INTERNAL_XATTR_PREFIX, LINKFILE_MODE, LOOKUP_DATA_MAX_BYTES, MIGRATE_STAGING_DIR, isChangelogXattr, S_IFLNK, S_IFMT,
  S_IFREG, XATTR_GFID, XATTR_LINKTO,
  type DirEntry, type FopArgs, type FopReply, type Iatt, type SetattrFields, type StatFs, type Xattrs,
} from '../../../lib/fops.js';
import { BoundedMap } from '../../../lib/bounded-map.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorInit } from '../../../lib/xlator.js';
import { asCaller } from './credentials.js';
import { EarlyWriteback } from './early-writeback.js';
import * as sys from './sys.js';
import { MigrationGate } from './migration-gate.js';

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

/** Changelog deltas and counters are int32s, big-endian, back to back. */
function assertCounters(what: string, v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.length % 4 !== 0) throw FsError.of('EINVAL', `${what}: not int32 counters`);
}

export function iattOf(st: fs.Stats): Iatt {
  return {
    mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, size: st.size,
    blocks: st.blocks, blksize: st.blksize, ino: st.ino,
    atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
  };
}

/** @napi-rs/xattr reports errors as "... (os error N)": recover the errno. */
function xattrError(e: unknown): FsError {
  const m = /os error (\d+)/.exec((e as Error)?.message ?? '');
  return m ? FsError.from({ errno: Number(m[1]), message: (e as Error).message }) : FsError.from(e);
}

/**
 * storage/posix: the bottom of a brick. Volume paths map to the same paths under the
 * brick directory, as plain files. Every path is confined to the brick: "..", "." and
 * empty components are refused, the parent directory must resolve (symlinks included)
 * inside the brick, and the final component is never followed when it is a symlink.
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
  } as const;

  private readonly root: string;
  /** The self-heal index: one entry per path with a non-zero changelog counter. */
  private readonly indexDir: string;
  private rootReal = '';
  /** fds this brick opened for clients, with their inode: nothing else may be used through the wire. */
  private readonly openFds = new Map<number, number>();
  private readonly gate = new MigrationGate();
  private readonly writeback = new EarlyWriteback(() => this.optNumber('writeback-window'), (fd) => this.backgroundDatasync(fd));
  /**
   * Parent directories whose real path was checked to lie inside the brick. Only a symlink
   * can make a checked path lead out, and symlinks appear under a name only through symlink,
   * link or rename on this brick: those clear it. It saves a realpath (a readlink per path
   * component) on nearly every request.
   */
  private readonly confinedParents = new BoundedMap<string, true>(8192);
  /** Reads in the thread pool now: while there are any, every read goes there (pread). */
  private poolReads = 0;

  constructor(init: XlatorInit) {
    super(init);
    this.root = pathMod.resolve(this.optString('directory'));
    this.indexDir = pathMod.join(this.root, BRICK_PRIVATE_DIR, 'index');
  }

  override async init(): Promise<void> {
    const st = await fsp.stat(this.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`brick directory ${this.root} does not exist or is not a directory`);
    this.rootReal = await fsp.realpath(this.root);
    // Modes come from the client, already under its caller's umask (the kernel applies it):
    // the brick process's own umask must not take more bits away.
    process.umask(0);
    await fsp.mkdir(pathMod.join(this.root, BRICK_PRIVATE_DIR, MIGRATE_STAGING_DIR), { recursive: true, mode: 0o700 });
  }

  override async fini(): Promise<void> {
    for (const fd of this.openFds.keys()) {
      await this.writeback.forget(fd);
      fs.closeSync(fd);
    }
    this.openFds.clear();
  }

  override statedump(): Record<string, unknown> {
    return { directory: this.root, openFds: this.openFds.size, migration: this.gate.statedump(), writeback: this.writeback.statedump() };
  }

  /** Brick path of a volume path, refusing anything that could leave the brick. */
  private resolve(volPath: unknown): string {
    if (typeof volPath !== 'string' || !volPath.startsWith('/') || volPath.includes('\0')) {
      throw FsError.of('EINVAL', `bad path ${JSON.stringify(volPath)}`);
    }
    if (volPath === '/') return this.root;
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
    return this.root + (volPath.endsWith('/') ? volPath.slice(0, -1) : volPath);
  }

  /** Resolves and checks that the parent directory really lies inside the brick. */
  private confined(volPath: unknown): string {
    const abs = this.resolve(volPath);
    if (abs === this.root) return abs;
    const parent = pathMod.dirname(abs);
    if (parent === this.root || this.confinedParents.has(parent)) return abs;
    let real: string;
    try {
      // Synchronous on purpose, here and in every metadata fop (lookup, create, mkdir, setattr,
      // rename, readdir...): metadata calls on a local disk take microseconds, less than the
      // thread-pool round trip an async call costs (measured under load: brick setattr 193 -> 129 us).
      // Data (read, write, fsync, truncate) still goes through the thread pool.
      real = fs.realpathSync.native(parent);
    } catch (e) {
      throw FsError.from(e);
    }
    if (real !== this.rootReal && !real.startsWith(this.rootReal + '/')) {
      throw FsError.of('EPERM', `path ${String(volPath)} leads out of the brick`);
    }
    this.confinedParents.set(parent, true);
    return abs;
  }

  /** Runs a change that may put a symlink under some name: checked parents must be checked again. */
  private mayAddSymlink(change: () => void): void {
    try {
      change();
    } finally {
      this.confinedParents.clear();
    }
  }

  private checkFd(fd: unknown): number {
    if (typeof fd !== 'number' || !this.openFds.has(fd)) throw FsError.of('EBADF', `fd ${String(fd)} is not open on this brick`);
    return fd;
  }

  /** Runs a change through an fd, under the migration gate of its inode. */
  private changeByFd<T>(fd: unknown, fn: (fd: number) => Promise<T>): Promise<T> {
    const checked = this.checkFd(fd);
    return this.gate.change(this.openFds.get(checked)!, () => fn(checked), checked);
  }

  /** A read through an fd: refused (ESTALE) once the file has moved to another brick. */
  private readableFd(fd: unknown): number {
    const checked = this.checkFd(fd);
    this.gate.checkFd(checked);
    return checked;
  }

  /** Runs a change by path under the migration gate, when a file is being moved at all. */
  private async changeByPath<T>(abs: string, fn: () => Promise<T>): Promise<T> {
    if (!this.gate.busy) return fn();
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isFile()) return fn();
    return this.gate.change(st.ino, fn);
  }

  private setXattrs(abs: string, xattrs: Xattrs | undefined): void {
    if (!xattrs) return;
    for (const [name, value] of Object.entries(xattrs)) {
      try {
        xattr.setAttributeSync(abs, name, Buffer.from(value));
      } catch (e) {
        throw xattrError(e);
      }
    }
  }

  private getXattr(abs: string, name: string): Buffer | undefined {
    try {
      return xattr.getAttributeSync(abs, name) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** A DHT link file: sticky-only mode, empty, with a link target. Never served as data. */
  private isLinkfile(abs: string, iatt: Iatt): boolean {
    return this.linkTarget(abs, iatt) !== undefined;
  }

  /** Where the DHT link file at abs (with these attributes) points; undefined when it is not one. */
  private linkTarget(abs: string, st: { mode: number; size: number }): string | undefined {
    if (st.mode !== LINKFILE_MODE || st.size !== 0) return undefined;
    return this.getXattr(abs, XATTR_LINKTO)?.toString();
  }

  /**
   * Distribute's guards on unlink and rename, which it sends without a lookup round trip
   * first. linkfileOnly: only its stale link file may go (a real file that took the name
   * meanwhile stays). dataOnly: the file where it last saw it; a link file there means the
   * data moved (ENOENT: distribute looks the name up after all).
   */
  private async checkLinkfileGuards(abs: string, volPath: string, g: { linkfileOnly?: boolean; dataOnly?: boolean }): Promise<void> {
    if (!g.linkfileOnly && !g.dataOnly) return;
    const link = this.isLinkfile(abs, await this.lstatIatt(abs));
    if (g.linkfileOnly && !link) throw FsError.of('ENOENT', `${volPath} is not a link file`);
    if (g.dataOnly && link) throw FsError.of('ENOENT', `${volPath} is a link file`);
  }

  /** Refuses data and user-metadata fops on a link file: the caller's idea of where the file lives is stale. */
  private refuseLinkfile(abs: string, iatt: Iatt): void {
    if (this.isLinkfile(abs, iatt)) throw FsError.of('ESTALE', 'this name is a link file here; the data lives elsewhere');
  }

  /** Same, for fops that carry an xattr name: brickfs' own names may touch link files. */
  private refuseLinkfileFor(abs: string, name: string): void {
    if (name.startsWith(INTERNAL_XATTR_PREFIX)) return;
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (st) this.refuseLinkfile(abs, iattOf(st));
  }

  /** The gfid of an entry as Iatt carries it (hex), if it has one. */
  private gfidOf(abs: string): string | undefined {
    const v = this.getXattr(abs, XATTR_GFID);
    return v?.length === 16 ? v.toString('hex') : undefined;
  }

  /** Attributes of a brick path with its gfid: what entry replies carry (st_ino derives from the gfid). */
  private identified(abs: string, iatt: Iatt, gfid?: Buffer | Uint8Array): Iatt {
    const g = gfid?.length === 16 ? Buffer.from(gfid).toString('hex') : this.gfidOf(abs);
    if (g) iatt.gfid = g;
    return iatt;
  }

  /** lstat as the caller: searching the parents needs their permission. */
  private lstatAs(f: Frame, abs: string): Iatt {
    let st: fs.Stats | undefined;
    try {
      st = asCaller(f, () => fs.lstatSync(abs, { throwIfNoEntry: false }));
    } catch (e) {
      throw FsError.from(e);
    }
    if (!st) throw FsError.of('ENOENT', `ENOENT: no such file or directory, lstat '${abs}'`);
    return iattOf(st);
  }

  private async lstatIatt(abs: string): Promise<Iatt> {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      throw FsError.from(e);
    }
    // A missing name is common (lookups before create, on the other bricks of a distribute
    // set): Node's own ENOENT error costs ~20 us of stack capture; this is the same error.
    if (!st) throw FsError.of('ENOENT', `ENOENT: no such file or directory, lstat '${abs}'`);
    return iattOf(st);
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const abs = this.confined(a.path);
    const iatt = this.identified(abs, this.lstatAs(f, abs));
    const reply: FopReply<'lookup'> = { iatt };
    const linkto = this.linkTarget(abs, iatt);
    if (linkto !== undefined) reply.linkto = linkto;
    if (a.xattrs?.length) {
      const out: Xattrs = {};
      for (const name of a.xattrs) {
        const v = this.getXattr(abs, String(name));
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
      const data = await this.contentOf(abs, iatt);
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
  private async contentOf(abs: string, iatt: Iatt): Promise<Buffer | undefined> {
    if (iatt.size === 0) return Buffer.alloc(0);
    let fd: number;
    try {
      fd = fs.openSync(abs, O_RDONLY | O_NOFOLLOW);
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
    return { iatt: iattOf(await fsFstat(this.readableFd(a.fd)).catch((e) => { throw FsError.from(e); })) };
  }

  async access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    const abs = this.confined(a.path);
    const st = await this.lstatIatt(abs);
    if ((st.mode & S_IFMT) === S_IFLNK) return {};
    await fsp.access(abs, Number(a.mode) & 7).catch((e) => { throw FsError.from(e); });
    return {};
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const abs = this.confined(a.path);
    const st = await this.lstatIatt(abs);
    if ((st.mode & S_IFMT) !== fs.constants.S_IFDIR) throw FsError.of('ENOTDIR');
    let names: string[];
    try {
      names = asCaller(f, () => fs.readdirSync(abs));
    } catch (e) {
      throw FsError.from(e);
    }
    if (abs === this.root) names = names.filter((n) => n !== BRICK_PRIVATE_DIR);
    const entries: DirEntry[] = [];
    for (const name of names) {
      const s = fs.lstatSync(abs + '/' + name, { throwIfNoEntry: false });
      if (!s) continue; // removed meanwhile
      const e: DirEntry = { name, iatt: this.identified(abs + '/' + name, iattOf(s)) };
      const linkto = this.linkTarget(abs + '/' + name, s);
      if (linkto !== undefined) e.linkto = linkto;
      entries.push(e);
    }
    return { entries };
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    const abs = this.confined(a.path);
    try {
      asCaller(f, () => fs.mkdirSync(abs, Number(a.mode) & 0o7777));
    } catch (e) {
      throw FsError.from(e);
    }
    this.setXattrs(abs, a.xattrs);
    return { iatt: this.identified(abs, await this.lstatIatt(abs), a.xattrs?.[XATTR_GFID]) };
  }

  /** Opens for a client; the caller registers the fd with its inode (it stats the fd anyway). */
  private async openAbs(f: Frame, abs: string, flags: number, mode: number): Promise<number> {
    try {
      return asCaller(f, () => fs.openSync(abs, (flags & ALLOWED_OPEN_FLAGS) | O_NOFOLLOW, mode));
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
    const abs = this.confined(a.path);
    const flags = Number(a.flags);
    let fd: number;
    try {
      fd = asCaller(f, () => fs.openSync(abs, (flags & ALLOWED_OPEN_FLAGS) | O_CREAT | O_EXCL | O_NOFOLLOW, Number(a.mode) & 0o7777));
    } catch (e) {
      if (flags & O_EXCL || (e as NodeJS.ErrnoException).code !== 'EEXIST') throw FsError.from(e);
      const { fd: existing, iatt } = await this.openExisting(f, abs, flags);
      return { fd: existing, iatt: this.identified(abs, iatt) };
    }
    try {
      this.setXattrs(abs, a.xattrs);
      // A burst's marks on a file that had none: the counters are the deltas themselves.
      if (a.burst) {
        for (const [name, v] of Object.entries(a.burst.add)) assertCounters(`create burst ${name}`, v);
        this.setXattrs(abs, a.burst.add);
        this.updateIndex(abs, a.path, a.burst.add);
      }
      const st = fs.fstatSync(fd);
      this.openFds.set(fd, st.ino);
      return { fd, iatt: this.identified(abs, iattOf(st), a.xattrs?.[XATTR_GFID]), created: true, ...(a.burst ? { burst: true } : {}) };
    } catch (e) {
      this.openFds.delete(fd);
      try { fs.closeSync(fd); } catch { /* already failing */ }
      throw FsError.from(e);
    }
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    const abs = this.confined(a.path);
    const mode = Number(a.mode);
    const type = mode & S_IFMT;
    if (type === fs.constants.S_IFREG) {
      // Regular files (DHT link files among them): create exclusively, then set the exact mode
      // (the umask and open(2) would drop the sticky bit otherwise).
      // Synchronous, as the other metadata calls: three thread-pool round trips cost more.
      let fd: number;
      try {
        fd = asCaller(f, () => fs.openSync(abs, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600));
      } catch (e) {
        throw FsError.from(e);
      }
      try {
        asCaller(f, () => fs.fchmodSync(fd, mode & 0o7777));
      } finally {
        fs.closeSync(fd);
      }
    } else if (type === fs.constants.S_IFIFO || type === fs.constants.S_IFCHR || type === fs.constants.S_IFBLK || type === fs.constants.S_IFSOCK) {
      // As the caller: the kernel refuses devices to anyone without CAP_MKNOD, as on a local disk.
      try {
        asCaller(f, () => sys.mknod(abs, mode, Number(a.rdev) || 0));
      } catch (e) {
        throw FsError.from(e);
      }
    } else {
      throw FsError.of('EINVAL', `mknod of type ${(type >> 12).toString(8)}`);
    }
    this.setXattrs(abs, a.xattrs);
    return { iatt: this.identified(abs, await this.lstatIatt(abs), a.xattrs?.[XATTR_GFID]) };
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    return { fd: (await this.openExisting(f, this.confined(a.path), Number(a.flags))).fd };
  }

  /** Opens a file that exists (O_CREAT and O_EXCL dropped); never a link file. */
  private async openExisting(f: Frame, abs: string, requested: number): Promise<{ fd: number; iatt: Iatt }> {
    const flags = requested & ~(O_CREAT | O_EXCL);
    const fd = await (flags & O_TRUNC ? this.changeByPath(abs, () => this.openAbs(f, abs, flags, 0)) : this.openAbs(f, abs, flags, 0));
    const iatt = iattOf(fs.fstatSync(fd));
    this.openFds.set(fd, iatt.ino);
    try {
      this.refuseLinkfile(abs, iatt);
    } catch (e) {
      this.openFds.delete(fd);
      fs.closeSync(fd);
      throw e;
    }
    return { fd, iatt };
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const fd = this.readableFd(a.fd);
    const size = Math.min(Math.max(0, Number(a.size) | 0), 16 * 1024 * 1024);
    const buf = Buffer.allocUnsafe(size);
    try {
      const bytesRead = await this.pread(fd, buf, size, Number(a.offset));
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
    const abs = this.confined(a.path);
    const size = Math.min(Math.max(0, Number(a.size) | 0), 16 * 1024 * 1024);
    const fd = await this.openAbs(f, abs, O_RDONLY, 0);
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw FsError.of('EISDIR', String(a.path));
      this.refuseLinkfile(abs, iattOf(st));
      const buf = Buffer.allocUnsafe(size);
      const bytesRead = await this.pread(fd, buf, size, Number(a.offset)).catch((e) => { throw FsError.from(e); });
      return { data: bytesRead === size ? buf : buf.subarray(0, bytesRead) };
    } finally {
      fs.closeSync(fd);
    }
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
      const offset = Number(a.offset);
      // Counted as it is sent: bulk writes finish in the thread pool in any order.
      this.writeback.written(fd, offset, a.data.length);
      try {
        if (a.data.length < SYNC_WRITE_MAX_BYTES) return { size: fs.writeSync(fd, a.data, 0, a.data.length, offset) };
        const { bytesWritten } = await fsWrite(fd, a.data, 0, a.data.length, offset);
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
      let size = 0;
      try {
        for (const e of a.extents) {
          const n = fs.writeSync(fd, e.data, 0, e.data.length, e.offset);
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
      await fsFtruncate(fd, Number(a.size)).catch((e) => { throw FsError.from(e); });
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
    await (a.datasync ? fsFdatasync(fd) : fsFsync(fd)).catch((e) => { throw FsError.from(e); });
    return {};
  }

  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    this.checkFd(a.fd);
    return {};
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const fd = this.checkFd(a.fd);
    this.openFds.delete(fd);
    this.gate.forgetFd(fd);
    const lost = await this.writeback.forget(fd);
    if (lost) this.log.warn(`fd ${fd}: a writeback failed after its last write and no fsync asked (${lost.code}: ${lost.message})`);
    try {
      fs.closeSync(fd);
    } catch (e) {
      throw FsError.from(e);
    }
    return {};
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    const abs = this.confined(a.path);
    await this.checkLinkfileGuards(abs, a.path, a);
    await this.changeByPath(abs, async () => asCaller(f, () => fs.unlinkSync(abs))).catch((e) => { throw FsError.from(e); });
    this.forgetIndex(a.path);
    return {};
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    const abs = this.confined(a.path);
    if (abs === this.root) throw FsError.of('EBUSY', 'cannot remove the brick root');
    try {
      asCaller(f, () => fs.rmdirSync(abs));
    } catch (e) {
      throw FsError.from(e);
    }
    this.forgetIndex(a.path);
    return {};
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    const from = this.confined(a.from);
    const to = this.confined(a.to);
    if (from === this.root || to === this.root) throw FsError.of('EPERM', 'cannot rename the brick root');
    let replacedLinkto: string | undefined;
    await this.changeByPath(from, async () => {
      // Under the gate: a migration that committed meanwhile left a link file here.
      await this.checkLinkfileGuards(from, a.from, a);
      const target = fs.lstatSync(to, { throwIfNoEntry: false });
      replacedLinkto = target && this.linkTarget(to, target);
      this.mayAddSymlink(() => asCaller(f, () => fs.renameSync(from, to)));
    }).catch((e) => { throw FsError.from(e); });
    // A pending heal follows the name (only a file's own entry; a directory's children keep theirs).
    const entry = this.indexEntry(a.from);
    if (fs.lstatSync(entry, { throwIfNoEntry: false })) {
      try {
        fs.renameSync(entry, this.indexEntry(a.to));
      } catch { /* removed meanwhile */ }
    }
    return replacedLinkto === undefined ? {} : { replacedLinkto };
  }


  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    const target = this.confined(a.target);
    const abs = this.confined(a.path);
    await this.changeByPath(target, async () => this.mayAddSymlink(() => asCaller(f, () => fs.linkSync(target, abs)))).catch((e) => { throw FsError.from(e); });
    return { iatt: this.identified(abs, await this.lstatIatt(abs)) };
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    const abs = this.confined(a.path);
    if (typeof a.target !== 'string' || a.target.includes('\0')) throw FsError.of('EINVAL');
    // The target is stored as written; the brick never follows it (every lookup is lstat,
    // and parents are resolved and checked to lie inside the brick).
    try {
      this.mayAddSymlink(() => asCaller(f, () => fs.symlinkSync(a.target, abs)));
    } catch (e) {
      throw FsError.from(e);
    }
    return { iatt: await this.lstatIatt(abs) };
  }

  async readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    const abs = this.confined(a.path);
    try {
      return { target: asCaller(f, () => fs.readlinkSync(abs)) };
    } catch (e) {
      throw FsError.from(e);
    }
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const abs = this.confined(a.path);
    const at = a.attrs ?? {};
    const cur = this.lstatAs(f, abs);
    this.refuseLinkfile(abs, cur);
    const isLink = (cur.mode & S_IFMT) === S_IFLNK;
    await this.changeByPath(abs, () => this.applyAttrs(f, abs, at, cur, isLink));
    return { iatt: this.identified(abs, await this.lstatIatt(abs)) };
  }

  /**
   * Each change as the caller, so the kernel applies its rules (only the owner chmods, only
   * root chowns to another user, times other than now need ownership, a chown clears setuid).
   * Owner before mode: a chown clears setuid and setgid, which a mode set with it (a heal
   * copying both) means to keep. Clearing only setuid/setgid is the kernel's own doing after
   * a write by someone else (FUSE sends it as a setattr from the writer): done as root.
   */
  private async applyAttrs(f: Frame, abs: string, at: SetattrFields, cur: Iatt, isLink: boolean): Promise<void> {
    try {
      if (at.uid !== undefined || at.gid !== undefined) {
        asCaller(f, () => fs.lchownSync(abs, at.uid ?? -1, at.gid ?? -1));
      }
      if (at.mode !== undefined && !isLink) {
        const mode = Number(at.mode) & 0o7777;
        const privs = S_ISUID | S_ISGID;
        const onlyDropsPrivs = (mode & ~privs) === (cur.mode & 0o7777 & ~privs) && (mode & privs & ~cur.mode) === 0;
        if (onlyDropsPrivs) fs.chmodSync(abs, mode);
        else asCaller(f, () => fs.chmodSync(abs, mode));
      }
      if (at.size !== undefined) {
        if (isLink) throw FsError.of('EINVAL');
        // Opened as the caller (write permission), truncated in the thread pool.
        const fd = asCaller(f, () => fs.openSync(abs, O_WRONLY | O_NOFOLLOW));
        try {
          await fsFtruncate(fd, Number(at.size));
        } finally {
          await fsClose(fd);
        }
      }
      if (at.atimeMs !== undefined || at.mtimeMs !== undefined) this.setTimes(f, abs, at, cur);
    } catch (e) {
      throw FsError.from(e);
    }
  }

  /** Times as utimensat(2) takes them: "now" needs only write permission, a given time ownership. */
  private setTimes(f: Frame, abs: string, at: SetattrFields, cur: Iatt): void {
    if (!at.atimeNow && !at.mtimeNow) {
      const atime = (at.atimeMs ?? cur.atimeMs) / 1000;
      const mtime = (at.mtimeMs ?? cur.mtimeMs) / 1000;
      asCaller(f, () => fs.lutimesSync(abs, atime, mtime));
      return;
    }
    const time = (now: boolean | undefined, ms: number | undefined): sys.TimeArg => (now ? sys.UTIME_NOW : ms ?? null);
    const dir = fs.openSync(pathMod.dirname(abs), sys.O_PATH | sys.O_DIRECTORY | O_NOFOLLOW);
    try {
      asCaller(f, () => sys.utimensat(dir, pathMod.basename(abs), time(at.atimeNow, at.atimeMs), time(at.mtimeNow, at.mtimeMs)));
    } finally {
      fs.closeSync(dir);
    }
  }

  async statfs(_a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    const s = await fsp.statfs(this.root).catch((e) => { throw FsError.from(e); });
    const statfs: StatFs = {
      bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255,
    };
    return { statfs };
  }

  /** Existence check that distinguishes ENOENT from ENODATA (the xattr library cannot). */
  private async mustExist(abs: string): Promise<void> {
    await this.lstatIatt(abs);
  }

  async getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    const abs = this.confined(a.path);
    this.refuseLinkfileFor(abs, String(a.name));
    let v: Buffer | null;
    try {
      v = xattr.getAttributeSync(abs, String(a.name));
    } catch (e) {
      throw xattrError(e);
    }
    if (v === null) {
      await this.mustExist(abs);
      throw FsError.of('ENODATA');
    }
    return { value: v };
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    const abs = this.confined(a.path);
    const name = String(a.name);
    this.refuseLinkfileFor(abs, name);
    if (!(a.value instanceof Uint8Array)) throw FsError.of('EINVAL', 'xattr value must be binary');
    const flags = Number(a.flags) || 0;
    if (flags & 3) {
      const exists = this.getXattr(abs, name) !== undefined;
      if (flags & 1 && exists) throw FsError.of('EEXIST');
      if (flags & 2 && !exists) throw FsError.of('ENODATA');
    }
    const set = async (): Promise<void> => {
      try {
        xattr.setAttributeSync(abs, name, Buffer.from(a.value));
      } catch (e) {
        throw xattrError(e);
      }
    };
    await (name.startsWith(INTERNAL_XATTR_PREFIX) ? set() : this.changeByPath(abs, set));
    return {};
  }

  /** Adds int32 counters atomically: the brick is single-threaded and this runs without awaiting. */
  async xattrop(a: FopArgs<'xattrop'>, f: Frame): Promise<FopReply<'xattrop'>> {
    const abs = this.confined(a.path);
    const st = fs.lstatSync(abs);
    const out: Xattrs = {};
    let touchesChangelog = false;
    for (const [name, delta] of Object.entries(a.add ?? {})) {
      assertCounters(`xattrop ${name}`, delta);
      const cur = this.getXattr(abs, name);
      const next = Buffer.alloc(Math.max(delta.length, cur?.length ?? 0));
      const d = Buffer.from(delta.buffer, delta.byteOffset, delta.byteLength);
      for (let i = 0; i < next.length; i += 4) {
        const c = cur && i < cur.length ? cur.readInt32BE(i) : 0;
        const x = i < d.length ? d.readInt32BE(i) : 0;
        next.writeInt32BE((c + x) | 0, i);
      }
      try {
        xattr.setAttributeSync(abs, name, next);
      } catch (e) {
        throw xattrError(e);
      }
      out[name] = next;
      touchesChangelog ||= isChangelogXattr(name);
    }
    if (touchesChangelog) this.updateIndex(abs, a.path, out);
    // Setting xattrs leaves atime alone: the lstat above still has it.
    if (typeof a.mtimeMs === 'number') fs.lutimesSync(abs, st.atimeMs / 1000, a.mtimeMs / 1000);
    return { xattrs: out, iatt: await this.lstatIatt(abs) };
  }

  private indexEntry(volPath: string): string {
    return pathMod.join(this.indexDir, Buffer.from(volPath).toString('base64url'));
  }

  /** A removed name has nothing left to heal here (an lstat first: there rarely is an entry). */
  private forgetIndex(volPath: string): void {
    const entry = this.indexEntry(volPath);
    if (fs.lstatSync(entry, { throwIfNoEntry: false })) fs.rmSync(entry, { force: true });
  }

  /**
   * Keeps a path in the self-heal index while any of its changelog counters is non-zero.
   * `written` holds the counters this xattrop just set: only when they are all zero are the
   * others read (an xattr read costs more than the syscall: the library makes a Buffer).
   */
  private updateIndex(abs: string, volPath: string, written: Xattrs): void {
    let pending = false;
    for (const name in written) {
      if (isChangelogXattr(name) && written[name]!.some((b) => b !== 0)) {
        pending = true;
        break;
      }
    }
    if (!pending) {
      for (const name of xattr.listAttributesSync(abs)) {
        if (!isChangelogXattr(name) || name in written) continue;
        const v = this.getXattr(abs, name);
        if (v && v.some((b) => b !== 0)) {
          pending = true;
          break;
        }
      }
    }
    const entry = this.indexEntry(volPath);
    if (pending) {
      if (!fs.lstatSync(entry, { throwIfNoEntry: false })) this.addIndexEntry(entry);
    } else {
      try {
        fs.unlinkSync(entry);
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
  private addIndexEntry(entry: string): void {
    const base = pathMod.join(this.root, BRICK_PRIVATE_DIR, INDEX_LINK_BASE);
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(base, entry);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return;
        if (code !== 'ENOENT' || attempt > 0) break;
        // First entry on this brick: the directory and the base file.
        fs.mkdirSync(this.indexDir, { recursive: true, mode: 0o700 });
        fs.writeFileSync(base, '', { flag: 'a', mode: 0o600 });
      }
    }
    fs.writeFileSync(entry, '', { mode: 0o600 });
  }

  async indexlist(_a: FopArgs<'indexlist'>, f: Frame): Promise<FopReply<'indexlist'>> {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.indexDir);
    } catch { /* no index yet */ }
    return { paths: names.map((n) => Buffer.from(n, 'base64url').toString()) };
  }

  async listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    const abs = this.confined(a.path);
    this.refuseLinkfileFor(abs, '');
    await this.mustExist(abs);
    try {
      return { names: xattr.listAttributesSync(abs) };
    } catch (e) {
      throw xattrError(e);
    }
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    const abs = this.confined(a.path);
    const name = String(a.name);
    this.refuseLinkfileFor(abs, name);
    if (this.getXattr(abs, name) === undefined) {
      await this.mustExist(abs);
      throw FsError.of('ENODATA');
    }
    const remove = async (): Promise<void> => {
      try {
        xattr.removeAttributeSync(abs, name);
      } catch (e) {
        throw xattrError(e);
      }
    };
    await (name.startsWith(INTERNAL_XATTR_PREFIX) ? remove() : this.changeByPath(abs, remove));
    return {};
  }

  /** The brick's part in moving a file to another brick (see the migrate fop in lib/fops.ts). */
  async migrate(a: FopArgs<'migrate'>, f: Frame): Promise<FopReply<'migrate'>> {
    const abs = this.confined(a.path);
    const owner = String(a.owner);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st) {
      if (a.op === 'thaw') return {};
      throw FsError.of('ENOENT');
    }
    if (!st.isFile()) throw FsError.of('EINVAL', 'only regular files are moved');
    switch (a.op) {
      case 'watch':
        this.gate.watch(st.ino, owner);
        return { iatt: iattOf(st) };
      case 'freeze': {
        const { dirty } = await this.gate.freeze(st.ino, owner);
        return { iatt: await this.lstatIatt(abs), dirty };
      }
      case 'thaw':
        this.gate.thaw(st.ino, owner);
        return {};
      case 'commit':
        if (!this.gate.holds(st.ino, owner)) throw FsError.of('EINVAL', `${a.path} is not frozen by this mover`);
        // Synchronously from unlink to marking: once unlinked, the inode number is free, and a
        // file created meanwhile (a staging copy of another move) could get it and its fds
        // would be marked moved too.
        try {
          fs.unlinkSync(abs);
        } catch (e) {
          throw FsError.from(e);
        }
        this.gate.markMoved([...this.openFds].filter(([, ino]) => ino === st.ino).map(([fd]) => fd));
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
