import fs from 'node:fs';
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';
import { Errno, FsError } from '../../lib/errors.js';
import { INTERNAL_XATTR_PREFIX, type Iatt, type SetattrFields } from '../../lib/fops.js';
import { Logger } from '../../lib/log.js';
import type { Xlator } from '../../lib/xlator.js';

/** Sentinel our fuse-native build passes for UTIME_OMIT (see scripts/build-fuse-native.mjs). */
const UTIME_OMIT_MS = Number.MAX_SAFE_INTEGER;

/** Mount options libfuse 2 accepts; fuse-native has no field for them, so they ride on fsname. */
const EXTRA_MOUNT_OPTIONS = ['big_writes', 'max_write=131072'];

const log = new Logger('fuse');

/** Placeholder attributes for "." and ".." in listings (the kernel only reads the type). */
const DIR_STAT: FuseStat = {
  mode: 0o40755, uid: 0, gid: 0, size: 0, nlink: 2, rdev: 0, blksize: 4096, blocks: 0, atime: 0, mtime: 0, ctime: 0,
};

function statOf(i: Iatt): FuseStat {
  return {
    mode: i.mode, uid: i.uid, gid: i.gid, size: i.size, nlink: i.nlink, rdev: i.rdev,
    blksize: i.blksize, blocks: i.blocks, atime: i.atimeMs, mtime: i.mtimeMs, ctime: i.ctimeMs,
  };
}

/** Negative errno for fuse-native from anything thrown. */
function errnoOf(e: unknown): number {
  const err = FsError.from(e);
  if (err.code === 'EIO' || err.code === 'EPROTO') log.warn(`EIO: ${err.message}`);
  return -err.errno;
}

/** Only user.* attributes pass through the mount; brickfs' own metadata never does. */
function userXattr(name: string): boolean {
  return name.startsWith('user.') && !name.startsWith(INTERNAL_XATTR_PREFIX);
}

export interface BridgeOptions {
  /** Shown as the filesystem source in /proc/mounts (e.g. "host:/vol"). */
  fsname: string;
  /** Extra libfuse options from `mount -o`, already validated. */
  extraOptions?: string[];
}

/**
 * The FUSE bridge: the only code that talks to fuse-native. Turns kernel requests into
 * fops on the top of the translator graph and replies with negative errnos on failure.
 */
export class FuseBridge {
  private readonly fuse: Fuse;

  constructor(private readonly top: Xlator, readonly mountpoint: string, opts: BridgeOptions) {
    const fsname = [opts.fsname.replace(/[,\s]/g, '_'), ...EXTRA_MOUNT_OPTIONS, ...(opts.extraOptions ?? [])].join(',');
    this.fuse = new Fuse(mountpoint, this.ops(), {
      // noforget: libfuse's high-level API numbers inodes itself and renumbers a forgotten one,
      // which tar reads as "directory renamed" after the kernel drops its caches.
      force: true, mkdir: false, timeout: false, allowOther: true, defaultPermissions: true, noforget: true,
      fsname, subtype: 'brickfs',
    });
  }

  mount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.mount((err) => (err ? reject(err) : resolve())));
  }

  unmount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.unmount((err) => (err ? reject(err) : resolve())));
  }

  private ops(): FuseOps {
    const top = this.top;
    /** Runs a fop and answers 0 or a negative errno. */
    const done = (p: Promise<unknown>, cb: (err: number) => void): void => {
      p.then(() => cb(0), (e) => cb(errnoOf(e)));
    };
    const setattr = (path: string, attrs: SetattrFields, cb: (err: number) => void): void =>
      done(top.call('setattr', { path, attrs }), cb);
    return {
      getattr: (path, cb) => {
        top.call('lookup', { path }).then((r) => cb(0, statOf(r.iatt)), (e) => cb(errnoOf(e)));
      },
      fgetattr: (_path, fd, cb) => {
        top.call('fstat', { fd }).then((r) => cb(0, statOf(r.iatt)), (e) => cb(errnoOf(e)));
      },
      access: (path, mode, cb) => done(top.call('access', { path, mode }), cb),
      statfs: (path, cb) => {
        top.call('statfs', { path }).then(({ statfs: s }) => {
          // fuse-native passes 32-bit counts: grow the block size until they fit.
          let { frsize, blocks, bfree, bavail } = s;
          while (blocks > 0xffffffff) {
            frsize *= 2; blocks = Math.floor(blocks / 2); bfree = Math.floor(bfree / 2); bavail = Math.floor(bavail / 2);
          }
          cb(0, {
            bsize: frsize, frsize, blocks, bfree, bavail, files: Math.min(s.files, 0xffffffff),
            ffree: Math.min(s.ffree, 0xffffffff), favail: Math.min(s.favail, 0xffffffff), fsid: 0, flag: 0, namemax: s.namemax,
          });
        }, (e) => cb(errnoOf(e)));
      },
      readdir: (path, cb) => {
        top.call('readdir', { path }).then(({ entries }) => {
          const names = ['.', '..'];
          const stats: FuseStat[] = [DIR_STAT, DIR_STAT];
          for (const e of entries) {
            names.push(e.name);
            stats.push(statOf(e.iatt));
          }
          cb(0, names, stats);
        }, (e) => cb(errnoOf(e)));
      },
      mkdir: (path, mode, cb) => done(top.call('mkdir', { path, mode }), cb),
      rmdir: (path, cb) => done(top.call('rmdir', { path }), cb),
      create: (path, mode, cb) => {
        // fuse-native does not pass create's flags; the kernel enforces the access mode.
        top.call('create', { path, mode, flags: fs.constants.O_RDWR }).then((r) => cb(0, r.fd), (e) => cb(errnoOf(e)));
      },
      mknod: (path, mode, rdev, cb) => done(top.call('mknod', { path, mode, rdev }), cb),
      open: (path, flags, cb) => {
        top.call('open', { path, flags }).then((r) => cb(0, r.fd), (e) => cb(errnoOf(e)));
      },
      read: (_path, fd, buf, len, pos, cb) => {
        top.call('read', { fd, offset: pos, size: len }).then(({ data }) => {
          const n = Math.min(len, data.length);
          data.copy(buf, 0, 0, n);
          cb(n);
        }, (e) => cb(errnoOf(e)));
      },
      write: (_path, fd, buf, len, pos, cb) => {
        // buf stays valid until cb: the RPC layer encodes it before that.
        top.call('write', { fd, offset: pos, data: len === buf.length ? buf : buf.subarray(0, len) })
          .then((r) => cb(r.size), (e) => cb(errnoOf(e)));
      },
      truncate: (path, size, cb) => setattr(path, { size }, cb),
      ftruncate: (_path, fd, size, cb) => done(top.call('ftruncate', { fd, size }), cb),
      flush: (_path, fd, cb) => done(top.call('flush', { fd }), cb),
      fsync: (_path, datasync, fd, cb) => done(top.call('fsync', { fd, datasync: !!datasync }), cb),
      release: (_path, fd, cb) => done(top.call('release', { fd }), cb),
      unlink: (path, cb) => done(top.call('unlink', { path }), cb),
      rename: (from, to, cb) => done(top.call('rename', { from, to }), cb),
      link: (target, path, cb) => done(top.call('link', { target, path }), cb),
      symlink: (target, path, cb) => done(top.call('symlink', { target, path }), cb),
      readlink: (path, cb) => {
        top.call('readlink', { path }).then((r) => cb(0, r.target), (e) => cb(errnoOf(e)));
      },
      chmod: (path, mode, cb) => setattr(path, { mode }, cb),
      chown: (path, uid, gid, cb) => {
        // (uid_t)-1 means "leave as is", arriving here as 2^32-1.
        const attrs: SetattrFields = {};
        if (uid !== 0xffffffff && uid !== -1) attrs.uid = uid;
        if (gid !== 0xffffffff && gid !== -1) attrs.gid = gid;
        setattr(path, attrs, cb);
      },
      utimens: (path, atime, mtime, cb) => {
        if (process.env.BRICKFS_TRACE) log.error(`utimens ${path} ${atime} ${mtime}`);
        const attrs: SetattrFields = {};
        if (atime !== UTIME_OMIT_MS) attrs.atimeMs = atime;
        if (mtime !== UTIME_OMIT_MS) attrs.mtimeMs = mtime;
        setattr(path, attrs, cb);
      },
      getxattr: (path, name, _pos, cb) => {
        // Other namespaces (security.capability is asked on every write) answer at once.
        if (!userXattr(name)) return cb(-Errno.ENODATA);
        top.call('getxattr', { path, name }).then((r) => cb(0, r.value), (e) => cb(errnoOf(e)));
      },
      setxattr: (path, name, value, _pos, flags, cb) => {
        if (!userXattr(name)) return cb(-Errno.ENOTSUP);
        done(top.call('setxattr', { path, name, value: Buffer.from(value), flags }), cb);
      },
      listxattr: (path, cb) => {
        top.call('listxattr', { path }).then((r) => cb(0, r.names.filter(userXattr)), (e) => cb(errnoOf(e)));
      },
      removexattr: (path, name, cb) => {
        if (!userXattr(name)) return cb(-Errno.ENOTSUP);
        done(top.call('removexattr', { path, name }), cb);
      },
    };
  }
}
