import { constants as fsConstants } from 'node:fs';
import { gfidFor } from '../../../../lib/gfid.js';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, successes } from '../../../../lib/fanout.js';
import { XATTR_GFID, type FopArgs, type FopReply, type StatFs } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Inode } from '../../../../lib/inode.js';
import type { Distribute } from './index.js';
import { ONE_COPY_DIR_FOPS, onKnownDir, type HolderFop } from './dir-ops.js';
import { onFd, open, opened } from './fd-ops.js';
import { hashed } from './layout.js';
import { removeLinkfile } from './linkfile.js';
import { followingFileMoves, followingMoves, isMoved, onCached } from './lookup.js';

const { O_EXCL } = fsConstants;

/** A file is created on its hashed child, with the gfid the caller asked for (or a new one). */
export async function create(dht: Distribute, a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
  const { child } = await hashed(dht, a.path, f);
  let r: FopReply<'create'>;
  try {
    r = await dht.children[child]!.call('create', { ...a, xattrs: { ...a.xattrs, [XATTR_GFID]: gfidFor(a.xattrs) } }, f);
  } catch (e) {
    // ESTALE: the hashed brick holds a link file, so the name exists on another brick (a
    // rename, a rebalance) that this client's kernel thought absent. Without O_EXCL that
    // is an open of the existing file, wherever it lives.
    if (!(e instanceof FsError && e.code === 'ESTALE') || a.flags & O_EXCL) throw e;
    await open(dht, { path: a.path, flags: a.flags, fd: a.fd }, f);
    return { iatt: (await onFd(dht, 'fstat', { fd: a.fd }, f)).iatt };
  }
  opened(dht, a.fd, child);
  return { iatt: r.iatt };
}

/** mknod and symlink: on the hashed child, with a gfid. */
export async function makeOnHashed<F extends 'mknod' | 'symlink'>(dht: Distribute, fop: F, a: FopArgs<F>, f: Frame): Promise<FopReply<F>> {
  const { child } = await hashed(dht, a.path, f);
  return dht.children[child]!.call(fop, { ...a, xattrs: { ...a.xattrs, [XATTR_GFID]: gfidFor(a.xattrs) } }, f);
}

/** unlink: the data where it lives, then the link file on the hashed child if there is one. */
export async function unlink(dht: Distribute, a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
  // Where the inode says the file is: unlink there at once, unless that is a link file now
  // (the brick checks); anything else missing there is looked up as before.
  const cached = dht.state.cached(a.path, a.inode);
  if (cached !== undefined) {
    try {
      await dht.children[cached]!.call('unlink', { ...a, dataOnly: true }, f);
      const { child } = await hashed(dht, a.path, f);
      if (cached !== child) await removeLinkfile(dht, child, a.path, f);
      return {};
    } catch (e) {
      if (!isMoved(e)) throw e;
      dht.state.forgetCached(a.path, a.inode);
    }
  }
  const loc = await followingFileMoves(dht, a.path, a.inode, f, async (l) => {
    await dht.children[l.cached]!.call('unlink', a, f);
    return l;
  });
  // Awaited: once unlink returns, no brick holds anything of the name (GlusterFS's too).
  if (loc.cached !== loc.hashed) await removeLinkfile(dht, loc.hashed, a.path, f);
  return {};
}

/** Runs a fop on the child holding a path; on all children when the path is a directory. */
export async function onHolder<F extends HolderFop>(dht: Distribute, fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
  const { path, inode } = args as { path: string; inode?: Inode };
  const known = await onCached(dht, path, inode, fop, args, frame) ?? await onKnownDir(dht, path, inode, fop, args, frame);
  if (known) return known;
  return followingMoves(dht, path, inode, frame, async (loc) => {
    if (!('dir' in loc)) return dht.children[loc.cached]!.call(fop, args, frame);
    if (ONE_COPY_DIR_FOPS.has(fop)) return dht.children[loc.hashed]!.call(fop, args, frame);
    const res = await fanout(dht.children, fop, args, frame);
    const failed = firstFailure(res);
    if (failed) throw failed;
    return (res[loc.hashed] as { value: FopReply<F> }).value;
  });
}

/** statfs sums the children that answer (with a common block size). */
export async function statfs(dht: Distribute, a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
  const ok = successes(await fanout(dht.children, 'statfs', a, f));
  if (!ok.length) throw FsError.of('ENOTCONN', 'no subvolume is up');
  const base = ok[0]!.value.statfs;
  const sum: StatFs = { ...base, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0 };
  for (const { value: { statfs: s } } of ok) {
    const scale = s.frsize / base.frsize;
    sum.blocks += s.blocks * scale;
    sum.bfree += s.bfree * scale;
    sum.bavail += s.bavail * scale;
    sum.files += s.files;
    sum.ffree += s.ffree;
    sum.favail += s.favail;
  }
  return { statfs: sum };
}
