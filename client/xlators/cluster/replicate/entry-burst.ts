import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { settleEach, successes } from '../../../../lib/fanout.js';
import type { Xattrs } from '../../../../lib/fops.js';
import { CtxKey, type InodeTable } from '../../../../lib/inode.js';
import type { Logger } from '../../../../lib/log.js';
import { renamedPath } from '../../../../lib/paths.js';
import type { Marked } from './transaction.js';

/**
 * A run of entry changes (create, unlink, mkdir...) in one directory under one
 * whole-directory lock and one pending mark: AFR's eager-lock, applied to a directory's
 * names. An untar or rm -rf changes many names of a directory in a row; each would
 * otherwise cost a lock + pre-op and a post-op + unlock request per replica around its
 * one request of work.
 */
interface EntryBurst {
  /** The directory's state it belongs to. */
  state: DirBursts;
  /** Where its lock and marks were taken (the brick keys locks by path). */
  dir: string;
  locked: number[];
  marked: number[];
  /** Replicas where some change failed while another replica did it: they stay blamed. */
  failed: Set<number>;
  inflight: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
}

/** One directory's entry bursts: on the directory's inode, or in the fallback map by path. */
interface DirBursts {
  /** Its path when last used: a burst locks and marks by it (a rename of it ends its bursts first). */
  dir: string;
  /** The open burst, or the promise of one being started (undefined: it could not start). */
  open?: EntryBurst | Promise<EntryBurst | undefined>;
  /** The last burst's post-op on its way: the next burst here starts after it. */
  ending?: Promise<void>;
  /** Its lock was wanted by someone else (or busy): changes go one by one until then. */
  pausedUntil?: number;
}

/** What EntryBursts needs of replicate. */
export interface EntryBurstHost {
  log: Logger;
  /** The mount's inode table: a directory's bursts hang on its inode. */
  inodes: InodeTable;
  /** Owner of the inode slot (the replicate instance's name). */
  owner: string;
  /** The pre-op (1) or its undo (-1): entry changes pending on every replica. */
  entryMarks(n: 1 | -1): Xattrs;
  /** Post-op marks clearing the replicas that did every change. */
  entryClear(done: readonly number[]): Xattrs;
  /** Whole-directory lock + pre-op without waiting; undefined when a lock is busy. */
  tryLockAndMark(dir: string, add: Xattrs, undo: Xattrs): Promise<Marked | undefined>;
  clearAndUnlock(dir: string, locked: number[], marked: number[], clear: Xattrs, behind: boolean): Promise<unknown>;
  hasQuorum(reachable: number[]): boolean;
  /** A burst ends this long after its last change. */
  idleMs(): number;
  inBackground(p: Promise<unknown>): void;
  flushBehind(): void;
}

function sameReplicas(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * A burst ends at the latest this long after it began, so its marks never stand for long.
 * Not shorter: a walker that comes back to a directory every few hundred milliseconds (the
 * bench's small-file set spreads its files over 100 directories in turn) would start a burst
 * at almost every visit (1 s: 2x the lock and mark requests, creates and renames ~20 %
 * slower on 2 x 2; docs/replicate.md, "Entry bursts"). Another client that wants the lock
 * ends it at once (`contended`), whatever its age.
 */
const MAX_AGE_MS = 5000;
/** After a directory's lock was wanted by someone else (or busy), its changes go one by one this long. */
const PAUSE_MS = 1000;
/** Bound on the directories without an inode remembered by path (paused ones, beside those with a burst). */
const MAX_BY_PATH = 1024;

/**
 * The entry bursts of one replicate instance, each on its directory's inode. A change joins
 * the open burst of its directory or starts one (trylock only: a busy lock, someone else's
 * or a name lock of our own, means the change goes the one-by-one way, so nothing waits on
 * a lock this client holds). A burst ends after the host's idle time without changes, at
 * MAX_AGE_MS, when the brick says another request waits for its lock (a `contended`
 * push), and before what replicate must not do under it: a rename or rmdir of the
 * directory (the post-op goes by path), and anything that answers the directory's
 * attributes (the post-op moves its ctime).
 */
export class EntryBursts {
  private readonly key: CtxKey<DirBursts>;
  /**
   * Directories the inode table does not know, by path. Entry fops carry no inode of their
   * parent, so a directory's state is found through the table by path; a rebalance or heal
   * process works on detached inodes and its table never learns the names, so its
   * directories' bursts can only be kept by path. Looked at first, so a directory keeps
   * the state it started with when the table learns it meanwhile.
   */
  private readonly byPath = new Map<string, DirBursts>();
  /** Directories with a burst open or ending: for the scans by path (renames, listings, contention, fini). */
  private readonly active = new Set<DirBursts>();

  constructor(private readonly host: EntryBurstHost) {
    this.key = new CtxKey<DirBursts>(host.owner);
  }

  private state(dir: string): DirBursts | undefined {
    const kept = this.byPath.get(dir);
    if (kept) return kept;
    const inode = this.host.inodes.find(dir);
    return inode?.isDir() ? inode.ctx.get(this.key) : undefined;
  }

  private ensure(dir: string): DirBursts {
    const got = this.state(dir);
    if (got) {
      got.dir = dir;
      return got;
    }
    const made: DirBursts = { dir };
    const inode = this.host.inodes.find(dir);
    if (inode?.isDir()) return inode.ctx.set(this.key, made);
    if (this.byPath.size >= MAX_BY_PATH) for (const [d, x] of this.byPath) if (this.idle(x)) this.byPath.delete(d);
    this.byPath.set(dir, made);
    return made;
  }

  /** No burst, no post-op on its way, no pause: nothing worth keeping. */
  private idle(s: DirBursts): boolean {
    return !s.open && !s.ending && (s.pausedUntil ?? 0) <= Date.now();
  }

  /** Drops a directory's state once nothing is left of it. */
  private tidy(s: DirBursts): void {
    if (s.open || s.ending) return;
    this.active.delete(s);
    if (!this.idle(s)) return;
    if (this.byPath.get(s.dir) === s) this.byPath.delete(s.dir);
    const inode = this.host.inodes.find(s.dir);
    if (inode?.ctx.get(this.key) === s) inode.ctx.take(this.key);
  }

  /** Whether this client holds marks of its own on dir now (open, starting or ending). */
  busy(dir: string): boolean {
    const s = this.state(dir);
    return s !== undefined && (s.open !== undefined || s.ending !== undefined);
  }

  get size(): number {
    let n = 0;
    for (const s of this.active) if (s.open) n++;
    return n;
  }

  /**
   * The burst a change in dir joins (counted in flight until `run` ends), or undefined when
   * the change must go as a transaction of its own.
   */
  async join(dir: string, waitForEnding = true): Promise<EntryBurst | undefined> {
    for (;;) {
      const s = this.ensure(dir);
      const entry = s.open;
      if (entry) {
        const b = await entry;
        if (!b) return undefined;
        if (s.open !== b) continue;
        if (b.failed.size === 0 && Date.now() - b.startedAt < MAX_AGE_MS) {
          b.inflight++;
          clearTimeout(b.timer);
          return b;
        }
        // A replica failed a change (a new burst finds who is there) or it is old enough.
        this.endBehind(s);
        continue;
      }
      if (s.ending) {
        if (!waitForEnding) return undefined;
        await this.landed(s);
        continue;
      }
      if ((s.pausedUntil ?? 0) > Date.now()) return undefined;
      const starting = this.start(s, dir);
      s.open = starting;
      this.active.add(s);
      const b = await starting;
      if (s.open === starting) {
        s.open = b;
        if (!b) this.tidy(s);
      }
      if (!b) return undefined;
    }
  }

  private async start(s: DirBursts, dir: string): Promise<EntryBurst | undefined> {
    const got = await this.host.tryLockAndMark(dir, this.host.entryMarks(1), this.host.entryMarks(-1)).catch(() => undefined);
    if (!got) {
      this.pause(s);
      return undefined;
    }
    if (!got.marked.length || !this.host.hasQuorum(got.reachable)) {
      // The transaction the change goes as instead gives the error (EROFS, ENOENT).
      await this.host.clearAndUnlock(dir, got.locked, got.marked, this.host.entryMarks(-1), false);
      return undefined;
    }
    return { state: s, dir, locked: got.locked, marked: got.marked, failed: new Set(), inflight: 0, startedAt: Date.now() };
  }

  /**
   * The bursts of several directories (a rename's two parents), joined in order, or
   * undefined (none kept) when one cannot be joined or they marked different replicas.
   * Only the first may wait for a post-op on its way: one that waited while holding another
   * burst open could wait on a post-op that waits for that burst's changes to finish.
   */
  async joinAll(dirs: readonly string[]): Promise<EntryBurst[] | undefined> {
    const joined: EntryBurst[] = [];
    for (const dir of dirs) {
      const b = await this.join(dir, joined.length === 0);
      if (b && (joined.length === 0 || sameReplicas(b.marked, joined[0]!.marked))) {
        joined.push(b);
        continue;
      }
      for (const j of [...joined, ...(b ? [b] : [])]) this.leave(j);
      return undefined;
    }
    return joined;
  }

  /**
   * One change on every replica the bursts marked. A replica that fails it while another
   * does it stays blamed (not cleared at the post-ops); a change that fails everywhere is
   * the answer and blames nobody.
   */
  async run<T>(bursts: readonly EntryBurst[], op: (child: number) => Promise<T>): Promise<T> {
    try {
      const results = await settleEach(bursts[0]!.marked, op);
      const ok = successes(results);
      if (ok.length === 0) throw (results.find((r) => !r.ok) as { error: FsError } | undefined)?.error ?? FsError.of('ENOTCONN');
      for (const r of results) if (!r.ok) for (const b of bursts) b.failed.add(r.child);
      return ok[0]!.value;
    } finally {
      for (const b of bursts) this.leave(b);
    }
  }

  /** A change of the burst is over: the last one out starts its idle time. */
  private leave(b: EntryBurst): void {
    b.inflight--;
    if (b.inflight === 0 && b.state.open === b) {
      clearTimeout(b.timer);
      b.timer = setTimeout(() => this.endBehind(b.state), this.host.idleMs());
    }
  }

  /** Ends the directory's burst: post-op for the replicas that did every change, unlock. */
  private async end(s: DirBursts, behind = false): Promise<void> {
    const entry = s.open;
    if (!entry) return;
    const b = await entry;
    if (!b || s.open !== b) return;
    s.open = undefined;
    clearTimeout(b.timer);
    const posting = (async (): Promise<void> => {
      while (b.inflight > 0) await new Promise((r) => setImmediate(r));
      const done = b.marked.filter((i) => !b.failed.has(i));
      await this.host.clearAndUnlock(b.dir, b.locked, b.marked, this.host.entryClear(done), behind);
    })();
    const landed: Promise<void> = posting.finally(() => {
      if (s.ending === landed) s.ending = undefined;
      this.tidy(s);
    });
    s.ending = landed;
    this.host.inBackground(landed);
    if (!behind) await landed;
  }

  private endBehind(s: DirBursts): void {
    void this.end(s, true).catch((e: Error) => this.host.log.warn(`entry post-op of ${s.dir}: ${e.message}`));
  }

  /** Waits until the post-op of the directory's last burst has landed (its lock is free again). */
  private async landed(s: DirBursts): Promise<void> {
    for (let e = s.ending; e; e = s.ending) {
      this.host.flushBehind();
      await e.catch(() => undefined);
    }
  }

  /** Ends dir's burst and waits for its post-op (and any before it) to land. */
  async endAndLand(dir: string): Promise<void> {
    const s = this.state(dir);
    if (s) await this.endAndLandState(s);
  }

  private async endAndLandState(s: DirBursts): Promise<void> {
    await this.end(s);
    await this.landed(s);
  }

  /** endAndLand for the bursts of dir's subdirectories (a listing of dir carries their attributes). */
  endChildrenOf(dir: string): Promise<void> {
    return this.endWhere((d) => d !== dir && pathMod.dirname(d) === dir);
  }

  /** endAndLand for path and every directory under it (one being renamed or removed). */
  endAt(path: string): Promise<void> {
    return this.endWhere((d) => renamedPath(d, path, path) !== undefined);
  }

  /** endAndLand for every directory with a burst open or ending that `which` picks. */
  private async endWhere(which: (dir: string) => boolean): Promise<void> {
    if (this.active.size === 0) return;
    for (const s of [...this.active].filter((x) => which(x.dir))) await this.endAndLandState(s);
  }

  /** Another request waits for the lock taken on dir: end the burst now, and go one by one for a while. */
  contended(dir: string): void {
    const s = [...this.active].find((x) => x.dir === dir) ?? this.ensure(dir);
    this.pause(s);
    this.endBehind(s);
  }

  async endAll(): Promise<void> {
    for (const s of [...this.active]) await this.end(s).catch(() => undefined);
  }

  private pause(s: DirBursts): void {
    s.pausedUntil = Date.now() + PAUSE_MS;
  }
}
