// The rebalance engine (GlusterFS's dht-rebalance.c): walks a volume through its
// cluster/distribute translator, rewrites each directory's layout for the current brick
// set (fix-layout), moves every file whose hashed subvolume changed, removes link files
// nobody needs, and marks each finished directory settled. docs/rebalance.md has the
// migration protocol; lib/mgmt/rebalance.ts the status it reports.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { FsError } from '../../lib/errors.js';
import {
  BRICK_PRIVATE_DIR, MIGRATE_STAGING_DIR, S_IFLNK, S_IFMT, S_IFREG, XATTR_GFID, isDir,
  type DirEntry, type FopReply, type Iatt,
} from '../../lib/fops.js';
import { fanout } from '../../lib/fanout.js';
import { nameHash } from '../../lib/hash.js';
import { INTERNAL_PID, serviceFrame } from '../../lib/frame.js';
import { Fd } from '../../lib/inode.js';
import { Logger } from '../../lib/log.js';
import type { RebalanceMode, RebalanceStatus, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import type { Xlator } from '../../lib/xlator.js';
import type { Distribute } from '../xlators/cluster/distribute/index.js';

const log = new Logger('rebalance');
const { O_RDONLY, O_RDWR, O_TRUNC } = fs.constants;
const STAGING = `/${BRICK_PRIVATE_DIR}/${MIGRATE_STAGING_DIR}`;
const COPY_CHUNK = 1 << 20;
/** A file changed while copied is copied again with writes held only up to this size (writers wait meanwhile). */
const FROZEN_COPY_MAX_BYTES = 32 << 20;
/** Unfrozen copies of a file that keeps changing before the move gives up for this run. */
const COPY_ATTEMPTS = 3;
const ZEROS = Buffer.alloc(COPY_CHUNK);

/** Who the rebalance process is to the bricks: the pool's own service, with root's rights. */
export const REBALANCE_FRAME = serviceFrame(INTERNAL_PID.rebalance);

/** How each throttle level spends its time: files moved at once, and rest per unit of work. */
const THROTTLE: Record<RebalanceThrottle, { parallel: number; restRatio: number; nice: number }> = {
  lazy: { parallel: 1, restRatio: 3, nice: 19 },
  normal: { parallel: 2, restRatio: 1, nice: 10 },
  aggressive: { parallel: 8, restRatio: 0, nice: 0 },
};

export interface RebalanceOptions {
  mode: RebalanceMode;
  throttle: RebalanceThrottle;
  /** Directories finished by an earlier, stopped run: their files are not looked at again. */
  done?: ReadonlySet<string>;
  /** Called after each finished directory (to extend the checkpoint). */
  onDirDone?: (dir: string) => void;
  resumed?: boolean;
  /**
   * This node's share of the work, by child index: the children whose files it moves, each
   * with its place among the hosts holding that child's bricks. Absent: every child, alone.
   */
  shares?: ReadonlyMap<number, { index: number; of: number }>;
  /** Names this node's staging copies (`TAG-gfid`), so it clears only its own leftovers. */
  node?: string;
  /** Whether finished directories are marked settled (false while other nodes move files too). Default true. */
  settle?: boolean;
  /**
   * Only mark every directory settled, moving nothing: the last step of a run of several
   * nodes, once every node has moved its files with no failure.
   */
  settleOnly?: boolean;
}

type Outcome = 'moved' | 'skipped' | 'failed' | 'stays';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Moves files to where the current layout hashes them; one run of `volume rebalance`. */
export class Rebalancer {
  readonly status: RebalanceStatus;
  private stopping = false;
  /** Lock owner of this run's freezes on the bricks (the brick prefixes the connection). */
  private readonly owner = `rebalance-${randomUUID()}`;
  private readonly started = Date.now();
  private readonly children: readonly Xlator[];
  /**
   * The children a remove-brick drains: when there are any, their files are this run's
   * whole work (counted, scanned, moved), as gluster's remove-brick migrates only off the
   * decommissioned bricks. Files on the other children stay where they are.
   */
  private readonly drained: ReadonlySet<number>;
  /** The children a drain keeps (none when nothing is drained). */
  private readonly kept: readonly number[];

  constructor(private readonly dht: Distribute, private readonly opts: RebalanceOptions) {
    this.children = dht.children;
    this.drained = new Set(dht.decommissioned);
    this.kept = this.drained.size === 0 ? [] : this.children.map((_, i) => i).filter((i) => !this.drained.has(i));
    const now = new Date().toISOString();
    this.status = {
      mode: opts.mode, state: 'running', startedAt: now, updatedAt: now, elapsedS: 0,
      dirsScanned: 0, dirsFixed: 0, filesScanned: 0, filesMoved: 0, filesFailed: 0, filesSkipped: 0,
      bytesMoved: 0, filesTotal: null, rateFilesPerS: 0, rateBytesPerS: 0, etaS: null, resumed: opts.resumed === true,
    };
  }

  /** Asks the run to end after the files in hand; run() then resolves with state "stopped". */
  stop(): void {
    this.stopping = true;
  }

  /** The status with rates and ETA brought up to date. */
  snapshot(): RebalanceStatus {
    const s = this.status;
    s.elapsedS = Math.round((Date.now() - this.started) / 100) / 10;
    s.updatedAt = new Date().toISOString();
    const t = Math.max(s.elapsedS, 0.001);
    s.rateFilesPerS = Math.round((s.filesMoved / t) * 10) / 10;
    s.rateBytesPerS = Math.round(s.bytesMoved / t);
    const scanRate = s.filesScanned / t;
    s.etaS = s.state === 'running' && s.filesTotal !== null && scanRate > 0
      ? Math.max(0, Math.round((s.filesTotal - s.filesScanned) / scanRate))
      : s.state === 'completed' ? 0 : null;
    return { ...s };
  }

  async run(): Promise<RebalanceStatus> {
    const level = THROTTLE[this.opts.throttle];
    if (level.nice) {
      try {
        os.setPriority(level.nice);
      } catch { /* not allowed: run at normal priority */ }
    }
    try {
      if (!this.opts.settleOnly) await this.clearStaging();
      if (this.opts.mode === 'migrate' && !this.opts.settleOnly) this.status.filesTotal = await this.countFiles('/');
      const queue = ['/'];
      while (queue.length > 0 && !this.stopping) {
        const dir = queue.shift()!;
        queue.push(...await (this.opts.settleOnly ? this.settleDir(dir) : this.rebalanceDir(dir)));
      }
      this.status.state = this.stopping && queue.length > 0 ? 'stopped' : 'completed';
    } catch (e) {
      this.status.state = 'failed';
      this.status.error = (e as Error).message;
      log.error(`rebalance failed: ${(e as Error).message}`);
    }
    this.status.finishedAt = new Date().toISOString();
    return this.snapshot();
  }

  /** Every child's listing of a directory (a child without the directory lists nothing). */
  private async listDir(dir: string): Promise<DirEntry[][]> {
    const res = await fanout(this.children, 'readdir', { path: dir }, REBALANCE_FRAME);
    return res.map((r) => {
      if (r.ok) return r.value.entries;
      if (r.error.code === 'ENOENT') return [];
      throw new FsError(r.error.code, `listing ${dir} on ${this.children[r.child]!.name}: ${r.error.message}`);
    });
  }

  private subdirs(listings: DirEntry[][]): string[] {
    const names = new Set<string>();
    for (const entries of listings) for (const e of entries) if (isDir(e.iatt)) names.add(e.name);
    return [...names].sort();
  }

  /**
   * Whether this node deals with an entry listed on a child: every entry when it runs alone;
   * else those of its own children, an entry of a child on several hosts going to the host
   * its gfid hashes to (all names of a hard link to the same one).
   */
  private mine(child: number, e: DirEntry): boolean {
    const shares = this.opts.shares;
    if (!shares) return true;
    const share = shares.get(child);
    if (!share) return false;
    return share.of === 1 || nameHash(e.iatt.gfid ?? e.name) % share.of === share.index;
  }

  /** Whether a file listed on a child is this run's to scan: this node's, and on a drained child during a drain. */
  private toScan(child: number, e: DirEntry): boolean {
    return (this.drained.size === 0 || this.drained.has(child)) && this.mine(child, e);
  }

  /** The files this node will scan under dir (not link files), from a quick listing, for the ETA. */
  private async countFiles(dir: string): Promise<number> {
    const listings = await this.listDir(dir);
    let n = 0;
    listings.forEach((entries, child) => {
      for (const e of entries) if (!isDir(e.iatt) && !e.linkto && this.toScan(child, e)) n++;
    });
    for (const sub of this.subdirs(listings)) n += await this.countFiles(joinPath(dir, sub));
    return n;
  }

  /** Leftovers of a run of this node that died between copy and switch: copies nobody points to. */
  private async clearStaging(): Promise<void> {
    const res = await fanout(this.children, 'readdir', { path: STAGING }, REBALANCE_FRAME);
    const own = this.opts.node === undefined ? undefined : `${this.opts.node}-`;
    for (const r of res) {
      if (!r.ok) continue;
      for (const e of r.value.entries) {
        if (own !== undefined && !e.name.startsWith(own)) continue;
        await this.children[r.child]!.call('unlink', { path: `${STAGING}/${e.name}` }, REBALANCE_FRAME).catch(() => undefined);
      }
    }
  }

  /** Marks a directory's layout settled (unless a drain left a file off its hashed child); returns its subdirectories. */
  private async settleDir(dir: string): Promise<string[]> {
    const listings = await this.listDir(dir);
    if (!(await this.offHashed(dir, listings))) await this.dht.settleLayout(dir, REBALANCE_FRAME);
    this.status.dirsScanned++;
    return this.subdirs(listings).map((n) => joinPath(dir, n));
  }

  /**
   * Whether a file listed on a child a drain keeps sits off its hashed child with no link
   * file there pointing at it. A drain leaves the kept children's files where they are, and
   * the layout it wrote may hash some of them elsewhere: a settled layout would make
   * lookups miss them. Never, outside a drain (no child is kept).
   */
  private async offHashed(dir: string, listings: DirEntry[][]): Promise<boolean> {
    const links = new Map<number, Map<string, string | undefined>>();
    const linkOn = (c: number, name: string): string | undefined => {
      let m = links.get(c);
      if (!m) links.set(c, m = new Map(listings[c]!.map((x) => [x.name, x.linkto])));
      return m.get(name);
    };
    for (const child of this.kept) {
      for (const e of listings[child]!) {
        if (isDir(e.iatt) || e.linkto) continue;
        const hashed = await this.dht.hashedChild(joinPath(dir, e.name), REBALANCE_FRAME);
        if (hashed !== child && linkOn(hashed, e.name) !== this.children[child]!.name) return true;
      }
    }
    return false;
  }

  /** Fixes a directory's layout, moves its files, settles it; returns its subdirectories. */
  private async rebalanceDir(dir: string): Promise<string[]> {
    if (await this.dht.fixLayout(dir, REBALANCE_FRAME)) this.status.dirsFixed++;
    const listings = await this.listDir(dir);
    const subdirs = this.subdirs(listings).map((n) => joinPath(dir, n));
    this.status.dirsScanned++;
    if (this.opts.mode !== 'migrate' || this.opts.done?.has(dir)) return subdirs;
    const files: Array<{ child: number; entry: DirEntry }> = [];
    const links: Array<{ child: number; entry: DirEntry }> = [];
    listings.forEach((entries, child) => {
      for (const entry of entries) {
        if (isDir(entry.iatt)) continue;
        if (entry.linkto) {
          if (this.mine(child, entry)) links.push({ child, entry });
        } else if (this.toScan(child, entry)) files.push({ child, entry });
      }
    });
    let failed = 0;
    const level = THROTTLE[this.opts.throttle];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length && !this.stopping) {
        const { child, entry } = files[next++]!;
        const t0 = Date.now();
        const outcome = await this.placeFile(dir, child, entry);
        if (outcome === 'failed') failed++;
        if (level.restRatio > 0 && outcome === 'moved') await sleep(Math.max(1, (Date.now() - t0) * level.restRatio));
      }
    };
    await Promise.all(Array.from({ length: level.parallel }, worker));
    if (this.stopping && next < files.length) return subdirs;
    for (const { child, entry } of links) await this.checkLinkfile(dir, child, entry);
    if (failed === 0) {
      if (this.opts.settle !== false && !(await this.offHashed(dir, listings))) await this.dht.settleLayout(dir, REBALANCE_FRAME);
      this.opts.onDirDone?.(dir);
    }
    return subdirs;
  }

  /** One file as listed on one child: leave it, or move it to its hashed child. */
  private async placeFile(dir: string, child: number, e: DirEntry): Promise<Outcome> {
    const path = joinPath(dir, e.name);
    this.status.filesScanned++;
    let outcome: Outcome;
    try {
      const hashed = await this.dht.hashedChild(path, REBALANCE_FRAME);
      const type = e.iatt.mode & S_IFMT;
      if (hashed === child) outcome = 'stays';
      else if (type === S_IFREG && e.iatt.nlink > 1) outcome = await this.pointAt(path, hashed, child); // hard links stay together
      else if (type === S_IFREG) outcome = await this.moveFile(path, child, hashed);
      else if (type === S_IFLNK) outcome = await this.moveSymlink(path, child, hashed);
      else outcome = 'skipped';
    } catch (e2) {
      const err = FsError.from(e2);
      log.warn(`could not move ${path}: ${err.message}`);
      this.status.error = `${path}: ${err.message}`;
      outcome = 'failed';
    }
    if (outcome === 'moved') this.status.filesMoved++;
    else if (outcome === 'skipped') this.status.filesSkipped++;
    else if (outcome === 'failed') this.status.filesFailed++;
    return outcome;
  }

  /**
   * Moves a regular file from child `from` to child `to` without a moment where a client
   * could miss it or lose a write: copy to a staging name on `to` while the source notes
   * changes; freeze the source (writes wait) and copy again if it changed; give the copy
   * the source's attributes and rename it into place; then commit on the source (its name
   * goes, and fds still open on it answer ESTALE, so clients reopen the new copy and the
   * writes that waited are redone there).
   */
  private async moveFile(path: string, from: number, to: number): Promise<Outcome> {
    const src = this.children[from]!;
    const dst = this.children[to]!;
    const gfid = await gfidOf(src, path);
    const there = await lookupIfAny(dst, path);
    // Only a move that died between its switch and its commit leaves a real file on both;
    // which copy is newer is not known, so neither is touched.
    if (there && !there.linkto) throw onTwoChildren(path, src, dst);
    try {
      await src.call('migrate', { path, owner: this.owner, op: 'watch' }, REBALANCE_FRAME);
    } catch (e) {
      if (FsError.from(e).code === 'ENOENT') return 'skipped'; // removed or renamed since the listing
      throw e;
    }
    const stage = `${STAGING}/${this.opts.node === undefined ? '' : `${this.opts.node}-`}${gfid ? gfid.toString('hex') : randomUUID()}`;
    // The mover's own fds, on a path each: outside any mount, their paths never change.
    let srcFd: Fd | undefined;
    let dstFd: Fd | undefined;
    let staged = false;
    try {
      const creating = Fd.forPath(stage, O_RDWR | O_TRUNC, S_IFREG);
      await dst.call('create', { path: stage, mode: 0o600, flags: creating.flags, fd: creating, xattrs: gfid ? { [XATTR_GFID]: gfid } : {} }, REBALANCE_FRAME);
      dstFd = creating;
      staged = true;
      const opening = Fd.forPath(path, O_RDONLY, S_IFREG);
      await src.call('open', { path, flags: opening.flags, fd: opening }, REBALANCE_FRAME);
      srcFd = opening;
      let bytes = 0;
      for (let attempt = 1; ; attempt++) {
        bytes += await this.copy(src, srcFd, dst, dstFd);
        let frozen;
        try {
          frozen = await src.call('migrate', { path, owner: this.owner, op: 'freeze' }, REBALANCE_FRAME);
        } catch (e) {
          if (FsError.from(e).code === 'ENOENT') return 'skipped';
          throw e;
        }
        if (!frozen.dirty) break;
        // Written to while copying. A small file is copied again now that writes wait; a
        // big one is not held that long: let writes go and copy again, a few times. Copies
        // of a replicated file that differ (diverged: a write done on some replicas, held
        // on its way to the others) cannot agree while frozen: thaw and copy again.
        await dst.call('ftruncate', { fd: dstFd, size: 0 }, REBALANCE_FRAME);
        if (!frozen.diverged && (frozen.iatt?.size ?? Infinity) <= FROZEN_COPY_MAX_BYTES) {
          bytes += await this.copy(src, srcFd, dst, dstFd);
          break;
        }
        await src.call('migrate', { path, owner: this.owner, op: 'thaw' }, REBALANCE_FRAME);
        if (attempt >= COPY_ATTEMPTS) throw FsError.of('EBUSY', `${path} kept changing while it was copied${frozen.diverged ? ' (its replicas differed)' : ''}; it stays where it is (run the rebalance again later)`);
        await src.call('migrate', { path, owner: this.owner, op: 'watch' }, REBALANCE_FRAME);
      }
      // fstat, not lookup: a replicated source with writes held by the freeze shows pending
      // changelog marks, and a lookup would try to heal them and wait for the writer's lock.
      const { iatt } = await src.call('fstat', { fd: srcFd }, REBALANCE_FRAME);
      await dst.call('ftruncate', { fd: dstFd, size: iatt.size }, REBALANCE_FRAME);
      await this.copyUserXattrs(src, dst, path, stage);
      await dst.call('fsync', { fd: dstFd, datasync: false }, REBALANCE_FRAME);
      await dst.call('setattr', { path: stage, attrs: attrsOf(iatt) }, REBALANCE_FRAME);
      await this.release(dst, dstFd);
      dstFd = undefined;
      await this.release(src, srcFd);
      srcFd = undefined;
      // The switch: the copy takes the name on its hashed child (replacing a link file),
      // then the source lets go. Both hold identical data in between; lookups see the copy.
      await dst.call('rename', { from: stage, to: path }, REBALANCE_FRAME);
      staged = false;
      await src.call('migrate', { path, owner: this.owner, op: 'commit' }, REBALANCE_FRAME);
      this.status.bytesMoved += bytes;
      return 'moved';
    } finally {
      if (srcFd !== undefined) await this.release(src, srcFd);
      if (dstFd !== undefined) await this.release(dst, dstFd);
      if (staged) await dst.call('unlink', { path: stage }, REBALANCE_FRAME).catch(() => undefined);
      await src.call('migrate', { path, owner: this.owner, op: 'thaw' }, REBALANCE_FRAME).catch(() => undefined);
    }
  }

  private async release(x: Xlator, fd: Fd): Promise<void> {
    await x.call('release', { fd }, REBALANCE_FRAME).catch((e: Error) => log.warn(`release on ${x.name}: ${e.message}`));
  }

  /** Copies the whole file; chunks of zeros are skipped so holes stay holes. Returns bytes read. */
  private async copy(src: Xlator, srcFd: Fd, dst: Xlator, dstFd: Fd): Promise<number> {
    let offset = 0;
    for (;;) {
      const { data } = await src.call('read', { fd: srcFd, offset, size: COPY_CHUNK }, REBALANCE_FRAME);
      if (data.length === 0) return offset;
      const zeros = data.length === COPY_CHUNK ? data.equals(ZEROS) : data.equals(ZEROS.subarray(0, data.length));
      if (!zeros) await dst.call('write', { fd: dstFd, offset, data }, REBALANCE_FRAME);
      offset += data.length;
      if (data.length < COPY_CHUNK) return offset;
    }
  }

  private async copyUserXattrs(src: Xlator, dst: Xlator, path: string, stage: string): Promise<void> {
    const { names } = await src.call('listxattr', { path }, REBALANCE_FRAME);
    for (const name of names.filter((n) => n.startsWith('user.'))) {
      const { value } = await src.call('getxattr', { path, name }, REBALANCE_FRAME);
      await dst.call('setxattr', { path: stage, name, value, flags: 0 }, REBALANCE_FRAME);
    }
  }

  /**
   * A file that stays off its hashed child (a hard link) needs a link file there pointing
   * at it, or a settled layout would hide it.
   */
  private async pointAt(path: string, at: number, to: number): Promise<Outcome> {
    const cur = await lookupIfAny(this.children[at]!, path);
    if (cur && !cur.linkto) throw onTwoChildren(path, this.children[at]!, this.children[to]!);
    if (cur?.linkto !== this.children[to]!.name) await this.dht.pointLinkfile(path, at, to, REBALANCE_FRAME);
    return 'skipped';
  }

  /** A symlink has no data and cannot be open: recreate it on its hashed child, then drop the old one. */
  private async moveSymlink(path: string, from: number, to: number): Promise<Outcome> {
    const src = this.children[from]!;
    const dst = this.children[to]!;
    const { target } = await src.call('readlink', { path }, REBALANCE_FRAME);
    const gfid = await gfidOf(src, path);
    const there = await lookupIfAny(dst, path);
    if (there && !there.linkto) return 'skipped'; // a real entry of that name there: leave both for a human
    if (there) await dst.call('unlink', { path }, REBALANCE_FRAME);
    await dst.call('symlink', { target, path, xattrs: gfid ? { [XATTR_GFID]: gfid } : {} }, REBALANCE_FRAME);
    await src.call('unlink', { path }, REBALANCE_FRAME);
    return 'moved';
  }

  /**
   * Link files are needed only on a name's hashed child, pointing at the child with the
   * data. Any other (left by an older layout, or pointing at nothing) goes.
   */
  private async checkLinkfile(dir: string, child: number, e: DirEntry): Promise<void> {
    const path = joinPath(dir, e.name);
    try {
      const hashed = await this.dht.hashedChild(path, REBALANCE_FRAME);
      let stale = hashed !== child;
      if (!stale) {
        const target = this.dht.childNamed(e.linkto!);
        const data = target === undefined ? undefined
          : await this.children[target]!.call('lookup', { path }, REBALANCE_FRAME).catch(() => undefined);
        stale = !data || data.linkto !== undefined;
      }
      if (!stale) return;
      // Look again right before removing: a rename may have made it a real file meanwhile.
      const now = await this.children[child]!.call('lookup', { path }, REBALANCE_FRAME);
      if (now.linkto) await this.children[child]!.call('unlink', { path }, REBALANCE_FRAME);
    } catch (err) {
      if (FsError.from(err).code !== 'ENOENT') log.warn(`link file ${path} on ${this.children[child]!.name}: ${(err as Error).message}`);
    }
  }
}

/** A lookup where absence is an answer, not an error. */
function lookupIfAny(x: Xlator, path: string): Promise<FopReply<'lookup'> | undefined> {
  return x.call('lookup', { path }, REBALANCE_FRAME).catch((e) => {
    if (FsError.from(e).code === 'ENOENT') return undefined;
    throw e;
  });
}

function gfidOf(x: Xlator, path: string): Promise<Buffer | undefined> {
  return x.call('getxattr', { path, name: XATTR_GFID }, REBALANCE_FRAME).then((r) => r.value, () => undefined);
}

function onTwoChildren(path: string, a: Xlator, b: Xlator): FsError {
  return FsError.of('EEXIST', `${path} exists on both ${a.name} and ${b.name}; keep the right one by hand (on the bricks)`);
}

/** The attributes a moved file keeps. */
function attrsOf(iatt: Iatt): { mode: number; uid: number; gid: number; atimeMs: number; mtimeMs: number } {
  return { mode: iatt.mode & 0o7777, uid: iatt.uid, gid: iatt.gid, atimeMs: iatt.atimeMs, mtimeMs: iatt.mtimeMs };
}

