import fs from 'node:fs';
import { FsError } from '../../../../lib/errors.js';
import { fanout, successes, type Settled } from '../../../../lib/fanout.js';
import { isDir, type FopArgs, type FopName, type FopReply, type Xattrs } from '../../../../lib/fops.js';
import type { Frame } from '../../../../lib/frame.js';
import { nameHash } from '../../../../lib/hash.js';
import type { Inode } from '../../../../lib/inode.js';
import { Changelog, changelogNames, KINDS, type Kind } from './changelog.js';
import type { EntryBursts } from './entry-burst.js';
import type { ReplicaFds } from './fd.js';
import type { SelfHeal } from './self-heal.js';
import type { ReplicaSet } from './transaction.js';
import type { WriteBursts } from './write-burst.js';

type Lookups = Array<Settled<FopReply<'lookup'>>>;
type ReadOneFop = 'access' | 'readlink' | 'getxattr' | 'listxattr' | 'readdir';

/** The xattrs of `names` that `all` holds. */
function pickXattrs(all: Xattrs | undefined, names: readonly string[]): Xattrs {
  const out: Xattrs = {};
  for (const n of names) if (all?.[n] !== undefined) out[n] = all[n]!;
  return out;
}

/** The error of a lookup no replica answered: the replicas that answered decide (ENOENT from them is ENOENT even with one away). */
function noAnswer(res: Lookups): FsError {
  const errs = res.filter((r): r is Extract<typeof r, { ok: false }> => !r.ok).map((r) => r.error);
  return errs.find((e) => e.code !== 'ENOENT' && e.code !== 'ENOTCONN') ?? errs.find((e) => e.code === 'ENOENT') ?? errs[0]!;
}

/**
 * Reads: each looks the path up on every replica with the changelog first (healing a blamed
 * copy on the way), then asks one replica nobody blames: spread over the sources by path
 * for data, the first source for attributes.
 */
export class InodeReads {
  constructor(
    private readonly set: ReplicaSet,
    private readonly heal: SelfHeal,
    private readonly bursts: WriteBursts,
    private readonly entryBursts: EntryBursts,
    private readonly fds: ReplicaFds,
    /** Replicas up now (CHILD_UP and no CHILD_DOWN since). */
    private readonly up: ReadonlySet<number>,
  ) {}

  /**
   * Looks a path up on every replica with the changelog, healing it first when a copy is
   * blamed. want: also ask one replica for the content (quick-read; see lookup). The
   * lookups serve the caller's fop and go with its frame; the heal goes as self-heal's.
   */
  private async inspect(
    path: string, inode: Inode | undefined, f: Frame, want?: { child: number; wantData: number }, callerXattrs: readonly string[] = [],
  ): Promise<{ res: Lookups; log: Changelog; healed: boolean }> {
    const { children, names } = this.set;
    const asked = [...changelogNames(names), ...callerXattrs];
    let res = await fanout(children, 'lookup', (i) => (want?.child === i ? { path, xattrs: asked, wantData: want.wantData } : { path, xattrs: asked }), f);
    let log = Changelog.fromLookups(names, res);
    const ok = successes(res);
    const missing = res.some((r) => !r.ok && r.error.code === 'ENOENT') && ok.length > 0;
    // Marks of this client's own bursts (open, or their post-op on the way) are not damage.
    const own = this.bursts.has(path, inode) || this.entryBursts.busy(path);
    if (this.set.options.selfHeal() && !own && (missing || KINDS.some((k) => log.healable(k)))) {
      const healed = await this.heal.healPath(path).catch((e: Error) => {
        this.set.log.warn(`self-heal of ${path}: ${e.message}`);
        return false;
      });
      if (healed) {
        res = await fanout(children, 'lookup', { path, xattrs: asked }, f);
        log = Changelog.fromLookups(names, res);
        return { res, log, healed: true };
      }
    }
    return { res, log, healed: false };
  }

  /** A replica to read a path's data from: not blamed, spread over the set by path. */
  private pickReader(path: string, log: Changelog, kind: Kind): number | undefined {
    const sources = log.sources(kind);
    if (sources.length === 0) return undefined;
    return sources[nameHash(path) % sources.length];
  }

  /**
   * The replica attributes come from: always the first good one, the same replica a
   * change's reply comes from, so ctime and atime do not jump between replicas from one
   * stat to the next (tar: "file changed as we read it").
   */
  private attrReplica(log: Changelog, kind: Kind): number | undefined {
    return log.sources(kind)[0];
  }

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    // quick-read's content is asked of the replica open would read from when none is blamed,
    // in the same round trip as the changelog check (as readfile does).
    const guess = nameHash(a.path) % this.set.children.length;
    // A directory's own entry burst ends first: the attributes answered are from after its
    // post-op, so its ctime does not move later (tar: "file changed as we read it"). So do
    // readdir (for the subdirectories listed), fstat and the directory's own changes.
    if (this.entryBursts.busy(a.path)) await this.entryBursts.endAndLand(a.path);
    const want = a.wantData === undefined ? undefined : { child: guess, wantData: a.wantData };
    // The caller's own xattrs (distribute's layout of a directory) ride on the same lookups.
    const { res, log, healed } = await this.inspect(a.path, a.inode, f, want, a.xattrs);
    const ok = successes(res);
    if (ok.length === 0) throw noAnswer(res);
    const dir = isDir(ok[0]!.value.iatt);
    const reader = this.attrReplica(log, dir ? 'entry' : 'data');
    const reply = (ok.find((r) => r.child === reader) ?? ok[0]!).value;
    // The caller's own xattr question is answered without our changelog names.
    if (a.xattrs?.length) return { iatt: reply.iatt, linkto: reply.linkto, xattrs: pickXattrs(reply.xattrs, a.xattrs) };
    const data = want && !dir && !healed ? this.trustedData(a.path, a.inode, res, log, guess, reply.iatt.size) : undefined;
    return data ? { iatt: reply.iatt, linkto: reply.linkto, data } : { iatt: reply.iatt, linkto: reply.linkto };
  }

  /**
   * The content a lookup brought from replica `guess`, only when it can be trusted: no
   * changelog counter of data pending anywhere (another client's write in the middle, a copy
   * to heal), the guess is the replica a read would pick, no write burst of this client on
   * the file, and its size is the size the lookup answers. Otherwise none: a reply without
   * data is always correct (the read then goes to the bricks).
   */
  private trustedData(path: string, inode: Inode | undefined, res: Lookups, log: Changelog, guess: number, size: number): Buffer | undefined {
    if (this.bursts.has(path, inode) || log.dirty('data')) return undefined;
    if (this.pickReader(path, log, 'data') !== guess) return undefined;
    const r = res[guess];
    if (!r?.ok || !r.value.data || r.value.iatt.size !== size || r.value.data.length !== size) return undefined;
    return r.value.data;
  }

  /** One replica's answer, settled at once: one asked before it is known to be used is dropped without an unhandled rejection. */
  private async askOne<F extends FopName>(child: number, fop: F, args: FopArgs<F>, f: Frame): Promise<Settled<FopReply<F>>> {
    return (await fanout(this.set.children, fop, args, f, [child]))[0]!;
  }

  /** Reads that any trusted replica can answer. */
  async readOne<F extends ReadOneFop>(fop: F, args: FopArgs<F>, kind: Kind, f: Frame): Promise<FopReply<F>> {
    // Asked at once of the replica the changelog check will almost always pick (the first one
    // up, attrReplica), beside that check rather than after it: one round trip, not two. Its
    // answer is used only if the check then picks that replica and healed nothing.
    const guess = Math.min(...this.up);
    const early = Number.isFinite(guess) ? this.askOne(guess, fop, args, f) : undefined;
    const { log, healed } = await this.inspect(args.path, args.inode, f);
    const order = [this.attrReplica(log, kind), ...this.set.all].filter((i): i is number => i !== undefined);
    if (early && !healed && order[0] === guess && log.answered(guess)) {
      const r = await early;
      if (r.ok) return r.value;
      if (r.error.code !== 'ENOTCONN') throw r.error;
    }
    let last: FsError | undefined;
    for (const i of [...new Set(order)]) {
      if (!log.answered(i)) continue;
      try {
        return await this.set.children[i]!.call(fop, args, f);
      } catch (e) {
        last = FsError.from(e);
        if (last.code !== 'ENOTCONN') throw last;
      }
    }
    throw last ?? FsError.of('ENOTCONN');
  }

  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    // A listing carries each subdirectory's attributes: those in an entry burst end it first.
    await this.entryBursts.endChildrenOf(a.path);
    return this.readOne('readdir', a, 'entry', f);
  }

  async statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    const ok = successes(await fanout(this.set.children, 'statfs', a, f));
    if (!ok.length) throw FsError.of('ENOTCONN', 'no replica is up');
    // A replica set holds one copy's worth: report the smallest replica.
    const bytes = (s: FopReply<'statfs'>): number => s.statfs.blocks * s.statfs.frsize;
    return ok.reduce((x, y) => (bytes(y.value) < bytes(x.value) ? y : x)).value;
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    // The changelog check and the opens go out together (one round trip, not two), except
    // for O_TRUNC, which must not race a heal of the same file.
    const inspected = this.inspect(a.path, a.fd.inode, f);
    if ((a.flags & fs.constants.O_TRUNC) !== 0) await inspected;
    const [{ log }, res] = await Promise.all([inspected, fanout(this.set.children, 'open', a, f)]);
    const ok = successes(res);
    if (ok.length === 0) throw res.find((r): r is Extract<typeof r, { ok: false }> => !r.ok)!.error;
    const readChild = this.pickReader(a.path, log, 'data');
    const attr = this.attrReplica(log, 'data');
    this.fds.opened(a.fd, {
      openOn: ok.map((r) => r.child),
      readChild: readChild !== undefined && res[readChild]!.ok ? readChild : undefined,
      attrChild: attr !== undefined && res[attr]!.ok ? attr : ok[0]!.child,
    });
    return {};
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const rfd = this.fds.of(a.fd);
    if (rfd.readChild === undefined) throw FsError.of('EIO', `${a.fd.path} is in split-brain or has no good copy; see \`brickfs volume heal VOL info\``);
    return this.set.children[rfd.readChild]!.call('read', a, f);
  }

  /**
   * A read by path from the replica open would read from. The changelog check and the read
   * go out together (one round trip): the read is sent to the replica open would pick if no
   * copy were blamed, and its answer is used only if the check then picks that same replica
   * and healed nothing. Otherwise the read goes to the replica the check picked; with no
   * trusted copy (split-brain, or another client's change in the middle), or this client's
   * own write burst on the file, ENOSYS: the caller opens and reads, and gets open's answer.
   */
  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    if (this.bursts.writing(a.path, a.inode)) throw FsError.of('ENOSYS', `${a.path} has writes in flight here`);
    const guess = nameHash(a.path) % this.set.children.length;
    const early = this.askOne(guess, 'readfile', a, f);
    const { res, log, healed } = await this.inspect(a.path, a.inode, f);
    if (successes(res).length === 0) throw noAnswer(res);
    const reader = this.pickReader(a.path, log, 'data');
    if (reader === undefined || this.bursts.writing(a.path, a.inode)) throw FsError.of('ENOSYS', `${a.path}: no replica to trust for a read by path`);
    const r = reader === guess && !healed ? await early : await this.askOne(reader, 'readfile', a, f);
    if (r.ok) return r.value;
    // A replica that went away or cannot read by path: open chooses again.
    if (r.error.code === 'ENOTCONN' || r.error.code === 'ENOSYS') throw FsError.of('ENOSYS', r.error.message);
    throw r.error;
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const rfd = this.fds.of(a.fd);
    if (this.entryBursts.busy(a.fd.path)) await this.entryBursts.endAndLand(a.fd.path);
    return this.set.children[rfd.attrChild]!.call('fstat', a, f);
  }
}
