import { gfidFor } from '../../../../lib/gfid.js';
import { ROOT_FRAME, type Frame } from '../../../../lib/frame.js';
import { constants as fsConstants } from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, successes, type Settled } from '../../../../lib/fanout.js';
import {
  isDir, LINKFILE_MODE, reopenFlags, XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO,
  type DirEntry, type FopArgs, type FopName, type FopReply, type Iatt, type StatFs, type Xattrs,
} from '../../../../lib/fops.js';
import { nameHash } from '../../../../lib/hash.js';
import { CtxKey, type Fd } from '../../../../lib/inode.js';
import { computeLayout, decodeRange, encodeRange, findRange, sameRange, type HashRange } from '../../../../lib/layout.js';
import { registerXlator } from '../../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorInit } from '../../../../lib/xlator.js';
import { BoundedMap } from '../../../../lib/bounded-map.js';

const { O_EXCL } = fsConstants;

/** Where a non-directory lives: the child with the data, and the hashed child when it differs. */
interface Location {
  cached: number;
  hashed: number;
  iatt: Iatt;
  /** True when the hashed child holds a link file pointing at the cached one. */
  viaLink: boolean;
  /** The file's content, when the lookup asked for it and the child holding the data answered it. */
  data?: Buffer;
}

/** What locate finds: a file's location, or a directory (on every child). */
type Located = Location | { dir: Iatt; hashed: number };

/** A directory's layout as this client uses it. */
interface DirLayout {
  ranges: HashRange[];
  /** Every entry sits on (or has a link file on) its hashed child: a miss there is final. */
  settled: boolean;
}

/**
 * Distribute's state on an open fd (its slot of the fd's ctx): the child it is open on. The
 * child gets the same Fd and keeps its own state for it in its own slot; the path and flags
 * to reopen it with where the data moved are the fd's (its path follows renames).
 */
interface DhtFd {
  child: number;
  /** Bumped by each reopen on another child: a fop sent before it knows its answer is stale. */
  generation: number;
  /** A reopen after the file moved, shared by the fops that found it moved. */
  reopening?: Promise<boolean>;
}

/** Fops on a directory that read it: its hashed copy answers (the others change every copy). */
const ONE_COPY_DIR_FOPS: ReadonlySet<FopName> = new Set(['getxattr', 'listxattr', 'readlink', 'access']);

/** Times a fop follows a file that moved (rebalance) before giving up. */
const MOVED_RETRIES = 3;

/** The error a child gives when the file it was asked about moved away (rebalance). */
function isMoved(e: unknown): boolean {
  const code = FsError.from(e).code;
  return code === 'ESTALE' || code === 'ENOENT';
}

function parentOf(path: string): string {
  return pathMod.dirname(path);
}

function baseOf(path: string): string {
  return pathMod.basename(path);
}

/**
 * cluster/distribute (elastic hash). A file lives on the child whose hash range, in the
 * layout of its parent directory, holds xxhash32 of its name. Directories exist on every
 * child; each copy carries that child's range. A name living elsewhere (after a rename) is
 * found through a link file on its hashed child; a miss on the hashed child asks every child.
 */
export class Distribute extends Xlator implements FopImpl {
  static override readonly description = 'Spreads files over subvolumes by elastic hash';
  static override readonly options = {
    'layout-cache-entries': { type: 'int', default: 16384, min: 16, max: 1 << 22, description: 'Directory layouts kept in memory' },
    'lookup-optimize': {
      type: 'bool', default: true, description: 'Trust a miss on the hashed subvolume when the directory layout is settled (no ask-everyone)',
      volume: { key: 'cluster.lookup-optimize', description: 'Trust a miss on the hashed brick when the directory layout is settled (on/off)' },
    },
    'layout-epoch': { type: 'int', default: 0, min: 0, max: 0xffffffff, description: 'Generation of the brick set; layouts written by an older one are rewritten, a newer one is never overwritten' },
    'layout-weights': { type: 'string', default: '', description: 'Share of new names per subvolume, comma separated (default: equal)' },
    'decommissioned-bricks': { type: 'string', default: '', description: 'Subvolumes being drained by remove-brick, comma separated: they get no hash range' },
  } as const;

  private readonly layouts: BoundedMap<string, DirLayout>;
  /** Child holding each recently seen file (GlusterFS keeps it in the inode); checked on use. */
  private readonly where: BoundedMap<string, number>;
  /**
   * Gfids of files this client made (the brick said it created them), by path: a rename to a
   * name that hashes elsewhere makes the link file with it, without asking the brick first.
   * Dropped when the path changes here or a brick says another client changed it; a stale
   * one would only label a link file (nothing reads a link file's gfid).
   */
  private readonly gfids: BoundedMap<string, Buffer>;
  /** This instance's slot on each open fd. */
  private readonly fdKey = new CtxKey<DhtFd>(this.name);
  /** Fds open through this translator (released ones not counted), for the statedump. */
  private openFds = 0;
  private readonly childIndex = new Map<string, number>();
  /** Layouts this graph has written (fix-layout counts its work with it). */
  private layoutWrites = 0;
  /** Fops on a directory sent to its copies without a lookup first (onKnownDir). */
  private knownDirFops = 0;
  /** Each subvolume's share of new names: the layout weights, 0 for a decommissioned one. */
  private weights: number[] = [];

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length === 0) throw new Error('cluster/distribute needs at least one subvolume');
    init.children.forEach((c, i) => this.childIndex.set(c.name, i));
    this.weights = this.parseWeights();
    this.layouts = new BoundedMap(this.optNumber('layout-cache-entries'));
    this.where = new BoundedMap(4 * this.optNumber('layout-cache-entries'));
    this.gfids = new BoundedMap(4 * this.optNumber('layout-cache-entries'));
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    this.weights = this.parseWeights();
    this.layouts.clear();
  }

  private parseWeights(): number[] {
    const list = (key: string): string[] => this.optString(key).split(',').map((w) => w.trim()).filter(Boolean);
    const raw = list('layout-weights');
    if (raw.length && raw.length !== this.n) throw new Error(`layout-weights has ${raw.length} values for ${this.n} subvolumes`);
    const weights = raw.length ? raw.map((w) => {
      if (!/^\d+$/.test(w)) throw new Error(`layout-weights: "${w}" is not a non-negative integer`);
      return Number(w);
    }) : new Array<number>(this.n).fill(1);
    for (const name of list('decommissioned-bricks')) {
      const i = this.childIndex.get(name);
      if (i === undefined) throw new Error(`decommissioned-bricks: "${name}" is not a subvolume of ${this.name}`);
      weights[i] = 0;
    }
    if (!weights.some((w) => w > 0)) throw new Error('every subvolume is decommissioned or has weight 0: nothing can take new files');
    return weights;
  }

  private get epoch(): number {
    return this.optNumber('layout-epoch');
  }

  /** The layout this graph wants for a directory. */
  private target(dir: string): HashRange[] {
    return computeLayout(this.weights, dir);
  }

  override statedump(): Record<string, unknown> {
    return {
      children: this.children.map((c) => c.name), weights: this.weights, epoch: this.epoch,
      cachedLayouts: this.layouts.size, openFds: this.openFds, knownDirFops: this.knownDirFops,
    };
  }

  private get n(): number {
    return this.children.length;
  }

  private all(): number[] {
    return this.children.map((_, i) => i);
  }

  // ---- layouts -------------------------------------------------------------------------

  /**
   * The layout of a directory, healing missing directory copies and ranges on the way.
   * Every copy must carry this graph's target range at this graph's epoch; anything else
   * (a directory made before add-brick, a damaged range) is rewritten, unsettled, because
   * its entries may sit where the old layout put them. A copy written at a newer epoch
   * means this graph is older than the brick set: use the target without writing it.
   * The lookups are the caller's. A rewrite is the translator's own repair, not the caller's
   * (who may not own the directory): it runs as `healer`, root unless fix-layout passes the
   * rebalance service's frame.
   */
  private async layoutOf(dir: string, frame: Frame, healer: Frame = ROOT_FRAME): Promise<DirLayout> {
    const cached = this.layouts.get(dir);
    if (cached) return cached;
    const res = await fanout(this.children, 'lookup', { path: dir, xattrs: [XATTR_LAYOUT, XATTR_GFID] }, frame);
    const found = successes(res);
    if (found.length === 0) throw this.bestError(res);
    const model = found[0]!.value;
    if (!isDir(model.iatt)) throw FsError.of('ENOTDIR', `${dir} is not a directory`);
    const target = this.target(dir);
    let settled = true;
    let anyRange = false;
    let current = true;
    let newer = false;
    for (const f of found) {
      const d = decodeRange(f.value.xattrs?.[XATTR_LAYOUT]);
      anyRange ||= d !== undefined;
      newer ||= d !== undefined && d.epoch > this.epoch;
      current &&= d !== undefined && d.epoch === this.epoch && sameRange(d.range, target[f.child]!);
      settled &&= d?.settled === true;
    }
    const missing = res.filter((r) => !r.ok && r.error.code === 'ENOENT').map((r) => r.child);
    const down = res.filter((r) => !r.ok && r.error.code !== 'ENOENT');
    if (newer) {
      this.log.warn(`layout of ${dir} was written for a newer brick set than this graph's (epoch ${this.epoch}); waiting for the new volfile`);
      return { ranges: target, settled: false };
    }
    if (current && missing.length === 0) {
      const full = { ranges: target, settled: settled && down.length === 0 };
      if (down.length === 0) this.layouts.set(dir, full);
      return full;
    }
    // Cannot heal with a child away; serve the target without caching it.
    if (down.length > 0) return { ranges: target, settled: false };
    return this.healDirectory(dir, model.iatt, model.xattrs?.[XATTR_GFID], missing, !anyRange, healer);
  }

  /** Creates missing copies of a directory and writes this graph's layout on every copy (DHT dir self-heal, fix-layout). */
  private async healDirectory(dir: string, iatt: Iatt, gfid: Buffer | undefined, missing: number[], settled: boolean, frame: Frame): Promise<DirLayout> {
    this.layoutWrites++;
    this.log.info(`writing layout of ${dir} (epoch ${this.epoch}; missing on ${missing.map((i) => this.children[i]!.name).join(' ') || 'none'})`);
    const layout = this.target(dir);
    const range = (i: number): Buffer => encodeRange(layout[i]!, this.n, settled, this.epoch);
    const mk = await fanout(this.children, 'mkdir', (i) => ({
      path: dir, mode: iatt.mode & 0o7777,
      xattrs: { [XATTR_LAYOUT]: range(i), ...(gfid ? { [XATTR_GFID]: gfid } : {}) },
    }), frame, missing);
    const failed = firstFailure(mk, ['EEXIST']);
    if (failed) throw failed;
    const present = this.all().filter((i) => !missing.includes(i));
    const set = await fanout(this.children, 'setxattr', (i) => ({ path: dir, name: XATTR_LAYOUT, value: range(i), flags: 0 }), frame, present);
    const setFailed = firstFailure(set);
    if (setFailed) throw setFailed;
    if (missing.length) {
      await fanout(this.children, 'setattr', { path: dir, attrs: { uid: iatt.uid, gid: iatt.gid } }, frame, missing);
    }
    const healed = { ranges: layout, settled };
    this.layouts.set(dir, healed);
    return healed;
  }

  // ---- what the rebalancer (client/rebalance) uses ---------------------------------------

  /**
   * fix-layout of one directory: makes every copy carry this graph's range (creating
   * missing copies). True when something was rewritten. The directory stays unsettled
   * until its files have been moved (settleLayout).
   */
  async fixLayout(dir: string, frame: Frame): Promise<boolean> {
    this.layouts.delete(dir);
    const before = this.layoutWrites;
    await this.layoutOf(dir, frame, frame);
    return this.layoutWrites !== before;
  }

  /** Marks a directory's layout settled on every copy: each entry now sits on its hashed child. */
  async settleLayout(dir: string, frame: Frame): Promise<void> {
    const layout = await this.layoutOf(dir, frame, frame);
    const res = await fanout(this.children, 'setxattr', (i) => ({
      path: dir, name: XATTR_LAYOUT, value: encodeRange(layout.ranges[i]!, this.n, true, this.epoch), flags: 0,
    }), frame);
    const failed = firstFailure(res);
    if (failed) throw failed;
    this.layouts.set(dir, { ranges: layout.ranges, settled: true });
  }

  /** Makes (or repoints) the link file at path on child `at`, pointing to child `to`, with the file's gfid. */
  async pointLinkfile(path: string, at: number, to: number, frame: Frame): Promise<void> {
    const gfid = await this.children[to]!.call('getxattr', { path, name: XATTR_GFID }, frame).then((r) => r.value, () => undefined);
    await this.makeLinkfile(at, path, to, frame, gfid);
  }

  /** The child a link file's target names, if it is one of ours. */
  childNamed(name: string): number | undefined {
    return this.childIndex.get(name);
  }

  /** Forgets cached layouts and locations of a directory and everything under it. */
  private forgetTree(dir: string): void {
    const prefix = dir === '/' ? '/' : dir + '/';
    for (const k of [...this.layouts.keys()]) if (k === dir || k.startsWith(prefix)) this.layouts.delete(k);
    for (const k of [...this.where.keys()]) if (k.startsWith(prefix)) this.where.delete(k);
    for (const k of [...this.gfids.keys()]) if (k.startsWith(prefix)) this.gfids.delete(k);
  }

  /** Another client changed these paths: a gfid remembered for one may no longer be its file's. */
  override invalidate(paths: readonly string[], from: Xlator): void {
    for (const p of paths) this.gfids.delete(p);
    super.invalidate(paths, from);
  }

  private async hashed(path: string, frame: Frame): Promise<{ child: number; settled: boolean }> {
    const layout = await this.layoutOf(parentOf(path), frame);
    const i = findRange(layout.ranges, nameHash(baseOf(path)));
    if (i < 0) throw FsError.of('EIO', `no subvolume holds the hash of ${path}`);
    return { child: i, settled: layout.settled };
  }

  /** The child a name hashes to under this graph's layout of its directory (the rebalancer uses it too). */
  async hashedChild(path: string, frame: Frame): Promise<number> {
    return (await this.hashed(path, frame)).child;
  }

  private bestError<T>(res: Array<Settled<T>>): FsError {
    // ENOENT only when every child said so; a child that is down makes the answer ENOTCONN.
    const errs = res.filter((r): r is Extract<Settled<T>, { ok: false }> => !r.ok).map((r) => r.error);
    return errs.find((e) => e.code !== 'ENOENT') ?? errs[0] ?? FsError.of('EIO');
  }

  // ---- locating names -----------------------------------------------------------------

  /**
   * Finds where a name lives: hashed child, then its link file, then every child. wantData
   * (quick-read) goes to every lookup of the name; only the data of the child that holds the
   * file is kept (a link file never carries any).
   */
  private async locate(path: string, frame: Frame, wantData?: number): Promise<Located> {
    if (path === '/') {
      await this.layoutOf('/', frame);
      const r = successes(await fanout(this.children, 'lookup', { path: '/' }, frame));
      if (!r.length) throw FsError.of('ENOTCONN', 'no subvolume is up');
      return { dir: r[0]!.value.iatt, hashed: r[0]!.child };
    }
    // Every lookup refreshes the remembered location, so it is never older than the
    // kernel's own entry cache that decides when the next lookup comes.
    this.where.delete(path);
    const loc = await this.locateName(path, frame, wantData);
    if (!('dir' in loc)) this.where.set(path, loc.cached);
    return loc;
  }

  private async locateName(path: string, frame: Frame, wantData?: number): Promise<Located> {
    const { child: hashed, settled } = await this.hashed(path, frame);
    const args: FopArgs<'lookup'> = wantData === undefined ? { path } : { path, wantData };
    const withData = (l: Location, data: Buffer | undefined): Location => (data ? { ...l, data } : l);
    let first: FsError | undefined;
    try {
      const r = await this.children[hashed]!.call('lookup', args, frame);
      if (isDir(r.iatt)) return { dir: r.iatt, hashed };
      if (!r.linkto) return withData({ cached: hashed, hashed, iatt: r.iatt, viaLink: false }, r.data);
      const target = this.childIndex.get(r.linkto);
      if (target !== undefined) {
        try {
          const t = await this.children[target]!.call('lookup', args, frame);
          if (!t.linkto) return withData({ cached: target, hashed, iatt: t.iatt, viaLink: true }, t.data);
        } catch (e) {
          if (FsError.from(e).code !== 'ENOENT') throw e;
        }
      }
      this.log.warn(`stale link file ${path} on ${this.children[hashed]!.name} -> ${r.linkto}`);
    } catch (e) {
      first = FsError.from(e);
      if (first.code !== 'ENOENT' && first.code !== 'ENOTCONN') throw first;
      // lookup-optimize: every name has its data or a link file on its hashed child.
      if (first.code === 'ENOENT' && settled && this.optBool('lookup-optimize')) throw first;
    }
    const others = this.all().filter((i) => i !== hashed);
    const res = await fanout(this.children, 'lookup', args, frame, others);
    for (const r of successes(res)) {
      if (isDir(r.value.iatt)) return { dir: r.value.iatt, hashed };
      if (!r.value.linkto) return withData({ cached: r.child, hashed, iatt: r.value.iatt, viaLink: false }, r.value.data);
    }
    if (first?.code === 'ENOTCONN') throw first;
    const down = res.find((r) => !r.ok && r.error.code !== 'ENOENT');
    if (down && !down.ok) throw down.error;
    throw FsError.of('ENOENT');
  }

  private async locateFile(path: string, frame: Frame): Promise<Location> {
    const loc = await this.locate(path, frame);
    if ('dir' in loc) throw FsError.of('EISDIR');
    return loc;
  }

  /**
   * Tries the child that held a file last time; ENOENT or ESTALE there (moved, or now a
   * link file, which the brick refuses to treat as data) falls back to a full locate.
   */
  private async onRemembered<F extends FopName>(path: string, fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F> | undefined> {
    const child = this.where.get(path);
    if (child === undefined) return undefined;
    try {
      return await this.children[child]!.call(fop, args, frame);
    } catch (e) {
      const code = FsError.from(e).code;
      if (code !== 'ENOENT' && code !== 'ESTALE' && code !== 'EISDIR') throw e;
      this.where.delete(path);
      return undefined;
    }
  }

  /**
   * A fop on a directory this client has the layout of (made, listed or looked up here):
   * no lookup first (tar sets each directory's times, owner and mode by path, three fops).
   * Undefined when it is not there any more as a directory: the caller looks it up.
   */
  private async onKnownDir<F extends 'setattr' | 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr' | 'readlink' | 'access'>(
    path: string, fop: F, args: FopArgs<F>, frame: Frame,
  ): Promise<FopReply<F> | undefined> {
    if (path === '/' || !this.layouts.has(path)) return undefined;
    this.knownDirFops++;
    const hashed = await this.hashedChild(path, frame);
    const res = await fanout(this.children, fop, args, frame, ONE_COPY_DIR_FOPS.has(fop) ? [hashed] : this.all());
    const gone = res.find((r) => !r.ok && (r.error.code === 'ENOENT' || r.error.code === 'ENOTDIR'));
    if (gone) {
      this.layouts.delete(path);
      return undefined;
    }
    const failed = firstFailure(res);
    if (failed) throw failed;
    return (res.find((r) => r.child === hashed) as { value: FopReply<F> }).value;
  }

  /** Runs a fop on the child holding a path; on all children when the path is a directory. */
  private async onHolder<F extends 'setattr' | 'getxattr' | 'setxattr' | 'listxattr' | 'removexattr' | 'readlink' | 'access'>(
    fop: F, args: FopArgs<F>, frame: Frame,
  ): Promise<FopReply<F>> {
    const path = (args as { path: string }).path;
    const remembered = await this.onRemembered(path, fop, args, frame) ?? await this.onKnownDir(path, fop, args, frame);
    if (remembered) return remembered;
    return this.followingMoves(path, frame, async (loc) => {
      if (!('dir' in loc)) return this.children[loc.cached]!.call(fop, args, frame);
      if (ONE_COPY_DIR_FOPS.has(fop)) {
        return this.children[loc.hashed]!.call(fop, args, frame);
      }
      const res = await fanout(this.children, fop, args, frame);
      const failed = firstFailure(res);
      if (failed) throw failed;
      return (res[loc.hashed] as { value: FopReply<F> }).value;
    });
  }

  // ---- fops -----------------------------------------------------------------------------

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const loc = await this.locate(a.path, f, a.wantData);
    if ('dir' in loc) return { iatt: loc.dir };
    return loc.data ? { iatt: loc.iatt, data: loc.data } : { iatt: loc.iatt };
  }

  async access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    return this.onHolder('access', a, f);
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const layout = await this.layoutOf(a.path, f);
    const res = await fanout(this.children, 'readdir', a, f);
    const ok = successes(res);
    // A child that is down hides its files but does not fail the listing (as DHT does).
    const failed = firstFailure(res, ['ENOTCONN']);
    if (failed || ok.length === 0) throw failed ?? this.bestError(res);
    const byName = new Map<string, DirEntry>();
    for (const { value, child } of ok) {
      for (const e of value.entries) {
        if (e.linkto) continue;
        // A subdirectory has a copy on every child, each with its own times: list the
        // hashed copy's, the one lookup answers with, so a stat after the listing agrees.
        if (!byName.has(e.name) || (isDir(e.iatt) && findRange(layout.ranges, nameHash(e.name)) === child)) byName.set(e.name, e);
        // A listing sees where each file lives, as a lookup does (rm -rf unlinks right after).
        if (!isDir(e.iatt)) this.where.set(a.path === '/' ? `/${e.name}` : `${a.path}/${e.name}`, child);
      }
    }
    return { entries: [...byName.values()] };
  }

  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    const hashed = await this.hashedChild(a.path, f);
    const layout = this.target(a.path);
    const gfid = gfidFor(a.xattrs);
    const argsFor = (i: number): FopArgs<'mkdir'> => ({
      path: a.path, mode: a.mode, xattrs: { ...a.xattrs, [XATTR_GFID]: gfid, [XATTR_LAYOUT]: encodeRange(layout[i]!, this.n, true, this.epoch) },
    });
    // The hashed child decides (EEXIST there means the name is taken); then the rest.
    const first = await this.children[hashed]!.call('mkdir', argsFor(hashed), f);
    const rest = await fanout(this.children, 'mkdir', argsFor, f, this.all().filter((i) => i !== hashed));
    const failed = firstFailure(rest, ['EEXIST']);
    if (failed) this.log.warn(`mkdir ${a.path}: ${failed.message}; the directory will be healed on lookup`);
    else this.layouts.set(a.path, { ranges: layout, settled: true });
    return first;
  }

  /**
   * rmdir as DHT does it: every copy but the hashed one, then the hashed one, so the name
   * resolves until the end. Nothing is listed first: a copy holding only stale link files
   * answers ENOTEMPTY, is emptied of them and removed again. A copy holding anything else
   * fails the rmdir, and the copies already removed are made again (DHT's selfheal-restore):
   * a failed rmdir does not leave the directory gone from some bricks.
   */
  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    const hashed = await this.hashedChild(a.path, f);
    const others = await Promise.all(this.all().filter((i) => i !== hashed).map((i) => this.removeCopy(i, a.path, f)));
    const removed = others.filter((r) => r.removed).map((r) => r.child);
    const failed = others.find((r) => r.error);
    if (failed) throw await this.restoreAfterRmdir(a.path, removed, failed.error!);
    const last = await this.removeCopy(hashed, a.path, f);
    if (last.error) throw await this.restoreAfterRmdir(a.path, removed, last.error);
    if (!last.removed && removed.length === 0) throw FsError.of('ENOENT');
    this.forgetTree(a.path);
    return {};
  }

  /**
   * Removes one copy of a directory (and the stale link files that alone keep it); a copy
   * already gone is not an error. The rmdir is the caller's; clearing out link files is the
   * translator's own cleanup (root): the caller need not be able to list or own them.
   */
  private async removeCopy(child: number, dir: string, frame: Frame): Promise<{ child: number; removed: boolean; error?: FsError }> {
    const c = this.children[child]!;
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
   * Makes again, from the hashed copy, the copies a failed rmdir removed, and gives back its
   * error. A directory self-heal (root): the copies are restored as they were, owner too.
   */
  private async restoreAfterRmdir(dir: string, removed: number[], error: FsError): Promise<FsError> {
    if (removed.length === 0) return error;
    try {
      const model = await this.children[await this.hashedChild(dir, ROOT_FRAME)]!.call('lookup', { path: dir, xattrs: [XATTR_LAYOUT, XATTR_GFID] }, ROOT_FRAME);
      // The copies removed were empty: the entries all still sit where the layout says.
      const settled = decodeRange(model.xattrs?.[XATTR_LAYOUT])?.settled === true;
      await this.healDirectory(dir, model.iatt, model.xattrs?.[XATTR_GFID], removed, settled, ROOT_FRAME);
    } catch (e) {
      this.layouts.delete(dir);
      this.log.warn(`rmdir ${dir} failed (${error.code}) after removing it from ${removed.map((i) => this.children[i]!.name).join(' ')}; making it there again failed (${FsError.from(e).message}), a lookup will heal it`);
    }
    return error;
  }

  /** Takes a successful open or create of fd on child into the fd's slot. */
  private opened(fd: Fd, child: number): void {
    fd.ctx.set(this.fdKey, { child, generation: 0 });
    this.openFds++;
  }

  private fdOf(fd: Fd): DhtFd {
    const f = fd.ctx.get(this.fdKey);
    if (!f) throw FsError.of('EBADF', `${this.name}: fd on ${fd.path} is not open`);
    return f;
  }

  /**
   * Runs an fd fop on the child holding the file. ESTALE means the file moved to another
   * child (rebalance committed a migration): reopen it where it lives now and run it there.
   * ENOENT too, when the name is found on another child now (replicate's changelog marks
   * go by name, and meet the name gone from the old child). A fop that was on its way to
   * the old child while another one reopened the fd (the old child answers EBADF once its
   * slot is released) runs again where the fd is open now.
   */
  private async onFd<F extends 'read' | 'write' | 'writev' | 'fstat' | 'ftruncate' | 'fsync'>(fop: F, a: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const f = this.fdOf(a.fd);
    for (let attempt = 0; ; attempt++) {
      const { child, generation } = f;
      try {
        return await this.children[child]!.call(fop, a, frame);
      } catch (e) {
        if (attempt >= MOVED_RETRIES) throw e;
        if (f.generation !== generation && (isMoved(e) || FsError.from(e).code === 'EBADF')) continue;
        if (!isMoved(e) || !(await this.reopen(a.fd, f, generation))) throw e;
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
  private reopen(fd: Fd, f: DhtFd, generation: number): Promise<boolean> {
    if (f.generation !== generation) return Promise.resolve(true);
    f.reopening ??= (async () => {
      const from = f.child;
      const path = fd.path;
      try {
        const loc = await this.locateFile(path, ROOT_FRAME);
        if (loc.cached === from) return false;
        await this.children[loc.cached]!.call('open', { path, flags: reopenFlags(fd.flags), fd }, ROOT_FRAME);
        this.log.info(`${path} moved from ${this.children[from]!.name} to ${this.children[loc.cached]!.name}: fd reopened there`);
        f.child = loc.cached;
        f.generation++;
        await this.children[from]!.call('release', { fd }, ROOT_FRAME).catch(() => undefined);
        return true;
      } catch (e) {
        this.log.warn(`${path}: could not follow the file after a move: ${(e as Error).message}`);
        return false;
      } finally {
        f.reopening = undefined;
      }
    })();
    return f.reopening;
  }

  /**
   * Locates a name and runs fn on what was found; when fn meets ENOENT or ESTALE (the file
   * moved between the look and the fop: a rebalance committed in between), looks again.
   * A miss of the locate itself is final.
   */
  private async followingMoves<T>(path: string, frame: Frame, fn: (loc: Located) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const loc = await this.locate(path, frame);
      try {
        return await fn(loc);
      } catch (e) {
        if (attempt >= MOVED_RETRIES || !isMoved(e)) throw e;
        this.log.info(`${path} moved during ${fn.name || 'a fop'}; looking it up again`);
      }
    }
  }

  /** The same for fops on files only. */
  private followingFileMoves<T>(path: string, frame: Frame, fn: (loc: Location) => Promise<T>): Promise<T> {
    return this.followingMoves(path, frame, (loc) => {
      if ('dir' in loc) throw FsError.of('EISDIR');
      return fn(loc);
    });
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const hashed = await this.hashedChild(a.path, f);
    let r: FopReply<'create'>;
    const gfid = gfidFor(a.xattrs);
    try {
      r = await this.children[hashed]!.call('create', { ...a, xattrs: { ...a.xattrs, [XATTR_GFID]: gfid } }, f);
    } catch (e) {
      // ESTALE: the hashed brick holds a link file, so the name exists on another brick (a
      // rename, a rebalance) that this client's kernel thought absent. Without O_EXCL that
      // is an open of the existing file, wherever it lives.
      if (!(e instanceof FsError && e.code === 'ESTALE') || a.flags & O_EXCL) throw e;
      await this.open({ path: a.path, flags: a.flags, fd: a.fd }, f);
      return { iatt: (await this.onFd('fstat', { fd: a.fd }, f)).iatt };
    }
    this.opened(a.fd, hashed);
    this.where.set(a.path, hashed);
    if (r.created) this.gfids.set(a.path, gfid);
    else this.gfids.delete(a.path);
    return { iatt: r.iatt };
  }

  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    const hashed = await this.hashedChild(a.path, f);
    return this.children[hashed]!.call('mknod', { ...a, xattrs: { ...a.xattrs, [XATTR_GFID]: gfidFor(a.xattrs) } }, f);
  }

  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    const hashed = await this.hashedChild(a.path, f);
    return this.children[hashed]!.call('symlink', { ...a, xattrs: { ...a.xattrs, [XATTR_GFID]: gfidFor(a.xattrs) } }, f);
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const remembered = this.where.get(a.path);
    if (remembered !== undefined && await this.onRemembered<'open'>(a.path, 'open', a, f)) {
      this.opened(a.fd, remembered);
      return {};
    }
    return this.followingFileMoves(a.path, f, async (loc) => {
      await this.children[loc.cached]!.call('open', a, f);
      this.opened(a.fd, loc.cached);
      return {};
    });
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    return this.onFd('read', a, f);
  }

  /** A read by path, on the file's holder like open; a file that moved meanwhile is looked up again. */
  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    const r = await this.onRemembered<'readfile'>(a.path, 'readfile', a, f);
    if (r) return r;
    return this.followingFileMoves(a.path, f, (loc) => this.children[loc.cached]!.call('readfile', a, f));
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.onFd('write', a, f);
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.onFd('writev', a, f);
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    return this.onFd('fstat', a, f);
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.onFd('ftruncate', a, f);
  }

  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return this.onFd('fsync', a, f);
  }

  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    const fd = this.fdOf(a.fd);
    await fd.reopening;
    return this.children[fd.child]!.call('flush', a, f);
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const fd = a.fd.ctx.take(this.fdKey);
    if (!fd) throw FsError.of('EBADF', `${this.name}: fd on ${a.fd.path} is not open`);
    this.openFds--;
    await fd.reopening?.catch(() => undefined);
    return this.children[fd.child]!.call('release', a, f);
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    this.gfids.delete(a.path);
    // Where a lookup or listing just saw the file: unlink there at once, unless that is a
    // link file now (the brick checks); anything else missing there is looked up as before.
    const remembered = this.where.get(a.path);
    if (remembered !== undefined) {
      try {
        await this.children[remembered]!.call('unlink', { ...a, dataOnly: true }, f);
        this.where.delete(a.path);
        const { child: hashed } = await this.hashed(a.path, f);
        if (remembered !== hashed) await this.removeLinkfile(hashed, a.path, f);
        return {};
      } catch (e) {
        if (!isMoved(e)) throw e;
        this.where.delete(a.path);
      }
    }
    const loc = await this.followingFileMoves(a.path, f, async (l) => {
      await this.children[l.cached]!.call('unlink', a, f);
      return l;
    });
    this.where.delete(a.path);
    // Awaited: once unlink returns, no brick holds anything of the name (GlusterFS's too).
    if (loc.cached !== loc.hashed) await this.removeLinkfile(loc.hashed, a.path, f);
    return {};
  }

  /** Removes a link file, leaving any real file of that name alone (the brick checks). */
  private async removeLinkfile(child: number, path: string, frame: Frame): Promise<void> {
    try {
      await this.children[child]!.call('unlink', { path, linkfileOnly: true }, frame);
    } catch (e) {
      if (FsError.from(e).code !== 'ENOENT') this.log.warn(`could not remove link file ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Makes (or repoints) the link file at path on child `at`, pointing to child `to`. Returns
   * the child a link file that was there pointed to (the data of the name it stood for).
   */
  private async makeLinkfile(at: number, path: string, to: number, frame: Frame, gfid?: Buffer): Promise<number | undefined> {
    const linkto = Buffer.from(this.children[to]!.name);
    const xattrs: Xattrs = { [XATTR_LINKTO]: linkto, ...(gfid ? { [XATTR_GFID]: gfid } : {}) };
    try {
      await this.children[at]!.call('mknod', { path, mode: LINKFILE_MODE, rdev: 0, xattrs }, frame);
    } catch (e) {
      if (FsError.from(e).code !== 'EEXIST') throw e;
      const cur = await this.children[at]!.call('lookup', { path }, frame);
      if (!cur.linkto) {
        // A real file of that name on the hashed child is the replaced rename target.
        await this.children[at]!.call('unlink', { path }, frame);
        await this.children[at]!.call('mknod', { path, mode: LINKFILE_MODE, rdev: 0, xattrs }, frame);
      } else {
        // The link file stood for the name's old file: it now stands for this one, gfid too.
        await Promise.all([
          this.children[at]!.call('setxattr', { path, name: XATTR_LINKTO, value: linkto, flags: 0 }, frame),
          gfid ? this.children[at]!.call('setxattr', { path, name: XATTR_GFID, value: gfid, flags: 0 }, frame) : undefined,
        ]);
        return this.childIndex.get(cur.linkto);
      }
    }
    return undefined;
  }

  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    this.where.delete(a.to);
    this.gfids.delete(a.to);
    if (!(await this.renameRemembered(a, f))) await this.followingMoves(a.from, f, (src) => this.renameLocated(a, src, f));
    return {};
  }

  /**
   * A rename of a file whose place the lookup before it found (the kernel looks the name up
   * first): no second lookup of it. False when it is not remembered, or is not there any
   * more (a rebalance moved it, leaving a link file, which the brick refuses to rename as
   * data): the caller locates it and renames.
   */
  private async renameRemembered(a: FopArgs<'rename'>, frame: Frame): Promise<boolean> {
    const cached = this.where.get(a.from);
    if (cached === undefined) return false;
    const hashed = await this.hashedChild(a.from, frame);
    try {
      await this.renameLocated(a, { cached, hashed }, frame);
      return true;
    } catch (e) {
      if (!isMoved(e)) throw e;
      return false;
    }
  }

  private async renameLocated(a: FopArgs<'rename'>, src: Located | Pick<Location, 'cached' | 'hashed'>, frame: Frame): Promise<void> {
    this.where.delete(a.from);
    if ('dir' in src) {
      const res = await fanout(this.children, 'rename', a, frame);
      this.forgetTree(a.from);
      this.forgetTree(a.to);
      const failed = firstFailure(res);
      if (failed) throw failed;
      return;
    }
    const { child: toHashed, settled } = await this.hashed(a.to, frame);
    const s = src.cached;
    // With the layout settled and lookup-optimize on, a name that exists has its data or a
    // link file on its hashed child: what this rename replaces shows there (the link file
    // made below finds it, the brick's rename says what it replaced) and needs no lookup.
    const targetShows = settled && this.optBool('lookup-optimize');
    // The new name's link file carries the source's gfid: known here for a file this client
    // made, else asked of s.
    const knownGfid = this.gfids.get(a.from);
    // Where the destination is, and (when the new name hashes elsewhere) the source's gfid
    // for its link file: asked at once, one round trip instead of two. The lookup also makes
    // sure the file is still data on s: one that left since it was located (a link file or
    // nothing there now) gets no link file pointing at s. (Without it, a file that left
    // fails the rename below instead, and the retry repoints the link file.)
    const [dst, here] = await Promise.all([
      targetShows ? undefined : this.locateFileIfAny(a.to, frame),
      toHashed !== s && !knownGfid ? this.children[s]!.call('lookup', { path: a.from, xattrs: [XATTR_GFID] }, frame) : undefined,
    ]);
    // Order keeps the file reachable at every step: link file first, then the data rename,
    // then the cleanup of what the old names left behind.
    const replaced = new Set<number>();
    if (dst) replaced.add(dst.cached);
    if (toHashed !== s) {
      if (here?.linkto) throw FsError.of('ESTALE', `${a.from} moved away from ${this.children[s]!.name}`);
      const pointed = await this.makeLinkfile(toHashed, a.to, s, frame, knownGfid ?? here?.xattrs?.[XATTR_GFID]);
      if (pointed !== undefined) replaced.add(pointed);
    }
    const r = await this.children[s]!.call('rename', { ...a, dataOnly: true }, frame);
    const pointed = r.replacedLinkto === undefined ? undefined : this.childIndex.get(r.replacedLinkto);
    if (pointed !== undefined) replaced.add(pointed);
    // The replaced name's data where its link file pointed: the rename took the name.
    for (const c of replaced) {
      if (c !== s && c !== toHashed) await this.children[c]!.call('unlink', { path: a.to, dataOnly: true }, frame).catch(() => undefined);
    }
    if (src.hashed !== s) await this.removeLinkfile(src.hashed, a.from, frame);
    this.where.set(a.to, s);
    this.gfids.delete(a.from);
    if (knownGfid) this.gfids.set(a.to, knownGfid);
  }

  /** locateFile, or undefined when the name is free. */
  private async locateFileIfAny(path: string, frame: Frame): Promise<Location | undefined> {
    try {
      return await this.locateFile(path, frame);
    } catch (e) {
      if (FsError.from(e).code !== 'ENOENT') throw e;
      return undefined;
    }
  }

  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    const hashed = await this.hashedChild(a.path, f);
    return this.followingFileMoves(a.target, f, async (src) => {
      const r = await this.children[src.cached]!.call('link', a, f);
      if (hashed !== src.cached) await this.makeLinkfile(hashed, a.path, src.cached, f);
      return r;
    });
  }

  async readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return this.onHolder('readlink', a, f);
  }

  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    return this.onHolder('setattr', a, f);
  }

  async getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    return this.onHolder('getxattr', a, f);
  }

  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return this.onHolder('setxattr', a, f);
  }

  async listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return this.onHolder('listxattr', a, f);
  }

  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return this.onHolder('removexattr', a, f);
  }

  async statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    const ok = successes(await fanout(this.children, 'statfs', a, f));
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
}

registerXlator('cluster/distribute', Distribute);
