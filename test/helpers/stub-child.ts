/**
 * One in-memory child translator for unit tests of any translator: stack it under the
 * translator under test (as its only child, or as several children of a cluster
 * translator) and it answers every fop from a small memory filesystem, as storage/posix
 * (with features/locks above it) would.
 *
 * The model: a tree of names; each name points to an inode (hard links share one, nlink
 * counts the names); directories, regular files with data, symlinks, other nodes (fifos,
 * devices); xattrs per inode; DHT link files recognised as posix does (mode LINKFILE_MODE,
 * size 0, XATTR_LINKTO set); new entries owned by the caller's frame (uid, gid; gid of a
 * set-gid parent); fds; entry locks (entrylk, xattrop's lock/unlock, create's burst).
 * No permission checks: the caller's frame decides only who owns what it makes.
 *
 * For the tests: every call is recorded (fop, args, frame) before anything else happens;
 * faults make a fop fail with an errno (for one path or any, once, n times or always) or
 * wait (a number of ms or a gate) before or after the model answers; `tap` runs a function
 * as a call arrives (a race), `answerWith` replaces the model's reply; `down()` makes the
 * child answer every fop with ENOTCONN, as protocol/client does when its brick is away.
 *
 *   const child = new StubChild('brick-0');
 *   child.fs.writeFile('/d/f', 'hello');          // seeds /d too
 *   child.fail('write', 'ENOSPC', { path: '/d/f', times: 1 });
 *   const release = child.hold('lookup');          // the next lookup waits for release()
 */
import { constants as fsConstants } from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError, type ErrnoCode } from '../../lib/errors.js';
import {
  ENTRYLK_WHOLE_DIR, isChangelogXattr, LINKFILE_MODE, LOOKUP_DATA_MAX_BYTES, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, XATTR_GFID, XATTR_LINKTO,
  type DirEntry, type FopArgs, type FopName, type FopReply, type Iatt, type StatFs, type Xattrs,
} from '../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../lib/frame.js';
import { Fd } from '../../lib/inode.js';
import { Xlator } from '../../lib/xlator.js';

const { O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fsConstants;
const S_ISGID = 0o2000;

// ---- the memory filesystem ----------------------------------------------------------------

/** One inode of the model. */
export interface MemInode {
  readonly ino: number;
  /** Type and permission bits (S_IFDIR | 0o755...). */
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  /** Names pointing at it (directories: 2 + subdirectories, as on Linux). */
  nlink: number;
  /** A regular file's content. */
  data: Buffer;
  /** A symlink's target. */
  target?: string;
  readonly xattrs: Map<string, Buffer>;
  /** A directory's entries. */
  readonly entries?: Map<string, MemInode>;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

function isDirInode(n: MemInode): boolean {
  return (n.mode & S_IFMT) === S_IFDIR;
}

function isRegInode(n: MemInode): boolean {
  return (n.mode & S_IFMT) === S_IFREG;
}

/** Splits a volume path into its names; '/' is none. */
function namesOf(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw FsError.of('EINVAL', `not a volume path: ${String(path)}`);
  return path.split('/').filter(Boolean);
}

/** Who makes what the test helpers seed: root unless told. */
export interface SeedOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  xattrs?: Xattrs;
  /** atime, mtime and ctime of the entry (ms); now by default. */
  timeMs?: number;
}

function seedTimes(n: MemInode, opts: SeedOptions): void {
  if (opts.timeMs !== undefined) n.atimeMs = n.mtimeMs = n.ctimeMs = opts.timeMs;
}

/**
 * The filesystem behind a StubChild. Tests seed and inspect it directly (these methods are
 * not fops: nothing is recorded and no fault applies).
 */
export class MemFs {
  private nextIno = 1;
  readonly root: MemInode;

  constructor() {
    this.root = this.newInode(S_IFDIR | 0o755, ROOT_FRAME);
    this.root.nlink = 2;
  }

  newInode(mode: number, owner: { uid: number; gid: number }, rdev = 0): MemInode {
    const now = Date.now();
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      ino: this.nextIno++, mode, uid: owner.uid, gid: owner.gid, rdev, nlink: dir ? 2 : 1, data: Buffer.alloc(0),
      xattrs: new Map(), ...(dir ? { entries: new Map<string, MemInode>() } : {}),
      atimeMs: now, mtimeMs: now, ctimeMs: now,
    };
  }

  /** The inode at path, or undefined (a missing parent, or a non-directory on the way, too). */
  find(path: string): MemInode | undefined {
    let n: MemInode | undefined = this.root;
    for (const name of namesOf(path)) {
      n = n?.entries?.get(name);
      if (!n) return undefined;
    }
    return n;
  }

  /** The inode at path; ENOENT or ENOTDIR as a kernel would say. */
  get(path: string): MemInode {
    let n = this.root;
    for (const name of namesOf(path)) {
      if (!n.entries) throw FsError.of('ENOTDIR', `${path}: a component is not a directory`);
      const next = n.entries.get(name);
      if (!next) throw FsError.of('ENOENT', `${path}: no such file or directory`);
      n = next;
    }
    return n;
  }

  exists(path: string): boolean {
    return this.find(path) !== undefined;
  }

  /** The parent directory of path and the last name; ENOENT/ENOTDIR when the parent is not a directory. */
  parentOf(path: string): { dir: MemInode; name: string } {
    const names = namesOf(path);
    const name = names.pop();
    if (name === undefined) throw FsError.of('EBUSY', 'the root has no parent');
    const dir = this.get('/' + names.join('/'));
    if (!dir.entries) throw FsError.of('ENOTDIR', `${path}: parent is not a directory`);
    return { dir, name };
  }

  /** Puts a new inode under a name (EEXIST when taken); the parent's times and link count move. */
  add(path: string, inode: MemInode): MemInode {
    const { dir, name } = this.parentOf(path);
    if (dir.entries!.has(name)) throw FsError.of('EEXIST', `${path} exists`);
    dir.entries!.set(name, inode);
    if (isDirInode(inode)) dir.nlink++;
    this.touch(dir, true);
    return inode;
  }

  /** Removes a name (not checking what it is); the inode loses a link. */
  drop(path: string): MemInode {
    const { dir, name } = this.parentOf(path);
    const n = dir.entries!.get(name);
    if (!n) throw FsError.of('ENOENT', `${path}: no such file or directory`);
    dir.entries!.delete(name);
    if (isDirInode(n)) dir.nlink--;
    else n.nlink--;
    n.ctimeMs = Date.now();
    this.touch(dir, true);
    return n;
  }

  /** Moves mtime (content change) and ctime. */
  touch(n: MemInode, content: boolean): void {
    const now = Date.now();
    if (content) n.mtimeMs = now;
    n.ctimeMs = now;
  }

  /** Every missing directory on the way to path, then path itself as a directory (seeding). */
  mkdirp(path: string, opts: SeedOptions = {}): MemInode {
    let cur = '';
    let n = this.root;
    for (const name of namesOf(path)) {
      cur += '/' + name;
      const next = n.entries?.get(name);
      if (next) {
        if (!next.entries) throw FsError.of('ENOTDIR', `${cur} is not a directory`);
        n = next;
        continue;
      }
      n = this.add(cur, this.newInode(S_IFDIR | ((opts.mode ?? 0o755) & 0o7777), { uid: opts.uid ?? 0, gid: opts.gid ?? 0 }));
    }
    for (const [k, v] of Object.entries(opts.xattrs ?? {})) n.xattrs.set(k, Buffer.from(v));
    seedTimes(n, opts);
    return n;
  }

  /** A regular file with this content, its directories made as needed (seeding); replaces the content of one that exists. */
  writeFile(path: string, data: string | Buffer = '', opts: SeedOptions = {}): MemInode {
    this.mkdirp(pathMod.dirname(path));
    let n = this.find(path);
    if (!n) n = this.add(path, this.newInode(S_IFREG | ((opts.mode ?? 0o644) & 0o7777), { uid: opts.uid ?? 0, gid: opts.gid ?? 0 }));
    if (!isRegInode(n)) throw FsError.of('EISDIR', `${path} is not a regular file`);
    n.data = Buffer.from(data);
    for (const [k, v] of Object.entries(opts.xattrs ?? {})) n.xattrs.set(k, Buffer.from(v));
    this.touch(n, true);
    seedTimes(n, opts);
    return n;
  }

  /** Another name for an existing non-directory (seeding a hard link). */
  link(existing: string, path: string): MemInode {
    const n = this.get(existing);
    if (isDirInode(n)) throw FsError.of('EPERM', 'hard link to a directory');
    this.add(path, n);
    n.nlink++;
    return n;
  }

  /** A symlink (seeding). */
  symlink(target: string, path: string, opts: SeedOptions = {}): MemInode {
    this.mkdirp(pathMod.dirname(path));
    const n = this.newInode(S_IFLNK | 0o777, { uid: opts.uid ?? 0, gid: opts.gid ?? 0 });
    n.target = target;
    this.add(path, n);
    seedTimes(n, opts);
    return n;
  }

  /** A DHT link file at path pointing to the child named `to` (seeding, as distribute makes them). */
  linkfile(path: string, to: string, gfid?: Buffer): MemInode {
    this.mkdirp(pathMod.dirname(path));
    const n = this.add(path, this.newInode(LINKFILE_MODE, ROOT_FRAME));
    n.xattrs.set(XATTR_LINKTO, Buffer.from(to));
    if (gfid) n.xattrs.set(XATTR_GFID, gfid);
    return n;
  }

  /** The content of a regular file. */
  readFile(path: string): Buffer {
    const n = this.get(path);
    if (!isRegInode(n)) throw FsError.of('EISDIR', `${path} is not a regular file`);
    return n.data;
  }

  /** Removes a name and, for a directory, everything under it (seeding). */
  remove(path: string): void {
    if (this.find(path)) this.drop(path);
  }

  /** Names in a directory. */
  list(path: string): string[] {
    const n = this.get(path);
    if (!n.entries) throw FsError.of('ENOTDIR');
    return [...n.entries.keys()].sort();
  }

  xattr(path: string, name: string): Buffer | undefined {
    return this.find(path)?.xattrs.get(name);
  }

  /** Where a link file points, or undefined when the inode is not one (posix's linkTarget). */
  linkTarget(n: MemInode): string | undefined {
    if (n.mode !== LINKFILE_MODE || n.data.length !== 0) return undefined;
    return n.xattrs.get(XATTR_LINKTO)?.toString();
  }

  isLinkfile(path: string): boolean {
    const n = this.find(path);
    return n !== undefined && this.linkTarget(n) !== undefined;
  }

  /** Attributes as a brick answers them (gfid in hex when the inode has a 16-byte one). */
  iatt(n: MemInode): Iatt {
    const size = isRegInode(n) ? n.data.length : (n.mode & S_IFMT) === S_IFLNK ? Buffer.byteLength(n.target ?? '') : isDirInode(n) ? 4096 : 0;
    const gfid = n.xattrs.get(XATTR_GFID);
    return {
      mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: n.rdev, size, blocks: Math.ceil(size / 512), blksize: 4096, ino: n.ino,
      atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs,
      ...(gfid?.length === 16 ? { gfid: gfid.toString('hex') } : {}),
    };
  }

  /** Every path of the tree, depth first (for assertions and the self-heal index). */
  paths(from = '/'): string[] {
    const out: string[] = [];
    const walk = (p: string, n: MemInode): void => {
      for (const [name, c] of n.entries ?? []) {
        const cp = p === '/' ? `/${name}` : `${p}/${name}`;
        out.push(cp);
        walk(cp, c);
      }
    };
    walk(from, this.get(from));
    return out;
  }
}

// ---- the child translator -----------------------------------------------------------------

/** One fop that reached the stub, as it arrived. */
export interface RecordedCall {
  fop: FopName;
  args: Record<string, unknown>;
  frame: Frame;
  /** The path the fop is about: args.path (or from/target), or the path an fd was opened by. */
  path: string | undefined;
}

/** Which calls a fault applies to. */
export interface FaultMatch {
  /** Only calls about this path (args.path, rename's from or to, link's target or path, an fd's path). */
  path?: string;
  /** How many matching calls it hits before it goes: 1 = once (the default), Infinity = always. */
  times?: number;
  /** Only calls for which this says true. */
  when?: (call: RecordedCall) => boolean;
}

interface Fault extends Required<Pick<FaultMatch, 'times'>> {
  fops: ReadonlySet<FopName> | 'all';
  path?: string;
  when?: (call: RecordedCall) => boolean;
  error?: { code: ErrnoCode; message?: string };
  /** Wait this long, or for this gate, before (or after) the model answers. */
  wait?: number | Promise<unknown>;
  after?: boolean;
  /** Run when the call arrives, before the model answers (a race with another client). */
  run?: (call: RecordedCall) => void;
  /** The reply instead of the model's (which is then not touched). */
  replyWith?: (call: RecordedCall) => unknown;
}

interface StubFd {
  inode: MemInode;
  path: string;
  flags: number;
}

const DEFAULT_STATFS: StatFs = { bsize: 4096, frsize: 4096, blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: 1 << 16, ffree: 1 << 15, favail: 1 << 15, namemax: 255 };

/** Whether locks of these two names on one directory exclude each other (features/locks). */
function conflicts(a: string, b: string): boolean {
  if (a === b) return true;
  const entry = (n: string): boolean => !n.startsWith('\u0000');
  return (a === ENTRYLK_WHOLE_DIR && entry(b)) || (b === ENTRYLK_WHOLE_DIR && entry(a));
}

/** Adds int32 counters (storage/posix's xattrop arithmetic). */
function addCounters(cur: Buffer | undefined, delta: Uint8Array): Buffer {
  const d = Buffer.from(delta.buffer, delta.byteOffset, delta.byteLength);
  if (d.length % 4 !== 0) throw FsError.of('EINVAL', 'xattrop counters are int32s');
  const next = Buffer.alloc(Math.max(d.length, cur?.length ?? 0));
  for (let i = 0; i < next.length; i += 4) {
    const c = cur && i < cur.length ? cur.readInt32BE(i) : 0;
    const x = i < d.length ? d.readInt32BE(i) : 0;
    next.writeInt32BE((c + x) | 0, i);
  }
  return next;
}

/** Decodes a packed int32 counter xattr (for assertions on changelogs). */
export function counters(b: Uint8Array | undefined): number[] {
  if (!b) return [];
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readInt32BE(i));
  return out;
}

/** A StubChild's options. */
export interface StubChildOptions {
  /** Share this filesystem (two children over one "brick"); a new empty one by default. */
  fs?: MemFs;
  statfs?: Partial<StatFs>;
}

/**
 * The in-memory child. Extends Xlator, so it can be passed as a child to any translator's
 * constructor; it overrides call() (every fop, whatever its handler methods).
 */
export class StubChild extends Xlator {
  readonly fs: MemFs;
  /** Every call in arrival order. Clear with `calls.length = 0` or reset(). */
  readonly calls: RecordedCall[] = [];
  statfsReply: StatFs;
  private readonly faults: Fault[] = [];
  /** What each fd open on the child is open on (keyed by the shared Fd object, as a brick's fd table). */
  private readonly fds = new Map<Fd, StubFd>();
  /** Held entry locks: directory path, then name, then owner. */
  private readonly locks = new Map<string, Map<string, string>>();
  private lockWaiters: Array<() => void> = [];
  private isDown = false;

  constructor(name = 'stub', opts: StubChildOptions = {}) {
    super({ name, type: 'test/stub-child', options: {}, children: [] });
    this.fs = opts.fs ?? new MemFs();
    this.statfsReply = { ...DEFAULT_STATFS, ...opts.statfs };
  }

  // ---- what tests look at -------------------------------------------------------------

  /** The calls of these fops (all when none given), in order. */
  callsOf(...fops: FopName[]): RecordedCall[] {
    return fops.length ? this.calls.filter((c) => fops.includes(c.fop)) : [...this.calls];
  }

  /** The fop names that reached the child, in order. */
  get fops(): FopName[] {
    return this.calls.map((c) => c.fop);
  }

  /** The paths the calls of one fop were about, in order. */
  pathsOf(fop: FopName): Array<string | undefined> {
    return this.callsOf(fop).map((c) => c.path);
  }

  /** Open fds on the child (release not yet called). */
  get openFds(): number {
    return this.fds.size;
  }

  /** Entry locks held now, as 'path name owner' strings. */
  heldLocks(): string[] {
    return [...this.locks].flatMap(([dir, names]) => [...names].map(([name, owner]) => `${dir} ${JSON.stringify(name)} ${owner}`));
  }

  /** Forgets the recorded calls and every fault (the filesystem stays). */
  reset(): void {
    this.calls.length = 0;
    this.faults.length = 0;
    this.isDown = false;
  }

  // ---- fault injection ------------------------------------------------------------------

  /**
   * Makes fop (a name, a list, or 'all') fail with errno `code`: once by default, `times`
   * calls, or always (`times: Infinity`); for one path or any. Returns a function that
   * removes the fault.
   */
  fail(fop: FopName | readonly FopName[] | 'all', code: ErrnoCode, match: FaultMatch & { message?: string } = {}): () => void {
    return this.addFault({ fops: this.fopSet(fop), path: match.path, when: match.when, times: match.times ?? 1, error: { code, message: match.message } });
  }

  /** fail(…, { times: Infinity }). */
  failAlways(fop: FopName | readonly FopName[] | 'all', code: ErrnoCode, match: Omit<FaultMatch, 'times'> = {}): () => void {
    return this.fail(fop, code, { ...match, times: Infinity });
  }

  /**
   * Delays fop: `wait` ms, or until the promise settles; before the model answers (the call
   * reaches the brick late) or, with after: true, after (done at once, answered late).
   */
  delay(fop: FopName | readonly FopName[] | 'all', wait: number | Promise<unknown>, match: FaultMatch & { after?: boolean } = {}): () => void {
    return this.addFault({ fops: this.fopSet(fop), path: match.path, when: match.when, times: match.times ?? 1, wait, after: match.after });
  }

  /**
   * Holds the next call of fop until the returned function is called: its reply (the change
   * is done at once, answered late) or, with 'before', the call itself (it lands late).
   */
  hold(fop: FopName | readonly FopName[], when: 'before' | 'after' = 'after', match: FaultMatch = {}): () => void {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    this.delay(fop, gate, { ...match, after: when === 'after' });
    return release;
  }

  /**
   * Runs fn when a matching call arrives, before the model answers it (another client's
   * change racing this one, an invalidation pushed meanwhile). Every matching call by default.
   */
  tap(fop: FopName | readonly FopName[] | 'all', fn: (call: RecordedCall) => void, match: FaultMatch = {}): () => void {
    return this.addFault({ fops: this.fopSet(fop), path: match.path, when: match.when, times: match.times ?? Infinity, run: fn });
  }

  /**
   * Answers matching calls with fn's reply instead of the model's (which is left alone): a
   * brick of another version, a translator that answers without attributes. Every matching
   * call by default.
   */
  answerWith<F extends FopName>(fop: F, fn: (call: RecordedCall) => FopReply<F>, match: FaultMatch = {}): () => void {
    return this.addFault({ fops: this.fopSet(fop), path: match.path, when: match.when, times: match.times ?? Infinity, replyWith: fn });
  }

  /** Every fop answers ENOTCONN until up(); with notify, the parents hear CHILD_DOWN. */
  down(notify = false): void {
    this.isDown = true;
    if (notify) this.notify('CHILD_DOWN', this);
  }

  up(notify = false): void {
    this.isDown = false;
    if (notify) this.notify('CHILD_UP', this);
  }

  get isUp(): boolean {
    return !this.isDown;
  }

  private fopSet(fop: FopName | readonly FopName[] | 'all'): ReadonlySet<FopName> | 'all' {
    return fop === 'all' ? 'all' : new Set(typeof fop === 'string' ? [fop] : fop);
  }

  private addFault(f: Fault): () => void {
    this.faults.push(f);
    return () => {
      const i = this.faults.indexOf(f);
      if (i >= 0) this.faults.splice(i, 1);
    };
  }

  /** The faults this call meets (each one's count taken). */
  private faultsFor(call: RecordedCall): Fault[] {
    const hit: Fault[] = [];
    for (const f of [...this.faults]) {
      if (f.fops !== 'all' && !f.fops.has(call.fop)) continue;
      if (f.path !== undefined && !this.about(call).includes(f.path)) continue;
      if (f.when && !f.when(call)) continue;
      hit.push(f);
      if (--f.times <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    }
    return hit;
  }

  /** Every path a call is about. */
  private about(call: RecordedCall): string[] {
    const a = call.args;
    const out = [a.path, a.from, a.to, a.target].filter((p): p is string => typeof p === 'string');
    if (a.fd instanceof Fd) {
      const f = this.fds.get(a.fd);
      if (f) out.push(f.path);
    }
    return out;
  }

  // ---- dispatch -------------------------------------------------------------------------

  override async call<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const a = args as unknown as Record<string, unknown>;
    const fdPath = a.fd instanceof Fd ? this.fds.get(a.fd)?.path ?? a.fd.path : undefined;
    const path = [a.path, a.from, a.target].find((p): p is string => typeof p === 'string') ?? fdPath;
    const rec: RecordedCall = { fop, args: a, frame, path };
    this.calls.push(rec);
    const faults = this.faultsFor(rec);
    const waits = (after: boolean): Array<number | Promise<unknown>> =>
      faults.filter((f) => f.wait !== undefined && (f.after === true) === after).map((f) => f.wait!);
    const wait = async (list: Array<number | Promise<unknown>>): Promise<void> => {
      for (const w of list) {
        if (typeof w === 'number') await new Promise((r) => setTimeout(r, w));
        else await w.catch(() => undefined);
      }
    };
    // Without a wait before it, the model changes in this very call (as a brick applies
    // requests in arrival order): two calls sent in a row land in that order.
    const before = waits(false);
    if (before.length) await wait(before);
    let outcome: { ok: true; value: FopReply<F> } | { ok: false; error: unknown };
    try {
      if (this.isDown) throw FsError.of('ENOTCONN', `${this.name} is down`);
      const err = faults.find((f) => f.error)?.error;
      if (err) throw FsError.of(err.code, err.message ?? `${this.name}: injected ${err.code} on ${fop}`);
      for (const f of faults) f.run?.(rec);
      const instead = faults.find((f) => f.replyWith)?.replyWith;
      outcome = { ok: true, value: (await (instead ? instead(rec) : this.answer(fop, a, frame))) as FopReply<F> };
    } catch (e) {
      outcome = { ok: false, error: e };
    }
    await wait(waits(true));
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** The model's answer to one fop. */
  private answer(fop: FopName, a: Record<string, unknown>, frame: Frame): unknown {
    const m = this.fs;
    const path = a.path as string;
    switch (fop) {
      case 'lookup': {
        const n = m.get(path);
        const reply: FopReply<'lookup'> = { iatt: m.iatt(n) };
        const linkto = m.linkTarget(n);
        if (linkto !== undefined) reply.linkto = linkto;
        const names = a.xattrs as string[] | undefined;
        if (names?.length) {
          const out: Xattrs = {};
          for (const x of names) {
            const v = n.xattrs.get(x);
            if (v) out[x] = Buffer.from(v);
          }
          reply.xattrs = out;
        }
        const want = a.wantData as number | undefined;
        if (typeof want === 'number' && linkto === undefined && isRegInode(n) && n.data.length <= Math.min(want, LOOKUP_DATA_MAX_BYTES)) {
          reply.data = Buffer.from(n.data);
        }
        return reply;
      }
      case 'fstat':
        return { iatt: m.iatt(this.fdOf(a.fd).inode) };
      case 'access':
        m.get(path);
        return {};
      case 'readdir': {
        const n = m.get(path);
        if (!n.entries) throw FsError.of('ENOTDIR');
        const entries: DirEntry[] = [];
        for (const [name, c] of n.entries) {
          const e: DirEntry = { name, iatt: m.iatt(c) };
          const linkto = m.linkTarget(c);
          if (linkto !== undefined) e.linkto = linkto;
          entries.push(e);
        }
        return { entries };
      }
      case 'mkdir': {
        const n = m.add(path, m.newInode(S_IFDIR | ((a.mode as number) & 0o7777), this.owner(path, frame)));
        this.setXattrs(n, a.xattrs as Xattrs | undefined);
        return { iatt: m.iatt(n) };
      }
      case 'create':
        return this.create(a as FopArgs<'create'>, frame);
      case 'mknod': {
        const mode = a.mode as number;
        const type = mode & S_IFMT;
        if (type === S_IFDIR || type === S_IFLNK) throw FsError.of('EINVAL', 'mknod makes neither directories nor symlinks');
        const n = m.add(path, m.newInode(type === 0 ? S_IFREG | mode : mode, this.owner(path, frame), (a.rdev as number) || 0));
        this.setXattrs(n, a.xattrs as Xattrs | undefined);
        return { iatt: m.iatt(n) };
      }
      case 'open': {
        const n = m.get(path);
        this.openInode(a.fd as Fd, n, path, a.flags as number);
        return {};
      }
      case 'read': {
        const f = this.fdOf(a.fd);
        const off = a.offset as number;
        return { data: Buffer.from(f.inode.data.subarray(off, off + (a.size as number))) };
      }
      case 'readfile': {
        const n = m.get(path);
        this.refuseLinkfile(n);
        if (!isRegInode(n)) throw FsError.of('EISDIR');
        const off = a.offset as number;
        return { data: Buffer.from(n.data.subarray(off, off + (a.size as number))) };
      }
      case 'write': {
        const f = this.fdOf(a.fd);
        const data = a.data as Buffer;
        this.writeAt(f, a.offset as number, data);
        return { size: data.length };
      }
      case 'writev': {
        const f = this.fdOf(a.fd);
        let size = 0;
        for (const x of a.extents as Array<{ offset: number; data: Buffer }>) {
          this.writeAt(f, x.offset, x.data);
          size += x.data.length;
        }
        return { size };
      }
      case 'ftruncate': {
        const f = this.fdOf(a.fd);
        this.truncate(f.inode, a.size as number);
        return {};
      }
      case 'fsync':
      case 'flush':
        this.fdOf(a.fd);
        return {};
      case 'release':
        this.fdOf(a.fd);
        this.fds.delete(a.fd as Fd);
        return {};
      case 'unlink': {
        const n = m.get(path);
        if (isDirInode(n)) throw FsError.of('EISDIR');
        const link = m.linkTarget(n) !== undefined;
        if (a.linkfileOnly && !link) throw FsError.of('ENOENT', `${path} is not a link file`);
        if (a.dataOnly && link) throw FsError.of('ENOENT', `${path} is a link file`);
        m.drop(path);
        return {};
      }
      case 'rmdir': {
        if (path === '/') throw FsError.of('EBUSY');
        const n = m.get(path);
        if (!n.entries) throw FsError.of('ENOTDIR');
        if (n.entries.size) throw FsError.of('ENOTEMPTY');
        m.drop(path);
        return {};
      }
      case 'rename':
        return this.rename(a as FopArgs<'rename'>);
      case 'link': {
        const n = m.get(a.target as string);
        if (isDirInode(n)) throw FsError.of('EPERM', 'hard link to a directory');
        m.add(path, n);
        n.nlink++;
        m.touch(n, false);
        return { iatt: m.iatt(n) };
      }
      case 'symlink': {
        const n = m.newInode(S_IFLNK | 0o777, this.owner(path, frame));
        n.target = a.target as string;
        m.add(path, n);
        this.setXattrs(n, a.xattrs as Xattrs | undefined);
        return { iatt: m.iatt(n) };
      }
      case 'readlink': {
        const n = m.get(path);
        if ((n.mode & S_IFMT) !== S_IFLNK) throw FsError.of('EINVAL');
        return { target: n.target ?? '' };
      }
      case 'setattr':
        return this.setattr(a as FopArgs<'setattr'>);
      case 'statfs':
        return { statfs: { ...this.statfsReply } };
      case 'getxattr': {
        const n = m.get(path);
        this.refuseLinkfileFor(n, a.name as string);
        const v = n.xattrs.get(a.name as string);
        if (!v) throw FsError.of('ENODATA');
        return { value: Buffer.from(v) };
      }
      case 'setxattr': {
        const n = m.get(path);
        this.refuseLinkfileFor(n, a.name as string);
        const name = a.name as string;
        const flags = a.flags as number;
        if (flags === 1 && n.xattrs.has(name)) throw FsError.of('EEXIST');
        if (flags === 2 && !n.xattrs.has(name)) throw FsError.of('ENODATA');
        n.xattrs.set(name, Buffer.from(a.value as Buffer));
        m.touch(n, false);
        return {};
      }
      case 'listxattr':
        return { names: [...m.get(path).xattrs.keys()] };
      case 'removexattr': {
        const n = m.get(path);
        this.refuseLinkfileFor(n, a.name as string);
        if (!n.xattrs.delete(a.name as string)) throw FsError.of('ENODATA');
        m.touch(n, false);
        return {};
      }
      case 'xattrop':
        return this.xattrop(a as FopArgs<'xattrop'>);
      case 'indexlist':
        return { paths: m.paths().filter((p) => [...m.get(p).xattrs].some(([k, v]) => isChangelogXattr(k) && v.some((b) => b !== 0))) };
      case 'entrylk':
        return this.entrylk(a as FopArgs<'entrylk'>);
      case 'migrate':
        return { iatt: m.iatt(m.get(path)) };
      default:
        throw FsError.of('ENOSYS', `${this.name}: ${String(fop)}`);
    }
  }

  // ---- the fops with more to them -------------------------------------------------------

  /** The owner of a new entry: the caller, with the parent's group when it is set-gid. */
  private owner(path: string, frame: Frame): { uid: number; gid: number } {
    const { dir } = this.fs.parentOf(path);
    return { uid: frame.uid, gid: dir.mode & S_ISGID ? dir.gid : frame.gid };
  }

  private setXattrs(n: MemInode, xattrs: Xattrs | undefined): void {
    for (const [k, v] of Object.entries(xattrs ?? {})) n.xattrs.set(k, Buffer.from(v));
  }

  /** posix refuses data and user-metadata fops on a link file: the data lives elsewhere. */
  private refuseLinkfile(n: MemInode): void {
    if (this.fs.linkTarget(n) !== undefined) throw FsError.of('ESTALE', 'this name is a link file here; the data lives elsewhere');
  }

  private refuseLinkfileFor(n: MemInode, name: string): void {
    if (!name.startsWith('trusted.brickfs.')) this.refuseLinkfile(n);
  }

  private openInode(fd: Fd, n: MemInode, path: string, flags: number): void {
    this.refuseLinkfile(n);
    if (isDirInode(n) && (flags & 3) !== 0) throw FsError.of('EISDIR');
    if (flags & O_TRUNC && isRegInode(n)) this.truncate(n, 0);
    if (this.fds.has(fd)) throw FsError.of('EBADF', `${this.name}: fd on ${path} is already open`);
    this.fds.set(fd, { inode: n, path, flags });
  }

  private create(a: FopArgs<'create'>, frame: Frame): FopReply<'create'> {
    const existing = this.fs.find(a.path);
    if (existing) {
      if (a.flags & O_EXCL) throw FsError.of('EEXIST');
      // posix's openExisting: the name's file, opened as open would (a link file: ESTALE).
      this.openInode(a.fd, existing, a.path, a.flags & ~O_CREAT);
      return { iatt: this.fs.iatt(existing) };
    }
    // features/locks: a burst's lock is tried first; without it the file is made plain.
    const burst = a.burst && this.tryTake(a.path, a.burst.lock.name, a.burst.lock.owner) ? a.burst : undefined;
    const n = this.fs.add(a.path, this.fs.newInode(S_IFREG | (a.mode & 0o7777), this.owner(a.path, frame)));
    this.setXattrs(n, a.xattrs);
    if (burst) for (const [k, v] of Object.entries(burst.add)) n.xattrs.set(k, addCounters(undefined, v));
    this.fds.set(a.fd, { inode: n, path: a.path, flags: a.flags });
    return { iatt: this.fs.iatt(n), created: true, ...(burst ? { burst: true } : {}) };
  }

  private fdOf(fd: unknown): StubFd {
    const f = fd instanceof Fd ? this.fds.get(fd) : undefined;
    if (!f) throw FsError.of('EBADF', `${this.name}: fd ${fd instanceof Fd ? `on ${fd.path}` : String(fd)} is not open`);
    return f;
  }

  private writeAt(f: StubFd, offset: number, data: Buffer): void {
    if ((f.flags & 3) === 0) throw FsError.of('EBADF', 'fd not open for writing');
    const n = f.inode;
    const at = f.flags & O_APPEND ? n.data.length : offset;
    const end = at + data.length;
    if (end > n.data.length) {
      const grown = Buffer.alloc(end);
      n.data.copy(grown);
      n.data = grown;
    }
    data.copy(n.data, at);
    this.fs.touch(n, true);
  }

  private truncate(n: MemInode, size: number): void {
    if (!isRegInode(n)) throw FsError.of('EINVAL');
    const next = Buffer.alloc(size);
    n.data.copy(next, 0, 0, Math.min(size, n.data.length));
    n.data = next;
    this.fs.touch(n, true);
  }

  private rename(a: FopArgs<'rename'>): FopReply<'rename'> {
    const m = this.fs;
    if (a.from === '/' || a.to === '/') throw FsError.of('EPERM', 'cannot rename the root');
    const src = m.get(a.from);
    if (a.dataOnly && m.linkTarget(src) !== undefined) throw FsError.of('ENOENT', `${a.from} is a link file`);
    if (a.to.startsWith(a.from + '/')) throw FsError.of('EINVAL', 'a directory cannot move under itself');
    m.parentOf(a.to);
    const dst = m.find(a.to);
    let replacedLinkto: string | undefined;
    if (dst) {
      // rename(2): two names of one file stay as they are.
      if (dst === src) return {};
      if (isDirInode(src) && !isDirInode(dst)) throw FsError.of('ENOTDIR');
      if (!isDirInode(src) && isDirInode(dst)) throw FsError.of('EISDIR');
      if (dst.entries?.size) throw FsError.of('ENOTEMPTY');
      replacedLinkto = m.linkTarget(dst);
      m.drop(a.to);
    }
    m.drop(a.from);
    if (!isDirInode(src)) src.nlink++;
    m.add(a.to, src);
    m.touch(src, false);
    return replacedLinkto === undefined ? {} : { replacedLinkto };
  }

  private setattr(a: FopArgs<'setattr'>): FopReply<'setattr'> {
    const n = this.fs.get(a.path);
    this.refuseLinkfile(n);
    const at = a.attrs ?? {};
    const now = Date.now();
    if (at.mode !== undefined) n.mode = (n.mode & S_IFMT) | (at.mode & 0o7777);
    if (at.uid !== undefined) n.uid = at.uid;
    if (at.gid !== undefined) n.gid = at.gid;
    if (at.size !== undefined) this.truncate(n, at.size);
    if (at.atimeNow) n.atimeMs = now;
    else if (at.atimeMs !== undefined) n.atimeMs = at.atimeMs;
    if (at.mtimeNow) n.mtimeMs = now;
    else if (at.mtimeMs !== undefined) n.mtimeMs = at.mtimeMs;
    n.ctimeMs = now;
    return { iatt: this.fs.iatt(n) };
  }

  private xattrop(a: FopArgs<'xattrop'>): FopReply<'xattrop'> {
    const n = this.fs.get(a.path);
    if (a.lock && !this.tryTake(a.path, a.lock.name, a.lock.owner)) throw FsError.of('EAGAIN', 'entry lock is held');
    const out: Xattrs = {};
    for (const [k, v] of Object.entries(a.add ?? {})) {
      const next = addCounters(n.xattrs.get(k), v);
      n.xattrs.set(k, next);
      out[k] = Buffer.from(next);
    }
    if (typeof a.mtimeMs === 'number') n.mtimeMs = a.mtimeMs;
    n.ctimeMs = Date.now();
    if (a.unlock) this.dropLock(a.path, a.unlock.name, a.unlock.owner);
    return { xattrs: out, iatt: this.fs.iatt(n), ...(a.lock ? { locked: true } : {}) };
  }

  private async entrylk(a: FopArgs<'entrylk'>): Promise<FopReply<'entrylk'>> {
    if (a.cmd === 'unlock') {
      if (!this.dropLock(a.path, a.name, a.owner)) throw FsError.of('EINVAL', 'unlock of a lock not held by this owner');
      return {};
    }
    while (!this.tryTake(a.path, a.name, a.owner)) {
      if (a.cmd === 'trylock') throw FsError.of('EAGAIN', 'entry lock is held');
      await new Promise<void>((r) => this.lockWaiters.push(r));
    }
    return {};
  }

  private tryTake(dir: string, name: string, owner: string): boolean {
    const held = this.locks.get(dir) ?? new Map<string, string>();
    for (const h of held.keys()) if (conflicts(h, name)) return false;
    held.set(name, owner);
    this.locks.set(dir, held);
    return true;
  }

  private dropLock(dir: string, name: string, owner: string): boolean {
    const held = this.locks.get(dir);
    if (held?.get(name) !== owner) return false;
    held.delete(name);
    if (held.size === 0) this.locks.delete(dir);
    const waiters = this.lockWaiters;
    this.lockWaiters = [];
    for (const w of waiters) w();
    return true;
  }
}

/** Several stub children named `${prefix}-0`, `${prefix}-1`… */
export function stubChildren(n: number, prefix = 'stub'): StubChild[] {
  return Array.from({ length: n }, (_, i) => new StubChild(`${prefix}-${i}`));
}

/** A frame of an ordinary user (uid/gid 1000 unless told). */
export function userFrame(uid = 1000, gid = uid, pid = 4242, groups: number[] = []): Frame {
  return Object.freeze({ uid, gid, pid, groups: Object.freeze([...groups]) as readonly number[] });
}
