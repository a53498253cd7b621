import { fanout, successes, type Settled } from '../../../../lib/fanout.js';
import type { FopArgs, FopReply } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Kind } from './changelog.js';
import type { ReplicaFds } from './fd.js';
import { inodeTarget, movedAway, type ReplicaSet, type Transactions } from './transaction.js';
import type { WriteBursts } from './write-burst.js';

/**
 * Changes of a file's data and metadata: writes in the file's write burst, truncate,
 * attributes and xattrs in a transaction of their own (or in the burst, for attributes
 * while one is open), and the fd fops that end a burst (fsync, flush, release).
 */
export class InodeWrites {
  constructor(
    private readonly set: ReplicaSet,
    private readonly txn: Transactions,
    private readonly bursts: WriteBursts,
    private readonly fds: ReplicaFds,
  ) {}

  /** A write or writev: under the file's open burst, on every marked replica with an fd. */
  async write<F extends 'write' | 'writev'>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    const { openOn } = this.fds.of(a.fd);
    const b = await this.bursts.burstFor(a.fd.inode);
    b.mtimeMs = undefined;
    for (const i of b.marked) if (!openOn.includes(i)) b.failed.add(i);
    return this.bursts.run(b, fop, a, b.marked.filter((i) => openOn.includes(i)), f);
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    const { openOn } = this.fds.of(a.fd);
    return this.txn.run(inodeTarget(a.fd.path, 'data', a.fd.inode), (i) => this.set.children[i]!.call('ftruncate', a, f), openOn);
  }

  /** fsync, flush or release on the replicas the fd is open on, after the file's burst ends. */
  async onFds<F extends 'fsync' | 'flush' | 'release'>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    const { openOn } = this.fds.of(a.fd);
    const inode = a.fd.inode;
    if (fop !== 'fsync' && !(await this.bursts.degraded(inode))) {
      // close does not wait for the burst's post-op + unlock: while every replica took every
      // write, the pre-op marks cover a crash in between (as GlusterFS's post-op delayed past
      // close). It lands behind; this client's next change of the file and fsync wait for
      // it. A release goes out behind it on the same connections.
      this.bursts.endBehind(inode);
    } else {
      // A degraded burst (a replica missed a write) waits: a survivor that crashed before its
      // post-op would blame itself, which voids its blame of the copy that missed the writes,
      // and that stale copy would then heal over acknowledged data.
      // The changelog is settled before fsync returns, as the data is.
      await this.bursts.endAndLand(inode.path, inode);
    }
    const res = await fanout(this.set.children, fop, a, f, openOn);
    // An fsync that met a moved file (movedAway) is redone where it lives now: the writes
    // redone there are what must be on disk, not the copy left behind.
    const moved = fop === 'fsync' ? movedAway(res) : undefined;
    if (moved) throw moved;
    const ok = successes(res);
    if (ok.length === 0 && res.length > 0) throw (res[0] as Extract<Settled<unknown>, { ok: false }>).error;
    return (ok[0]?.value ?? {}) as FopReply<F>;
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const r = await this.onFds('release', a, f).catch(() => ({}));
    this.fds.released(a.fd);
    return r;
  }

  /** A setattr (not size) of a file with a write burst open goes under the burst; else a transaction. */
  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const open = a.attrs.size === undefined ? this.bursts.openAt(a.path, a.inode) : undefined;
    if (open) {
      const r = await this.bursts.run(open, 'setattr', a, open.marked.filter((i) => !open.failed.has(i)), f);
      if (a.attrs.mtimeMs !== undefined) open.mtimeMs = a.attrs.mtimeMs;
      return r;
    }
    const kind: Kind = a.attrs.size !== undefined ? 'data' : 'metadata';
    return this.txn.run(inodeTarget(a.path, kind, a.inode), (i) => this.set.children[i]!.call('setattr', a, f));
  }

  async xattr<F extends 'setxattr' | 'removexattr'>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    return this.txn.run(inodeTarget(a.path, 'metadata', a.inode), (i) => this.set.children[i]!.call(fop, a, f));
  }
}
