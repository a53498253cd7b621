import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, migrateOnAll, migrateReply, settleEach, successes, type Settled } from '../../../../lib/fanout.js';
import { ENTRYLK_WHOLE_DIR, isDir, type FopArgs, type FopName, type FopReply, type Iatt, type Xattrs } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import { nameHash } from '../../../../lib/hash.js';
import { CtxKey, type Fd } from '../../../../lib/inode.js';
import { renamedPath } from '../../../../lib/paths.js';
import { registerXlator } from '../../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../../lib/xlator.js';
import { Changelog, changelogDelta, changelogNames, KINDS, type Kind } from './changelog.js';
import { EntryBursts, type Marked } from './entry-burst.js';
import { HEAL_FRAME, SelfHeal } from './self-heal.js';

/** Lock name for a file's own data and metadata transactions (entry locks use the child name). */
export const INODE_LOCK = '\u0000inode';

/**
 * Replicate's slot on an open fd. The same Fd object goes to every replica, each keeping its
 * own slot; this one says which of them the open reached. The file's path is the fd's own
 * (it follows renames through the inode).
 */
interface ReplicaFd {
  /** Replicas the fd is open on; a write's burst blames those it is not open on. */
  openOn: number[];
  /** Replica reads go to; undefined when no copy can be trusted (split-brain: EIO). */
  readChild: number | undefined;
  /** Replica fstat answers from (see attrReplica). */
  attrChild: number;
}

/**
 * A burst of writes to one file under one lock and one pending mark (AFR's eager-lock
 * and delayed post-op): lock + pre-op before the first write, post-op + unlock once the
 * file has been idle for a moment, or before anything else touches it.
 */
interface WriteBurst {
  path: string;
  locked: number[];
  marked: number[];
  /** Replicas where some write of the burst failed: they stay blamed. */
  failed: Set<number>;
  inflight: number;
  timer?: NodeJS.Timeout;
  /** An mtime set by a setattr in the burst and not moved by a write since: the post-op keeps it. */
  mtimeMs?: number;
}

/**
 * What a write burst marks: data, and metadata too, so the owner, mode and time changes
 * that follow writes (tar: fchown, fchmod, futimens before close) run under the burst's
 * lock and marks instead of a transaction of their own.
 */
const BURST_KINDS: readonly Kind[] = ['data', 'metadata'];

/**
 * A replica's answer to a change of a file that was moved away from it (rebalance committed
 * a migration): ESTALE through an fd; ENOENT by path, for a name that was there when the
 * change took its lock and marks. The change was held there by the migration's freeze, so
 * the copy now in use may have been read from that replica without it: the change fails
 * with this error, whatever the other replicas answered, and cluster/distribute redoes it
 * where the file lives now. The other replicas' success was on the copy left behind.
 */
function movedAway<T>(results: Array<Settled<T>>): FsError | undefined {
  for (const r of results) if (!r.ok && (r.error.code === 'ESTALE' || r.error.code === 'ENOENT')) return r.error;
  return undefined;
}

/** The xattrs of `names` that `all` holds. */
function pickXattrs(all: Xattrs | undefined, names: readonly string[]): Xattrs {
  const out: Xattrs = {};
  for (const n of names) if (all?.[n] !== undefined) out[n] = all[n]!;
  return out;
}

/** What one transaction changes and where its locks and changelog live. */
interface TxnTarget {
  kind: Kind;
  /** Path that carries the changelog (the file itself, or the parent for entry changes). */
  changelogPath: string;
  lockPath: string;
  lockName: string;
}

/**
 * cluster/replicate (AFR): every change goes to every replica of the set inside a
 * transaction — lock, mark pending on all (pre-op), change, clear where it succeeded
 * (post-op), unlock — so a replica that missed a change is blamed by the others in xattrs
 * on their copies. Reads use one replica no other blames. Blamed copies are healed on
 * lookup and by `volume heal`.
 */
export class Replicate extends Xlator implements FopImpl {
  static override readonly description = 'Keeps every file on all replicas of a set';
  static override readonly options = {
    'quorum-type': {
      type: 'string', default: 'auto', values: ['none', 'auto', 'fixed'], description: 'When writes are refused: auto = more than half the replicas, or exactly half including the first',
      volume: { key: 'cluster.quorum-type', description: 'When replicated writes are refused: auto (more than half, or half with the first brick), fixed (cluster.quorum-count), none' },
    },
    'quorum-count': {
      type: 'int', default: 1, min: 1, max: 16, description: 'Replicas needed for writes with quorum-type fixed',
      volume: { key: 'cluster.quorum-count', description: 'Replicas needed for writes when cluster.quorum-type is fixed' },
    },
    'self-heal': {
      type: 'bool', default: true, description: 'Heal a blamed file when a client looks it up',
      volume: { key: 'cluster.self-heal', description: 'Heal a blamed replica when a client looks the file up (on/off)' },
    },
    'entry-burst': {
      type: 'bool', default: true, description: 'Run a row of creates and unlinks in one directory under one whole-directory lock and pending mark (eager-lock for entries)',
      volume: { key: 'cluster.entry-eager-lock', description: 'Replicated creates and unlinks in one directory share one whole-directory lock and pending mark while they come in a row (on/off, default on)' },
    },
    'post-op-delay-ms': {
      type: 'int', default: 50, min: 0, max: 60000, description: 'How long a write burst keeps its lock and marks after its last write (GlusterFS post-op-delay-secs)',
      volume: { key: 'cluster.post-op-delay-ms', description: 'Milliseconds a replicated write burst keeps its lock and pending marks after its last write (default 50)' },
    },
    'entry-post-op-delay-ms': {
      type: 'int', default: 1000, min: 0, max: 60000, description: 'How long an entry burst keeps its directory locked and marked after its last change (it ends at the latest 5 s after it began, or at once when another client wants the lock)',
      volume: { key: 'cluster.entry-post-op-delay-ms', description: 'Milliseconds a replicated entry burst keeps its directory locked and marked after its last change; it ends at the latest 5 s after it began, and at once when another client wants the lock (default 1000)' },
    },
    'self-heal-daemon': {
      type: 'bool', default: true, description: 'Whether the self-heal daemon crawls the heal index of its host\'s bricks of this set and heals what it lists (read by the self-heal daemon; a mount ignores it)',
      volume: { key: 'cluster.self-heal-daemon', description: 'The self-heal daemon of each host heals the pending entries of its bricks by itself: every cluster.heal-timeout seconds and when a brick comes back (on/off, default on)' },
    },
    'heal-timeout': {
      type: 'int', default: 60, min: 1, max: 86400, description: 'Seconds between two crawls of the heal index by the self-heal daemon (it also crawls when a replica comes up)',
      volume: { key: 'cluster.heal-timeout', description: 'Seconds between two crawls of the heal index by each host\'s self-heal daemon; it also crawls at once when a brick comes back (default 60)' },
    },
  } as const;

  /** This instance's slot on each fd opened through it. */
  private readonly fdKey = new CtxKey<ReplicaFd>(this.name);
  /** Fds open through this translator, for the statedump. */
  private openFds = 0;
  /** Open write bursts by path, or the promise of one being opened. */
  private readonly bursts = new Map<string, WriteBurst | Promise<WriteBurst>>();
  /** Replicas that said CHILD_UP and not CHILD_DOWN since. */
  private readonly up = new Set<number>();
  private readonly owner = randomUUID().slice(0, 12);
  readonly heal: SelfHeal;
  /** Told when a replica comes up: the self-heal daemon crawls then (as glustershd does on CHILD_UP). */
  readonly childUpListeners = new Set<(child: number) => void>();
  private readonly entryBursts: EntryBursts;

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length < 2) throw new Error('cluster/replicate needs at least two subvolumes');
    this.heal = new SelfHeal(this.children, this.names, this.log, (p, name, frame) => this.lock(p, name, frame), (held, frame) => this.unlock(held, frame));
    const entry = (about: readonly number[], n: number): Xattrs => changelogDelta(this.children.length, about, ['entry'], n);
    this.entryBursts = new EntryBursts({
      log: this.log,
      entryMarks: (n) => entry(this.all(), n),
      entryClear: (done) => entry(done, -1),
      tryLockAndMark: (dir, add, undo) => this.tryLockAndMark(dir, ENTRYLK_WHOLE_DIR, add, undo),
      clearAndUnlock: (dir, locked, marked, clear, behind) => this.clearAndUnlock(dir, ENTRYLK_WHOLE_DIR, locked, marked, clear, undefined, behind),
      hasQuorum: (reachable) => this.hasQuorum(reachable),
      idleMs: () => this.optNumber('entry-post-op-delay-ms'),
      inBackground: (p) => this.inBackground(p),
      flushBehind: () => this.flushBehind(),
    });
  }

  get names(): string[] {
    return this.children.map((c) => c.name);
  }

  private all(): number[] {
    return this.children.map((_, i) => i);
  }

  override async fini(): Promise<void> {
    for (const path of [...this.bursts.keys()]) await this.endBurst(path).catch(() => undefined);
    await this.entryBursts.endAll();
    await Promise.all([...this.backgroundPostOps]);
  }

  /** Post-ops answered before they landed (entry transactions); fini waits for them. */
  private readonly backgroundPostOps = new Set<Promise<unknown>>();

  private inBackground(p: Promise<unknown>): void {
    const tracked = p.catch((e: Error) => this.log.warn(`background post-op: ${e.message}`)).finally(() => this.backgroundPostOps.delete(tracked));
    this.backgroundPostOps.add(tracked);
  }

  override statedump(): Record<string, unknown> {
    return { replicas: this.names, openFds: this.openFds, quorum: this.optString('quorum-type'), writeBursts: this.bursts.size, entryBursts: this.entryBursts.size };
  }

  /**
   * A brick says another request waits for a lock this client holds: a burst holding it
   * ends now instead of after its idle time (GlusterFS's lock contention notification).
   */
  override lockContended(path: string, name: string, owner: string): void {
    if (owner !== this.owner) return super.lockContended(path, name, owner);
    if (name === ENTRYLK_WHOLE_DIR) this.entryBursts.contended(path);
    else if (name === INODE_LOCK) this.endBurstBehind(path);
  }

  /** The set stays up while any replica is: parents hear CHILD_DOWN only when the last goes. */
  override notify(event: XlatorEvent, from: Xlator): void {
    const i = this.children.indexOf(from);
    if (i < 0) return;
    const wasUp = this.up.size > 0;
    const cameUp = event === 'CHILD_UP' && !this.up.has(i);
    if (event === 'CHILD_UP') this.up.add(i);
    else this.up.delete(i);
    const isUp = this.up.size > 0;
    if (wasUp !== isUp) for (const p of this.parents) p.notify(isUp ? 'CHILD_UP' : 'CHILD_DOWN', this);
    if (cameUp) for (const l of this.childUpListeners) l(i);
  }

  /** Whether the self-heal daemon heals this set (cluster.self-heal-daemon). */
  get selfHealDaemon(): boolean {
    return this.optBool('self-heal-daemon');
  }

  /** Seconds between the self-heal daemon's crawls of the heal index (cluster.heal-timeout). */
  get healTimeoutS(): number {
    return this.optNumber('heal-timeout');
  }

  // ---- quorum and locks ----------------------------------------------------------------

  /** Whether a change may go ahead with these replicas reachable. */
  private hasQuorum(up: number[]): boolean {
    const n = this.children.length;
    switch (this.optString('quorum-type')) {
      case 'none':
        return up.length > 0;
      case 'fixed':
        return up.length >= this.optNumber('quorum-count');
      default:
        return up.length * 2 > n || (up.length * 2 === n && up.includes(0));
    }
  }

  /**
   * Locks a name on every reachable replica. All at once first; if any is busy, drop
   * them and take them one by one in replica order, which cannot deadlock with another
   * client doing the same. The frame is root's (a transaction's or a heal's): the locks are
   * replicate's own, not the caller's to be refused.
   */
  async lock(path: string, name: string, frame: Frame): Promise<number[]> {
    const args = { path, name, owner: this.owner };
    const tried = await fanout(this.children, 'entrylk', { ...args, cmd: 'trylock' }, frame);
    if (tried.every((r) => r.ok || r.error.code === 'ENOTCONN')) return successes(tried).map((r) => r.child);
    await this.unlock({ path, name, children: successes(tried).map((r) => r.child) }, frame);
    const held: number[] = [];
    for (const i of this.all()) {
      try {
        await this.children[i]!.call('entrylk', { ...args, cmd: 'lock' }, frame);
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
    await fanout(this.children, 'entrylk', { path: held.path, name: held.name, owner: this.owner, cmd: 'unlock' }, frame, held.children);
  }

  /**
   * Lock and pre-op in one request per replica: each brick takes the lock (trylock), then
   * adds the marks. When a replica's lock is busy, the marks taken are undone and it goes
   * the ordered way (lock, then pre-op), which waits without deadlock. A replica is
   * `locked` when it holds the lock, `marked` when it also took the marks, `reachable`
   * (what quorum counts) when it answered at all: one that refused the pre-op (ENOENT, a
   * file being migrated) is there, as it was when the lock was a request of its own.
   * Locks and marks are replicate's bookkeeping, sent as root whoever the change is for.
   */
  private async lockAndMark(path: string, name: string, add: Xattrs, undo: Xattrs): Promise<Marked> {
    const got = await this.tryLockAndMark(path, name, add, undo);
    if (got) return got;
    const locked = await this.lock(path, name, ROOT_FRAME);
    try {
      const pre = await fanout(this.children, 'xattrop', { path, add }, ROOT_FRAME, locked);
      return { locked, marked: successes(pre).map((r) => r.child), reachable: locked, error: firstFailure(pre) };
    } catch (e) {
      await this.unlock({ path, name, children: locked }, ROOT_FRAME);
      throw e;
    }
  }

  /** lockAndMark without waiting: undefined (marks undone, locks dropped) when a replica's lock is busy. */
  private async tryLockAndMark(path: string, name: string, add: Xattrs, undo: Xattrs): Promise<Marked | undefined> {
    const spec = { name, owner: this.owner };
    const res = await fanout(this.children, 'xattrop', { path, add, lock: spec }, ROOT_FRAME);
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
    await fanout(this.children, 'xattrop', { path, add: undo, unlock: spec }, ROOT_FRAME, lockedHere);
    if (unlocked.length) await fanout(this.children, 'xattrop', { path, add: undo }, ROOT_FRAME, unlocked);
    return undefined;
  }

  /**
   * Post-op and unlock in one request per marked replica (the brick drops the lock after
   * the marks are cleared, whatever the outcome); replicas locked but not marked are
   * unlocked alone.
   */
  private async clearAndUnlock(
    path: string, name: string, locked: number[], marked: number[], clear: Xattrs, mtimeMs?: number, behind = false,
  ): Promise<Array<Settled<FopReply<'xattrop'>>>> {
    const unlock = { name, owner: this.owner };
    const [post] = await Promise.all([
      fanout(this.children, 'xattrop', { path, add: clear, unlock, ...(mtimeMs === undefined ? {} : { mtimeMs }), ...(behind ? { behind } : {}) }, ROOT_FRAME, marked),
      this.unlock({ path, name, children: locked.filter((i) => !marked.includes(i)) }, ROOT_FRAME),
    ]);
    return post;
  }

  // ---- the transaction -----------------------------------------------------------------

  /**
   * Runs a change on every reachable replica with the changelog around it. Returns the
   * first success; fails when no replica succeeded or there is no quorum. `op` carries the
   * caller's frame; the locks and the changelog around it go as root (lockAndMark).
   */
  private async transaction<T>(t: TxnTarget, op: (child: number) => Promise<T>, only?: number[]): Promise<T> {
    if (t.lockName === INODE_LOCK) {
      await this.endBurst(t.lockPath);
      await this.postOpLanded(t.lockPath);
      // A directory's own change answers its attributes from after its entry burst's post-op.
      if (this.entryBursts.busy(t.lockPath)) await this.entryBursts.endAndLand(t.lockPath);
    }
    const mark = (n: number): Xattrs => changelogDelta(this.children.length, this.all(), [t.kind], n);
    // `only` (the replicas an fd is open on) needs the lock everywhere but marks on some.
    let locked: number[];
    let marked: number[];
    let preError: FsError | undefined;
    if (only || t.lockPath !== t.changelogPath) {
      locked = await this.lock(t.lockPath, t.lockName, ROOT_FRAME);
      const targets = only ? locked.filter((i) => only.includes(i)) : locked;
      if (!this.hasQuorum(targets)) {
        await this.unlock({ path: t.lockPath, name: t.lockName, children: locked }, ROOT_FRAME);
        throw FsError.of('EROFS', `quorum not met: ${targets.length} of ${this.children.length} replicas reachable`);
      }
      const pre = await fanout(this.children, 'xattrop', { path: t.changelogPath, add: mark(1) }, ROOT_FRAME, targets);
      marked = successes(pre).map((r) => r.child);
      preError = firstFailure(pre);
    } else {
      let reachable: number[];
      ({ locked, marked, reachable, error: preError } = await this.lockAndMark(t.lockPath, t.lockName, mark(1), mark(-1)));
      if (!this.hasQuorum(reachable)) {
        await this.clearAndUnlock(t.lockPath, t.lockName, locked, marked, mark(-1));
        throw FsError.of('EROFS', `quorum not met: ${reachable.length} of ${this.children.length} replicas reachable`);
      }
    }
    let unlocked = false;
    try {
      const results = await settleEach(marked, op);
      const done = successes(results).map((r) => r.child);
      // Clear the marks about replicas that did the change, on the replicas that hold marks.
      const clear = changelogDelta(this.children.length, done, [t.kind], -1);
      const ok = successes(results);
      // An entry change (create, unlink, mkdir... in a directory) is answered once it is done
      // everywhere; the directory's post-op and unlock follow in the background (they are
      // sent on each replica's connection ahead of anything this client sends next). Until
      // they land every replica still carries its own mark too, which no heal reads as blame,
      // and a crash in between leaves marks that a heal settles. File changes wait: their
      // reply carries the attributes from after the post-op.
      const background = t.lockName !== INODE_LOCK && ok.length > 0;
      const posting = this.clearAndUnlock(t.lockPath, t.lockName, locked, marked, clear, undefined, background).then((post) => {
        for (const r of post) if (!r.ok && r.error.code !== 'ENOENT') this.log.warn(`post-op on ${this.names[r.child]} for ${t.changelogPath}: ${r.error.message}`);
        return post;
      });
      unlocked = true;
      if (background) {
        this.inBackground(posting);
        return ok[0]!.value;
      }
      const post = await posting;
      const moved = t.lockName === INODE_LOCK ? movedAway(results) : undefined;
      if (moved) throw moved;
      // The post-op moved the file's ctime: hand back the attributes from after it, or
      // a caller comparing ctimes (tar: "file changed as we read it") sees a change.
      const first = ok[0];
      const after = first && t.lockName === INODE_LOCK ? post.find((r) => r.child === first.child) : undefined;
      if (first && after?.ok && typeof first.value === 'object' && first.value !== null && 'iatt' in first.value) {
        // The xattrop's attributes carry no gfid: the fop's own reply had it.
        const gfid = (first.value.iatt as Iatt | undefined)?.gfid;
        return { ...first.value, iatt: gfid === undefined ? after.value.iatt : { ...after.value.iatt, gfid } };
      }
      if (ok.length === 0) {
        const errs = results.filter((r): r is Extract<Settled<T>, { ok: false }> => !r.ok);
        throw errs[0]?.error ?? preError ?? FsError.of('ENOTCONN');
      }
      return ok[0]!.value;
    } finally {
      if (!unlocked) await this.unlock({ path: t.lockPath, name: t.lockName, children: locked }, ROOT_FRAME);
    }
  }

  private entryTarget(path: string): TxnTarget {
    return { kind: 'entry', changelogPath: pathMod.dirname(path), lockPath: pathMod.dirname(path), lockName: pathMod.basename(path) };
  }

  private inodeTarget(path: string, kind: Kind): TxnTarget {
    return { kind, changelogPath: path, lockPath: path, lockName: INODE_LOCK };
  }

  private entryOp<F extends 'mkdir' | 'mknod' | 'symlink' | 'unlink' | 'rmdir' | 'link'>(fop: F, args: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    return this.entryChange((args as { path: string }).path, (i) => this.children[i]!.call(fop, args, f));
  }

  /** A change of a name: in its directory's entry burst when it can join one, else a transaction of its own. */
  private async entryChange<T>(path: string, op: (child: number) => Promise<T>): Promise<T> {
    const b = this.optBool('entry-burst') ? await this.entryBursts.join(pathMod.dirname(path)) : undefined;
    return b ? this.entryBursts.run([b], op) : this.transaction(this.entryTarget(path), op);
  }

  // ---- reads ---------------------------------------------------------------------------

  /**
   * Looks a path up on every replica with the changelog, healing it first when a copy is
   * blamed. want: also ask one replica for the content (quick-read; see lookup). The
   * lookups serve the caller's fop and go with its frame; the heal goes as self-heal's.
   */
  private async inspect(path: string, f: Frame, want?: { child: number; wantData: number }, callerXattrs: readonly string[] = []): Promise<{ res: Array<Settled<FopReply<'lookup'>>>; log: Changelog; healed: boolean }> {
    const names = [...changelogNames(this.names), ...callerXattrs];
    let res = await fanout(this.children, 'lookup', (i) => (want?.child === i ? { path, xattrs: names, wantData: want.wantData } : { path, xattrs: names }), f);
    let log = Changelog.fromLookups(this.names, res);
    const ok = successes(res);
    const missing = res.some((r) => !r.ok && r.error.code === 'ENOENT') && ok.length > 0;
    // Marks of this client's own bursts (open, or their post-op on the way) are not damage.
    const own = this.bursts.has(path) || this.endingBursts.has(path) || this.entryBursts.busy(path);
    if (this.optBool('self-heal') && !own && (missing || KINDS.some((k) => log.healable(k)))) {
      const healed = await this.heal.healPath(path).catch((e: Error) => {
        this.log.warn(`self-heal of ${path}: ${e.message}`);
        return false;
      });
      if (healed) {
        res = await fanout(this.children, 'lookup', { path, xattrs: names }, f);
        log = Changelog.fromLookups(this.names, res);
        return { res, log, healed: true };
      }
    }
    return { res, log, healed: false };
  }

  /** A replica to read a path's data from: not blamed, spread over the set by path. */
  private pickReader(path: string, log: Changelog, kind: Kind): number | undefined {
    const sources = log.sources(kind);
    if (sources.length === 0) return undefined;
    return sources[nameHash(path) % sources.length];
  }

  /**
   * The replica attributes come from: always the first good one, the same replica a
   * change's reply comes from, so ctime and atime do not jump between replicas from one
   * stat to the next (tar: "file changed as we read it").
   */
  private attrReplica(log: Changelog, kind: Kind): number | undefined {
    return log.sources(kind)[0];
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    // quick-read's content is asked of the replica open would read from when none is blamed,
    // in the same round trip as the changelog check (as readfile does).
    const guess = nameHash(a.path) % this.children.length;
    // A directory's own entry burst ends first: the attributes answered are from after its
    // post-op, so its ctime does not move later (tar: "file changed as we read it"). So do
    // readdir (for the subdirectories listed), fstat and the directory's own changes.
    if (this.entryBursts.busy(a.path)) await this.entryBursts.endAndLand(a.path);
    const want = a.wantData === undefined ? undefined : { child: guess, wantData: a.wantData };
    // The caller's own xattrs (distribute's layout of a directory) ride on the same lookups.
    const { res, log, healed } = await this.inspect(a.path, f, want, a.xattrs);
    const ok = successes(res);
    if (ok.length === 0) {
      const errs = res.filter((r): r is Extract<typeof r, { ok: false }> => !r.ok).map((r) => r.error);
      // The replicas that answered decide: ENOENT from them is ENOENT even with one away.
      throw errs.find((e) => e.code !== 'ENOENT' && e.code !== 'ENOTCONN') ?? errs.find((e) => e.code === 'ENOENT') ?? errs[0]!;
    }
    const dir = isDir(ok[0]!.value.iatt);
    const reader = this.attrReplica(log, dir ? 'entry' : 'data');
    const from = ok.find((r) => r.child === reader) ?? ok[0]!;
    const reply = from.value;
    // The caller's own xattr question is answered without our changelog names.
    if (a.xattrs?.length) return { iatt: reply.iatt, linkto: reply.linkto, xattrs: pickXattrs(reply.xattrs, a.xattrs) };
    const data = want && !dir && !healed ? this.trustedData(a.path, res, log, guess, reply.iatt.size) : undefined;
    return data ? { iatt: reply.iatt, linkto: reply.linkto, data } : { iatt: reply.iatt, linkto: reply.linkto };
  }

  /**
   * The content a lookup brought from replica `guess`, only when it can be trusted: no
   * changelog counter of data pending anywhere (another client's write in the middle, a copy
   * to heal), the guess is the replica a read would pick, no write burst of this client on
   * the file, and its size is the size the lookup answers. Otherwise none: a reply without
   * data is always correct (the read then goes to the bricks).
   */
  private trustedData(path: string, res: Array<Settled<FopReply<'lookup'>>>, log: Changelog, guess: number, size: number): Buffer | undefined {
    if (this.bursts.has(path) || this.endingBursts.has(path) || log.dirty('data')) return undefined;
    if (this.pickReader(path, log, 'data') !== guess) return undefined;
    const r = res[guess];
    if (!r?.ok || !r.value.data || r.value.iatt.size !== size || r.value.data.length !== size) return undefined;
    return r.value.data;
  }

  /** One replica's answer, settled at once: one asked before it is known to be used is dropped without an unhandled rejection. */
  private async askOne<F extends FopName>(child: number, fop: F, args: FopArgs<F>, f: Frame): Promise<Settled<FopReply<F>>> {
    return (await fanout(this.children, fop, args, f, [child]))[0]!;
  }

  /** Reads that any trusted replica can answer. */
  private async readOne<F extends 'access' | 'readlink' | 'getxattr' | 'listxattr' | 'readdir' | 'statfs'>(fop: F, args: FopArgs<F>, kind: Kind, f: Frame): Promise<FopReply<F>> {
    const path = (args as { path: string }).path;
    // Asked at once of the replica the changelog check will almost always pick (the first one
    // up, attrReplica), beside that check rather than after it: one round trip, not two. Its
    // answer is used only if the check then picks that replica and healed nothing.
    const guess = Math.min(...this.up);
    const early = Number.isFinite(guess) ? this.askOne(guess, fop, args, f) : undefined;
    const { log, healed } = await this.inspect(path, f);
    const order = [this.attrReplica(log, kind), ...this.all()].filter((i): i is number => i !== undefined);
    let last: FsError | undefined;
    if (early && !healed && order[0] === guess && log.answered(guess)) {
      const r = await early;
      if (r.ok) return r.value;
      if (r.error.code !== 'ENOTCONN') throw r.error;
    }
    for (const i of [...new Set(order)]) {
      if (!log.answered(i) && fop !== 'statfs') continue;
      try {
        return await this.children[i]!.call(fop, args, f);
      } catch (e) {
        last = FsError.from(e);
        if (last.code !== 'ENOTCONN') throw last;
      }
    }
    throw last ?? FsError.of('ENOTCONN');
  }

  async access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    return this.readOne('access', a, 'metadata', f);
  }

  async readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return this.readOne('readlink', a, 'data', f);
  }

  async getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    return this.readOne('getxattr', a, 'metadata', f);
  }

  async listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return this.readOne('listxattr', a, 'metadata', f);
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    // A listing carries each subdirectory's attributes: those in an entry burst end it first.
    await this.entryBursts.endChildrenOf(a.path);
    return this.readOne('readdir', a, 'entry', f);
  }

  async statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    const ok = successes(await fanout(this.children, 'statfs', a, f));
    if (!ok.length) throw FsError.of('ENOTCONN', 'no replica is up');
    // A replica set holds one copy's worth: report the smallest replica.
    return ok.reduce((a2, b) => (b.value.statfs.blocks * b.value.statfs.frsize < a2.value.statfs.blocks * a2.value.statfs.frsize ? b : a2)).value;
  }

  // ---- fds -----------------------------------------------------------------------------

  private fdOf(fd: Fd): ReplicaFd {
    const r = fd.ctx.get(this.fdKey);
    if (!r) throw FsError.of('EBADF', `${this.name}: fd on ${fd.path} is not open here`);
    return r;
  }

  /** Hangs replicate's state on an fd the replicas in openOn opened. */
  private opened(fd: Fd, r: ReplicaFd): void {
    if (!fd.ctx.has(this.fdKey)) this.openFds++;
    fd.ctx.set(this.fdKey, r);
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    // The changelog check and the opens go out together (one round trip, not two), except
    // for O_TRUNC, which must not race a heal of the same file.
    const truncates = (a.flags & fs.constants.O_TRUNC) !== 0;
    const inspected = this.inspect(a.path, f);
    if (truncates) await inspected;
    const [{ log }, res] = await Promise.all([inspected, fanout(this.children, 'open', a, f)]);
    const ok = successes(res);
    if (ok.length === 0) throw res.find((r): r is Extract<typeof r, { ok: false }> => !r.ok)!.error;
    const readChild = this.pickReader(a.path, log, 'data');
    const attr = this.attrReplica(log, 'data');
    this.opened(a.fd, {
      openOn: ok.map((r) => r.child),
      readChild: readChild !== undefined && res[readChild]!.ok ? readChild : undefined,
      attrChild: attr !== undefined && res[attr]!.ok ? attr : ok[0]!.child,
    });
    return {};
  }

  /**
   * The new file's write burst starts in the create request itself (its lock and pre-op
   * marks, which each brick applies only to a file it made), so the first write does not
   * wait for a lock + pre-op round trip of its own.
   */
  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const openOn: number[] = [];
    const withBurst = !this.bursts.has(a.path) && !this.endingBursts.has(a.path);
    const args = withBurst ? { ...a, burst: { lock: { name: INODE_LOCK, owner: this.owner }, add: this.burstMarks(1) } } : a;
    const started: number[] = [];
    let createdEverywhere = true;
    const first = await this.entryChange(a.path, async (i) => {
      const r = await this.children[i]!.call('create', args, f);
      openOn.push(i);
      if (r.burst) started.push(i);
      if (!r.created) createdEverywhere = false;
      return r;
    });
    if (started.length) this.adoptCreatedBurst(a.path, started, openOn);
    openOn.sort((x, y) => x - y);
    this.opened(a.fd, { openOn, readChild: openOn[0], attrChild: openOn[0] ?? 0 });
    return { iatt: first.iatt, ...(createdEverywhere ? { created: true } : {}) };
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const rfd = this.fdOf(a.fd);
    if (rfd.readChild === undefined) throw FsError.of('EIO', `${a.fd.path} is in split-brain or has no good copy; see \`brickfs volume heal VOL info\``);
    return this.children[rfd.readChild]!.call('read', a, f);
  }

  /**
   * A read by path from the replica open would read from. The changelog check and the read
   * go out together (one round trip): the read is sent to the replica open would pick if no
   * copy were blamed, and its answer is used only if the check then picks that same replica
   * and healed nothing. Otherwise the read goes to the replica the check picked; with no
   * trusted copy (split-brain, or another client's change in the middle), or this client's
   * own write burst on the file, ENOSYS: the caller opens and reads, and gets open's answer.
   */
  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    if (this.bursts.has(a.path)) throw FsError.of('ENOSYS', `${a.path} has writes in flight here`);
    const guess = nameHash(a.path) % this.children.length;
    const early = this.askOne(guess, 'readfile', a, f);
    const { res, log, healed } = await this.inspect(a.path, f);
    const ok = successes(res);
    if (ok.length === 0) {
      const errs = res.filter((r): r is Extract<typeof r, { ok: false }> => !r.ok).map((r) => r.error);
      throw errs.find((e) => e.code !== 'ENOENT' && e.code !== 'ENOTCONN') ?? errs.find((e) => e.code === 'ENOENT') ?? errs[0]!;
    }
    const reader = this.pickReader(a.path, log, 'data');
    if (reader === undefined || this.bursts.has(a.path)) throw FsError.of('ENOSYS', `${a.path}: no replica to trust for a read by path`);
    const r = reader === guess && !healed ? await early : await this.askOne(reader, 'readfile', a, f);
    if (r.ok) return r.value;
    // A replica that went away or cannot read by path: open chooses again.
    if (r.error.code === 'ENOTCONN' || r.error.code === 'ENOSYS') throw FsError.of('ENOSYS', r.error.message);
    throw r.error;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const rfd = this.fdOf(a.fd);
    if (this.entryBursts.busy(a.fd.path)) await this.entryBursts.endAndLand(a.fd.path);
    return this.children[rfd.attrChild]!.call('fstat', a, f);
  }

  /** The open burst of a path, or a new one: lock, quorum, pre-op. */
  private async burstFor(path: string): Promise<WriteBurst> {
    let open = this.bursts.get(path);
    if (open) return open;
    // The previous burst's post-op, sent behind a close, frees the lock this one needs.
    if (this.endingBursts.has(path)) {
      await this.postOpLanded(path);
      open = this.bursts.get(path);
      if (open) return open;
    }
    const starting = (async (): Promise<WriteBurst> => {
      const { locked, marked, reachable, error } = await this.lockAndMark(path, INODE_LOCK, this.burstMarks(1), this.burstMarks(-1));
      if (!this.hasQuorum(reachable) || !marked.length) {
        await this.clearAndUnlock(path, INODE_LOCK, locked, marked, this.burstMarks(-1));
        if (!marked.length && this.hasQuorum(reachable)) throw error ?? FsError.of('ENOTCONN');
        throw FsError.of('EROFS', `quorum not met: ${reachable.length} of ${this.children.length} replicas reachable`);
      }
      return { path, locked, marked, failed: new Set(), inflight: 0 };
    })();
    this.bursts.set(path, starting);
    try {
      const b = await starting;
      this.bursts.set(path, b);
      return b;
    } catch (e) {
      this.bursts.delete(path);
      throw e;
    }
  }

  /** The pre-op (1) or its undo (-1) of a write burst: data and metadata, about every replica. */
  private burstMarks(n: 1 | -1): Xattrs {
    return changelogDelta(this.children.length, this.all(), BURST_KINDS, n);
  }

  /**
   * Takes on the burst a create started on `started`. When a replica made the file without
   * it (its lock was busy, or it opened a file that was there), or there is no quorum, the
   * marks are undone and the lock dropped, behind, and the first write starts a burst the
   * ordinary way (after the undo: it waits for it as for any ending burst).
   */
  private adoptCreatedBurst(path: string, started: number[], openOn: readonly number[]): void {
    if (!this.bursts.has(path) && openOn.every((i) => started.includes(i)) && this.hasQuorum(started)) {
      const b: WriteBurst = { path, locked: started, marked: started, failed: new Set(), inflight: 0 };
      this.bursts.set(path, b);
      this.armBurstTimer(b);
      return;
    }
    this.trackEnding(path, this.clearAndUnlock(path, INODE_LOCK, started, started, this.burstMarks(-1), undefined, true));
  }

  /** Bursts whose post-op + unlock is on its way after a close, by path. */
  private readonly endingBursts = new Map<string, Promise<void>>();

  /** Ends the file's burst in the background, tracked (fini waits) and findable by path. */
  private endBurstBehind(path: string): void {
    if (!this.bursts.has(path)) return;
    this.trackEnding(path, this.endBurst(path, true));
  }

  /** A burst's post-op (or undo) on its way: in endingBursts until it lands, and in the background set fini waits for. */
  private trackEnding(path: string, posting: Promise<unknown>): void {
    const ending: Promise<void> = posting.then(() => undefined).finally(() => {
      if (this.endingBursts.get(path) === ending) this.endingBursts.delete(path);
    });
    this.endingBursts.set(path, ending);
    this.inBackground(ending);
  }

  /** True when the path's open burst left out or lost a replica: its post-op must land before close returns. */
  private async burstDegraded(path: string): Promise<boolean> {
    const entry = this.bursts.get(path);
    if (!entry) return false;
    const b = await Promise.resolve(entry).catch(() => undefined);
    return b !== undefined && (b.failed.size > 0 || b.marked.length < this.children.length);
  }

  /** Waits until a post-op sent behind a close of the file has landed (its lock is free again). */
  private async postOpLanded(path: string): Promise<void> {
    for (let e = this.endingBursts.get(path); e; e = this.endingBursts.get(path)) {
      this.flushBehind();
      await e.catch(() => undefined);
    }
  }

  /**
   * Ends a path's burst, if any: post-op for the replicas that took every write, unlock.
   * `behind`: nobody waits for it (a close went on without it).
   */
  private async endBurst(path: string, behind = false): Promise<void> {
    const entry = this.bursts.get(path);
    if (!entry) return;
    const b = await entry;
    if (this.bursts.get(path) !== b) return this.endBurst(path, behind);
    this.bursts.delete(path);
    clearTimeout(b.timer);
    while (b.inflight > 0) await new Promise((r) => setImmediate(r));
    const done = b.marked.filter((i) => !b.failed.has(i));
    const clear = changelogDelta(this.children.length, done, BURST_KINDS, -1);
    // Each replica stamped its own clock on the writes; the post-op gives them one mtime,
    // so copies stay identical in metadata too (GlusterFS's ctime feature does the same).
    await this.clearAndUnlock(path, INODE_LOCK, b.locked, b.marked, clear, b.mtimeMs ?? Date.now(), behind);
  }

  /**
   * Ends the open bursts of a path and of every path under it (a directory being renamed). A
   * post-op already sent behind a close needs no wait: it goes ahead of what is sent next on
   * each replica's connection.
   */
  private async endBurstsAt(path: string): Promise<void> {
    for (const p of [...this.bursts.keys()]) if (renamedPath(p, path, path) !== undefined) await this.endBurst(p);
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.writeInBurst('write', a, f);
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.writeInBurst('writev', a, f);
  }

  /** A write or writev: under the file's open burst, on every marked replica with an fd. */
  private async writeInBurst<F extends 'write' | 'writev'>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    const { openOn } = this.fdOf(a.fd);
    const b = await this.burstFor(a.fd.path);
    clearTimeout(b.timer);
    b.mtimeMs = undefined;
    for (const i of b.marked) if (!openOn.includes(i)) b.failed.add(i);
    const targets = b.marked.filter((i) => openOn.includes(i));
    return this.inBurst(b, fop, a, targets, f);
  }

  /**
   * One change of a file under its open burst: sent to the given replicas, the burst kept
   * open while it runs, and a replica that failed it stays blamed. Answers the first success,
   * unless a replica says the file moved away (movedAway): that is the answer. The change
   * goes with the caller's frame; the burst's lock and marks are root's (burstFor).
   */
  private async inBurst<F extends 'write' | 'writev' | 'setattr'>(
    b: WriteBurst, fop: F, args: FopArgs<F> | ((child: number) => FopArgs<F>), targets: number[], f: Frame,
  ): Promise<FopReply<F>> {
    clearTimeout(b.timer);
    b.inflight++;
    let res: Array<Settled<FopReply<F>>>;
    try {
      res = await fanout(this.children, fop, args, f, targets);
    } finally {
      b.inflight--;
    }
    for (const r of res) if (!r.ok) b.failed.add(r.child);
    this.armBurstTimer(b);
    const moved = movedAway(res);
    if (moved) throw moved;
    const ok = successes(res);
    if (!ok.length) throw firstFailure(res) ?? FsError.of('ENOTCONN');
    return ok[0]!.value;
  }

  /** Once nothing of a burst is in flight, it ends after post-op-delay-ms without more. */
  private armBurstTimer(b: WriteBurst): void {
    if (b.inflight > 0) return;
    clearTimeout(b.timer);
    b.timer = setTimeout(() => void this.endBurst(b.path, true).catch((e: Error) => this.log.warn(`post-op of ${b.path}: ${e.message}`)), this.optNumber('post-op-delay-ms'));
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    const { openOn } = this.fdOf(a.fd);
    return this.transaction(this.inodeTarget(a.fd.path, 'data'), (i) => this.children[i]!.call('ftruncate', a, f), openOn);
  }

  private async onFds<F extends 'fsync' | 'flush' | 'release'>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    const { openOn } = this.fdOf(a.fd);
    const path = a.fd.path;
    if (fop !== 'fsync' && !(await this.burstDegraded(path))) {
      // close does not wait for the burst's post-op + unlock: while every replica took every
      // write, the pre-op marks cover a crash in between (as GlusterFS's post-op delayed past
      // close). It lands behind; this client's next change of the file and fsync wait for
      // it. A release goes out behind it on the same connections.
      this.endBurstBehind(path);
    } else {
      // A degraded burst (a replica missed a write) waits: a survivor that crashed before its
      // post-op would blame itself, which voids its blame of the copy that missed the writes,
      // and that stale copy would then heal over acknowledged data.
      // The changelog is settled before fsync returns, as the data is.
      await this.endBurst(path);
      await this.postOpLanded(path);
    }
    const res = await fanout(this.children, fop, a, f, openOn);
    // An fsync that met a moved file (movedAway) is redone where it lives now: the writes
    // redone there are what must be on disk, not the copy left behind.
    const moved = fop === 'fsync' ? movedAway(res) : undefined;
    if (moved) throw moved;
    const ok = successes(res);
    if (ok.length === 0 && res.length > 0) throw (res[0] as Extract<Settled<unknown>, { ok: false }>).error;
    return (ok[0]?.value ?? {}) as FopReply<F>;
  }

  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return this.onFds('fsync', a, f);
  }

  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    return this.onFds('flush', a, f);
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const r = await this.onFds('release', a, f).catch(() => ({}));
    if (a.fd.ctx.take(this.fdKey)) this.openFds--;
    return r;
  }

  // ---- metadata and namespace changes --------------------------------------------------

  /** A setattr (not size) of a file with a write burst open goes under the burst. */
  private async setattrInBurst(b: WriteBurst, a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const r = await this.inBurst(b, 'setattr', a, b.marked.filter((i) => !b.failed.has(i)), f);
    if (a.attrs.mtimeMs !== undefined) b.mtimeMs = a.attrs.mtimeMs;
    return r;
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const open = this.bursts.get(a.path);
    if (a.attrs.size === undefined && open && !(open instanceof Promise)) return this.setattrInBurst(open, a, f);
    const kind: Kind = a.attrs.size !== undefined ? 'data' : 'metadata';
    return this.transaction(this.inodeTarget(a.path, kind), (i) => this.children[i]!.call('setattr', a, f));
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return this.transaction(this.inodeTarget(a.path, 'metadata'), (i) => this.children[i]!.call('setxattr', a, f));
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return this.transaction(this.inodeTarget(a.path, 'metadata'), (i) => this.children[i]!.call('removexattr', a, f));
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.entryOp('mkdir', a, f);
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return this.entryOp('mknod', a, f);
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return this.entryOp('symlink', a, f);
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return this.entryOp('unlink', a, f);
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    // The directory's own burst posts to it before it goes.
    await this.entryBursts.endAt(a.path);
    return this.entryOp('rmdir', a, f);
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.entryOp('link', a, f);
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    // Bursts at or under the old name end first: their post-ops go by path; so do the entry
    // bursts of a directory the new name replaces. Open files under the old name take the new
    // one through their inode, and their next writes start bursts there.
    await this.endBurstsAt(a.from);
    await this.entryBursts.endAt(a.from);
    await this.entryBursts.endAt(a.to);
    return this.renameChange(a, f);
  }

  /**
   * A rename in the entry bursts of both parents when it can join them (both carry its
   * marks), else a transaction on the destination's parent with the source's name locked
   * too when the parents differ.
   */
  private async renameChange(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    const op = (i: number): Promise<FopReply<'rename'>> => this.children[i]!.call('rename', a, f);
    const fromDir = pathMod.dirname(a.from);
    const toDir = pathMod.dirname(a.to);
    const bursts = this.optBool('entry-burst') ? await this.entryBursts.joinAll([...new Set([toDir, fromDir])]) : undefined;
    if (bursts) return this.entryBursts.run(bursts, op);
    // The transaction locks names one by one, which an entry burst of either directory holds.
    for (const dir of new Set([fromDir, toDir])) await this.entryBursts.endAndLand(dir);
    const extra = fromDir !== toDir ? await this.lock(fromDir, pathMod.basename(a.from), ROOT_FRAME) : undefined;
    try {
      return await this.transaction(this.entryTarget(a.to), op);
    } finally {
      if (extra) await this.unlock({ path: fromDir, name: pathMod.basename(a.from), children: extra }, ROOT_FRAME);
    }
  }

  /** xattrop and entrylk from above (distribute's own) go to every replica. */
  /**
   * Rebalance holds and releases every copy of a file being moved. A freeze that finds the
   * sizes of the copies a read may use (sources) differ says so (diverged): an append or
   * truncate done on some replicas is held on its way to the others, and would be redone
   * after the move (movedAway) on a copy that may already hold it. Changes that leave the
   * size alone are idempotent when redone. The changelog is read without healing: a writer's
   * marks are pending, and a heal would wait for its lock, which waits for the freeze.
   */
  async migrate(a: FopArgs<'migrate'>, f: Frame): Promise<FopReply<'migrate'>> {
    if (a.op !== 'freeze') return migrateOnAll(this.children, a, f);
    const res = await fanout(this.children, 'migrate', a, f);
    if (res.some((r) => !r.ok)) return migrateReply(a, res);
    const looked = await fanout(this.children, 'lookup', { path: a.path, xattrs: changelogNames(this.names) }, f);
    const sources = Changelog.fromLookups(this.names, looked).sources('data');
    const sizes = new Set(successes(res).filter((r) => sources.includes(r.child)).map((r) => r.value.iatt?.size));
    return migrateReply(a, res, sizes.size > 1);
  }

  async entrylk(a: FopArgs<'entrylk'>, f: Frame): Promise<FopReply<'entrylk'>> {
    const res = await fanout(this.children, 'entrylk', a, f);
    if (!successes(res).length) throw (res[0] as Extract<Settled<unknown>, { ok: false }>).error;
    return {};
  }

  /** The raw per-replica answers of a fop, for heal tooling: asked as self-heal, as the heal that follows is. */
  async onEach<F extends FopName>(fop: F, args: FopArgs<F>): Promise<Array<Settled<FopReply<F>>>> {
    return fanout(this.children, fop, args, HEAL_FRAME);
  }
}

registerXlator('cluster/replicate', Replicate);
