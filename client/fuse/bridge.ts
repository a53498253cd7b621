import fs from 'node:fs';
import { ROOT_FRAME, type Frame } from '../../lib/frame.js';
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';
import { Errno } from '../../lib/errors.js';
import { BRICK_PRIVATE_DIR, S_IFDIR, S_IFREG, type Iatt, type SetattrFields } from '../../lib/fops.js';
import { CtxKey, ROOT_ID, type Inode, type InodeTable } from '../../lib/inode.js';
import { Logger } from '../../lib/log.js';
import { profiling } from '../../lib/profile.js';
import { errnoOf, fsnameOption, isPrivate, profiled, userXattr, type BridgeOptions } from './common.js';
import type { ActiveGraph } from '../graph-switch.js';

/** Sentinel our fuse-native build passes for UTIME_OMIT (see scripts/build-fuse-native.mjs). */
const UTIME_OMIT_MS = Number.MAX_SAFE_INTEGER;

const log = new Logger('fuse');

/**
 * libfuse 2 options fuse-native has no name for, riding on fsname (joined unescaped): without
 * them the kernel sends 4 KiB writes. libfuse 3 (lowlevel-bridge.ts) needs neither.
 */
const EXTRA_MOUNT_OPTIONS = ['big_writes', 'max_write=131072'];

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

/** Answers via fuse-native's callback, the last argument. */
function armCallback(args: unknown[], done: () => void): void {
  const cb = args[args.length - 1] as (...r: unknown[]) => void;
  args[args.length - 1] = (...r: unknown[]) => {
    done();
    cb(...r);
  };
}

/**
 * The mount's inode table as fuse-native needs it: it names files by path and gives no
 * nodeids, so a file gets a node (and each directory above it one) only while a handle is
 * open on it. Renames and removals made through the mount move the table's names, so an
 * open file's fds keep its path now (a reopen after a graph switch or a reconnect finds
 * it). Each node counts, on its ctx, the handles open on it or below it; a node whose
 * count falls to 0 leaves the table.
 */
class OpenNodes {
  private readonly pins = new CtxKey<number>('fuse-native');

  constructor(private readonly nodes: InodeTable) {}

  /** The node of path (a regular file), and every directory above it, held for one more handle. */
  pin(path: string): Inode {
    const x = this.walk(path, S_IFREG);
    this.add(x, 1);
    return x;
  }

  /** A handle on x closed, or its open failed. */
  unpin(x: Inode): void {
    this.add(x, -1);
  }

  /** from was renamed to to: a node there follows, with the handles it counts; one at to is replaced. */
  renamed(from: string, to: string): void {
    const fromDir = this.nodes.find(dirname(from));
    const moved = this.nodes.find(from);
    if (!fromDir || !moved || moved.id === ROOT_ID) {
      this.removed(to);
      return;
    }
    const toDir = this.walk(dirname(to), S_IFDIR);
    const n = moved.ctx.get(this.pins) ?? 0;
    this.nodes.move(fromDir.id, basename(from), toDir.id, basename(to));
    this.add(toDir, n);
    this.add(fromDir, -n);
  }

  /** path was unlinked or removed: its node, if any, keeps serving its open handles only. */
  removed(path: string): void {
    const x = this.nodes.find(path);
    if (x && x.id !== ROOT_ID) this.nodes.remove(x.parent, x.name);
  }

  /** The node of path, made with its directories as needed; type: the last one's. */
  private walk(path: string, type: number): Inode {
    const names = path.split('/').filter(Boolean);
    let x = this.nodes.root;
    names.forEach((name, i) => {
      x = this.nodes.entry(x.id, name, i === names.length - 1 ? type : S_IFDIR);
    });
    return x;
  }

  /** Adds d to the count of x and of every directory above it; drops the nodes left at 0. */
  private add(x: Inode, d: number): void {
    if (d === 0) return;
    for (let n: Inode | undefined = x; n && n.id !== ROOT_ID;) {
      const parent = n.parent;
      const count = (n.ctx.get(this.pins) ?? 0) + d;
      if (count > 0) {
        n.ctx.set(this.pins, count);
      } else {
        n.ctx.take(this.pins);
        if (n.attached && this.nodes.get(n.id) === n) this.nodes.remove(n.parent, n.name);
      }
      n = this.nodes.get(parent);
    }
  }
}

function dirname(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * The FUSE bridge: the only code that talks to fuse-native. Turns kernel requests into
 * fops on the active graph (client/graph-switch.ts) and replies with negative errnos on
 * failure. fuse-native has no way to send the kernel cache notifications: another client's
 * changes (features.cache-invalidation) reach the translators' caches only, and the kernel's
 * attributes and entries expire by their timeouts (docs/cache-invalidation.md). File handles the kernel sees are the active graph's handle numbers, which stay
 * valid when the graph changes.
 */
export class FuseBridge {
  private readonly fuse: Fuse;
  private readonly open: OpenNodes;

  constructor(private readonly graphs: ActiveGraph, readonly mountpoint: string, opts: BridgeOptions) {
    this.open = new OpenNodes(graphs.inodes);
    // libfuse 2's high-level API takes the kernel cache timeouts as options of its own.
    const timeouts = [['attr_timeout', opts.attrTimeoutS], ['entry_timeout', opts.entryTimeoutS], ['negative_timeout', opts.negativeTimeoutS]]
      .filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    const fsname = [fsnameOption(opts.fsname), ...EXTRA_MOUNT_OPTIONS, ...timeouts, ...(opts.extraOptions ?? [])].join(',');
    this.fuse = new Fuse(mountpoint, profiling ? profiled(this.ops(), armCallback) : this.ops(), {
      // noforget: libfuse's high-level API numbers inodes itself and renumbers a forgotten one,
      // which tar reads as "directory renamed" after the kernel drops its caches.
      force: true, mkdir: false, timeout: false, allowOther: true, defaultPermissions: true, noforget: true,
      fsname, subtype: 'brickfs',
    });
  }

  mount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.mount((err) => (err ? reject(err) : resolve())));
  }

  /** What the statedump shows of the bridge: the nodes its open files hold in the inode table. */
  statedump(): Record<string, unknown> {
    return { bridge: 'fuse-native', inodes: this.graphs.inodes.size };
  }

  unmount(): Promise<void> {
    return new Promise((resolve, reject) => this.fuse.unmount((err) => (err ? reject(err) : resolve())));
  }

  private ops(): FuseOps {
    const { graphs, open: nodes } = this;
    /**
     * fuse-native hands no caller to JavaScript (libfuse 2's fuse_get_context is not bound):
     * every request goes as root, and new entries are root's. The low-level bridge, the
     * default, carries each caller (docs/posix.md).
     */
    const f: Frame = ROOT_FRAME;
    /** Runs a fop and answers 0 or a negative errno. */
    const done = (p: Promise<unknown>, cb: (err: number) => void): void => {
      p.then(() => cb(0), (e) => cb(errnoOf(e)));
    };
    /** Opens (or creates) the file at path on a handle held in the table until its release. */
    const opened = (path: string, open: (x: Inode) => Promise<number>, cb: (err: number, fh?: number) => void): void => {
      const x = nodes.pin(path);
      open(x).then((fh) => cb(0, fh), (e) => {
        nodes.unpin(x);
        cb(errnoOf(e));
      });
    };
    const setattr = (path: string, attrs: SetattrFields, cb: (err: number) => void): void => {
      if (isPrivate(path)) return cb(-Errno.ENOENT);
      done(graphs.call('setattr', { path, attrs }, f), cb);
    };
    return {
      getattr: (path, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        graphs.call('lookup', { path }, f).then((r) => cb(0, statOf(r.iatt)), (e) => cb(errnoOf(e)));
      },
      fgetattr: (_path, fd, cb) => {
        graphs.fdCall(fd, 'fstat', {}, f).then((r) => cb(0, statOf(r.iatt)), (e) => cb(errnoOf(e)));
      },
      access: (path, mode, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        done(graphs.call('access', { path, mode }, f), cb);
      },
      statfs: (path, cb) => {
        graphs.call('statfs', { path: isPrivate(path) ? '/' : path }, f).then(({ statfs: s }) => {
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
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        graphs.call('readdir', { path }, f).then(({ entries }) => {
          const names = ['.', '..'];
          const stats: FuseStat[] = [DIR_STAT, DIR_STAT];
          for (const e of entries) {
            if (path === '/' && e.name === BRICK_PRIVATE_DIR) continue;
            names.push(e.name);
            stats.push(statOf(e.iatt));
          }
          cb(0, names, stats);
        }, (e) => cb(errnoOf(e)));
      },
      mkdir: (path, mode, cb) => {
        if (isPrivate(path)) return cb(-Errno.EPERM);
        done(graphs.call('mkdir', { path, mode }, f), cb);
      },
      rmdir: (path, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        done(graphs.call('rmdir', { path }, f).then(() => nodes.removed(path)), cb);
      },
      create: (path, mode, cb) => {
        if (isPrivate(path)) return cb(-Errno.EPERM);
        // fuse-native does not pass create's flags; the kernel enforces the access mode.
        opened(path, (x) => graphs.create(x, mode, fs.constants.O_RDWR, f).then((r) => r.fh), cb);
      },
      mknod: (path, mode, rdev, cb) => {
        if (isPrivate(path)) return cb(-Errno.EPERM);
        done(graphs.call('mknod', { path, mode, rdev }, f), cb);
      },
      open: (path, flags, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        opened(path, (x) => graphs.open(x, flags, f), cb);
      },
      read: (_path, fd, buf, len, pos, cb) => {
        graphs.fdCall(fd, 'read', { offset: pos, size: len }, f).then(({ data }) => {
          const n = Math.min(len, data.length);
          data.copy(buf, 0, 0, n);
          cb(n);
        }, (e) => cb(errnoOf(e)));
      },
      write: (_path, fd, buf, len, pos, cb) => {
        // buf stays valid until cb: the RPC layer encodes it before that.
        graphs.fdCall(fd, 'write', { offset: pos, data: len === buf.length ? buf : buf.subarray(0, len) }, f)
          .then((r) => cb(r.size), (e) => cb(errnoOf(e)));
      },
      truncate: (path, size, cb) => setattr(path, { size }, cb),
      ftruncate: (_path, fd, size, cb) => done(graphs.fdCall(fd, 'ftruncate', { size }, f), cb),
      flush: (_path, fd, cb) => done(graphs.fdCall(fd, 'flush', {}, f), cb),
      fsync: (_path, datasync, fd, cb) => done(graphs.fdCall(fd, 'fsync', { datasync: !!datasync }, f), cb),
      release: (_path, fd, cb) => {
        const x = graphs.inodeOf(fd);
        done(graphs.release(fd, f).finally(() => x && nodes.unpin(x)), cb);
      },
      unlink: (path, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        done(graphs.call('unlink', { path }, f).then(() => nodes.removed(path)), cb);
      },
      rename: (from, to, cb) => {
        if (isPrivate(from)) return cb(-Errno.ENOENT);
        if (isPrivate(to)) return cb(-Errno.EPERM);
        done(graphs.call('rename', { from, to }, f).then(() => nodes.renamed(from, to)), cb);
      },
      link: (target, path, cb) => {
        if (isPrivate(target)) return cb(-Errno.ENOENT);
        if (isPrivate(path)) return cb(-Errno.EPERM);
        done(graphs.call('link', { target, path }, f), cb);
      },
      symlink: (target, path, cb) => {
        if (isPrivate(path)) return cb(-Errno.EPERM);
        done(graphs.call('symlink', { target, path }, f), cb);
      },
      readlink: (path, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        graphs.call('readlink', { path }, f).then((r) => cb(0, r.target), (e) => cb(errnoOf(e)));
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
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        graphs.call('getxattr', { path, name }, f).then((r) => cb(0, r.value), (e) => cb(errnoOf(e)));
      },
      setxattr: (path, name, value, _pos, flags, cb) => {
        if (!userXattr(name)) return cb(-Errno.ENOTSUP);
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        done(graphs.call('setxattr', { path, name, value: Buffer.from(value), flags }, f), cb);
      },
      listxattr: (path, cb) => {
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        graphs.call('listxattr', { path }, f).then((r) => cb(0, r.names.filter(userXattr)), (e) => cb(errnoOf(e)));
      },
      removexattr: (path, name, cb) => {
        if (!userXattr(name)) return cb(-Errno.ENOTSUP);
        if (isPrivate(path)) return cb(-Errno.ENOENT);
        done(graphs.call('removexattr', { path, name }, f), cb);
      },
    };
  }
}
