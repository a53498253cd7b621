import pathMod from 'node:path/posix';
import type { FopArgs, FopReply } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import type { EntryBursts } from './entry-burst.js';
import type { ReplicaFds } from './fd.js';
import { entryTarget, INODE_LOCK, type ReplicaSet, type Transactions } from './transaction.js';
import type { WriteBursts } from './write-burst.js';

type EntryFop = 'mkdir' | 'mknod' | 'symlink' | 'unlink' | 'rmdir' | 'link';

/**
 * Changes of names (create, mkdir, mknod, symlink, link, unlink, rmdir, rename): each in
 * its directory's entry burst when it can join one, else an entry transaction of its own.
 * Bursts whose locks and marks go by a path the change moves or removes end first.
 */
export class DirWrites {
  constructor(
    private readonly set: ReplicaSet,
    private readonly txn: Transactions,
    private readonly bursts: WriteBursts,
    private readonly entryBursts: EntryBursts,
    private readonly fds: ReplicaFds,
  ) {}

  async entryOp<F extends EntryFop>(fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
    if (fop === 'unlink') {
      // The file's open write burst posts before its name goes: by path, a post-op after
      // would land on whatever is made at the name next.
      const u = a as FopArgs<'unlink'>;
      await this.bursts.endOpen(u.path, u.inode);
    }
    // The directory's own burst posts to it before it goes.
    if (fop === 'rmdir') await this.entryBursts.endAt(a.path);
    return this.entryChange(a.path, (i) => this.set.children[i]!.call(fop, a, f));
  }

  /** A change of a name: in its directory's entry burst when it can join one, else a transaction of its own. */
  private async entryChange<T>(path: string, op: (child: number) => Promise<T>): Promise<T> {
    const b = this.set.options.entryBurst() ? await this.entryBursts.join(pathMod.dirname(path)) : undefined;
    return b ? this.entryBursts.run([b], op) : this.txn.run(entryTarget(path), op);
  }

  /**
   * The new file's write burst starts in the create request itself (its lock and pre-op
   * marks, which each brick applies only to a file it made), so the first write does not
   * wait for a lock + pre-op round trip of its own.
   */
  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const inode = a.fd.inode;
    const openOn: number[] = [];
    const withBurst = !this.bursts.has(a.path, inode);
    const args = withBurst ? { ...a, burst: { lock: { name: INODE_LOCK, owner: this.set.owner }, add: this.bursts.marks(1) } } : a;
    const started: number[] = [];
    let createdEverywhere = true;
    const first = await this.entryChange(a.path, async (i) => {
      const r = await this.set.children[i]!.call('create', args, f);
      openOn.push(i);
      if (r.burst) started.push(i);
      if (!r.created) createdEverywhere = false;
      return r;
    });
    if (started.length) this.bursts.adoptCreated(inode, a.path, started, openOn);
    openOn.sort((x, y) => x - y);
    this.fds.opened(a.fd, { openOn, readChild: openOn[0], attrChild: openOn[0] ?? 0 });
    return { iatt: first.iatt, ...(createdEverywhere ? { created: true } : {}) };
  }

  /**
   * The brick keys locks by path, so no burst can keep its lock across a rename of its
   * path: one that did would hold the old name while another client's writes to the new
   * one took a lock of their own. Bursts at or under the old name (and the source file's,
   * whatever name it is reached by) end first, their post-ops landing on the files under
   * the names that took the marks; open files under the old name take the new one through
   * their inode, and their next writes start bursts there. Bursts at or under the new name
   * end too: their files are replaced, and a post-op by that path would land on the
   * renamed file. So do the entry bursts of both.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    await this.bursts.endAt(a.from, a.inode);
    await this.bursts.endAt(a.to);
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
    const op = (i: number): Promise<FopReply<'rename'>> => this.set.children[i]!.call('rename', a, f);
    const fromDir = pathMod.dirname(a.from);
    const toDir = pathMod.dirname(a.to);
    const bursts = this.set.options.entryBurst() ? await this.entryBursts.joinAll([...new Set([toDir, fromDir])]) : undefined;
    if (bursts) return this.entryBursts.run(bursts, op);
    // The transaction locks names one by one, which an entry burst of either directory holds.
    for (const dir of new Set([fromDir, toDir])) await this.entryBursts.endAndLand(dir);
    const name = pathMod.basename(a.from);
    const extra = fromDir !== toDir ? await this.txn.lock(fromDir, name, ROOT_FRAME) : undefined;
    try {
      return await this.txn.run(entryTarget(a.to), op);
    } finally {
      if (extra) await this.txn.unlock({ path: fromDir, name, children: extra }, ROOT_FRAME);
    }
  }
}
