import { FsError } from '../../../../lib/errors.js';
import { LINKFILE_MODE, XATTR_GFID, XATTR_LINKTO, type FopArgs, type FopReply, type Xattrs } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Inode } from '../../../../lib/inode.js';
import type { Distribute } from './index.js';
import { hashed } from './layout.js';
import { followingFileMoves } from './lookup.js';

/** The gfid a link file for this inode's file carries, when the inode knows it. */
export function gfidOf(inode: Inode | undefined): Buffer | undefined {
  return inode?.gfid === undefined ? undefined : Buffer.from(inode.gfid, 'hex');
}

/** Removes a link file, leaving any real file of that name alone (the brick checks). */
export async function removeLinkfile(dht: Distribute, child: number, path: string, frame: Frame): Promise<void> {
  try {
    await dht.children[child]!.call('unlink', { path, linkfileOnly: true }, frame);
  } catch (e) {
    if (FsError.from(e).code !== 'ENOENT') dht.logger.warn(`could not remove link file ${path}: ${(e as Error).message}`);
  }
}

/**
 * Makes (or repoints) the link file at path on child `at`, pointing to child `to`. Returns
 * the child a link file that was there pointed to (the data of the name it stood for).
 */
export async function makeLinkfile(dht: Distribute, at: number, path: string, to: number, frame: Frame, gfid?: Buffer): Promise<number | undefined> {
  const child = dht.children[at]!;
  const linkto = Buffer.from(dht.children[to]!.name);
  const xattrs: Xattrs = { [XATTR_LINKTO]: linkto, ...(gfid ? { [XATTR_GFID]: gfid } : {}) };
  try {
    await child.call('mknod', { path, mode: LINKFILE_MODE, rdev: 0, xattrs }, frame);
  } catch (e) {
    if (FsError.from(e).code !== 'EEXIST') throw e;
    const cur = await child.call('lookup', { path }, frame);
    if (!cur.linkto) {
      // A real file of that name on the hashed child is the replaced rename target.
      await child.call('unlink', { path }, frame);
      await child.call('mknod', { path, mode: LINKFILE_MODE, rdev: 0, xattrs }, frame);
    } else {
      // The link file stood for the name's old file: it now stands for this one, gfid too.
      await Promise.all([
        child.call('setxattr', { path, name: XATTR_LINKTO, value: linkto, flags: 0 }, frame),
        gfid ? child.call('setxattr', { path, name: XATTR_GFID, value: gfid, flags: 0 }, frame) : undefined,
      ]);
      return dht.childNamed(cur.linkto);
    }
  }
  return undefined;
}

/** Makes (or repoints) the link file at path on child `at`, pointing to child `to`, with the file's gfid (the rebalancer's). */
export async function pointLinkfile(dht: Distribute, path: string, at: number, to: number, frame: Frame): Promise<void> {
  const gfid = await dht.children[to]!.call('getxattr', { path, name: XATTR_GFID }, frame).then((r) => r.value, () => undefined);
  await makeLinkfile(dht, at, path, to, frame, gfid);
}

/** A hard link, made on the child holding the data, with a link file on the new name's hashed child when that differs. */
export async function link(dht: Distribute, a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
  const { child: at } = await hashed(dht, a.path, f);
  return followingFileMoves(dht, a.target, a.inode, f, async (src) => {
    const r = await dht.children[src.cached]!.call('link', a, f);
    if (at !== src.cached) await makeLinkfile(dht, at, a.path, src.cached, f);
    return r;
  });
}
