import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Errno, FsError } from '../../lib/errors.js';
import { BRICK_PRIVATE_DIR, O_ACCMODE, S_IFDIR, S_IFREG, XATTR_GFID, type Iatt, type SetattrFields, type Xattrs } from '../../lib/fops.js';
import { newGfid } from '../../lib/gfid.js';
import { Logger } from '../../lib/log.js';
import { profiling } from '../../lib/profile.js';
import type { ActiveGraph } from '../graph-switch.js';
import { errnoOf, fsnameOption, isPrivate, profiled, userXattr, type BridgeOptions } from './common.js';
import { clearStaleMount as clearStale, mountDevice } from '../mount-table.js';
import { Callers } from './caller.js';
import type { Frame } from '../../lib/frame.js';
import { startRoot, tracing, type RootSpan, type TraceContext } from '../../lib/trace.js';
import { InodeTable, ROOT_ID, type Inode } from '../../lib/inode.js';

/** A kernel request (libfuse's fuse_req_t); answered exactly once through Native's reply*. */
type Req = bigint;

/** native/fuse-ll/fuse_ll.c: libfuse 3's low-level API on the Node main thread. */
interface Native {
  /** Mounts and starts serving; ended() runs when the kernel ends the session. */
  mount(mountpoint: string, options: string, handlers: Handlers, ended: () => void): Session;
  /** Stops serving and unmounts; requests still unanswered may be answered later. */
  unmount(session: Session): void;
  /** Where the addon writes each request's uid, gid, pid and umask before its handler runs. */
  setCallerBuffer(session: Session, caller: Uint32Array): void;
  /** Whether the kernel's FUSE_INIT has been answered (set in ll_init); only while the session is mounted. */
  initialized(session: Session): boolean;
  /** Whether FUSE_INIT asks for the kernel's writeback cache; called before the kernel's INIT arrives. */
  setWritebackCache(session: Session, on: boolean): void;
  /** Whether the kernel granted the writeback cache (false until INIT). */
  writebackCache(session: Session): boolean;
  /** Lends write slabs (equal-sized Buffers); busy[i] is set by the addon, cleared by us. */
  setWriteSlabs(session: Session, slabs: Buffer[], busy: Uint8Array): void;
  replyErr(req: Req, errno: number): void;
  replyNone(req: Req): void;
  replyEntry(req: Req, attr: Float64Array): void;
  /** direct 1: the page cache does not serve this open (FOPEN_DIRECT_IO). */
  replyCreate(req: Req, attr: Float64Array, fh: number, direct: number): void;
  replyAttr(req: Req, attr: Float64Array): void;
  replyOpen(req: Req, fh: number, direct: number): void;
  replyWrite(req: Req, size: number): void;
  replyBuf(req: Req, data: Buffer): void;
  replyXattrSize(req: Req, size: number): void;
  replyReadlink(req: Req, target: string): void;
  replyStatfs(req: Req, st: Float64Array): void;
  /** A readdir answer: entries from index off that fit in size bytes; attrs holds an attribute block (attrOf) per entry. */
  replyDir(req: Req, size: number, off: number, names: string[], attrs: Float64Array): void;
  /** The same for readdirplus; returns the index after the last entry sent (each holds a kernel reference, but "." and ".."). */
  replyDirPlus(req: Req, size: number, off: number, names: string[], attrs: Float64Array): number;
  /** Queues a drop of the kernel's attributes and pages of an inode (the addon's notify thread writes it). */
  invalInode(session: Session, ino: number): void;
  /** Queues a drop of the kernel's entry for name in directory parent. */
  invalEntry(session: Session, parent: number, name: string): void;
  /** Stops the notify thread, dropping what is queued; true once it is out (then unmount may close /dev/fuse). */
  stopNotify(session: Session): boolean;
  /** [sent, not cached (ENOENT), failed, dropped, queued] invalidations. */
  notifyStats(session: Session): number[];
}

declare const sessionBrand: unique symbol;
type Session = { readonly [sessionBrand]: true };

/** The kernel requests fuse_ll.c hands to JavaScript (fh is -1 when the kernel sent none). */
interface Handlers {
  lookup(req: Req, parent: number, name: string): void;
  forget(ino: number, nlookup: number): void;
  getattr(req: Req, ino: number, fh: number): void;
  setattr(req: Req, ino: number, toSet: number, mode: number, uid: number, gid: number, size: number, atimeMs: number, mtimeMs: number, fh: number): void;
  readlink(req: Req, ino: number): void;
  mknod(req: Req, parent: number, name: string, mode: number, rdev: number): void;
  mkdir(req: Req, parent: number, name: string, mode: number): void;
  unlink(req: Req, parent: number, name: string): void;
  rmdir(req: Req, parent: number, name: string): void;
  symlink(req: Req, target: string, parent: number, name: string): void;
  rename(req: Req, parent: number, name: string, newParent: number, newName: string): void;
  link(req: Req, ino: number, newParent: number, newName: string): void;
  open(req: Req, ino: number, flags: number): void;
  read(req: Req, ino: number, size: number, off: number, fh: number): void;
  /** data: the payload, or the index of the write slab it was copied into. */
  write(req: Req, ino: number, data: Buffer | number, off: number, fh: number, size: number): void;
  flush(req: Req, ino: number, fh: number): void;
  release(req: Req, ino: number, fh: number): void;
  fsync(req: Req, ino: number, datasync: number, fh: number): void;
  opendir(req: Req, ino: number, flags: number): void;
  readdir(req: Req, ino: number, size: number, off: number, fh: number): void;
  readdirplus(req: Req, ino: number, size: number, off: number, fh: number): void;
  releasedir(req: Req, ino: number, fh: number): void;
  statfs(req: Req, ino: number): void;
  setxattr(req: Req, ino: number, name: string, value: Buffer, flags: number): void;
  getxattr(req: Req, ino: number, name: string, size: number): void;
  listxattr(req: Req, ino: number, size: number): void;
  removexattr(req: Req, ino: number, name: string): void;
  access(req: Req, ino: number, mask: number): void;
  create(req: Req, parent: number, name: string, mode: number, flags: number): void;
}

/** The kernel's largest write (MAX_REQUEST_BYTES in fuse_ll.c), and how many may wait in slabs. */
const MAX_WRITE_BYTES = 1024 * 1024;
const WRITE_SLABS = 16;

const { O_APPEND, O_RDWR, O_WRONLY } = fs.constants;

/**
 * The flags a file is opened with at the bricks when the kernel's writeback cache is on: the
 * kernel reads pages to complete partial ones, even through a write-only open, so write-only
 * becomes read-write (the open falls back to write-only where reading is not allowed); and it
 * places appends itself at the size it keeps, so O_APPEND goes (as libfuse's passthrough_ll).
 */
function writebackFlags(flags: number): number {
  const f = flags & ~O_APPEND;
  return (f & O_ACCMODE) === O_WRONLY ? (f & ~O_ACCMODE) | O_RDWR : f;
}

/** libfuse's default attribute and entry timeouts (seconds), as the fuse-native bridge has them. */
const DEFAULT_TIMEOUT_S = 1.0;
/** How often unmount checks whether the notify thread is out. */
const NOTIFY_STOP_POLL_MS = 10;

/** How long the kernel may trust what we answer, in seconds (mount -o attribute-timeout=, entry-timeout=, negative-timeout=). */
interface Timeouts {
  attr: number;
  entry: number;
  /** A name found missing; 0: the kernel asks again every time. */
  negative: number;
}

// fuse_lowlevel.h's FUSE_SET_ATTR_* bits.
const SET_MODE = 1 << 0;
const SET_UID = 1 << 1;
const SET_GID = 1 << 2;
const SET_SIZE = 1 << 3;
const SET_ATIME = 1 << 4;
const SET_MTIME = 1 << 5;
const SET_ATIME_NOW = 1 << 7;
const SET_MTIME_NOW = 1 << 8;
/** Only the kernel sets a ctime: with the writeback cache, the times it kept, flushed (write_inode). */
const SET_CTIME = 1 << 10;

const log = new Logger('fuse');

const ADDON = fileURLToPath(new URL('../../../native/fuse-ll/build/Release/fuse_ll.node', import.meta.url));

let native: Native | undefined;
function loadNative(): Native {
  native ??= createRequire(import.meta.url)(ADDON) as Native;
  return native;
}

/** The attribute block fuse_ll.c reads (A_* there), in doubles. */
const ATTR_LEN = 16;
/** One, reused: replies read it at once. */
const attrBlock = new Float64Array(ATTR_LEN);

function attrOf(x: Pick<Inode, 'id' | 'gfid'>, i: Iatt, t: Timeouts, a = attrBlock, at = 0): Float64Array {
  a[at] = x.id; a[at + 1] = i.mode; a[at + 2] = i.nlink; a[at + 3] = i.uid; a[at + 4] = i.gid; a[at + 5] = i.rdev;
  a[at + 6] = i.size; a[at + 7] = i.blocks; a[at + 8] = i.blksize; a[at + 9] = i.atimeMs; a[at + 10] = i.mtimeMs;
  a[at + 11] = i.ctimeMs; a[at + 12] = t.attr; a[at + 13] = t.entry;
  const [hi, lo] = stIno(x.gfid ?? i.gfid);
  a[at + 14] = hi; a[at + 15] = lo;
  return a;
}

/**
 * st_ino as two 32-bit halves for the attribute block: the last 8 bytes of the gfid (as
 * GlusterFS's gfid_to_ino), the same through every name of a file, on every client and after
 * a remount. [0, 0] when the reply carries no gfid: the addon then uses the nodeid.
 */
export function stIno(g: string | undefined): [number, number] {
  if (!g || g.length !== 32) return [0, 0];
  return [parseInt(g.slice(16, 24), 16), parseInt(g.slice(24, 32), 16)];
}

/** The gfid a new entry gets, chosen here so every layer and brick below gives it the same one. */
function gfidRequest(): Xattrs {
  return { [XATTR_GFID]: newGfid() };
}

/** args with the inode of its path, when the table knows one (a name the kernel never looked up has none). */
function withInode<A extends object>(args: A, inode: Inode | undefined): A & { inode?: Inode } {
  return inode ? { ...args, inode } : args;
}

/** The attribute block of a negative entry: inode 0, kept for the negative timeout. */
function negativeEntry(t: Timeouts): Float64Array {
  attrBlock.fill(0);
  attrBlock[13] = t.negative;
  return attrBlock;
}

/** An open directory: its listing, fetched when the kernel reads from offset 0. */
interface DirHandle {
  names?: string[];
  /** An attribute block per name (attrOf); "." and ".." carry only ino and mode. */
  attrs?: Float64Array;
  /** The node of each name ("." and ".." included, never referenced by readdirplus). */
  nodes?: Inode[];
}

/**
 * The FUSE bridge over libfuse's low-level API (native/fuse-ll), served on the Node main
 * thread: no thread handoff per request. Same graph calls as bridge.ts; the mount's inode
 * table (lib/inode.ts, shared with the graphs) turns the kernel's nodeids, which are its
 * inode ids, into paths and gives each fop the inode it is about. The default;
 * BRICKFS_FUSE=native selects bridge.ts instead.
 */
export class LowLevelBridge {
  private session?: Session;
  /** Where the addon copies write payloads (no Buffer allocated per write). */
  private readonly writeSlabs = Array.from({ length: WRITE_SLABS }, () => Buffer.allocUnsafeSlow(MAX_WRITE_BYTES));
  private readonly slabBusy = new Uint8Array(WRITE_SLABS);
  /** The caller of the request being handled (uid, gid, pid, umask), written by the addon. */
  private readonly caller = new Uint32Array(4);
  private readonly callers = new Callers();
  private readonly nodes: InodeTable;
  private readonly dirs = new Map<number, DirHandle>();
  private nextDir = 1;
  private readonly options: string;
  private readonly timeouts: Timeouts;
  /** Ask the kernel for its writeback cache at FUSE_INIT (mount -o writeback-cache). */
  private readonly writeback: boolean;
  /** Kernel requests that reached JavaScript, by op (statedump). */
  private readonly requests: Record<string, number> = {};
  /** Paths other clients changed, sent to the notify thread at the end of this turn. */
  private invalid?: Set<string>;
  /** Upcalls that reached the bridge (statedump). */
  private upcalls = 0;
  /** The root span of the request being handled, while tracing (traceable): read by who(). */
  private traceRoot?: TraceContext;

  /** Whether native/fuse-ll was built (scripts/build-fuse-ll.mjs skips it without libfuse3-dev). */
  static available(): boolean {
    if (fs.existsSync(ADDON)) return true;
    log.warn(`${ADDON} is not built (no libfuse3-dev at npm install?): serving through fuse-native, which is slower`);
    return false;
  }

  constructor(private readonly graphs: ActiveGraph, readonly mountpoint: string, opts: BridgeOptions) {
    this.nodes = graphs.inodes;
    this.options = [
      `fsname=${fsnameOption(opts.fsname)}`, 'subtype=brickfs', 'allow_other', 'default_permissions',
      ...(opts.extraOptions ?? []),
    ].join(',');
    this.timeouts = { attr: opts.attrTimeoutS ?? DEFAULT_TIMEOUT_S, entry: opts.entryTimeoutS ?? DEFAULT_TIMEOUT_S, negative: opts.negativeTimeoutS ?? 0 };
    this.writeback = opts.writebackCache === true;
    graphs.onInvalidate((paths) => this.invalidate(paths));
  }

  async mount(): Promise<void> {
    const n = loadNative();
    await clearStaleMount(this.mountpoint);
    let handlers = guarded(n, this.handlers(n), this.requests);
    if (profiling) {
      // Each request's answer is timed by the reply that carries it.
      const pending = new Map<Req, () => void>();
      const timed = Object.create(n) as Native;
      for (const k of Object.keys(REPLY_NAMES) as (keyof typeof REPLY_NAMES)[]) {
        const fn = n[k] as (req: Req, ...a: unknown[]) => void;
        // The addon's functions are read-only properties: shadow them on the copy.
        Object.defineProperty(timed, k, {
          value: (req: Req, ...a: unknown[]) => {
            pending.get(req)?.();
            pending.delete(req);
            return fn(req, ...a);
          },
        });
      }
      handlers = profiled(guarded(timed, this.handlers(timed), this.requests), (args, done) => {
        if (typeof args[0] === 'bigint') pending.set(args[0], done);
        else done();
      });
    }
    handlers = traceable(n, handlers, (traced) => guarded(traced, this.handlers(traced), this.requests), (t) => { this.traceRoot = t; });
    this.session = n.mount(this.mountpoint, this.options, handlers, () => {
      log.info(`${this.mountpoint}: the kernel ended the FUSE session`);
      this.unmountNow();
    });
    n.setWritebackCache(this.session, this.writeback);
    n.setWriteSlabs(this.session, this.writeSlabs, this.slabBusy);
    n.setCallerBuffer(this.session, this.caller);
    // Not awaited: it waits for the kernel's FUSE_INIT, which this start must not hold up.
    void raiseReadahead(n, () => this.session, this.mountpoint);
  }

  /**
   * The notify thread goes first, while requests are still served: a notification it is
   * writing may wait for the kernel, and the kernel for an answer from us.
   */
  async unmount(): Promise<void> {
    const s = this.session;
    if (s) {
      const n = loadNative();
      for (let waited = 0; !n.stopNotify(s) && this.session === s; waited += NOTIFY_STOP_POLL_MS) {
        if (waited % 5000 === 0 && waited > 0) log.warn(`${this.mountpoint}: the kernel cache notify thread is still busy after ${waited / 1000} s`);
        await new Promise((r) => setTimeout(r, NOTIFY_STOP_POLL_MS));
      }
    }
    this.unmountNow();
  }

  /** What the statedump shows of the bridge: its inode table, the requests JavaScript answered, the kernel invalidations. */
  statedump(): Record<string, unknown> {
    const [sent = 0, notCached = 0, failed = 0, dropped = 0, queued = 0] = this.session ? loadNative().notifyStats(this.session) : [];
    return {
      bridge: 'libfuse3-lowlevel', inodes: this.nodes.size, dirs: this.dirs.size, requests: { ...this.requests },
      timeouts: { ...this.timeouts }, writebackCache: this.writebackGranted(), invalidations: { upcalls: this.upcalls, sent, notCached, failed, dropped, queued },
    };
  }

  /**
   * Another client changed these volume paths: the kernel drops its attributes and pages of
   * each one's inode and its entry in the parent, if it has them (nodes the table does not
   * know, the kernel cannot hold). Paths are gathered for the turn (each brick of a
   * replica or distribute set sends the same path) and queued to the addon's notify thread:
   * never written from this thread (fuse_ll.c's session_t says why).
   */
  private invalidate(paths: readonly string[]): void {
    this.upcalls++;
    if (!this.session) return;
    if (!this.invalid) {
      this.invalid = new Set();
      setImmediate(() => this.flushInvalid());
    }
    for (const p of paths) this.invalid.add(p);
  }

  private flushInvalid(): void {
    const paths = this.invalid;
    this.invalid = undefined;
    const s = this.session;
    if (!paths || !s) return;
    const n = loadNative();
    for (const p of paths) {
      if (isPrivate(p)) continue;
      const x = this.nodes.find(p);
      if (x) n.invalInode(s, x.id);
      if (p === '/') continue;
      const slash = p.lastIndexOf('/');
      const dir = this.nodes.find(slash === 0 ? '/' : p.slice(0, slash));
      if (dir) n.invalEntry(s, dir.id, p.slice(slash + 1));
    }
  }

  /**
   * Whether the kernel runs this mount with its writeback cache: what it granted at
   * FUSE_INIT, not what was asked (a kernel without it keeps its opens' flags as they are).
   */
  private writebackGranted(): boolean {
    return this.session !== undefined && loadNative().writebackCache(this.session);
  }

  /**
   * Opens (or creates) with the kernel's writeback cache in mind: resolves to what open gave
   * and whether the page cache must stay out of this open (1). With the writeback cache, a
   * write-only open goes read-write at the bricks so the kernel can read the pages it
   * completes (writebackFlags); where the caller may not read the file (EACCES), it opens as
   * asked, O_APPEND kept, and the kernel sends that open's writes straight down.
   */
  private opening<T>(flags: number, open: (flags: number) => Promise<T>): Promise<[T, number]> {
    const wb = this.writebackGranted() ? writebackFlags(flags) : flags;
    if (wb === flags) return open(flags).then((r) => [r, 0]);
    return open(wb).then((r): [T, number] => [r, 0], (e) => {
      if (FsError.from(e).code !== 'EACCES') throw e;
      return open(flags).then((r): [T, number] => [r, 1]);
    });
  }

  private unmountNow(): void {
    const s = this.session;
    this.session = undefined;
    if (s) loadNative().unmount(s);
  }

  private handlers(n: Native): Handlers {
    const { graphs, nodes, timeouts, caller, callers } = this;
    /** The frame of the request being handled: read before the handler's first await. */
    const who = (): Frame => {
      const f = callers.frame(caller[0]!, caller[1]!, caller[2]! | 0);
      return this.traceRoot === undefined ? f : { ...f, trace: this.traceRoot };
    };
    const fail = (req: Req, e: unknown): void => n.replyErr(req, -errnoOf(e));
    /** The node of ino, or answers ESTALE. */
    const node = (req: Req, ino: number): Inode | undefined => {
      const x = nodes.get(ino);
      if (!x) n.replyErr(req, Errno.ESTALE);
      return x;
    };
    const ok = (req: Req) => (): void => n.replyErr(req, 0);
    const replyEntry = (req: Req, parent: number, name: string, iatt: Iatt): Inode => {
      const x = nodes.entry(parent, name, iatt.mode, iatt.gfid);
      x.nlookup++;
      n.replyEntry(req, attrOf(x, iatt, timeouts));
      return x;
    };
    /** A fop that makes (parent, name): answers its entry (a lookup when the reply has no attributes). */
    const make = (req: Req, parent: number, name: string, path: string, p: Promise<{ iatt?: Iatt }>, f: Frame): void => {
      p.then((r) => r.iatt ?? graphs.call('lookup', { path }, f).then((l) => l.iatt))
        .then((iatt) => { replyEntry(req, parent, name, iatt); }, (e) => fail(req, e));
    };
    /** The path of a new name (parent, name), or answers the error: private names are refused. */
    const newPath = (req: Req, parent: number, name: string): string | undefined => {
      const dir = node(req, parent);
      if (!dir) return undefined;
      const path = nodes.childPath(dir, name);
      if (isPrivate(path)) {
        n.replyErr(req, Errno.EPERM);
        return undefined;
      }
      return path;
    };
    /** Current attributes of a node: by path, or through an open handle once its name is gone. */
    const attrs = (x: Inode, f: Frame): Promise<Iatt> => {
      const fh = x.attached ? undefined : graphs.handleOn(x);
      if (fh !== undefined) return graphs.fdCall(fh, 'fstat', {}, f).then((r) => r.iatt);
      return graphs.call('lookup', { path: x.path, inode: x }, f).then((r) => r.iatt);
    };
    const listing = async (ino: number, x: Inode, d: DirHandle, f: Frame): Promise<void> => {
      const { entries } = await graphs.call('readdir', { path: x.path, inode: x }, f);
      const names = ['.', '..'];
      const parent = nodes.get(x.parent) ?? x;
      const kids = [x, parent];
      const attrs = new Float64Array((entries.length + 2) * ATTR_LEN);
      attrs[0] = x.id; attrs[1] = x.type;
      attrs[ATTR_LEN] = parent.id; attrs[ATTR_LEN + 1] = S_IFDIR;
      for (const e of entries) {
        if (ino === ROOT_ID && e.name === BRICK_PRIVATE_DIR) continue;
        const kid = nodes.entry(ino, e.name, e.iatt.mode, e.iatt.gfid);
        attrOf(kid, e.iatt, timeouts, attrs, names.length * ATTR_LEN);
        names.push(e.name);
        kids.push(kid);
      }
      d.names = names;
      d.attrs = attrs;
      d.nodes = kids;
    };
    /** Answers readdir or readdirplus from the handle's listing (made afresh at offset 0). */
    const readdir = (plus: boolean) => (req: Req, ino: number, size: number, off: number, fh: number): void => {
      const x = node(req, ino);
      if (!x) return;
      const d = this.dirs.get(fh);
      if (!d) return n.replyErr(req, Errno.EBADF);
      // Offset 0 (the first read, rewinddir) lists afresh, as libfuse's high-level API does.
      const ready = off === 0 || !d.names ? listing(ino, x, d, who()) : Promise.resolve();
      ready.then(() => {
        const attrs = d.attrs!;
        const kids = d.nodes!;
        // A name removed since the listing was made goes out with inode 0: no attributes, no
        // reference to a node that may be gone already.
        for (let i = Math.max(off, 2); i < kids.length; i++) if (!kids[i]!.attached) attrs[i * ATTR_LEN] = 0;
        if (!plus) return n.replyDir(req, size, off, d.names!, attrs);
        const next = n.replyDirPlus(req, size, off, d.names!, attrs);
        // The kernel took a lookup reference on each entry sent, as a lookup's answer gives.
        for (let i = Math.max(off, 2); i < next; i++) if (attrs[i * ATTR_LEN] !== 0) kids[i]!.nlookup++;
      }, (e) => fail(req, e));
    };
    const remove = (req: Req, fop: 'unlink' | 'rmdir', parent: number, name: string): void => {
      const f = who();
      const dir = node(req, parent);
      if (!dir) return;
      const path = nodes.childPath(dir, name);
      if (isPrivate(path)) return n.replyErr(req, Errno.ENOENT);
      graphs.call(fop, withInode({ path }, nodes.child(parent, name)), f).then(() => {
        nodes.remove(parent, name);
        n.replyErr(req, 0);
      }, (e) => fail(req, e));
    };
    const xattrReply = (req: Req, size: number, value: Buffer): void => {
      if (size === 0) n.replyXattrSize(req, value.length);
      else if (value.length > size) n.replyErr(req, Errno.ERANGE);
      else n.replyBuf(req, value);
    };

    return {
      lookup: (req, parent, name) => {
        const f = who();
        const dir = node(req, parent);
        if (!dir) return;
        const path = nodes.childPath(dir, name);
        if (isPrivate(path)) return n.replyErr(req, Errno.ENOENT);
        graphs.call('lookup', withInode({ path }, nodes.child(parent, name)), f).then((r) => { replyEntry(req, parent, name, r.iatt); }, (e) => {
          // A negative entry (inode 0) the kernel keeps for negative-timeout seconds.
          if (timeouts.negative > 0 && FsError.from(e).code === 'ENOENT') n.replyEntry(req, negativeEntry(timeouts));
          else fail(req, e);
        });
      },
      forget: (ino, nlookup) => nodes.forget(ino, nlookup),
      getattr: (req, ino) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        attrs(x, f).then((iatt) => n.replyAttr(req, attrOf(x, iatt, timeouts)), (e) => fail(req, e));
      },
      setattr: (req, ino, toSet, mode, uid, gid, size, atimeMs, mtimeMs, fh) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        // A file no name reaches and nothing holds open: no fop can reach it, and its old
        // path may name another file by now. The kernel's writeback cache sends one of these
        // for every file rm removes (the times it kept, flushed as the inode goes).
        if (!x.attached && fh < 0 && graphs.handleOn(x) === undefined) return n.replyErr(req, Errno.ENOENT);
        const set: SetattrFields = {};
        if (toSet & SET_MODE) set.mode = mode;
        if (toSet & SET_UID) set.uid = uid;
        if (toSet & SET_GID) set.gid = gid;
        if (toSet & SET_ATIME) set.atimeMs = toSet & SET_ATIME_NOW ? Date.now() : atimeMs;
        if (toSet & SET_MTIME) set.mtimeMs = toSet & SET_MTIME_NOW ? Date.now() : mtimeMs;
        if (toSet & SET_ATIME_NOW) set.atimeNow = true;
        if (toSet & SET_MTIME_NOW) set.mtimeNow = true;
        const byFd = fh >= 0 && (toSet & SET_SIZE) !== 0;
        if (toSet & SET_SIZE && !byFd) set.size = size;
        const anyFh = x.attached ? undefined : graphs.handleOn(x);
        // The writeback cache flushes the times it kept after a rename or chmod too, when
        // the mtime is the bricks' own: nothing to change then (the file's current
        // attributes, md-cache's when fresh, say so without a request to the bricks).
        const flushOnly = (toSet & SET_CTIME) !== 0 && (toSet & ~(SET_CTIME | SET_MTIME)) === 0 && !byFd;
        const run = async (): Promise<Iatt> => {
          if (flushOnly) {
            const now = fh >= 0 ? (await graphs.fdCall(fh, 'fstat', {}, f)).iatt : await attrs(x, f);
            // Within a microsecond: the time crossed to the kernel and back as seconds and nanoseconds.
            if (!(toSet & SET_MTIME) || Math.abs(now.mtimeMs - mtimeMs) < 0.001) return now;
          }
          if (byFd) await graphs.fdCall(fh, 'ftruncate', { size }, f);
          // An unlinked file open for writing still takes a truncate through its handle.
          if (set.size !== undefined && anyFh !== undefined) {
            await graphs.fdCall(anyFh, 'ftruncate', { size: set.size }, f);
            delete set.size;
          }
          let iatt: Iatt | undefined;
          if (Object.keys(set).length > 0) iatt = (await graphs.call('setattr', { path: x.path, inode: x, attrs: set }, f))?.iatt;
          if (iatt) return iatt;
          if (fh >= 0) return (await graphs.fdCall(fh, 'fstat', {}, f)).iatt;
          return attrs(x, f);
        };
        run().then((iatt) => n.replyAttr(req, attrOf(x, iatt, timeouts)), (e) => fail(req, e));
      },
      readlink: (req, ino) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        graphs.call('readlink', { path: x.path, inode: x }, f).then((r) => n.replyReadlink(req, r.target), (e) => fail(req, e));
      },
      mknod: (req, parent, name, mode, rdev) => {
        const f = who();
        const path = newPath(req, parent, name);
        if (path !== undefined) make(req, parent, name, path, graphs.call('mknod', { path, mode, rdev, xattrs: gfidRequest() }, f), f);
      },
      mkdir: (req, parent, name, mode) => {
        const f = who();
        const path = newPath(req, parent, name);
        if (path !== undefined) make(req, parent, name, path, graphs.call('mkdir', { path, mode, xattrs: gfidRequest() }, f), f);
      },
      symlink: (req, target, parent, name) => {
        const f = who();
        const path = newPath(req, parent, name);
        if (path !== undefined) make(req, parent, name, path, graphs.call('symlink', { target, path, xattrs: gfidRequest() }, f), f);
      },
      link: (req, ino, newParent, newName) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        const path = newPath(req, newParent, newName);
        // The new name's reply carries the file's gfid: the kernel gets the same inode back.
        if (path !== undefined) make(req, newParent, newName, path, graphs.call('link', { target: x.path, path, inode: x }, f), f);
      },
      unlink: (req, parent, name) => remove(req, 'unlink', parent, name),
      rmdir: (req, parent, name) => remove(req, 'rmdir', parent, name),
      rename: (req, parent, name, newParent, newName) => {
        const f = who();
        const from = nodes.get(parent);
        const to = nodes.get(newParent);
        if (!from || !to) return n.replyErr(req, Errno.ESTALE);
        const fromPath = nodes.childPath(from, name);
        const toPath = nodes.childPath(to, newName);
        if (isPrivate(fromPath)) return n.replyErr(req, Errno.ENOENT);
        if (isPrivate(toPath)) return n.replyErr(req, Errno.EPERM);
        graphs.call('rename', withInode({ from: fromPath, to: toPath }, nodes.child(parent, name)), f).then(() => {
          nodes.move(parent, name, newParent, newName);
          n.replyErr(req, 0);
        }, (e) => fail(req, e));
      },
      open: (req, ino, flags) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        this.opening(flags, (fl) => graphs.open(x, fl, f)).then(([fh, direct]) => n.replyOpen(req, fh, direct), (e) => fail(req, e));
      },
      create: (req, parent, name, mode, flags) => {
        const f = who();
        const path = newPath(req, parent, name);
        if (path === undefined) return;
        // The fd needs its inode before the file exists: the name's node (the file there, if
        // the table knew one), identified by the reply's gfid. A name the table holds as
        // another type keeps its node until a reply says otherwise: the fd goes on an inode
        // of its own.
        const known = nodes.child(parent, name);
        const x = known && known.type !== S_IFREG ? InodeTable.detached(path, S_IFREG) : nodes.entry(parent, name, S_IFREG);
        this.opening(flags, (fl) => graphs.create(x, mode, fl, f, gfidRequest())).then(([{ fh, iatt }, direct]) => {
          // A name that held another file by now (made elsewhere meanwhile) gets the new one's node.
          const y = nodes.entry(parent, name, iatt.mode, iatt.gfid);
          y.nlookup++;
          n.replyCreate(req, attrOf(y, iatt, timeouts), fh, direct);
        }, (e) => {
          // A node made for a name that was not made stays out of the table.
          if (!known && x.nlookup === 0 && x.fds.size === 0 && nodes.child(parent, name) === x) nodes.remove(parent, name);
          fail(req, e);
        });
      },
      read: (req, _ino, size, off, fh) => {
        const f = who();
        graphs.fdCall(fh, 'read', { offset: off, size }, f).then(({ data }) => {
          n.replyBuf(req, data.length > size ? data.subarray(0, size) : data);
        }, (e) => fail(req, e));
      },
      write: (req, _ino, data, off, fh, size) => {
        const f = who();
        const slot = typeof data === 'number' ? data : -1;
        const buf = slot >= 0 ? this.writeSlabs[slot]!.subarray(0, size) : (data as Buffer);
        // The slab is free again once the write is answered: write-behind copied it, or the
        // brick has it.
        const free = (): void => { if (slot >= 0) this.slabBusy[slot] = 0; };
        graphs.fdCall(fh, 'write', { offset: off, data: buf }, f)
          .then((r) => { free(); n.replyWrite(req, r.size); }, (e) => { free(); fail(req, e); });
      },
      flush: (req, _ino, fh) => {
        const f = who();
        graphs.fdCall(fh, 'flush', {}, f).then(ok(req), (e) => fail(req, e));
      },
      fsync: (req, _ino, datasync, fh) => {
        const f = who();
        graphs.fdCall(fh, 'fsync', { datasync: !!datasync }, f).then(ok(req), (e) => fail(req, e));
      },
      release: (req, _ino, fh) => {
        const f = who();
        graphs.release(fh, f).then(ok(req), (e) => fail(req, e));
      },
      opendir: (req, ino) => {
        if (!node(req, ino)) return;
        const dh = this.nextDir++;
        this.dirs.set(dh, {});
        n.replyOpen(req, dh, 0);
      },
      readdir: readdir(false),
      readdirplus: readdir(true),
      releasedir: (req, _ino, fh) => {
        this.dirs.delete(fh);
        n.replyErr(req, 0);
      },
      statfs: (req, ino) => {
        const f = who();
        const x = nodes.get(ino);
        graphs.call('statfs', { path: x ? x.path : '/' }, f).then(({ statfs: s }) => {
          n.replyStatfs(req, Float64Array.of(s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax));
        }, (e) => fail(req, e));
      },
      access: (req, ino, mask) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        graphs.call('access', { path: x.path, inode: x, mode: mask }, f).then(ok(req), (e) => fail(req, e));
      },
      getxattr: (req, ino, name, size) => {
        const f = who();
        if (!userXattr(name)) return n.replyErr(req, Errno.ENODATA);
        const x = node(req, ino);
        if (!x) return;
        graphs.call('getxattr', { path: x.path, inode: x, name }, f).then((r) => xattrReply(req, size, r.value), (e) => fail(req, e));
      },
      listxattr: (req, ino, size) => {
        const f = who();
        const x = node(req, ino);
        if (!x) return;
        graphs.call('listxattr', { path: x.path, inode: x }, f).then((r) => {
          xattrReply(req, size, Buffer.from(r.names.filter(userXattr).map((s) => `${s}\0`).join('')));
        }, (e) => fail(req, e));
      },
      setxattr: (req, ino, name, value, flags) => {
        const f = who();
        if (!userXattr(name)) return n.replyErr(req, Errno.ENOTSUP);
        const x = node(req, ino);
        if (!x) return;
        graphs.call('setxattr', { path: x.path, inode: x, name, value, flags }, f).then(ok(req), (e) => fail(req, e));
      },
      removexattr: (req, ino, name) => {
        const f = who();
        if (!userXattr(name)) return n.replyErr(req, Errno.ENOTSUP);
        const x = node(req, ino);
        if (!x) return;
        graphs.call('removexattr', { path: x.path, inode: x, name }, f).then(ok(req), (e) => fail(req, e));
      },
    };
  }
}

/** The reply functions of Native (the ones BRICKFS_PROFILE times). */
const REPLY_NAMES = {
  replyErr: 1, replyNone: 1, replyEntry: 1, replyCreate: 1, replyAttr: 1, replyOpen: 1, replyWrite: 1,
  replyBuf: 1, replyXattrSize: 1, replyReadlink: 1, replyStatfs: 1, replyDir: 1, replyDirPlus: 1,
} satisfies Partial<Record<keyof Native, 1>>;

/**
 * A handler that throws would leave its request unanswered (and fuse_ll.c makes the throw
 * fatal): it answers EIO instead.
 */
function guarded(n: Native, handlers: Handlers, counts: Record<string, number>): Handlers {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(handlers) as [string, (...a: unknown[]) => void][]) {
    counts[name] = 0;
    out[name] = (...args: unknown[]) => {
      counts[name]!++;
      try {
        fn(...args);
      } catch (e) {
        log.error(`${name}: ${(e as Error).stack ?? String(e)}`);
        if (typeof args[0] === 'bigint') n.replyErr(args[0], Errno.EIO);
      }
    };
  }
  return out as unknown as Handlers;
}

/**
 * While diagnostics.trace is on (lib/trace.ts), each kernel request is the root span of a
 * trace, `fuse OP`, ended by the reply that answers it; its handler's frames carry the span
 * (setRoot, read by who() before the handler's first await). Off, a request goes straight to
 * the plain handlers: nothing is made for it.
 */
function traceable(n: Native, plain: Handlers, make: (n: Native) => Handlers, setRoot: (t: TraceContext | undefined) => void): Handlers {
  /** Requests in flight with their spans: at most those the kernel has outstanding. */
  const open = new Map<Req, RootSpan>();
  const replying = Object.create(n) as Native;
  for (const k of Object.keys(REPLY_NAMES) as (keyof typeof REPLY_NAMES)[]) {
    const fn = n[k] as (req: Req, ...a: unknown[]) => unknown;
    Object.defineProperty(replying, k, {
      value: (req: Req, ...a: unknown[]) => {
        const span = open.get(req);
        if (span) {
          open.delete(req);
          span.end(k === 'replyErr' ? (a[0] as number) : 0);
        }
        return fn(req, ...a);
      },
    });
  }
  const traced = make(replying) as unknown as Record<string, (...a: unknown[]) => void>;
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(plain) as [string, (...a: unknown[]) => void][]) {
    const viaTrace = traced[name]!;
    out[name] = function (this: unknown) {
      // arguments passed on with apply, not gathered in a rest array: V8 allocates nothing for it.
      const args = arguments as unknown as unknown[];
      const req = args[0];
      const root = typeof req === 'bigint' && tracing() ? startRoot(`fuse ${name}`) : undefined;
      if (!root) return fn.apply(this, args);
      open.set(req as Req, root);
      setRoot(root.context);
      try {
        return viaTrace.apply(this, args);
      } finally {
        setRoot(undefined);
      }
    };
  }
  return out as unknown as Handlers;
}

/**
 * The kernel's readahead window for our mount, in KiB. Its default (128 KiB) caps sequential
 * reads at 128 KiB requests whatever FUSE allows; 4 MiB lets it send 1 MiB reads, several in
 * flight (dd of 512 MiB: 230-260 MB/s at 128 KiB, 300-330 at 4 MiB).
 */
const KERNEL_READ_AHEAD_KB = 4096;

/** How often, and for how long at most, raiseReadahead looks whether FUSE_INIT has been answered. */
const INIT_POLL_MS = 5;
const INIT_WAIT_MS = 30_000;

/**
 * Sets the readahead of the mount's backing device (/sys/class/bdi/MAJ:MIN), found through
 * /proc/self/mountinfo. Needs root; otherwise the kernel's default stays.
 *
 * Not before the kernel has our answer to FUSE_INIT: it offers its current window as
 * max_readahead in INIT and then sets the window to the smaller of it and our answer, so a
 * window raised earlier falls back to 128 KiB. The addon
 * says when that answer is out (initialized(), set by ll_init; libfuse writes the answer, and
 * the kernel applies it, before the dispatch that ran ll_init returns).
 *
 * Never by a request to our own mount point (a stat of it used to wait for INIT): the
 * thread making it waits in the kernel for an answer only this process can give, so a mount
 * process killed meanwhile stayed in D state for good, its mount hung.
 */
async function raiseReadahead(n: Native, current: () => Session | undefined, mountpoint: string): Promise<void> {
  const s = current();
  if (!s) return;
  for (let waited = 0; !n.initialized(s); waited += INIT_POLL_MS) {
    if (waited >= INIT_WAIT_MS) {
      log.debug(`${mountpoint}: no FUSE_INIT within ${INIT_WAIT_MS / 1000} s; kernel readahead left at its default`);
      return;
    }
    await new Promise((r) => setTimeout(r, INIT_POLL_MS));
    // Unmounted meanwhile: the session may be freed.
    if (current() !== s) return;
  }
  const dev = mountDevice(mountpoint);
  if (!dev) return;
  await fs.promises.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${KERNEL_READ_AHEAD_KB}\n`)
    .catch((e: Error) => log.debug(`${mountpoint}: kernel readahead left at its default: ${e.message}`));
}

/**
 * A mount left by a dead process answers ENOTCONN: lazily unmount it first (fuse-native's
 * force). `brickfs mount` has done so already (and said so); this is for a mount started
 * otherwise. The mount point is another mount's here, never ours: we are not mounted yet.
 */
async function clearStaleMount(mountpoint: string): Promise<void> {
  try {
    const said = await clearStale(mountpoint, process.pid);
    if (said) log.warn(said);
  } catch (e) {
    // A live mount there: libfuse mounts over it, as before.
    log.debug((e as Error).message);
  }
}
