import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, successes, type Settled } from '../../../../lib/fanout.js';
import type { FopArgs, FopReply, Xattrs } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import { CtxKey, type Inode } from '../../../../lib/inode.js';
import { renamedPath } from '../../../../lib/paths.js';
import type { Kind } from './changelog.js';
import { quorumLost } from './quorum.js';
import { INODE_LOCK, movedAway, type ReplicaSet, type Transactions } from './transaction.js';

/**
 * A burst of writes to one file under one lock and one pending mark (AFR's eager-lock
 * and delayed post-op): lock + pre-op before the first write, post-op + unlock once the
 * file has been idle for a moment, or before anything else touches it.
 */
export interface WriteBurst {
  readonly inode: Inode;
  /**
   * Where the lock was taken. The brick keys locks by path, so the unlock goes there even
   * when the file is reached by another name by then (its name that took the lock was
   * unlinked, a rename raced the burst's start); the post-op goes to the inode's path.
   */
  lockPath: string;
  locked: number[];
  marked: number[];
  /** Replicas where some write of the burst failed: they stay blamed. */
  failed: Set<number>;
  inflight: number;
  timer?: NodeJS.Timeout;
  /** An mtime set by a setattr in the burst and not moved by a write since: the post-op keeps it. */
  mtimeMs?: number;
}

/** Replicate's slot on a file's inode: its burst, open or ending. Every name of the file (hard links) and every fd on it finds the same one. */
interface FileBursts {
  readonly inode: Inode;
  /** The open burst, or the promise of one being opened. */
  open?: WriteBurst | Promise<WriteBurst>;
  /** The last burst's post-op + unlock on its way: the next burst starts after it. */
  ending?: Promise<void>;
}

/**
 * What a write burst marks: data, and metadata too, so the owner, mode and time changes
 * that follow writes (tar: fchown, fchmod, futimens before close) run under the burst's
 * lock and marks instead of a transaction of their own.
 */
const BURST_KINDS: readonly Kind[] = ['data', 'metadata'];

/** The write bursts of one replicate instance, each on its file's inode. */
export class WriteBursts {
  private readonly key: CtxKey<FileBursts>;
  /** Files with a burst open or ending: for fini, the statedump, renames of a directory and lock contention, which name a path. */
  private readonly active = new Set<FileBursts>();

  constructor(private readonly set: ReplicaSet, private readonly txn: Transactions, owner: string) {
    this.key = new CtxKey<FileBursts>(owner);
  }

  get size(): number {
    return this.active.size;
  }

  /**
   * The file a path fop names: the caller's inode, else the table's inode of that path;
   * with neither (a process with detached inodes: rebalance, heal), the file with a burst
   * whose inode has that path.
   */
  private slotAt(path: string, inode?: Inode): FileBursts | undefined {
    const known = inode ?? this.set.inodes.find(path);
    const s = known?.ctx.get(this.key);
    if (s || known) return s;
    for (const a of this.active) if (a.inode.path === path) return a;
    return undefined;
  }

  private slotOf(inode: Inode): FileBursts {
    return inode.ctx.ensure<FileBursts>(this.key, () => ({ inode }));
  }

  /** Whether this client holds marks of its own on the file now: a burst open, starting or ending. */
  has(path: string, inode?: Inode): boolean {
    const s = this.slotAt(path, inode);
    return s !== undefined && (s.open !== undefined || s.ending !== undefined);
  }

  /** Whether the file has a burst open or starting (its writes are in flight here). */
  writing(path: string, inode?: Inode): boolean {
    return this.slotAt(path, inode)?.open !== undefined;
  }

  /** The file's open burst, if one is open (not starting). */
  openAt(path: string, inode?: Inode): WriteBurst | undefined {
    const open = this.slotAt(path, inode)?.open;
    return open instanceof Promise ? undefined : open;
  }

  /** The pre-op (1) or its undo (-1) of a write burst: data and metadata, about every replica. */
  marks(n: 1 | -1): Xattrs {
    return this.txn.delta(this.set.all, BURST_KINDS, n);
  }

  /** The file's open burst, or a new one: lock, quorum, pre-op. */
  async burstFor(inode: Inode): Promise<WriteBurst> {
    let s = this.slotOf(inode);
    // The previous burst's post-op, sent behind a close, frees the lock this one needs.
    while (!s.open && s.ending) {
      await this.landed(s);
      s = this.slotOf(inode);
    }
    if (s.open) return s.open;
    const lockPath = inode.path;
    const starting = (async (): Promise<WriteBurst> => {
      const { locked, marked, reachable, error } = await this.txn.lockAndMark(lockPath, INODE_LOCK, this.marks(1), this.marks(-1));
      if (!this.set.hasQuorum(reachable) || !marked.length) {
        await this.txn.clearAndUnlock(lockPath, INODE_LOCK, locked, marked, this.marks(-1));
        if (!marked.length && this.set.hasQuorum(reachable)) throw error ?? FsError.of('ENOTCONN');
        throw quorumLost(reachable.length, this.set.children.length);
      }
      return { inode, lockPath, locked, marked, failed: new Set(), inflight: 0 };
    })();
    s.open = starting;
    this.active.add(s);
    try {
      const b = await starting;
      if (s.open === starting) s.open = b;
      return b;
    } catch (e) {
      if (s.open === starting) s.open = undefined;
      this.tidy(s);
      throw e;
    }
  }

  /**
   * Takes on the burst a create started on `started`. When a replica made the file without
   * it (its lock was busy, or it opened a file that was there), or there is no quorum, the
   * marks are undone and the lock dropped, behind, and the first write starts a burst the
   * ordinary way (after the undo: it waits for it as for any ending burst).
   */
  adoptCreated(inode: Inode, lockPath: string, started: number[], openOn: readonly number[]): void {
    const s = this.slotOf(inode);
    this.active.add(s);
    if (!s.open && openOn.every((i) => started.includes(i)) && this.set.hasQuorum(started)) {
      const b: WriteBurst = { inode, lockPath, locked: started, marked: started, failed: new Set(), inflight: 0 };
      s.open = b;
      this.armTimer(s, b);
      return;
    }
    this.trackEnding(s, this.txn.clearAndUnlock(lockPath, INODE_LOCK, started, started, this.marks(-1), { behind: true }));
  }

  /** True when the file's open burst left out or lost a replica: its post-op must land before close returns. */
  async degraded(inode: Inode): Promise<boolean> {
    const open = inode.ctx.get(this.key)?.open;
    if (!open) return false;
    const b = await Promise.resolve(open).catch(() => undefined);
    return b !== undefined && (b.failed.size > 0 || b.marked.length < this.set.children.length);
  }

  /** Ends the file's burst, if any, and waits until its post-op (and any sent behind before) has landed. */
  async endAndLand(path: string, inode?: Inode): Promise<void> {
    const s = this.slotAt(path, inode);
    if (!s) return;
    await this.end(s);
    await this.landed(s);
  }

  /** Ends the file's open burst, if any (its name is going: the post-op goes by path). */
  async endOpen(path: string, inode?: Inode): Promise<void> {
    const s = this.slotAt(path, inode);
    if (s?.open) await this.end(s);
  }

  /** Ends the file's burst in the background (a close went on without it). */
  endBehind(inode: Inode): void {
    const s = inode.ctx.get(this.key);
    if (s?.open) this.trackEnding(s, this.end(s, true));
  }

  /**
   * Ends the open bursts of a path and of every path under it (a directory being renamed,
   * a file being renamed or replaced), and of `inode`: their locks and marks go by path. A
   * post-op already sent behind a close needs no wait: it goes ahead of what is sent next
   * on each replica's connection.
   */
  async endAt(path: string, inode?: Inode): Promise<void> {
    const under = (p: string): boolean => renamedPath(p, path, path) !== undefined;
    for (const s of [...this.active]) {
      const lockPath = s.open instanceof Promise ? undefined : s.open?.lockPath;
      if (s.inode === inode || under(s.inode.path) || (lockPath !== undefined && under(lockPath))) await this.end(s);
    }
  }

  /** Another request waits for the lock taken at path: the burst holding it ends now. */
  contended(path: string): void {
    for (const s of this.active) {
      const lockPath = s.open instanceof Promise ? s.inode.path : s.open?.lockPath;
      if (lockPath === path) this.trackEnding(s, this.end(s, true));
    }
  }

  async endAll(): Promise<void> {
    for (const s of [...this.active]) await this.end(s).catch(() => undefined);
  }

  /**
   * One change of a file under its open burst: sent to the given replicas, the burst kept
   * open while it runs, and a replica that failed it stays blamed. Answers the first success,
   * unless a replica says the file moved away (movedAway): that is the answer. The change
   * goes with the caller's frame; the burst's lock and marks are root's (burstFor).
   */
  async run<F extends 'write' | 'writev' | 'setattr'>(
    b: WriteBurst, fop: F, args: FopArgs<F>, targets: number[], f: Frame,
  ): Promise<FopReply<F>> {
    clearTimeout(b.timer);
    b.inflight++;
    let res: Array<Settled<FopReply<F>>>;
    try {
      res = await fanout(this.set.children, fop, args, f, targets);
    } finally {
      b.inflight--;
    }
    for (const r of res) if (!r.ok) b.failed.add(r.child);
    const s = b.inode.ctx.get(this.key);
    if (s) this.armTimer(s, b);
    const moved = movedAway(res);
    if (moved) throw moved;
    const ok = successes(res);
    if (!ok.length) throw firstFailure(res) ?? FsError.of('ENOTCONN');
    return ok[0]!.value;
  }

  /** Once nothing of a burst is in flight, it ends after post-op-delay-ms without more. */
  private armTimer(s: FileBursts, b: WriteBurst): void {
    if (b.inflight > 0 || s.open !== b) return;
    clearTimeout(b.timer);
    b.timer = setTimeout(() => {
      if (s.open === b) this.trackEnding(s, this.end(s, true));
    }, this.set.options.postOpDelayMs());
  }

  /**
   * Ends the file's burst, if any: post-op for the replicas that took every write, unlock.
   * `behind`: nobody waits for it (a close went on without it).
   */
  private async end(s: FileBursts, behind = false): Promise<void> {
    const entry = s.open;
    if (!entry) return;
    const b = await entry;
    if (s.open !== b) return this.end(s, behind);
    s.open = undefined;
    clearTimeout(b.timer);
    try {
      while (b.inflight > 0) await new Promise((r) => setImmediate(r));
      const done = b.marked.filter((i) => !b.failed.has(i));
      // Each replica stamped its own clock on the writes; the post-op gives them one mtime,
      // so copies stay identical in metadata too (GlusterFS's ctime feature does the same).
      await this.txn.clearAndUnlock(s.inode.path, INODE_LOCK, b.locked, b.marked, this.txn.delta(done, BURST_KINDS, -1), {
        mtimeMs: b.mtimeMs ?? Date.now(), behind, lockPath: b.lockPath,
      });
    } finally {
      this.tidy(s);
    }
  }

  /** A burst's post-op (or undo) on its way: the file's `ending` until it lands, and in the background set fini waits for. */
  private trackEnding(s: FileBursts, posting: Promise<unknown>): void {
    this.active.add(s);
    const ending: Promise<void> = posting.then(() => undefined).finally(() => {
      if (s.ending === ending) s.ending = undefined;
      this.tidy(s);
    });
    s.ending = ending;
    this.set.inBackground(ending);
  }

  /** Waits until a post-op sent behind a close of the file has landed (its lock is free again). */
  private async landed(s: FileBursts): Promise<void> {
    for (let e = s.ending; e; e = s.ending) {
      this.set.flushBehind();
      await e.catch(() => undefined);
    }
  }

  private tidy(s: FileBursts): void {
    if (s.open || s.ending) return;
    this.active.delete(s);
    if (s.inode.ctx.get(this.key) === s) s.inode.ctx.take(this.key);
  }
}
