import fs from 'node:fs';
import pathMod from 'node:path/posix';
import { FsError } from '../../../../lib/errors.js';
import { fanout, successes, type Settled } from '../../../../lib/fanout.js';
import {
  ENTRYLK_WHOLE_DIR, INTERNAL_XATTR_PREFIX, isDir, S_IFLNK, S_IFMT, S_IFREG, XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO,
  type DirEntry, type FopReply, type Iatt, type Xattrs,
} from '../../../../lib/fops.js';
import { INTERNAL_PID, serviceFrame, type Frame } from '../../../../lib/frame.js';
import { Fd } from '../../../../lib/inode.js';
import type { Logger } from '../../../../lib/log.js';
import type { Xlator } from '../../../../lib/xlator.js';
import { Changelog, changelogNames, KINDS, type Kind } from './changelog.js';
import { INODE_LOCK } from './transaction.js';

const CHUNK = 1024 * 1024;
/** brickfs' own xattrs that travel with a recreated copy (never the changelog). */
const CARRIED = [XATTR_GFID, XATTR_LAYOUT, XATTR_LINKTO];

/**
 * What every heal sends with, on access or from `volume heal`: root's rights, whoever
 * looked the file up, so no caller's permissions stop a copy from being repaired. An entry
 * recreated as root gets the good copy's owner, group and mode after (copyMetadata).
 */
export const HEAL_FRAME: Frame = serviceFrame(INTERNAL_PID.selfHeal);

type Lookup = Settled<FopReply<'lookup'>>;

export type SplitBrainPolicy = 'bigger-file' | 'latest-mtime' | 'source-brick';

/** One pending path as `volume heal VOL info` shows it. */
export interface PendingEntry {
  path: string;
  /** Replica names other copies blame for a missed change. */
  blamed: string[];
  splitBrain: boolean;
}

const isReg = (i: Iatt): boolean => (i.mode & S_IFMT) === S_IFREG;
const isLnk = (i: Iatt): boolean => (i.mode & S_IFMT) === S_IFLNK;

/**
 * AFR self-heal: makes the blamed copies of a path equal to a good one — entries of a
 * directory (missing names created, names deleted elsewhere removed), data, then metadata
 * (mode, owner, times, user xattrs) — and clears the changelog. Runs under the path's
 * inode lock on every reachable replica.
 */
export class SelfHeal {
  constructor(
    private readonly children: readonly Xlator[],
    private readonly names: readonly string[],
    private readonly log: Logger,
    private readonly lockPath: (path: string, name: string, frame: Frame) => Promise<number[]>,
    private readonly unlockPath: (held: { path: string; name: string; children: number[] }, frame: Frame) => Promise<void>,
  ) {}

  private async inspect(path: string): Promise<{ res: Lookup[]; log: Changelog }> {
    const res = await fanout(this.children, 'lookup', { path, xattrs: [...changelogNames(this.names), ...CARRIED] }, HEAL_FRAME);
    return { res, log: Changelog.fromLookups(this.names, res) };
  }

  private async withLock<T>(path: string, fn: () => Promise<T>, name = INODE_LOCK): Promise<T> {
    const held = await this.lockPath(path, name, HEAL_FRAME);
    try {
      return await fn();
    } finally {
      await this.unlockPath({ path, name, children: held }, HEAL_FRAME);
    }
  }

  /**
   * Runs fn with every entry name of a directory locked on every replica: no other
   * client's entry change (create, unlink, rename...) is between its pre-op and its post-op
   * there. Without it, a change in flight looks like an interrupted one (the replicas carry
   * its marks, and the name is on some replicas only), and an entry heal "repairs" it:
   * removes the name from a replica it had just reached, or brings back one being deleted.
   */
  private withEntries<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    return this.withLock(dir, fn, ENTRYLK_WHOLE_DIR);
  }

  /** Heals one path; true when something was healed, false when there was nothing to do or it is in split-brain. */
  async healPath(path: string): Promise<boolean> {
    const { res } = await this.inspect(path);
    const absent = res.filter((r) => !r.ok && r.error.code === 'ENOENT').map((r) => r.child);
    if (absent.length && path !== '/' && successes(res).length) {
      const dir = pathMod.dirname(path);
      await this.withEntries(dir, () => this.healEntries(dir));
    }
    // A directory's changelog is read, and its entries healed, with no entry change in it in flight.
    const isDirectory = successes(res).some((r) => isDir(r.value.iatt));
    return this.withLock(path, () => (isDirectory ? this.withEntries(path, () => this.healLocked(path)) : this.healLocked(path)));
  }

  /** healPath's work, under the path's lock (and a directory's entry lock). */
  private async healLocked(path: string): Promise<boolean> {
    const { res: now, log } = await this.inspect(path);
    const present = successes(now);
    if (!present.length) return false;
    const model = present[0]!.value.iatt;
    let healed = false;
    const kinds: Kind[] = isDir(model) ? ['entry', 'metadata'] : isReg(model) ? ['data', 'metadata'] : ['metadata'];
    for (const kind of kinds) {
      if (!log.dirty(kind)) continue;
      if (log.splitBrain(kind)) {
        this.log.warn(`${path} is in ${kind} split-brain; heal it with \`volume heal VOL split-brain POLICY ${path}\``);
        continue;
      }
      const ok = present.map((r) => r.child);
      // Notes only about replicas that are away: nothing to heal until they are back.
      if (!log.healable(kind)) continue;
      let sources = log.sources(kind).filter((i) => ok.includes(i));
      // Only notes of copies about themselves (an interrupted change): take the newest.
      if (sources.length === ok.length) sources = [this.newest(present)];
      const sinks = ok.filter((i) => !sources.includes(i));
      await this.copy(kind, path, sources[0]!, sinks, now);
      await this.resetChangelog(path, log, kind, ok);
      healed = true;
    }
    return healed;
  }

  private newest(present: Array<{ value: FopReply<'lookup'>; child: number }>): number {
    return present.reduce((a, b) => (b.value.iatt.mtimeMs > a.value.iatt.mtimeMs ? b : a)).child;
  }

  private async copy(kind: Kind, path: string, source: number, sinks: number[], res: Lookup[]): Promise<void> {
    if (!sinks.length) return;
    this.log.info(`healing ${kind} of ${path} from ${this.names[source]} to ${sinks.map((i) => this.names[i]).join(' ')}`);
    if (kind === 'entry') await this.healEntries(path, source, sinks);
    else if (kind === 'data') {
      await this.copyData(path, source, sinks);
      // Writing the copy moved its mtime: put the source's times back, as AFR does.
      const { iatt } = (res[source] as { value: FopReply<'lookup'> }).value;
      await Promise.all(sinks.map((i) => this.children[i]!.call('setattr', { path, attrs: { atimeMs: iatt.atimeMs, mtimeMs: iatt.mtimeMs } }, HEAL_FRAME)));
    }
    else await this.copyMetadata(path, source, sinks, (res[source] as { value: FopReply<'lookup'> }).value.iatt);
  }

  private async resetChangelog(path: string, log: Changelog, kind: Kind, on: number[]): Promise<void> {
    await Promise.all(on.map(async (i) => {
      const add = log.resetDeltas(i, kind, on);
      if (Object.keys(add).length) await this.children[i]!.call('xattrop', { path, add }, HEAL_FRAME);
    }));
  }

  /**
   * Copies a regular file's bytes from the source to the sinks, through fds of the heal's own:
   * one to read the source, one opened on every sink to write them (each replica keeps its
   * own slot on it). Each is released on every replica it was opened on.
   */
  private async copyData(path: string, source: number, sinks: number[]): Promise<void> {
    const src = this.children[source]!;
    const sfd = Fd.forPath(path, fs.constants.O_RDONLY);
    const dfd = Fd.forPath(path, fs.constants.O_WRONLY);
    const opened: number[] = [];
    const open = async (i: number, fd: Fd): Promise<void> => {
      await this.children[i]!.call('open', { path, flags: fd.flags, fd }, HEAL_FRAME);
      opened.push(i);
    };
    try {
      await open(source, sfd);
      const dst = await Promise.allSettled(sinks.map((i) => open(i, dfd)));
      const failed = dst.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      let offset = 0;
      for (;;) {
        const { data } = await src.call('read', { fd: sfd, offset, size: CHUNK }, HEAL_FRAME);
        if (data.length === 0) break;
        await Promise.all(sinks.map((i) => this.children[i]!.call('write', { fd: dfd, offset, data }, HEAL_FRAME)));
        offset += data.length;
        if (data.length < CHUNK) break;
      }
      await Promise.all(sinks.map((i) => this.children[i]!.call('ftruncate', { fd: dfd, size: offset }, HEAL_FRAME)));
    } finally {
      await Promise.all(opened.map((i) => this.children[i]!.call('release', { fd: i === source ? sfd : dfd }, HEAL_FRAME).catch(() => undefined)));
    }
  }

  /** Copies mode, owner, times and user xattrs. */
  private async copyMetadata(path: string, source: number, sinks: number[], iatt: Iatt): Promise<void> {
    const src = this.children[source]!;
    const names = (await src.call('listxattr', { path }, HEAL_FRAME)).names.filter((n) => !n.startsWith(INTERNAL_XATTR_PREFIX));
    const values = await Promise.all(names.map(async (name) => ({ name, value: (await src.call('getxattr', { path, name }, HEAL_FRAME)).value })));
    await Promise.all(sinks.map(async (i) => {
      const c = this.children[i]!;
      const theirs = (await c.call('listxattr', { path }, HEAL_FRAME)).names.filter((n) => !n.startsWith(INTERNAL_XATTR_PREFIX));
      for (const n of theirs) if (!names.includes(n)) await c.call('removexattr', { path, name: n }, HEAL_FRAME);
      for (const { name, value } of values) await c.call('setxattr', { path, name, value, flags: 0 }, HEAL_FRAME);
      await c.call('setattr', {
        path,
        attrs: { ...(isLnk(iatt) ? {} : { mode: iatt.mode & 0o7777 }), uid: iatt.uid, gid: iatt.gid, atimeMs: iatt.atimeMs, mtimeMs: iatt.mtimeMs },
      }, HEAL_FRAME);
    }));
  }

  /**
   * Makes a directory's entries on the sinks match the source: missing names are created
   * with their content; names only on a sink are removed there (the source's changelog
   * says the sink missed their deletion). Without a source given, nothing is removed and
   * every name present anywhere is created everywhere (existence wins: nothing is lost).
   */
  async healEntries(dir: string, source?: number, sinks?: number[]): Promise<void> {
    const listings = await fanout(this.children, 'readdir', { path: dir }, HEAL_FRAME);
    const ok = successes(listings);
    if (!ok.length) return;
    const byChild = new Map(ok.map((r) => [r.child, new Map(r.value.entries.map((e) => [e.name, e]))]));
    const from = source !== undefined ? [source] : ok.map((r) => r.child);
    const to = sinks ?? ok.map((r) => r.child);
    for (const s of from) {
      for (const [name, e] of byChild.get(s) ?? []) {
        for (const k of to) {
          if (k === s || byChild.get(k)?.has(name)) continue;
          await this.recreate(`${dir === '/' ? '' : dir}/${name}`, e, s, k);
          byChild.get(k)?.set(name, e);
        }
      }
    }
    if (source === undefined) return;
    const keep = byChild.get(source)!;
    for (const k of to) {
      for (const [name, e] of byChild.get(k) ?? []) {
        if (!keep.has(name)) await this.remove(k, `${dir === '/' ? '' : dir}/${name}`, e);
      }
    }
  }

  /** Creates one entry on a sink as it is on the source, content included. */
  private async recreate(path: string, e: DirEntry, source: number, sink: number): Promise<void> {
    const src = this.children[source]!;
    const dst = this.children[sink]!;
    const look = await src.call('lookup', { path, xattrs: CARRIED }, HEAL_FRAME);
    const xattrs: Xattrs = look.xattrs ?? {};
    this.log.info(`healing entry ${path} onto ${this.names[sink]}`);
    if (isDir(e.iatt)) {
      await dst.call('mkdir', { path, mode: e.iatt.mode & 0o7777, xattrs }, HEAL_FRAME);
      await this.healEntries(path, source, [sink]);
    } else if (isLnk(e.iatt)) {
      const { target } = await src.call('readlink', { path }, HEAL_FRAME);
      await dst.call('symlink', { target, path, xattrs }, HEAL_FRAME);
    } else if (look.linkto !== undefined) {
      await dst.call('mknod', { path, mode: e.iatt.mode, rdev: 0, xattrs }, HEAL_FRAME);
    } else {
      const flags = fs.constants.O_WRONLY | fs.constants.O_EXCL;
      const fd = Fd.forPath(path, flags, e.iatt.mode);
      await dst.call('create', { path, mode: e.iatt.mode & 0o7777, flags, fd, xattrs }, HEAL_FRAME);
      await dst.call('release', { fd }, HEAL_FRAME);
      await this.copyData(path, source, [sink]);
    }
    await this.copyMetadata(path, source, [sink], e.iatt);
  }

  private async remove(child: number, path: string, e: DirEntry): Promise<void> {
    const c = this.children[child]!;
    this.log.info(`healing: removing ${path} from ${this.names[child]} (deleted while it was away)`);
    if (isDir(e.iatt)) {
      const { entries } = await c.call('readdir', { path }, HEAL_FRAME);
      for (const sub of entries) await this.remove(child, `${path}/${sub.name}`, sub);
      await c.call('rmdir', { path }, HEAL_FRAME);
    } else {
      await c.call('unlink', { path }, HEAL_FRAME);
    }
  }

  /**
   * Paths with pending changes, from the index of the replicas `from` (every replica by
   * default: the self-heal daemon of a host reads its own bricks' only), with who is blamed.
   */
  async pending(from: readonly number[] = this.all()): Promise<PendingEntry[]> {
    const lists = successes(await fanout(this.children, 'indexlist', {}, HEAL_FRAME, from));
    const paths = [...new Set(lists.flatMap((l) => l.value.paths))].sort();
    const out: PendingEntry[] = [];
    for (const path of paths) {
      const p = await this.pendingEntry(path);
      if (p) out.push(p);
    }
    return out;
  }

  /** A path's pending entry, or undefined when no reachable copy needs healing (the index lags behind). */
  private async pendingEntry(path: string): Promise<PendingEntry | undefined> {
    const { res, log } = await this.inspect(path);
    if (!successes(res).length) return undefined;
    if (!KINDS.some((k) => log.dirty(k))) return undefined;
    const blamed = this.names.filter((_, j) => KINDS.some((k) => log.blamed(j, k)));
    return { path, blamed, splitBrain: KINDS.some((k) => log.splitBrain(k)) };
  }

  /**
   * What each replica's own index lists as pending (`volume heal VOL info`, per brick as
   * gluster prints it); a replica that cannot be asked gets its error instead.
   */
  async pendingByReplica(): Promise<Array<{ child: number; entries?: PendingEntry[]; error?: FsError }>> {
    const lists = await fanout(this.children, 'indexlist', {}, HEAL_FRAME);
    const seen = new Map<string, Promise<PendingEntry | undefined>>();
    const entry = (path: string): Promise<PendingEntry | undefined> => {
      let p = seen.get(path);
      if (!p) seen.set(path, p = this.pendingEntry(path));
      return p;
    };
    const out: Array<{ child: number; entries?: PendingEntry[]; error?: FsError }> = [];
    for (const l of lists) {
      if (!l.ok) {
        out.push({ child: l.child, error: l.error });
        continue;
      }
      const entries: PendingEntry[] = [];
      for (const path of [...l.value.paths].sort()) {
        const p = await entry(path);
        if (p) entries.push(p);
      }
      out.push({ child: l.child, entries });
    }
    return out;
  }

  /** Heals everything the index of the replicas `from` lists (every replica's by default), parents first. */
  async healIndexed(from: readonly number[] = this.all()): Promise<{ healed: number; splitBrain: string[] }> {
    const todo = await this.pending(from);
    todo.sort((a, b) => a.path.split('/').length - b.path.split('/').length);
    let healed = 0;
    for (const p of todo) if (await this.healPath(p.path).catch((e: Error) => this.failed(p.path, e))) healed++;
    const left = await this.pending(from);
    return { healed, splitBrain: left.filter((p) => p.splitBrain).map((p) => p.path) };
  }

  private all(): number[] {
    return this.children.map((_, i) => i);
  }

  private failed(path: string, e: Error): false {
    this.log.warn(`heal of ${path} failed: ${e.message}`);
    return false;
  }

  /** Crawls the whole replica set from the root, healing every path that needs it. */
  async healFull(dir = '/'): Promise<number> {
    let healed = (await this.healPath(dir).catch((e: Error) => this.failed(dir, e))) ? 1 : 0;
    await this.withEntries(dir, () => this.healEntries(dir));
    const ok = successes(await fanout(this.children, 'readdir', { path: dir }, HEAL_FRAME));
    const names = new Map<string, DirEntry>();
    for (const r of ok) for (const e of r.value.entries) names.set(e.name, e);
    for (const [name, e] of names) {
      const p = `${dir === '/' ? '' : dir}/${name}`;
      if (isDir(e.iatt)) healed += await this.healFull(p);
      else if (await this.healPath(p).catch((e: Error) => this.failed(p, e))) healed++;
    }
    return healed;
  }

  /** Ends a split-brain by declaring one copy good, chosen by policy, and healing from it. */
  async resolveSplitBrain(path: string, policy: SplitBrainPolicy, brick?: string): Promise<string> {
    return this.withLock(path, async () => {
      const { res, log } = await this.inspect(path);
      const present = successes(res);
      if (!present.length) throw FsError.of('ENOENT', `${path} is on no reachable replica`);
      let source: number;
      if (policy === 'bigger-file') source = present.reduce((a, b) => (b.value.iatt.size > a.value.iatt.size ? b : a)).child;
      else if (policy === 'latest-mtime') source = this.newest(present);
      else {
        const idx = this.children.findIndex((c) => {
          const target = String(c.statedump().target ?? '');
          return brick !== undefined && (target.endsWith(`:${brick.split(':').slice(-1)[0]}`) && target.startsWith(brick.split(':')[0]!));
        });
        if (idx < 0 || !present.some((p) => p.child === idx)) throw FsError.of('EINVAL', `${brick} is not a reachable replica of ${path}`);
        source = idx;
      }
      const sinks = present.map((r) => r.child).filter((i) => i !== source);
      const iatt = (res[source] as { value: FopReply<'lookup'> }).value.iatt;
      if (isReg(iatt)) await this.copyData(path, source, sinks);
      await this.copyMetadata(path, source, sinks, iatt);
      for (const kind of KINDS) await this.resetChangelog(path, log, kind, present.map((r) => r.child));
      return this.names[source]!;
    });
  }
}
