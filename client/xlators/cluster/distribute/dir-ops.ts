import { gfidFor } from '../../../../lib/gfid.js';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, successes } from '../../../../lib/fanout.js';
import { isDir, XATTR_GFID, XATTR_LAYOUT, type DirEntry, type FopArgs, type FopName, type FopReply } from '../../../../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import { nameHash } from '../../../../lib/hash.js';
import type { Inode } from '../../../../lib/inode.js';
import { encodeRange, findRange } from '../../../../lib/layout.js';
import type { Distribute } from './index.js';
import { bestError, hashed, layoutOf } from './layout.js';
import { restoreAfterRmdir } from './selfheal.js';

/** Fops on a directory that read it: its hashed copy answers (the others change every copy). */
export const ONE_COPY_DIR_FOPS: ReadonlySet<FopName> = new Set(['getxattr', 'listxattr', 'readlink', 'access']);

/** Fops on a path that go to the file's child, or to a directory's copies. */
export type HolderFop = 'setattr' | 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr' | 'readlink' | 'access';

/** mkdir: the hashed child first (its EEXIST decides), then every other child, each copy with its range and one gfid. */
export async function mkdir(dht: Distribute, a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
  const { child: first } = await hashed(dht, a.path, f);
  const layout = dht.target(a.path);
  const gfid = gfidFor(a.xattrs);
  const argsFor = (i: number): FopArgs<'mkdir'> => ({
    path: a.path, mode: a.mode, xattrs: { ...a.xattrs, [XATTR_GFID]: gfid, [XATTR_LAYOUT]: encodeRange(layout[i]!, dht.n, true, dht.epoch) },
  });
  const made = await dht.children[first]!.call('mkdir', argsFor(first), f);
  const rest = await fanout(dht.children, 'mkdir', argsFor, f, dht.all().filter((i) => i !== first));
  const failed = firstFailure(rest, ['EEXIST']);
  if (failed) dht.logger.warn(`mkdir ${a.path}: ${failed.message}; the directory will be healed on lookup`);
  // The bridge makes the new directory's inode from the reply: the layout waits for it by gfid.
  else dht.state.setLayout(a.path, undefined, { ranges: layout, settled: true }, gfid.toString('hex'));
  return made;
}

/**
 * rmdir as DHT does it: every copy but the hashed one, then the hashed one, so the name
 * resolves until the end. Nothing is listed first: a copy holding only stale link files
 * answers ENOTEMPTY, is emptied of them and removed again. A copy holding anything else
 * fails the rmdir, and the copies already removed are made again (DHT's selfheal-restore):
 * a failed rmdir does not leave the directory gone from some bricks.
 */
export async function rmdir(dht: Distribute, a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
  const { child: last } = await hashed(dht, a.path, f);
  const others = await Promise.all(dht.all().filter((i) => i !== last).map((i) => removeCopy(dht, i, a.path, f)));
  const removed = others.filter((r) => r.removed).map((r) => r.child);
  const failed = others.find((r) => r.error);
  if (failed) throw await restoreAfterRmdir(dht, a.path, a.inode, removed, failed.error!);
  const end = await removeCopy(dht, last, a.path, f);
  if (end.error) throw await restoreAfterRmdir(dht, a.path, a.inode, removed, end.error);
  if (!end.removed && removed.length === 0) throw FsError.of('ENOENT');
  dht.state.forgetLayout(a.path, a.inode);
  return {};
}

/**
 * Removes one copy of a directory (and the stale link files that alone keep it); a copy
 * already gone is not an error. The rmdir is the caller's; clearing out link files is the
 * translator's own cleanup (root): the caller need not be able to list or own them.
 */
async function removeCopy(dht: Distribute, child: number, dir: string, frame: Frame): Promise<{ child: number; removed: boolean; error?: FsError }> {
  const c = dht.children[child]!;
  for (let purged = false; ; purged = true) {
    try {
      await c.call('rmdir', { path: dir }, frame);
      return { child, removed: true };
    } catch (e) {
      const error = FsError.from(e);
      if (error.code === 'ENOENT') return { child, removed: false };
      if (error.code !== 'ENOTEMPTY' || purged) return { child, removed: false, error };
      const { entries } = await c.call('readdir', { path: dir }, ROOT_FRAME).catch(() => ({ entries: [] as DirEntry[] }));
      if (entries.length === 0 || entries.some((x) => !x.linkto)) return { child, removed: false, error };
      for (const x of entries) await c.call('unlink', { path: `${dir}/${x.name}`, linkfileOnly: true }, ROOT_FRAME).catch(() => undefined);
    }
  }
}

/**
 * readdir merges every child's listing, hides link files and lists each name once. Each
 * file listed learns where it lives, as from a lookup (rm -rf unlinks right after).
 */
export async function readdir(dht: Distribute, a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
  const layout = await layoutOf(dht, a.path, f, ROOT_FRAME, a.inode);
  const res = await fanout(dht.children, 'readdir', a, f);
  const ok = successes(res);
  // A child that is down hides its files but does not fail the listing (as DHT does).
  const failed = firstFailure(res, ['ENOTCONN']);
  if (failed || ok.length === 0) throw failed ?? bestError(res);
  const dir = a.inode?.table === dht.inodes ? a.inode : dht.inodes.find(a.path);
  const byName = new Map<string, DirEntry>();
  for (const { value, child } of ok) {
    for (const e of value.entries) {
      if (e.linkto) continue;
      // A subdirectory has a copy on every child, each with its own times: list the
      // hashed copy's, the one lookup answers with, so a stat after the listing agrees.
      if (!byName.has(e.name) || (isDir(e.iatt) && findRange(layout.ranges, nameHash(e.name)) === child)) byName.set(e.name, e);
      if (!isDir(e.iatt)) {
        const path = a.path === '/' ? `/${e.name}` : `${a.path}/${e.name}`;
        dht.state.setCached(path, dir && dht.inodes.child(dir.id, e.name), child, e.iatt.gfid);
      }
    }
  }
  return { entries: [...byName.values()] };
}

/**
 * A fop on a directory whose layout its inode holds (made, listed or looked up here): no
 * lookup first (tar sets each directory's times, owner and mode by path, three fops).
 * Undefined when it is not there any more as a directory: the caller looks it up.
 */
export async function onKnownDir<F extends HolderFop>(
  dht: Distribute, path: string, inode: Inode | undefined, fop: F, args: FopArgs<F>, frame: Frame,
): Promise<FopReply<F> | undefined> {
  if (path === '/' || !dht.state.layout(path, inode)) return undefined;
  dht.stats.knownDirFops++;
  const { child: first } = await hashed(dht, path, frame);
  const res = await fanout(dht.children, fop, args, frame, ONE_COPY_DIR_FOPS.has(fop) ? [first] : dht.all());
  const gone = res.find((r) => !r.ok && (r.error.code === 'ENOENT' || r.error.code === 'ENOTDIR'));
  if (gone) {
    dht.state.forgetLayout(path, inode);
    return undefined;
  }
  const failed = firstFailure(res);
  if (failed) throw failed;
  return (res.find((r) => r.child === first) as { value: FopReply<F> }).value;
}
