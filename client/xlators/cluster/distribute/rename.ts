import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure } from '../../../../lib/fanout.js';
import { XATTR_GFID, type FopArgs, type FopReply } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Distribute } from './index.js';
import { hashed } from './layout.js';
import { gfidOf, makeLinkfile, removeLinkfile } from './linkfile.js';
import { followingMoves, isMoved, locateFileIfAny, type Located, type Location } from './lookup.js';

/**
 * rename (DHT's dht-rename). A directory is renamed on every child and keeps its layout: it
 * is held on the directory's inode, which the rename moves. A file is renamed where its data
 * is, behind a link file on the new name's hashed child when that is another.
 */
export async function rename(dht: Distribute, a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
  if (!(await renameCached(dht, a, f))) await followingMoves(dht, a.from, a.inode, f, (src) => renameLocated(dht, a, src, f));
  return {};
}

/**
 * A rename of a file whose inode knows where it is (the kernel looks the name up first): no
 * second lookup of it. False when it is not known, or is not there any more (a rebalance
 * moved it, leaving a link file, which the brick refuses to rename as data): the caller
 * locates it and renames.
 */
async function renameCached(dht: Distribute, a: FopArgs<'rename'>, frame: Frame): Promise<boolean> {
  const cached = dht.state.cached(a.from, a.inode);
  if (cached === undefined) return false;
  const { child } = await hashed(dht, a.from, frame);
  try {
    await renameLocated(dht, a, { cached, hashed: child }, frame);
    return true;
  } catch (e) {
    if (!isMoved(e)) throw e;
    return false;
  }
}

async function renameLocated(dht: Distribute, a: FopArgs<'rename'>, src: Located | Pick<Location, 'cached' | 'hashed'>, frame: Frame): Promise<void> {
  dht.state.forgetCached(a.from, a.inode);
  if ('dir' in src) {
    const res = await fanout(dht.children, 'rename', a, frame);
    dht.state.dirRenamed();
    const failed = firstFailure(res);
    if (failed) throw failed;
    return;
  }
  const { child: toHashed, settled } = await hashed(dht, a.to, frame);
  const s = src.cached;
  // With the layout settled and lookup-optimize on, a name that exists has its data or a
  // link file on its hashed child: what this rename replaces shows there (the link file
  // made below finds it, the brick's rename says what it replaced) and needs no lookup.
  const targetShows = settled && dht.lookupOptimize;
  // The new name's link file carries the source's gfid: the inode's, else asked of s.
  const knownGfid = gfidOf(a.inode);
  // Where the destination is, and (when the new name hashes elsewhere) the source's gfid
  // for its link file: asked at once, one round trip instead of two. The lookup also makes
  // sure the file is still data on s: one that left since it was located (a link file or
  // nothing there now) gets no link file pointing at s. (Without it, a file that left
  // fails the rename below instead, and the retry repoints the link file.)
  const [dst, here] = await Promise.all([
    targetShows ? undefined : locateFileIfAny(dht, a.to, frame),
    toHashed !== s && !knownGfid ? dht.children[s]!.call('lookup', { path: a.from, xattrs: [XATTR_GFID] }, frame) : undefined,
  ]);
  // Order keeps the file reachable at every step: link file first, then the data rename,
  // then the cleanup of what the old names left behind.
  const replaced = new Set<number>();
  if (dst) replaced.add(dst.cached);
  if (toHashed !== s) {
    if (here?.linkto) throw FsError.of('ESTALE', `${a.from} moved away from ${dht.children[s]!.name}`);
    const pointed = await makeLinkfile(dht, toHashed, a.to, s, frame, knownGfid ?? here?.xattrs?.[XATTR_GFID]);
    if (pointed !== undefined) replaced.add(pointed);
  }
  const r = await dht.children[s]!.call('rename', { ...a, dataOnly: true }, frame);
  const pointed = r.replacedLinkto === undefined ? undefined : dht.childNamed(r.replacedLinkto);
  if (pointed !== undefined) replaced.add(pointed);
  // The replaced name's data where its link file pointed: the rename took the name.
  for (const c of replaced) {
    if (c !== s && c !== toHashed) await dht.children[c]!.call('unlink', { path: a.to, dataOnly: true }, frame).catch(() => undefined);
  }
  if (src.hashed !== s) await removeLinkfile(dht, src.hashed, a.from, frame);
  // Without the source's inode the name's table inode is the replaced file's: nothing to note.
  if (a.inode) dht.state.setCached(a.to, a.inode, s);
}
