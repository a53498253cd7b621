import { FsError } from '../../../../lib/errors.js';
import { reopenFlags, type FopArgs, type FopReply } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import type { Fd } from '../../../../lib/inode.js';
import type { Distribute } from './index.js';
import { followingFileMoves, isMoved, locateFile, MOVED_RETRIES, onCached } from './lookup.js';

/**
 * Distribute's state on an open fd (its slot of the fd's ctx): the child it is open on. The
 * child gets the same Fd and keeps its own state for it in its own slot; the path and flags
 * to reopen it with where the data moved are the fd's (its path follows renames).
 */
export interface DhtFd {
  child: number;
  /** Bumped by each reopen on another child: a fop sent before it knows its answer is stale. */
  generation: number;
  /** A reopen after the file moved, shared by the fops that found it moved. */
  reopening?: Promise<boolean>;
}

/** Fops on an open fd, run on the child it is open on. */
export type FdFop = 'read' | 'write' | 'writev' | 'fstat' | 'ftruncate' | 'fsync';

/** Takes a successful open or create of fd on child into the fd's slot; the file's inode learns where it is. */
export function opened(dht: Distribute, fd: Fd, child: number): void {
  fd.ctx.set(dht.fdKey, { child, generation: 0 });
  dht.state.setCached(fd.path, fd.inode, child);
  dht.stats.openFds++;
}

function fdOf(dht: Distribute, fd: Fd): DhtFd {
  const f = fd.ctx.get(dht.fdKey);
  if (!f) throw FsError.of('EBADF', `${dht.name}: fd on ${fd.path} is not open`);
  return f;
}

/** open on the child the inode says holds the file, else where a lookup finds it. */
export async function open(dht: Distribute, a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
  const cached = dht.state.cached(a.path, a.fd.inode);
  if (cached !== undefined && await onCached(dht, a.path, a.fd.inode, 'open', a, f)) {
    opened(dht, a.fd, cached);
    return {};
  }
  return followingFileMoves(dht, a.path, a.fd.inode, f, async (loc) => {
    await dht.children[loc.cached]!.call('open', a, f);
    opened(dht, a.fd, loc.cached);
    return {};
  });
}

/** A read by path, on the file's holder like open; a file that moved meanwhile is looked up again. */
export async function readfile(dht: Distribute, a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
  const r = await onCached(dht, a.path, a.inode, 'readfile', a, f);
  if (r) return r;
  return followingFileMoves(dht, a.path, a.inode, f, (loc) => dht.children[loc.cached]!.call('readfile', a, f));
}

export async function flush(dht: Distribute, a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
  const fd = fdOf(dht, a.fd);
  await fd.reopening;
  return dht.children[fd.child]!.call('flush', a, f);
}

export async function release(dht: Distribute, a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
  const fd = a.fd.ctx.take(dht.fdKey);
  if (!fd) throw FsError.of('EBADF', `${dht.name}: fd on ${a.fd.path} is not open`);
  dht.stats.openFds--;
  await fd.reopening?.catch(() => undefined);
  return dht.children[fd.child]!.call('release', a, f);
}

/**
 * Runs an fd fop on the child holding the file. ESTALE means the file moved to another
 * child (rebalance committed a migration): reopen it where it lives now and run it there.
 * ENOENT too, when the name is found on another child now (replicate's changelog marks
 * go by name, and meet the name gone from the old child). A fop that was on its way to
 * the old child while another one reopened the fd (the old child answers EBADF once its
 * slot is released) runs again where the fd is open now.
 */
export async function onFd<F extends FdFop>(dht: Distribute, fop: F, a: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
  const f = fdOf(dht, a.fd);
  for (let attempt = 0; ; attempt++) {
    const { child, generation } = f;
    try {
      return await dht.children[child]!.call(fop, a, frame);
    } catch (e) {
      if (attempt >= MOVED_RETRIES) throw e;
      if (f.generation !== generation && (isMoved(e) || FsError.from(e).code === 'EBADF')) continue;
      if (!isMoved(e) || !(await reopen(dht, a.fd, f, generation))) throw e;
    }
  }
}

/**
 * Reopens fd on the child now holding its file, unless another fop already did (the
 * generation moved on). False when the file did not move (the error that led here
 * stands). The same Fd goes to the new child, which makes its own slot for it; the old
 * child is released after, which drops its slot, so a file that moves back later is
 * opened there afresh. Done as root, not as the fop that found the move: the open was
 * allowed once, and every fop waiting on the fd shares this reopen.
 */
function reopen(dht: Distribute, fd: Fd, f: DhtFd, generation: number): Promise<boolean> {
  if (f.generation !== generation) return Promise.resolve(true);
  f.reopening ??= (async () => {
    const from = f.child;
    const path = fd.path;
    try {
      const loc = await locateFile(dht, path, ROOT_FRAME, fd.inode);
      if (loc.cached === from) return false;
      await dht.children[loc.cached]!.call('open', { path, flags: reopenFlags(fd.flags), fd }, ROOT_FRAME);
      dht.logger.info(`${path} moved from ${dht.children[from]!.name} to ${dht.children[loc.cached]!.name}: fd reopened there`);
      f.child = loc.cached;
      f.generation++;
      await dht.children[from]!.call('release', { fd }, ROOT_FRAME).catch(() => undefined);
      return true;
    } catch (e) {
      dht.logger.warn(`${path}: could not follow the file after a move: ${(e as Error).message}`);
      return false;
    } finally {
      f.reopening = undefined;
    }
  })();
  return f.reopening;
}
