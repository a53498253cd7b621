import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure } from '../../../../lib/fanout.js';
import { XATTR_GFID, XATTR_LAYOUT, type Iatt } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import type { Inode } from '../../../../lib/inode.js';
import { decodeRange, encodeRange, layoutRotations, sameRange, type HashRange } from '../../../../lib/layout.js';
import type { Distribute } from './index.js';
import { hashed } from './layout.js';
import type { DirLayout } from './state.js';

/**
 * Creates missing copies of a directory and writes `layout`, one of this graph's, on every
 * copy (DHT dir self-heal, fix-layout). The caller holds the layout returned.
 */
export async function healDirectory(
  dht: Distribute, dir: string, layout: HashRange[], iatt: Iatt, gfid: Buffer | undefined, missing: number[], settled: boolean, frame: Frame,
): Promise<DirLayout> {
  dht.stats.layoutWrites++;
  dht.logger.info(`writing layout of ${dir} (epoch ${dht.epoch}; missing on ${missing.map((i) => dht.children[i]!.name).join(' ') || 'none'})`);
  const range = (i: number): Buffer => encodeRange(layout[i]!, dht.n, settled, dht.epoch);
  const mk = await fanout(dht.children, 'mkdir', (i) => ({
    path: dir, mode: iatt.mode & 0o7777,
    xattrs: { [XATTR_LAYOUT]: range(i), ...(gfid ? { [XATTR_GFID]: gfid } : {}) },
  }), frame, missing);
  const failed = firstFailure(mk, ['EEXIST']);
  if (failed) throw failed;
  const present = dht.all().filter((i) => !missing.includes(i));
  const set = await fanout(dht.children, 'setxattr', (i) => ({ path: dir, name: XATTR_LAYOUT, value: range(i), flags: 0 }), frame, present);
  const setFailed = firstFailure(set);
  if (setFailed) throw setFailed;
  if (missing.length) {
    await fanout(dht.children, 'setattr', { path: dir, attrs: { uid: iatt.uid, gid: iatt.gid } }, frame, missing);
  }
  return { ranges: layout, settled };
}

/**
 * Makes again, from the hashed copy, the copies a failed rmdir removed, and gives back its
 * error (DHT's selfheal-restore). A directory self-heal (root): the copies are restored as
 * they were, owner too.
 */
export async function restoreAfterRmdir(dht: Distribute, dir: string, inode: Inode | undefined, removed: number[], error: FsError): Promise<FsError> {
  if (removed.length === 0) return error;
  try {
    const { child } = await hashed(dht, dir, ROOT_FRAME);
    const model = await dht.children[child]!.call('lookup', { path: dir, xattrs: [XATTR_LAYOUT, XATTR_GFID] }, ROOT_FRAME);
    // The copies removed were empty: the entries all still sit where the layout says.
    const kept = decodeRange(model.xattrs?.[XATTR_LAYOUT]);
    const settled = kept?.settled === true;
    // The ranges the hashed copy carries (a renamed directory's rotation is its old path's).
    const ranges = (kept && layoutRotations(dht.weights).find((r) => sameRange(r[child]!, kept.range))) ?? dht.target(dir);
    const layout = await healDirectory(dht, dir, ranges, model.iatt, model.xattrs?.[XATTR_GFID], removed, settled, ROOT_FRAME);
    dht.state.setLayout(dir, inode, layout, model.iatt.gfid);
  } catch (e) {
    dht.state.forgetLayout(dir, inode);
    dht.logger.warn(`rmdir ${dir} failed (${error.code}) after removing it from ${removed.map((i) => dht.children[i]!.name).join(' ')}; making it there again failed (${FsError.from(e).message}), a lookup will heal it`);
  }
  return error;
}
