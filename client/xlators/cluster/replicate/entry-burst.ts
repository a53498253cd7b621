import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { settleEach, successes } from '../../../../lib/fanout.js';
import type { Xattrs } from '../../../../lib/fops.js';
import type { Logger } from '../../../../lib/log.js';
import { renamedPath } from '../../../../lib/paths.js';

/** What a lock + pre-op got on each replica (replicate's lockAndMark). */
export interface Marked {
  locked: number[];
  marked: number[];
  reachable: number[];
  error?: FsError;
}

/**
 * A run of entry changes (create, unlink, mkdir...) in one directory under one
 * whole-directory lock and one pending mark: AFR's eager-lock, applied to a directory's
 * names. An untar or rm -rf changes many names of a directory in a row; each would
 * otherwise cost a lock + pre-op and a post-op + unlock request per replica around its
 * one request of work.
 */
interface EntryBurst {
  dir: string;
  locked: number[];
  marked: number[];
  /** Replicas where some change failed while another replica did it: they stay blamed. */
  failed: Set<number>;
  inflight: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
}

/** What EntryBursts needs of replicate. */
export interface EntryBurstHost {
  log: Logger;
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
/** Bound on the directories remembered as paused. */
const MAX_PAUSED = 1024;

/**
 * The entry bursts of one replicate instance, by directory. A change joins the open burst
 * of its directory or starts one (trylock only: a busy lock, someone else's or a name
 * lock of our own, means the change goes the one-by-one way, so nothing waits on a lock
 * this client holds). A burst ends after the host's idle time without changes, at
 * MAX_AGE_MS, when the brick says another request waits for its lock (a `contended`
 * push), and before what replicate must not do under it: a rename or rmdir of the
 * directory (the post-op goes by path), and anything that answers the directory's
 * attributes (the post-op moves its ctime).
 */
export class EntryBursts {
  private readonly open = new Map<string, EntryBurst | Promise<EntryBurst | undefined>>();
  /** Post-ops on their way, by directory: the next burst there starts after. */
  private readonly ending = new Map<string, Promise<void>>();
  private readonly pausedUntil = new Map<string, number>();

  constructor(private readonly host: EntryBurstHost) {}

  /** Whether this client holds marks of its own on dir now (open, starting or ending). */
  busy(dir: string): boolean {
    return this.open.has(dir) || this.ending.has(dir);
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * The burst a change in dir joins (counted in flight until `run` ends), or undefined when
   * the change must go as a transaction of its own.
   */
  async join(dir: string, waitForEnding = true): Promise<EntryBurst | undefined> {
    for (;;) {
      const entry = this.open.get(dir);
      if (entry) {
        const b = await entry;
        if (!b) return undefined;
        if (this.open.get(dir) !== b) continue;
        if (b.failed.size === 0 && Date.now() - b.startedAt < MAX_AGE_MS) {
          b.inflight++;
          clearTimeout(b.timer);
          return b;
        }
        // A replica failed a change (a new burst finds who is there) or it is old enough.
        this.endBehind(dir);
        continue;
      }
      if (!waitForEnding && this.ending.has(dir)) return undefined;
      await this.landed(dir);
      if (this.open.has(dir)) continue;
      if ((this.pausedUntil.get(dir) ?? 0) > Date.now()) return undefined;
      const starting = this.start(dir);
      this.open.set(dir, starting);
      const b = await starting;
      if (this.open.get(dir) === starting) {
        if (b) this.open.set(dir, b);
        else this.open.delete(dir);
      }
      if (!b) return undefined;
    }
  }

  private async start(dir: string): Promise<EntryBurst | undefined> {
    const got = await this.host.tryLockAndMark(dir, this.host.entryMarks(1), this.host.entryMarks(-1)).catch(() => undefined);
    if (!got) {
      this.pause(dir);
      return undefined;
    }
    if (!got.marked.length || !this.host.hasQuorum(got.reachable)) {
      // The transaction the change goes as instead gives the error (EROFS, ENOENT).
      await this.host.clearAndUnlock(dir, got.locked, got.marked, this.host.entryMarks(-1), false);
      return undefined;
    }
    return { dir, locked: got.locked, marked: got.marked, failed: new Set(), inflight: 0, startedAt: Date.now() };
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
    if (b.inflight === 0 && this.open.get(b.dir) === b) {
      clearTimeout(b.timer);
      b.timer = setTimeout(() => this.endBehind(b.dir), this.host.idleMs());
    }
  }

  /** Ends dir's burst: post-op for the replicas that did every change, unlock. */
  async end(dir: string, behind = false): Promise<void> {
    const entry = this.open.get(dir);
    if (!entry) return;
    const b = await entry;
    if (!b || this.open.get(dir) !== b) return;
    this.open.delete(dir);
    clearTimeout(b.timer);
    const posting = (async (): Promise<void> => {
      while (b.inflight > 0) await new Promise((r) => setImmediate(r));
      const done = b.marked.filter((i) => !b.failed.has(i));
      await this.host.clearAndUnlock(dir, b.locked, b.marked, this.host.entryClear(done), behind);
    })();
    const landed: Promise<void> = posting.finally(() => {
      if (this.ending.get(dir) === landed) this.ending.delete(dir);
    });
    this.ending.set(dir, landed);
    this.host.inBackground(landed);
    if (!behind) await landed;
  }

  private endBehind(dir: string): void {
    void this.end(dir, true).catch((e: Error) => this.host.log.warn(`entry post-op of ${dir}: ${e.message}`));
  }

  /** Waits until the post-op of dir's last burst has landed (its lock is free again). */
  async landed(dir: string): Promise<void> {
    for (let e = this.ending.get(dir); e; e = this.ending.get(dir)) {
      this.host.flushBehind();
      await e.catch(() => undefined);
    }
  }

  /** Ends dir's burst and waits for its post-op (and any before it) to land. */
  async endAndLand(dir: string): Promise<void> {
    await this.end(dir);
    await this.landed(dir);
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
    if (this.open.size === 0 && this.ending.size === 0) return;
    const dirs = [...new Set([...this.open.keys(), ...this.ending.keys()])].filter(which);
    for (const d of dirs) await this.endAndLand(d);
  }

  /** Another request waits for dir's lock: end the burst now, and go one by one for a while. */
  contended(dir: string): void {
    this.pause(dir);
    this.endBehind(dir);
  }

  async endAll(): Promise<void> {
    for (const dir of [...this.open.keys()]) await this.end(dir).catch(() => undefined);
  }

  private pause(dir: string): void {
    const now = Date.now();
    if (this.pausedUntil.size >= MAX_PAUSED) {
      for (const [d, until] of this.pausedUntil) if (until <= now) this.pausedUntil.delete(d);
      if (this.pausedUntil.size >= MAX_PAUSED) this.pausedUntil.clear();
    }
    this.pausedUntil.set(dir, now + PAUSE_MS);
  }
}
