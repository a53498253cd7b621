import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, settleEach, successes, type Settled } from '../../../../lib/fanout.js';
import type { FopReply, Iatt, Xattrs } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import type { Inode, InodeTable } from '../../../../lib/inode.js';
import type { Logger } from '../../../../lib/log.js';
import type { Xlator } from '../../../../lib/xlator.js';
import { changelogDelta, type Kind } from './changelog.js';
import { quorumLost } from './quorum.js';

/** Lock name for a file's own data and metadata transactions (entry locks use the child name). */
export const INODE_LOCK = '\u0000inode';

/** What the parts of replicate share: the set, its lock owner and its options. */
export interface ReplicaSet {
  readonly children: readonly Xlator[];
  readonly names: readonly string[];
  /** Every replica's index, in order. */
  readonly all: readonly number[];
  readonly log: Logger;
  /** The mount's inode table: write and entry bursts hang on its inodes. */
  readonly inodes: InodeTable;
  /** This instance's lock owner on the bricks. */
  readonly owner: string;
  hasQuorum(up: readonly number[]): boolean;
  /** Tracks a post-op answered before it landed (fini waits for it). */
  inBackground(p: Promise<unknown>): void;
  /** Sends at once what was sent behind (someone waits for it now). */
  flushBehind(): void;
  readonly options: {
    selfHeal(): boolean;
    entryBurst(): boolean;
    postOpDelayMs(): number;
    entryPostOpDelayMs(): number;
  };
}

/** What a lock + pre-op got on each replica (lockAndMark). */
export interface Marked {
  locked: number[];
  marked: number[];
  /** Replicas that answered at once (what quorum counts). */
  reachable: number[];
  error?: FsError;
}

/** What one transaction changes and where its locks and changelog live. */
export interface TxnTarget {
  kind: Kind;
  /** Path that carries the changelog (the file itself, or the parent for entry changes). */
  changelogPath: string;
  lockPath: string;
  lockName: string;
  /** The file of an inode change, when the caller has it: its write burst ends first. */
  inode?: Inode;
}

export function entryTarget(path: string): TxnTarget {
  const dir = pathMod.dirname(path);
  return { kind: 'entry', changelogPath: dir, lockPath: dir, lockName: pathMod.basename(path) };
}

export function inodeTarget(path: string, kind: Kind, inode?: Inode): TxnTarget {
  return { kind, changelogPath: path, lockPath: path, lockName: INODE_LOCK, inode };
}

/**
 * A replica's answer to a change of a file that was moved away from it (rebalance committed
 * a migration): ESTALE through an fd; ENOENT by path, for a name that was there when the
 * change took its lock and marks. The change was held there by the migration's freeze, so
 * the copy now in use may have been read from that replica without it: the change fails
 * with this error, whatever the other replicas answered, and cluster/distribute redoes it
 * where the file lives now. The other replicas' success was on the copy left behind.
 */
export function movedAway<T>(results: Array<Settled<T>>): FsError | undefined {
  for (const r of results) if (!r.ok && (r.error.code === 'ESTALE' || r.error.code === 'ENOENT')) return r.error;
  return undefined;
}

/**
 * AFR's transaction: lock on every reachable replica, quorum, pre-op marks about every
 * replica, the change, post-op clearing the replicas that did it, unlock
 * (docs/replicate.md). Locks and marks are replicate's bookkeeping, sent as root whoever
 * the change is for; the change carries the caller's frame.
 */
export class Transactions {
  /** Runs before a file's own transaction: its write and entry bursts end (their locks are the ones it takes). */
  beforeInodeChange: (t: TxnTarget) => Promise<void> = async () => undefined;

  constructor(private readonly set: ReplicaSet) {}

  /** The changelog delta of `kinds` about the replicas `about`, n each. */
  delta(about: readonly number[], kinds: readonly Kind[], n: number): Xattrs {
    return changelogDelta(this.set.children.length, about, kinds, n);
  }

  /**
   * Locks a name on every reachable replica. All at once first; if any is busy, drop
   * them and take them one by one in replica order, which cannot deadlock with another
   * client doing the same. The frame is root's (a transaction's or a heal's): the locks are
   * replicate's own, not the caller's to be refused.
   */
  async lock(path: string, name: string, frame: Frame): Promise<number[]> {
    const { children, owner } = this.set;
    const args = { path, name, owner };
    const tried = await fanout(children, 'entrylk', { ...args, cmd: 'trylock' }, frame);
    if (tried.every((r) => r.ok || r.error.code === 'ENOTCONN')) return successes(tried).map((r) => r.child);
    await this.unlock({ path, name, children: successes(tried).map((r) => r.child) }, frame);
    const held: number[] = [];
    for (const i of this.set.all) {
      try {
        await children[i]!.call('entrylk', { ...args, cmd: 'lock' }, frame);
        held.push(i);
      } catch (e) {
        if (FsError.from(e).code !== 'ENOTCONN') {
          await this.unlock({ path, name, children: held }, frame);
          throw e;
        }
      }
    }
    return held;
  }

  async unlock(held: { path: string; name: string; children: number[] }, frame: Frame): Promise<void> {
    if (held.children.length === 0) return;
    await fanout(this.set.children, 'entrylk', { path: held.path, name: held.name, owner: this.set.owner, cmd: 'unlock' }, frame, held.children);
  }

  /**
   * Lock and pre-op in one request per replica: each brick takes the lock (trylock), then
   * adds the marks. When a replica's lock is busy, the marks taken are undone and it goes
   * the ordered way (lock, then pre-op), which waits without deadlock. A replica is
   * `locked` when it holds the lock, `marked` when it also took the marks, `reachable`
   * (what quorum counts) when it answered at all: one that refused the pre-op (ENOENT, a
   * file being migrated) is there, as it was when the lock was a request of its own.
   */
  async lockAndMark(path: string, name: string, add: Xattrs, undo: Xattrs): Promise<Marked> {
    const got = await this.tryLockAndMark(path, name, add, undo);
    if (got) return got;
    const locked = await this.lock(path, name, ROOT_FRAME);
    try {
      const pre = await fanout(this.set.children, 'xattrop', { path, add }, ROOT_FRAME, locked);
      return { locked, marked: successes(pre).map((r) => r.child), reachable: locked, error: firstFailure(pre) };
    } catch (e) {
      await this.unlock({ path, name, children: locked }, ROOT_FRAME);
      throw e;
    }
  }

  /** lockAndMark without waiting: undefined (marks undone, locks dropped) when a replica's lock is busy. */
  async tryLockAndMark(path: string, name: string, add: Xattrs, undo: Xattrs): Promise<Marked | undefined> {
    const { children } = this.set;
    const spec = { name, owner: this.set.owner };
    const res = await fanout(children, 'xattrop', { path, add, lock: spec }, ROOT_FRAME);
    const got = successes(res);
    const busy = res.some((r) => !r.ok && r.error.code === 'EAGAIN');
    // A brick that ignores `lock` (an older one) marked without locking: same way back.
    const unlocked = got.filter((r) => !r.value.locked).map((r) => r.child);
    if (!busy && unlocked.length === 0) {
      const marked = got.map((r) => r.child);
      const reachable = res.filter((r) => r.ok || r.error.code !== 'ENOTCONN').map((r) => r.child);
      return { locked: marked, marked, reachable, error: firstFailure(res) };
    }
    const lockedHere = got.filter((r) => r.value.locked).map((r) => r.child);
    await fanout(children, 'xattrop', { path, add: undo, unlock: spec }, ROOT_FRAME, lockedHere);
    if (unlocked.length) await fanout(children, 'xattrop', { path, add: undo }, ROOT_FRAME, unlocked);
    return undefined;
  }

  /**
   * Post-op and unlock in one request per marked replica (the brick drops the lock after
   * the marks are cleared, whatever the outcome); replicas locked but not marked are
   * unlocked alone. `lockPath`: where the lock was taken when the changelog is now reached
   * by another name (the brick keys locks by path): the post-op goes to `path` and the
   * unlock there, each a request of its own.
   */
  async clearAndUnlock(
    path: string, name: string, locked: number[], marked: number[], clear: Xattrs,
    opts: { mtimeMs?: number; behind?: boolean; lockPath?: string } = {},
  ): Promise<Array<Settled<FopReply<'xattrop'>>>> {
    const unlock = { name, owner: this.set.owner };
    const lockPath = opts.lockPath ?? path;
    const moved = lockPath !== path;
    const extra = { ...(opts.mtimeMs === undefined ? {} : { mtimeMs: opts.mtimeMs }), ...(opts.behind ? { behind: true } : {}) };
    const [post] = await Promise.all([
      fanout(this.set.children, 'xattrop', { path, add: clear, ...(moved ? {} : { unlock }), ...extra }, ROOT_FRAME, marked),
      this.unlock({ path: lockPath, name, children: moved ? locked : locked.filter((i) => !marked.includes(i)) }, ROOT_FRAME),
    ]);
    return post;
  }

  /**
   * Runs a change on every reachable replica with the changelog around it. Returns the
   * first success; fails when no replica succeeded or there is no quorum. `op` carries the
   * caller's frame; the locks and the changelog around it go as root (lockAndMark).
   * `only` (the replicas an fd is open on) needs the lock everywhere but marks on some.
   */
  async run<T>(t: TxnTarget, op: (child: number) => Promise<T>, only?: number[]): Promise<T> {
    if (t.lockName === INODE_LOCK) await this.beforeInodeChange(t);
    const mark = (n: number): Xattrs => this.delta(this.set.all, [t.kind], n);
    const n = this.set.children.length;
    let locked: number[];
    let marked: number[];
    let preError: FsError | undefined;
    if (only || t.lockPath !== t.changelogPath) {
      locked = await this.lock(t.lockPath, t.lockName, ROOT_FRAME);
      const targets = only ? locked.filter((i) => only.includes(i)) : locked;
      if (!this.set.hasQuorum(targets)) {
        await this.unlock({ path: t.lockPath, name: t.lockName, children: locked }, ROOT_FRAME);
        throw quorumLost(targets.length, n);
      }
      const pre = await fanout(this.set.children, 'xattrop', { path: t.changelogPath, add: mark(1) }, ROOT_FRAME, targets);
      marked = successes(pre).map((r) => r.child);
      preError = firstFailure(pre);
    } else {
      let reachable: number[];
      ({ locked, marked, reachable, error: preError } = await this.lockAndMark(t.lockPath, t.lockName, mark(1), mark(-1)));
      if (!this.set.hasQuorum(reachable)) {
        await this.clearAndUnlock(t.lockPath, t.lockName, locked, marked, mark(-1));
        throw quorumLost(reachable.length, n);
      }
    }
    let unlocked = false;
    try {
      const results = await settleEach(marked, op);
      const ok = successes(results);
      // Clear the marks about replicas that did the change, on the replicas that hold marks.
      const clear = this.delta(ok.map((r) => r.child), [t.kind], -1);
      // An entry change (create, unlink, mkdir... in a directory) is answered once it is done
      // everywhere; the directory's post-op and unlock follow in the background (they are
      // sent on each replica's connection ahead of anything this client sends next). Until
      // they land every replica still carries its own mark too, which no heal reads as blame,
      // and a crash in between leaves marks that a heal settles. File changes wait: their
      // reply carries the attributes from after the post-op.
      const background = t.lockName !== INODE_LOCK && ok.length > 0;
      const posting = this.clearAndUnlock(t.lockPath, t.lockName, locked, marked, clear, { behind: background }).then((post) => {
        for (const r of post) if (!r.ok && r.error.code !== 'ENOENT') this.set.log.warn(`post-op on ${this.set.names[r.child]} for ${t.changelogPath}: ${r.error.message}`);
        return post;
      });
      unlocked = true;
      if (background) {
        this.set.inBackground(posting);
        return ok[0]!.value;
      }
      const post = await posting;
      const moved = t.lockName === INODE_LOCK ? movedAway(results) : undefined;
      if (moved) throw moved;
      if (ok.length === 0) {
        const errs = results.filter((r): r is Extract<Settled<T>, { ok: false }> => !r.ok);
        throw errs[0]?.error ?? preError ?? FsError.of('ENOTCONN');
      }
      return withPostOpAttrs(ok[0]!, post, t.lockName === INODE_LOCK);
    } finally {
      if (!unlocked) await this.unlock({ path: t.lockPath, name: t.lockName, children: locked }, ROOT_FRAME);
    }
  }
}

/**
 * The post-op of a file's change moved its ctime: its reply carries the attributes from
 * after it, or a caller comparing ctimes (tar: "file changed as we read it") sees a change.
 */
function withPostOpAttrs<T>(first: { value: T; child: number }, post: Array<Settled<FopReply<'xattrop'>>>, ofFile: boolean): T {
  const after = ofFile ? post.find((r) => r.child === first.child) : undefined;
  const v = first.value;
  if (!after?.ok || typeof v !== 'object' || v === null || !('iatt' in v)) return v;
  // The xattrop's attributes carry no gfid: the fop's own reply had it.
  const gfid = (v.iatt as Iatt | undefined)?.gfid;
  return { ...v, iatt: gfid === undefined ? after.value.iatt : { ...after.value.iatt, gfid } };
}
