import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, successes, type Settled } from '../../../../lib/fanout.js';
import { isDir, XATTR_GFID, XATTR_LAYOUT } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import { nameHash } from '../../../../lib/hash.js';
import type { Inode } from '../../../../lib/inode.js';
import { decodeRange, encodeRange, findRange, layoutRotations, sameRange, type HashRange, type OnBrickRange } from '../../../../lib/layout.js';
import type { Distribute } from './index.js';
import { healDirectory } from './selfheal.js';
import type { DirLayout } from './state.js';

/** The best error of a fanout: ENOENT only when every child said so; a child that is down makes it ENOTCONN. */
export function bestError<T>(res: Array<Settled<T>>): FsError {
  const errs = res.filter((r): r is Extract<Settled<T>, { ok: false }> => !r.ok).map((r) => r.error);
  return errs.find((e) => e.code !== 'ENOENT') ?? errs[0] ?? FsError.of('EIO');
}

/**
 * The rotation of this graph's layout every copy carries, if they all carry one: any
 * rotation is this brick set's layout (the rotation was chosen by the path the directory had
 * when it was written, which a rename changes).
 */
function currentRanges(dht: Distribute, copies: ReadonlyArray<{ child: number; range: OnBrickRange | undefined }>): HashRange[] | undefined {
  return layoutRotations(dht.weights).find((ranges) => copies.every(({ child, range }) =>
    range !== undefined && range.epoch === dht.epoch && sameRange(range.range, ranges[child]!)));
}

/**
 * The layout of a directory, healing missing directory copies and ranges on the way (the
 * layout is held on the directory's inode: a rename keeps it). Every copy must carry this
 * graph's ranges at this graph's epoch; anything else (a directory made before add-brick, a
 * damaged range) is rewritten, unsettled, because its entries may sit where the old layout
 * put them. A copy written at a newer epoch means this graph is older than the brick set:
 * use the target without writing it. The lookups are the caller's. A rewrite is the
 * translator's own repair, not the caller's (who may not own the directory): it runs as
 * `healer`, root unless fix-layout passes the rebalance service's frame.
 */
export async function layoutOf(dht: Distribute, dir: string, frame: Frame, healer: Frame = ROOT_FRAME, inode?: Inode): Promise<DirLayout> {
  const held = dht.state.layout(dir, inode);
  if (held) return held;
  const res = await fanout(dht.children, 'lookup', { path: dir, xattrs: [XATTR_LAYOUT, XATTR_GFID] }, frame);
  const found = successes(res);
  if (found.length === 0) throw bestError(res);
  const model = found[0]!.value;
  if (!isDir(model.iatt)) throw FsError.of('ENOTDIR', `${dir} is not a directory`);
  const copies = found.map((f) => ({ child: f.child, range: decodeRange(f.value.xattrs?.[XATTR_LAYOUT]) }));
  const anyRange = copies.some((c) => c.range !== undefined);
  const newer = copies.some((c) => c.range !== undefined && c.range.epoch > dht.epoch);
  const settled = copies.every((c) => c.range?.settled === true);
  const current = currentRanges(dht, copies);
  const missing = res.filter((r) => !r.ok && r.error.code === 'ENOENT').map((r) => r.child);
  const down = res.filter((r) => !r.ok && r.error.code !== 'ENOENT');
  if (newer) {
    dht.logger.warn(`layout of ${dir} was written for a newer brick set than this graph's (epoch ${dht.epoch}); waiting for the new volfile`);
    return { ranges: dht.target(dir), settled: false };
  }
  if (current && missing.length === 0) {
    const full = { ranges: current, settled: settled && down.length === 0 };
    if (down.length === 0) dht.state.setLayout(dir, inode, full, model.iatt.gfid);
    return full;
  }
  // Cannot heal with a child away; serve the target without holding it.
  if (down.length > 0) return { ranges: dht.target(dir), settled: false };
  // Copies missing beside ones carrying this graph's layout get the same rotation.
  const healed = await healDirectory(dht, dir, current ?? dht.target(dir), model.iatt, model.xattrs?.[XATTR_GFID], missing, !anyRange, healer);
  dht.state.setLayout(dir, inode, healed, model.iatt.gfid);
  return healed;
}

/** The child a name hashes to under its directory's layout, and whether a miss there is final. */
export async function hashed(dht: Distribute, path: string, frame: Frame): Promise<{ child: number; settled: boolean }> {
  const layout = await layoutOf(dht, pathMod.dirname(path), frame);
  const i = findRange(layout.ranges, nameHash(pathMod.basename(path)));
  if (i < 0) throw FsError.of('EIO', `no subvolume holds the hash of ${path}`);
  return { child: i, settled: layout.settled };
}

/**
 * fix-layout of one directory (the rebalancer's): makes every copy carry this graph's range
 * (creating missing copies). True when something was rewritten. The directory stays
 * unsettled until its files have been moved (settleLayout).
 */
export async function fixLayout(dht: Distribute, dir: string, frame: Frame): Promise<boolean> {
  dht.state.forgetLayout(dir);
  const before = dht.stats.layoutWrites;
  await layoutOf(dht, dir, frame, frame);
  return dht.stats.layoutWrites !== before;
}

/** Marks a directory's layout settled on every copy: each entry now sits on its hashed child. */
export async function settleLayout(dht: Distribute, dir: string, frame: Frame): Promise<void> {
  const layout = await layoutOf(dht, dir, frame, frame);
  const res = await fanout(dht.children, 'setxattr', (i) => ({
    path: dir, name: XATTR_LAYOUT, value: encodeRange(layout.ranges[i]!, dht.n, true, dht.epoch), flags: 0,
  }), frame);
  const failed = firstFailure(res);
  if (failed) throw failed;
  dht.state.setLayout(dir, undefined, { ranges: layout.ranges, settled: true });
}
