import fs from 'node:fs';
import type { Frame } from './frame.js';
import type { Fd, Inode } from './inode.js';
import { BOOL, BUFFER, NUMBER, optional, PATH, STRING, UINT, UINT32, type ArgsSpec } from './rpc/args.js';
/**
 * The one fop table. Every file operation's arguments and reply are declared here;
 * the translator base class, the RPC dispatcher and the FUSE bridge derive from it.
 * Paths are volume paths ("/a/b"). An open file is an Fd object (lib/inode.ts) made by
 * whoever opens it and shared by every translator, each keeping its state in its own slot
 * of the fd's ctx; on the wire it is the brick's number (WireArgs). A path fop may carry the
 * caller's inode of its path (`inode`, always from the FUSE bridge), so caches hang their
 * state on the file's identity rather than on one of its names.
 */

/** Inode attributes as every layer sees them (times in ms since the epoch). */
/** An entry lock riding on another request (xattrop): the name on the request's path, and its owner. */
export interface EntryLockSpec {
  name: string;
  owner: string;
}

/**
 * The entry lock name that stands for every name of a directory (GlusterFS's entrylk with no
 * basename): it conflicts with each name's lock there, so a holder sees no entry change in
 * flight in the directory (replicate's entry self-heal). Other internal names (starting with
 * NUL, as replicate's inode lock) are not names of entries and do not conflict with it.
 */
export const ENTRYLK_WHOLE_DIR = '\u0000dir';

export interface Iatt {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  ino: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /**
   * The file's identity (XATTR_GFID, 32 hex digits), the same on every copy and through
   * every name; absent on a brick entry that has none. st_ino derives from it; ino is the
   * brick's own number, good only within one brick.
   */
  gfid?: string;
}

/** One directory entry with its attributes (readdirplus style). */
/** One write of a writev. */
export interface WriteExtent {
  offset: number;
  data: Buffer;
}

export interface DirEntry {
  name: string;
  iatt: Iatt;
  /** Set on DHT link files: the subvolume that holds the data. */
  linkto?: string;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

export type Xattrs = Record<string, Buffer>;

/** Fields a setattr may change; absent fields stay as they are. */
export interface SetattrFields {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  /**
   * The time is the brick's clock at the change (utimensat's UTIME_NOW, touch(1) without a
   * date): allowed to anyone who may write the file, where a given time needs its owner.
   * atimeMs/mtimeMs still carry the client's idea of now, for the caches.
   */
  atimeNow?: boolean;
  mtimeNow?: boolean;
}

type Empty = Record<string, never>;

export interface FopTable {
  /**
   * Attributes of a path (not following a final symlink), plus internal metadata.
   * wantData: the content too (`data`, the whole file) when the path is a regular file of at
   * most this many bytes and it can be trusted (quick-read: open, read and close of a small
   * file answered from the lookup). A reply without data is always correct.
   */
  lookup: {
    args: { path: string; inode?: Inode; xattrs?: string[]; wantData?: number };
    reply: { iatt: Iatt; linkto?: string; xattrs?: Xattrs; data?: Buffer };
  };
  /** Attributes through an open fd. */
  fstat: { args: { fd: Fd }; reply: { iatt: Iatt } };
  /** Permission check as access(2). */
  access: { args: { path: string; inode?: Inode; mode: number }; reply: Empty };
  /** Every entry of a directory, with attributes, except "." and "..". */
  readdir: { args: { path: string; inode?: Inode }; reply: { entries: DirEntry[] } };
  /** Makes a directory; xattrs are set on it before it becomes visible to lookups. */
  mkdir: { args: { path: string; mode: number; xattrs?: Xattrs }; reply: { iatt: Iatt } };
  /**
   * Creates and opens a regular file (O_CREAT semantics given by flags). burst: also start
   * replicate's write burst on the new file in the same request: take this lock on its path
   * (trylock) and set these changelog counters on it. Only a file the brick made gets them,
   * and only with the lock; the reply says `burst: true` when both happened. `created: true`
   * says the brick made the file (so the caller's xattrs are on it), not opened one that was
   * there; a translator that cannot vouch for every copy leaves it out.
   */
  create: {
    args: { path: string; mode: number; flags: number; fd: Fd; xattrs?: Xattrs; burst?: { lock: EntryLockSpec; add: Xattrs } };
    reply: { iatt: Iatt; burst?: boolean; created?: boolean };
  };
  /** Makes a node that is not a directory or symlink (fifos, DHT link files). */
  mknod: {
    args: { path: string; mode: number; rdev: number; xattrs?: Xattrs };
    reply: { iatt: Iatt };
  };
  /** Opens an existing file as fd (made by the caller, on the inode of path). */
  open: { args: { path: string; flags: number; fd: Fd }; reply: Empty };
  /** Reads up to size bytes; a short reply means end of file. */
  read: { args: { fd: Fd; offset: number; size: number }; reply: { data: Buffer } };
  /**
   * Reads up to size bytes of a file by path, without an fd (open, pread, close on the brick:
   * one round trip for a small file instead of three). ENOSYS from a translator that cannot
   * answer it safely: the caller opens and reads instead.
   */
  readfile: { args: { path: string; inode?: Inode; offset: number; size: number }; reply: { data: Buffer } };
  /** Writes data at offset; replies with the bytes written. */
  write: { args: { fd: Fd; offset: number; data: Buffer }; reply: { size: number } };
  /**
   * Several writes through one fd in one request, applied in order (write-behind's batch of
   * writes that are not contiguous: one round trip and one brick wakeup for many random
   * writes). Replies with the bytes written: all of them, unless one fell short (it stops there).
   */
  writev: { args: { fd: Fd; extents: WriteExtent[] }; reply: { size: number } };
  /** Truncates (or extends) an open file. */
  ftruncate: { args: { fd: Fd; size: number }; reply: Empty };
  /** Flushes an open file to stable storage. */
  fsync: { args: { fd: Fd; datasync: boolean }; reply: Empty };
  /** Called on every close(2) of a descriptor. */
  flush: { args: { fd: Fd }; reply: Empty };
  /** The last close: the fd is gone after this. */
  release: { args: { fd: Fd }; reply: Empty };
  /** Removes a non-directory. */
  /**
   * linkfileOnly: remove the name only if it is a DHT link file (ENOENT otherwise); dataOnly:
   * only if it is not one (ENOENT if it is: the data moved elsewhere).
   */
  unlink: { args: { path: string; inode?: Inode; linkfileOnly?: boolean; dataOnly?: boolean }; reply: Empty };
  /** Removes an empty directory. */
  rmdir: { args: { path: string; inode?: Inode }; reply: Empty };
  /**
   * Renames, replacing the target as rename(2) does. dataOnly: refuse (ENOENT, as unlink's)
   * when `from` is a DHT link file here; distribute renames data, and a rebalance may have
   * left a link file where the data was. replacedLinkto: the target the rename replaced was
   * a DHT link file, pointing there (distribute then removes the data it stood for).
   */
  rename: { args: { from: string; to: string; inode?: Inode; dataOnly?: boolean }; reply: { replacedLinkto?: string } };
  /** Makes a hard link at path to the existing target. */
  link: { args: { target: string; path: string; inode?: Inode }; reply: { iatt: Iatt } };
  /** Makes a symlink at path whose content is target. */
  symlink: { args: { target: string; path: string; xattrs?: Xattrs }; reply: { iatt: Iatt } };
  /** The content of a symlink. */
  readlink: { args: { path: string; inode?: Inode }; reply: { target: string } };
  /** Changes mode, owner, size or times (never follows a final symlink for times/owner). */
  setattr: { args: { path: string; inode?: Inode; attrs: SetattrFields }; reply: { iatt: Iatt } };
  /** Filesystem usage. */
  statfs: { args: { path: string }; reply: { statfs: StatFs } };
  /** One extended attribute; ENODATA when absent. */
  getxattr: { args: { path: string; inode?: Inode; name: string }; reply: { value: Buffer } };
  /** Sets an extended attribute; flags as setxattr(2) (XATTR_CREATE=1, XATTR_REPLACE=2). */
  setxattr: { args: { path: string; inode?: Inode; name: string; value: Buffer; flags: number }; reply: Empty };
  /** Names of the extended attributes. */
  listxattr: { args: { path: string; inode?: Inode }; reply: { names: string[] } };
  /** Removes an extended attribute. */
  removexattr: { args: { path: string; inode?: Inode; name: string }; reply: Empty };
  /**
   * Atomically adds signed 32-bit counters to xattrs (AFR's changelog) and returns the new
   * values and the attributes after the change (setting xattrs moves ctime).
   * lock: first take this entry lock on `path` (trylock: EAGAIN when held, nothing added),
   * and say so with `locked` (a brick that ignores it does not). unlock: drop it after,
   * whatever the outcome. One request instead of two for replicate's pre-op and post-op.
   */
  xattrop: {
    /**
     * mtimeMs: also set the modification time (replicas get one time from the client).
     * behind: the caller does not wait for the answer soon (a post-op after the change was
     * answered); protocol/client may hold it briefly to share a later request's write, and
     * does not send the flag.
     */
    args: { path: string; add: Xattrs; mtimeMs?: number; lock?: EntryLockSpec; unlock?: EntryLockSpec; behind?: boolean };
    reply: { xattrs: Xattrs; iatt: Iatt; locked?: boolean };
  };
  /** Paths this brick has pending changelog entries for (the self-heal index). */
  indexlist: { args: Record<string, never>; reply: { paths: string[] } };
  /** Takes or drops a named entry lock on a directory (features/locks). */
  entrylk: {
    args: { path: string; name: string; owner: string; cmd: 'lock' | 'trylock' | 'unlock' };
    reply: Empty;
  };
  /**
   * Rebalance support on the brick holding a file being moved (storage/posix):
   * watch — note from now on whether the file's data changes (reply dirty on freeze);
   * freeze — hold every change to the file until thaw/commit, once changes in flight are
   * done (reads go on); commit — the copy elsewhere is live: remove this name, answer
   * ESTALE on every fd still open on the file, and release what was held; thaw — give up.
   * The owner (prefixed with the connection by protocol/server) is released when its
   * connection goes. diverged (from cluster/replicate on freeze, never from a brick): the
   * copies a read may use differ in size, a change done on some replicas is still on its
   * way to others; it cannot land while frozen, so the mover thaws and copies again.
   */
  migrate: {
    args: { path: string; owner: string; op: 'watch' | 'freeze' | 'thaw' | 'commit' };
    reply: { iatt?: Iatt; dirty?: boolean; diverged?: boolean };
  };
}

export type FopName = keyof FopTable;
export type FopArgs<F extends FopName> = FopTable[F]['args'];
export type FopReply<F extends FopName> = FopTable[F]['reply'];

/**
 * A fop's arguments as they travel between protocol/client and protocol/server: an fd is
 * the number the brick gave it, open and create carry none (the brick makes the fd and
 * answers its number), and the client's inode stays home (the path names the file).
 */
export type WireArgs<F extends FopName> = {
  [K in keyof FopArgs<F> as K extends 'inode' ? never : K extends 'fd' ? (F extends 'open' | 'create' ? never : K) : K]: FopArgs<F>[K] extends Fd ? number : FopArgs<F>[K];
};
/** A fop's reply on the wire: open and create also carry the brick's number for the new fd. */
export type WireReply<F extends FopName> = F extends 'open' | 'create' ? FopReply<F> & { fd: number } : FopReply<F>;

/** Kind of each fop: what cluster translators need to know to route it. */
export interface FopMeta {
  /** Changes the namespace or the data (replicate transactions, caches invalidate). */
  modifies: boolean;
  /** Works on an fd rather than a path. */
  byFd: boolean;
}

/** Most extents in one writev (write-behind's batches stay far below). */
export const MAX_WRITEV_EXTENTS = 4096;
/** Most xattrs one request sets or asks for. */
export const MAX_XATTRS_PER_REQUEST = 1024;

const XATTRS = { kind: 'map', value: BUFFER, max: MAX_XATTRS_PER_REQUEST } as const;
const LOCK = { kind: 'object', fields: { name: STRING, owner: STRING } } as const;

/**
 * The runtime list of fops, checked against the type: adding a fop means adding it here,
 * with the shape of its arguments (`args`, checked by protocol/server on every request;
 * ArgsSpec makes it match FopTable's type field for field).
 */
export const FOPS = {
  lookup: { modifies: false, byFd: false, args: { path: PATH, xattrs: optional({ kind: 'array', item: STRING, max: MAX_XATTRS_PER_REQUEST }), wantData: optional(UINT) } },
  fstat: { modifies: false, byFd: true, args: { fd: UINT } },
  access: { modifies: false, byFd: false, args: { path: PATH, mode: UINT } },
  readdir: { modifies: false, byFd: false, args: { path: PATH } },
  mkdir: { modifies: true, byFd: false, args: { path: PATH, mode: UINT, xattrs: optional(XATTRS) } },
  create: {
    modifies: true, byFd: false,
    args: { path: PATH, mode: UINT, flags: UINT32, xattrs: optional(XATTRS), burst: optional({ kind: 'object', fields: { lock: LOCK, add: XATTRS } }) },
  },
  mknod: { modifies: true, byFd: false, args: { path: PATH, mode: UINT, rdev: UINT, xattrs: optional(XATTRS) } },
  open: { modifies: false, byFd: false, args: { path: PATH, flags: UINT32 } },
  read: { modifies: false, byFd: true, args: { fd: UINT, offset: UINT, size: UINT } },
  readfile: { modifies: false, byFd: false, args: { path: PATH, offset: UINT, size: UINT } },
  write: { modifies: true, byFd: true, args: { fd: UINT, offset: UINT, data: BUFFER } },
  writev: {
    modifies: true, byFd: true,
    args: { fd: UINT, extents: { kind: 'array', item: { kind: 'object', fields: { offset: UINT, data: BUFFER } }, max: MAX_WRITEV_EXTENTS } },
  },
  ftruncate: { modifies: true, byFd: true, args: { fd: UINT, size: UINT } },
  fsync: { modifies: false, byFd: true, args: { fd: UINT, datasync: BOOL } },
  flush: { modifies: false, byFd: true, args: { fd: UINT } },
  release: { modifies: false, byFd: true, args: { fd: UINT } },
  unlink: { modifies: true, byFd: false, args: { path: PATH, linkfileOnly: optional(BOOL), dataOnly: optional(BOOL) } },
  rmdir: { modifies: true, byFd: false, args: { path: PATH } },
  rename: { modifies: true, byFd: false, args: { from: PATH, to: PATH, dataOnly: optional(BOOL) } },
  link: { modifies: true, byFd: false, args: { target: PATH, path: PATH } },
  // A symlink's content is any string, relative or not.
  symlink: { modifies: true, byFd: false, args: { target: STRING, path: PATH, xattrs: optional(XATTRS) } },
  readlink: { modifies: false, byFd: false, args: { path: PATH } },
  setattr: {
    modifies: true, byFd: false,
    args: {
      path: PATH,
      attrs: {
        kind: 'object',
        fields: {
          mode: optional(UINT), uid: optional(UINT32), gid: optional(UINT32), size: optional(UINT),
          atimeMs: optional(NUMBER), mtimeMs: optional(NUMBER), atimeNow: optional(BOOL), mtimeNow: optional(BOOL),
        },
      },
    },
  },
  statfs: { modifies: false, byFd: false, args: { path: PATH } },
  getxattr: { modifies: false, byFd: false, args: { path: PATH, name: STRING } },
  setxattr: { modifies: true, byFd: false, args: { path: PATH, name: STRING, value: BUFFER, flags: UINT32 } },
  listxattr: { modifies: false, byFd: false, args: { path: PATH } },
  removexattr: { modifies: true, byFd: false, args: { path: PATH, name: STRING } },
  xattrop: {
    modifies: true, byFd: false,
    args: { path: PATH, add: XATTRS, mtimeMs: optional(NUMBER), lock: optional(LOCK), unlock: optional(LOCK), behind: optional(BOOL) },
  },
  indexlist: { modifies: false, byFd: false, args: {} },
  entrylk: { modifies: false, byFd: false, args: { path: PATH, name: STRING, owner: STRING, cmd: { kind: 'enum', values: ['lock', 'trylock', 'unlock'] } } },
  migrate: { modifies: true, byFd: false, args: { path: PATH, owner: STRING, op: { kind: 'enum', values: ['watch', 'freeze', 'thaw', 'commit'] } } },
} as const satisfies { [F in FopName]: FopMeta & { args: ArgsSpec<WireArgs<F>> } };

export const FOP_NAMES = Object.keys(FOPS) as FopName[];

export function isFopName(name: unknown): name is FopName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(FOPS, name);
}

/** A handler per fop: what a translator may implement. */
export type FopHandlers = {
  [F in FopName]: (args: FopArgs<F>, frame: Frame) => Promise<FopReply<F>>;
};

/** Prefix of the reserved xattr namespace for brickfs' own metadata on bricks. */
export const INTERNAL_XATTR_PREFIX = 'trusted.brickfs.';
export const XATTR_GFID = `${INTERNAL_XATTR_PREFIX}gfid`;
export const XATTR_LAYOUT = `${INTERNAL_XATTR_PREFIX}layout`;
export const XATTR_LINKTO = `${INTERNAL_XATTR_PREFIX}linkto`;
/** On a brick root: the id (UUID) of the volume the brick belongs to; a brick never serves another volume's directory. */
export const XATTR_VOLUME_ID = `${INTERNAL_XATTR_PREFIX}volume-id`;
/**
 * AFR changelog: one xattr per copy, int32 counters, two per replica of its set (by
 * position): [data, or entry for a directory; metadata]. 16 bytes for replica 2, which ext4
 * keeps inside a 256-byte inode beside the gfid (docs/replicate.md, "The changelog on disk").
 */
export const XATTR_AFR = `${INTERNAL_XATTR_PREFIX}afr`;
/** The changelog of earlier versions, read but no longer written: `trusted.brickfs.afr.<replica name>` = [data, metadata, entry]. */
export const XATTR_AFR_PREFIX = `${INTERNAL_XATTR_PREFIX}afr.`;

/** Whether a brick xattr is (part of) the replication changelog. */
export function isChangelogXattr(name: string): boolean {
  return name === XATTR_AFR || name.startsWith(XATTR_AFR_PREFIX);
}
/** Directory at the top of a brick where brickfs keeps its own files; never visible to clients. */
export const BRICK_PRIVATE_DIR = '.brickfs';
/** Where the rebalancer stages a file's copy on its new brick, under BRICK_PRIVATE_DIR; clients cannot reach it through a mount. */
export const MIGRATE_STAGING_DIR = 'migrate';

/** Node exports no O_ACCMODE; POSIX fixes it at 3 (O_RDONLY 0, O_WRONLY 1, O_RDWR 2). */
export const O_ACCMODE = 3;
/** Linux's O_DIRECT; 0 where the platform has none, so nothing bypasses a cache there. */
export const O_DIRECT = fs.constants.O_DIRECT ?? 0;

/**
 * The flags to reopen an fd with, by path (after a reconnect, a graph switch, a file
 * moved by rebalance): creating, excluding or truncating again would be wrong.
 */
export function reopenFlags(flags: number): number {
  return flags & ~(fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_TRUNC);
}

/** The most content a lookup carries (wantData above this is capped: the brick reads it in the request). */
export const LOOKUP_DATA_MAX_BYTES = 1024 * 1024;

/** DHT link files: zero-size regular files with only the sticky bit (GlusterFS's ---------T). */
export const LINKFILE_MODE = 0o101000;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export function isDir(iatt: Iatt): boolean {
  return (iatt.mode & S_IFMT) === S_IFDIR;
}
