// Data fops of cluster/stripe on an open file: the range is cut in block pieces
// (blocks.ts) and the pieces run on their children in parallel.
import { fanout, fanoutCalls, firstFailure, successes } from '../../../../lib/fanout.js';
import type { FopArgs, FopReply } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Fd } from '../../../../lib/inode.js';
import type { Xlator } from '../../../../lib/xlator.js';
import { assembleRead, readLength, segment, sizeSeen } from './blocks.js';
import { logicalSize, mergeIatt } from './size.js';

/** Winds an fd fop to every child (the same fd); the replies in child order, or the first failure. */
export async function onEveryFd<F extends 'fstat' | 'ftruncate' | 'fsync' | 'flush' | 'release'>(
  children: readonly Xlator[], fop: F, args: FopArgs<F>, frame: Frame,
): Promise<Array<FopReply<F>>> {
  const res = await fanout(children, fop, args, frame);
  const failed = firstFailure(res);
  if (failed) throw failed;
  return successes(res).map((r) => r.value);
}

/** The logical size of an open file: the largest of its copies (fstat on every child). */
export async function sizeOfFd(children: readonly Xlator[], fd: Fd, frame: Frame): Promise<number> {
  const replies = await onEveryFd(children, 'fstat', { fd }, frame);
  return logicalSize(replies.map((r) => r.iatt.size));
}

/** Attributes of an open file from every copy (size max, blocks summed). */
export async function statFd(children: readonly Xlator[], fd: Fd, frame: Frame): Promise<FopReply<'fstat'>> {
  const replies = await onEveryFd(children, 'fstat', { fd }, frame);
  return { iatt: mergeIatt(replies.map((r) => r.iatt)) };
}

/**
 * Reads a range: the block pieces in parallel; a short piece below the logical size is a
 * hole and reads as zeros; nothing past the logical size is returned. The size is asked of
 * every child (fstat) only when the replies themselves do not prove the range is inside the
 * file, as GlusterFS's stripe_readv does.
 */
export async function stripedRead(children: readonly Xlator[], fd: Fd, blockSize: number, offset: number, size: number, frame: Frame): Promise<Buffer> {
  if (size <= 0) return Buffer.alloc(0);
  const pieces = segment(offset, size, blockSize, children.length);
  const res = await fanoutCalls(children, 'read', pieces.map((p) => ({
    child: p.child, args: { fd, offset: p.offset, size: p.length },
  })), frame);
  const failed = firstFailure(res);
  if (failed) throw failed;
  const got = res.map((r) => (r.ok ? r.value.data : Buffer.alloc(0)));
  if (got.every((d, i) => d.length === pieces[i]!.length)) {
    return got.length === 1 ? got[0]! : Buffer.concat(got, size);
  }
  const end = offset + size;
  let fileSize = sizeSeen(pieces, got);
  if (fileSize < end) fileSize = await sizeOfFd(children, fd, frame);
  return assembleRead(offset, readLength(offset, size, fileSize), pieces, got);
}

/**
 * Writes a range: each block piece on its child, all in parallel. Replies with the bytes
 * written from the start of the range, as a short write(2) does; fails only when the first
 * piece did.
 */
export async function stripedWrite(children: readonly Xlator[], fd: Fd, blockSize: number, offset: number, data: Buffer, frame: Frame): Promise<number> {
  const pieces = segment(offset, data.length, blockSize, children.length);
  if (pieces.length === 1) {
    const p = pieces[0]!;
    return (await children[p.child]!.call('write', { fd, offset, data }, frame)).size;
  }
  const res = await fanoutCalls(children, 'write', pieces.map((p) => ({
    child: p.child,
    args: { fd, offset: p.offset, data: data.subarray(p.bufOffset, p.bufOffset + p.length) },
  })), frame);
  let written = 0;
  for (let i = 0; i < res.length; i++) {
    const r = res[i]!;
    if (!r.ok) {
      if (written === 0) throw r.error;
      break;
    }
    written += r.value.size;
    if (r.value.size < pieces[i]!.length) break;
  }
  return written;
}
