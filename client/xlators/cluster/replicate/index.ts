import { randomUUID } from 'node:crypto';
import { fanout, migrateOnAll, migrateReply, successes, type Settled } from '../../../../lib/fanout.js';
import { ENTRYLK_WHOLE_DIR, type FopArgs, type FopName, type FopReply } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import { registerXlator } from '../../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../../lib/xlator.js';
import { Changelog, changelogNames } from './changelog.js';
import { DirWrites } from './dir-write.js';
import { EntryBursts } from './entry-burst.js';
import { ReplicaFds } from './fd.js';
import { InodeReads } from './inode-read.js';
import { InodeWrites } from './inode-write.js';
import { hasQuorum, type QuorumType } from './quorum.js';
import { HEAL_FRAME, SelfHeal } from './self-heal.js';
import { INODE_LOCK, Transactions, type ReplicaSet } from './transaction.js';
import { WriteBursts } from './write-burst.js';

export { INODE_LOCK } from './transaction.js';

/**
 * cluster/replicate (AFR): every change goes to every replica of the set inside a
 * transaction — lock, mark pending on all (pre-op), change, clear where it succeeded
 * (post-op), unlock — so a replica that missed a change is blamed by the others in xattrs
 * on their copies. Reads use one replica no other blames. Blamed copies are healed on
 * lookup and by `volume heal`. This class wires the parts (docs/replicate.md): transaction.ts
 * (locks and changelog), write-burst.ts and entry-burst.ts (eager locks of a file's writes
 * and a directory's names), inode-write.ts, dir-write.ts, inode-read.ts, self-heal.ts,
 * quorum.ts.
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

  /** Replicas that said CHILD_UP and not CHILD_DOWN since. */
  private readonly up = new Set<number>();
  private readonly owner = randomUUID().slice(0, 12);
  readonly heal: SelfHeal;
  /** Told when a replica comes up: the self-heal daemon crawls then (as glustershd does on CHILD_UP). */
  readonly childUpListeners = new Set<(child: number) => void>();
  /** Post-ops answered before they landed; fini waits for them. */
  private readonly backgroundPostOps = new Set<Promise<unknown>>();
  private readonly fds: ReplicaFds;
  private readonly txn: Transactions;
  private readonly bursts: WriteBursts;
  private readonly entryBursts: EntryBursts;
  private readonly writes: InodeWrites;
  private readonly dirWrites: DirWrites;
  private readonly reads: InodeReads;

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length < 2) throw new Error('cluster/replicate needs at least two subvolumes');
    const set: ReplicaSet = {
      children: this.children,
      names: this.names,
      all: this.children.map((_, i) => i),
      log: this.log,
      inodes: this.inodes,
      owner: this.owner,
      hasQuorum: (up) => hasQuorum(this.optString('quorum-type') as QuorumType, this.optNumber('quorum-count'), this.children.length, up),
      inBackground: (p) => this.inBackground(p),
      flushBehind: () => this.flushBehind(),
      options: {
        selfHeal: () => this.optBool('self-heal'),
        entryBurst: () => this.optBool('entry-burst'),
        postOpDelayMs: () => this.optNumber('post-op-delay-ms'),
        entryPostOpDelayMs: () => this.optNumber('entry-post-op-delay-ms'),
      },
    };
    this.txn = new Transactions(set);
    this.heal = new SelfHeal(this.children, this.names, this.log, (p, name, frame) => this.txn.lock(p, name, frame), (held, frame) => this.txn.unlock(held, frame));
    this.fds = new ReplicaFds(this.name);
    this.bursts = new WriteBursts(set, this.txn, this.name);
    this.entryBursts = new EntryBursts({
      log: this.log,
      inodes: this.inodes,
      owner: this.name,
      entryMarks: (n) => this.txn.delta(set.all, ['entry'], n),
      entryClear: (done) => this.txn.delta(done, ['entry'], -1),
      tryLockAndMark: (dir, add, undo) => this.txn.tryLockAndMark(dir, ENTRYLK_WHOLE_DIR, add, undo),
      clearAndUnlock: (dir, locked, marked, clear, behind) => this.txn.clearAndUnlock(dir, ENTRYLK_WHOLE_DIR, locked, marked, clear, { behind }),
      hasQuorum: (reachable) => set.hasQuorum(reachable),
      idleMs: () => this.optNumber('entry-post-op-delay-ms'),
      inBackground: (p) => this.inBackground(p),
      flushBehind: () => this.flushBehind(),
    });
    // A file's own transaction takes the lock its write burst holds, and answers attributes
    // (a directory's too) from after its bursts' post-ops.
    this.txn.beforeInodeChange = async (t) => {
      await this.bursts.endAndLand(t.lockPath, t.inode);
      if (this.entryBursts.busy(t.lockPath)) await this.entryBursts.endAndLand(t.lockPath);
    };
    this.writes = new InodeWrites(set, this.txn, this.bursts, this.fds);
    this.dirWrites = new DirWrites(set, this.txn, this.bursts, this.entryBursts, this.fds);
    this.reads = new InodeReads(set, this.heal, this.bursts, this.entryBursts, this.fds, this.up);
  }

  get names(): string[] {
    return this.children.map((c) => c.name);
  }

  override async fini(): Promise<void> {
    await this.bursts.endAll();
    await this.entryBursts.endAll();
    await Promise.all([...this.backgroundPostOps]);
  }

  private inBackground(p: Promise<unknown>): void {
    const tracked = p.catch((e: Error) => this.log.warn(`background post-op: ${e.message}`)).finally(() => this.backgroundPostOps.delete(tracked));
    this.backgroundPostOps.add(tracked);
  }

  override statedump(): Record<string, unknown> {
    return { replicas: this.names, openFds: this.fds.count, quorum: this.optString('quorum-type'), writeBursts: this.bursts.size, entryBursts: this.entryBursts.size };
  }

  /**
   * A brick says another request waits for a lock this client holds: a burst holding it
   * ends now instead of after its idle time (GlusterFS's lock contention notification).
   */
  override lockContended(path: string, name: string, owner: string): void {
    if (owner !== this.owner) return super.lockContended(path, name, owner);
    if (name === ENTRYLK_WHOLE_DIR) this.entryBursts.contended(path);
    else if (name === INODE_LOCK) this.bursts.contended(path);
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

  // ---- changes of a file (inode-write.ts) ------------------------------------------------

  write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.writes.write('write', a, f);
  }

  writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.writes.write('writev', a, f);
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.writes.ftruncate(a, f);
  }

  fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return this.writes.onFds('fsync', a, f);
  }

  flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    return this.writes.onFds('flush', a, f);
  }

  release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    return this.writes.release(a, f);
  }

  setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    return this.writes.setattr(a, f);
  }

  setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return this.writes.xattr('setxattr', a, f);
  }

  removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return this.writes.xattr('removexattr', a, f);
  }

  // ---- changes of names (dir-write.ts) ---------------------------------------------------

  create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    return this.dirWrites.create(a, f);
  }

  mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return this.dirWrites.entryOp('mkdir', a, f);
  }

  mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return this.dirWrites.entryOp('mknod', a, f);
  }

  symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return this.dirWrites.entryOp('symlink', a, f);
  }

  link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return this.dirWrites.entryOp('link', a, f);
  }

  unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return this.dirWrites.entryOp('unlink', a, f);
  }

  rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    return this.dirWrites.entryOp('rmdir', a, f);
  }

  rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    return this.dirWrites.rename(a, f);
  }

  // ---- reads (inode-read.ts) -------------------------------------------------------------

  lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    return this.reads.lookup(a, f);
  }

  access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    return this.reads.readOne('access', a, 'metadata', f);
  }

  readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return this.reads.readOne('readlink', a, 'data', f);
  }

  getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    return this.reads.readOne('getxattr', a, 'metadata', f);
  }

  listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return this.reads.readOne('listxattr', a, 'metadata', f);
  }

  readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    return this.reads.readdir(a, f);
  }

  statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    return this.reads.statfs(a, f);
  }

  open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    return this.reads.open(a, f);
  }

  read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    return this.reads.read(a, f);
  }

  readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    return this.reads.readfile(a, f);
  }

  fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    return this.reads.fstat(a, f);
  }

  // ---- distribute's and rebalance's own fops, heal tooling --------------------------------

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

  /** entrylk from above (distribute's own) goes to every replica. */
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
