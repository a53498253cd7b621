import { FsError } from '../../../../lib/errors.js';
import { fanout, successes } from '../../../../lib/fanout.js';
import { isDir, type FopArgs, type FopName, type FopReply, type Iatt } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import type { Inode } from '../../../../lib/inode.js';
import type { Distribute } from './index.js';
import { hashed, layoutOf } from './layout.js';

/** Where a non-directory lives: the child with the data, and the hashed child when it differs. */
export interface Location {
  cached: number;
  hashed: number;
  iatt: Iatt;
  /** True when the hashed child holds a link file pointing at the cached one. */
  viaLink: boolean;
  /** The file's content, when the lookup asked for it and the child holding the data answered it. */
  data?: Buffer;
}

/** What locate finds: a file's location, or a directory (on every child). */
export type Located = Location | { dir: Iatt; hashed: number };

/** Times a fop follows a file that moved (rebalance) before giving up. */
export const MOVED_RETRIES = 3;

/** The error a child gives when the file it was asked about moved away (rebalance). */
export function isMoved(e: unknown): boolean {
  const code = FsError.from(e).code;
  return code === 'ESTALE' || code === 'ENOENT';
}

/**
 * Finds where a name lives: hashed child, then its link file, then every child. wantData
 * (quick-read) goes to every lookup of the name; only the data of the child that holds the
 * file is kept (a link file never carries any). The file's inode (the caller's, else the
 * table's) learns where it is.
 */
export async function locate(dht: Distribute, path: string, frame: Frame, wantData?: number, inode?: Inode): Promise<Located> {
  if (path === '/') {
    await layoutOf(dht, '/', frame);
    const r = successes(await fanout(dht.children, 'lookup', { path: '/' }, frame));
    if (!r.length) throw FsError.of('ENOTCONN', 'no subvolume is up');
    return { dir: r[0]!.value.iatt, hashed: r[0]!.child };
  }
  // Every lookup refreshes the known location, so it is never older than the kernel's own
  // entry cache that decides when the next lookup comes.
  dht.state.forgetCached(path, inode);
  const loc = await locateName(dht, path, frame, wantData);
  if (!('dir' in loc)) dht.state.setCached(path, inode, loc.cached, loc.iatt.gfid);
  return loc;
}

async function locateName(dht: Distribute, path: string, frame: Frame, wantData?: number): Promise<Located> {
  // A file a rebalance moves while this looks can miss everywhere once: its new copy appears
  // on a child just after that child answered, its old one goes from another just before
  // that one is asked. The move is done by the time the first look ends, so a second finds it.
  return await locatePass(dht, path, frame, wantData) ?? await locatePass(dht, path, frame, wantData) ?? Promise.reject(FsError.of('ENOENT'));
}

/** One look for a name; undefined when every child said it has no such name (lookup-optimize's miss is thrown at once). */
async function locatePass(dht: Distribute, path: string, frame: Frame, wantData?: number): Promise<Located | undefined> {
  const { child: hashedChild, settled } = await hashed(dht, path, frame);
  const args: FopArgs<'lookup'> = wantData === undefined ? { path } : { path, wantData };
  const withData = (l: Location, data: Buffer | undefined): Location => (data ? { ...l, data } : l);
  let first: FsError | undefined;
  try {
    const r = await dht.children[hashedChild]!.call('lookup', args, frame);
    if (isDir(r.iatt)) return { dir: r.iatt, hashed: hashedChild };
    if (!r.linkto) return withData({ cached: hashedChild, hashed: hashedChild, iatt: r.iatt, viaLink: false }, r.data);
    const target = dht.childNamed(r.linkto);
    if (target !== undefined) {
      try {
        const t = await dht.children[target]!.call('lookup', args, frame);
        if (!t.linkto) return withData({ cached: target, hashed: hashedChild, iatt: t.iatt, viaLink: true }, t.data);
      } catch (e) {
        if (FsError.from(e).code !== 'ENOENT') throw e;
      }
    }
    dht.logger.warn(`stale link file ${path} on ${dht.children[hashedChild]!.name} -> ${r.linkto}`);
  } catch (e) {
    first = FsError.from(e);
    if (first.code !== 'ENOENT' && first.code !== 'ENOTCONN') throw first;
    // lookup-optimize: every name has its data or a link file on its hashed child.
    if (first.code === 'ENOENT' && settled && dht.lookupOptimize) throw first;
  }
  const others = dht.all().filter((i) => i !== hashedChild);
  const res = await fanout(dht.children, 'lookup', args, frame, others);
  for (const r of successes(res)) {
    if (isDir(r.value.iatt)) return { dir: r.value.iatt, hashed: hashedChild };
    if (!r.value.linkto) return withData({ cached: r.child, hashed: hashedChild, iatt: r.value.iatt, viaLink: false }, r.value.data);
  }
  if (first?.code === 'ENOTCONN') throw first;
  const down = res.find((r) => !r.ok && r.error.code !== 'ENOENT');
  if (down && !down.ok) throw down.error;
  return undefined;
}

/** locate, for a name that must not be a directory. */
export async function locateFile(dht: Distribute, path: string, frame: Frame, inode?: Inode): Promise<Location> {
  const loc = await locate(dht, path, frame, undefined, inode);
  if ('dir' in loc) throw FsError.of('EISDIR');
  return loc;
}

/** locateFile, or undefined when the name is free. */
export async function locateFileIfAny(dht: Distribute, path: string, frame: Frame): Promise<Location | undefined> {
  try {
    return await locateFile(dht, path, frame);
  } catch (e) {
    if (FsError.from(e).code !== 'ENOENT') throw e;
    return undefined;
  }
}

/**
 * Tries the child the file's inode says holds it; ENOENT or ESTALE there (moved, or now a
 * link file, which the brick refuses to treat as data) falls back to a full locate.
 */
export async function onCached<F extends FopName>(
  dht: Distribute, path: string, inode: Inode | undefined, fop: F, args: FopArgs<F>, frame: Frame,
): Promise<FopReply<F> | undefined> {
  const child = dht.state.cached(path, inode);
  if (child === undefined) return undefined;
  try {
    return await dht.children[child]!.call(fop, args, frame);
  } catch (e) {
    const code = FsError.from(e).code;
    if (code !== 'ENOENT' && code !== 'ESTALE' && code !== 'EISDIR') throw e;
    dht.state.forgetCached(path, inode);
    return undefined;
  }
}

/**
 * Locates a name and runs fn on what was found; when fn meets ENOENT or ESTALE (the file
 * moved between the look and the fop: a rebalance committed in between), looks again.
 * A miss of the locate itself is final.
 */
export async function followingMoves<T>(dht: Distribute, path: string, inode: Inode | undefined, frame: Frame, fn: (loc: Located) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const loc = await locate(dht, path, frame, undefined, inode);
    try {
      return await fn(loc);
    } catch (e) {
      if (attempt >= MOVED_RETRIES || !isMoved(e)) throw e;
      dht.logger.info(`${path} moved during ${fn.name || 'a fop'}; looking it up again`);
    }
  }
}

/** The same for fops on files only. */
export function followingFileMoves<T>(dht: Distribute, path: string, inode: Inode | undefined, frame: Frame, fn: (loc: Location) => Promise<T>): Promise<T> {
  return followingMoves(dht, path, inode, frame, (loc) => {
    if ('dir' in loc) throw FsError.of('EISDIR');
    return fn(loc);
  });
}
