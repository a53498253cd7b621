import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { FsError } from '../../../lib/errors.js';
import type { FopArgs, FopReply } from '../../../lib/fops.js';
import { O_ACCMODE, O_DIRECT } from '../../../lib/fops.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

const { O_CREAT, O_RDONLY, O_TRUNC } = fs.constants;

/** Why a behind fd was opened for real (statedump counters). */
type OpenReason = 'enosys' | 'sequential' | 'fd-fop' | 'namespace';

/** An fd this translator handed out. */
interface ObFd {
  path: string;
  flags: number;
  /** The child's fd, once the file is really open. */
  real?: number;
  /** The real open in flight. */
  opening?: Promise<number>;
  /** A rename of this fd's name in flight, settled once the name here follows it: reads by path wait for it. */
  moving?: Promise<unknown>;
  /** Released: a real open must not start for it any more. */
  released?: boolean;
  /** Reads answered by path so far. */
  readsByPath: number;
  /** The open's caller: a real open made later for this fd (delayed, or before a namespace change) goes with it. */
  frame: Frame;
}

/** Not open below, and no real open on its way. */
function isBehind(f: ObFd): boolean {
  return f.real === undefined && f.opening === undefined;
}

/**
 * performance/open-behind: an open for reading only (no O_TRUNC, O_CREAT or O_DIRECT) is
 * answered at once with a local fd and no round trip. Reads on it go down as readfile(path),
 * one request where open, read and release were three; a close of it answers locally too.
 * A child that cannot read by path (ENOSYS: stripe, a replica set unsure of its copies, an
 * older brick) gets a real open with the same flags, and the fd reads through it from then on.
 * An fd read a second time (a file longer than one read: the kernel reads a small file in one
 * request) is opened for real in the background and reads through that fd once it is open,
 * since many reads cost more by path on replicas (a changelog check each) than through an fd. fstat of a not-yet-opened fd is a lookup of
 * its path; any other fd fop (write, ftruncate, fsync) opens it for real first.
 *
 * Names: before this client's unlink or rmdir of a name, a rename over it, or a rename of
 * a directory above it, every behind fd on that name (or under it) is opened for real, so an
 * open-then-unlinked file reads on (GlusterFS's open-behind does the same). A rename moves
 * the fds of its source with it, and reads by path wait for the rename in flight. Another
 * client's unlink or rename of a file open behind here is not seen: its reads answer ENOENT,
 * where a real fd would read on (the same trade as GlusterFS's open-behind).
 */
export class OpenBehind extends Xlator implements FopImpl {
  static override readonly description = 'Answers read-only opens at once and reads their files by path until an fd is needed';
  static override readonly options = {} as const;
  /** `volume set performance.open-behind on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.open-behind', default: true, description: 'Answer read-only opens at once and read small files by path, one round trip per file; another client\'s unlink of a file open here makes its reads fail (on/off)' } as const;

  private readonly fds = new Map<number, ObFd>();
  private nextFd = 1;
  private openedBehind = 0;
  private passedThrough = 0;
  private readfiles = 0;
  private readsByFd = 0;
  private readonly realOpens: Record<OpenReason, number> = { enosys: 0, sequential: 0, 'fd-fop': 0, namespace: 0 };
  private realOpenFailures = 0;
  private localFlushes = 0;
  private localReleases = 0;
  private lookups = 0;

  private get child(): Xlator {
    return this.children[0]!;
  }

  override statedump(): Record<string, unknown> {
    let behind = 0;
    for (const f of this.fds.values()) if (f.real === undefined) behind++;
    return {
      openFds: this.fds.size, behindFds: behind, openedBehind: this.openedBehind, passedThrough: this.passedThrough,
      readfiles: this.readfiles, readsByFd: this.readsByFd, realOpens: { ...this.realOpens }, realOpenFailures: this.realOpenFailures,
      localFlushes: this.localFlushes, localReleases: this.localReleases, lookups: this.lookups,
    };
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const behind = (a.flags & O_ACCMODE) === O_RDONLY && (a.flags & (O_TRUNC | O_CREAT | O_DIRECT)) === 0;
    if (!behind) {
      const r = await this.child.call('open', a, f);
      this.passedThrough++;
      return { fd: this.add({ path: a.path, flags: a.flags, real: r.fd, readsByPath: 0, frame: f }) };
    }
    this.openedBehind++;
    return { fd: this.add({ path: a.path, flags: a.flags, readsByPath: 0, frame: f }) };
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const r = await this.child.call('create', a, f);
    return { iatt: r.iatt, fd: this.add({ path: a.path, flags: a.flags, real: r.fd, readsByPath: 0, frame: f }) };
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const ob = this.fdOf(a.fd);
    let reason: OpenReason = 'fd-fop';
    if (isBehind(ob)) {
      if (ob.moving) await ob.moving.catch(() => undefined);
      // A real open may have started while waiting.
      if (isBehind(ob)) {
        const r = await this.readByPath(ob, a, f);
        if (r) return r;
        reason = 'enosys';
      }
    }
    const real = await this.realFd(ob, reason);
    this.readsByFd++;
    return this.child.call('read', { ...a, fd: real }, f);
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const ob = this.fdOf(a.fd);
    if (isBehind(ob)) {
      if (ob.moving) await ob.moving.catch(() => undefined);
      if (isBehind(ob)) {
        this.lookups++;
        const { iatt } = await this.child.call('lookup', { path: ob.path }, f);
        return { iatt };
      }
    }
    return this.child.call('fstat', { fd: await this.realFd(ob, 'fd-fop') }, f);
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return this.child.call('write', { ...a, fd: await this.realFd(this.fdOf(a.fd), 'fd-fop') }, f);
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return this.child.call('writev', { ...a, fd: await this.realFd(this.fdOf(a.fd), 'fd-fop') }, f);
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return this.child.call('ftruncate', { ...a, fd: await this.realFd(this.fdOf(a.fd), 'fd-fop') }, f);
  }

  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return this.child.call('fsync', { ...a, fd: await this.realFd(this.fdOf(a.fd), 'fd-fop') }, f);
  }

  /** A close of an fd never opened below has nothing to flush. */
  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    const ob = this.fdOf(a.fd);
    if (isBehind(ob)) {
      this.localFlushes++;
      return {};
    }
    return this.child.call('flush', { fd: await this.realFd(ob, 'fd-fop') }, f);
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const ob = this.fdOf(a.fd);
    this.fds.delete(a.fd);
    ob.released = true;
    if (isBehind(ob)) {
      this.localReleases++;
      return {};
    }
    let real: number;
    try {
      real = ob.real ?? await ob.opening!;
    } catch {
      // The real open failed: nothing is open below.
      return {};
    }
    return this.child.call('release', { fd: real }, f);
  }

  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    await this.openNamed(a.path, false);
    return this.child.call('unlink', a, f);
  }

  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    await this.openNamed(a.path, true);
    return this.child.call('rmdir', a, f);
  }

  /**
   * What the rename replaces, and everything under a renamed directory, is opened for real
   * first; fds on the source name itself follow it to the new name.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    if (a.from === a.to) return this.child.call('rename', a, f);
    // Reads by the source name wait from now on, until the name here follows the rename.
    const moved = [...this.fds.values()].filter((ob) => ob.path === a.from && isBehind(ob));
    // A real open of the source already on its way uses the old name: let it land first.
    const landing = [...this.fds.values()].filter((ob) => ob.path === a.from && ob.opening).map((ob) => ob.opening!.catch(() => undefined));
    const renamed = (async () => {
      await Promise.all([this.openNamed(a.to, true), this.openUnder(a.from), ...landing]);
      const r = await this.child.call('rename', a, f);
      for (const ob of moved) ob.path = a.to;
      return r;
    })();
    for (const ob of moved) ob.moving = renamed;
    try {
      return await renamed;
    } finally {
      for (const ob of moved) if (ob.moving === renamed) ob.moving = undefined;
    }
  }

  private add(f: ObFd): number {
    const fd = this.nextFd++;
    this.fds.set(fd, f);
    return fd;
  }

  private fdOf(fd: number): ObFd {
    const f = this.fds.get(fd);
    if (!f) throw FsError.of('EBADF', `fd ${fd} is not open`);
    return f;
  }

  /** A read by path, with the read's frame; undefined when the child cannot read by path (the fd is opened for real). */
  private async readByPath(f: ObFd, a: FopArgs<'read'>, frame: Frame): Promise<FopReply<'read'> | undefined> {
    this.readfiles++;
    let r: FopReply<'readfile'>;
    try {
      r = await this.child.call('readfile', { path: f.path, offset: a.offset, size: a.size }, frame);
    } catch (e) {
      if (FsError.from(e).code !== 'ENOSYS') throw e;
      return undefined;
    }
    // A second read: a file longer than one read (the kernel reads a small file whole, in one
    // request, up to the size it knows). The next reads go through a real fd, opened meanwhile.
    if (++f.readsByPath >= 2 && isBehind(f) && !f.released) {
      this.realFd(f, 'sequential').catch((e: unknown) => {
        this.log.debug(`background open of ${f.path} failed: ${FsError.from(e).code}`);
      });
    }
    return { data: r.data };
  }

  /**
   * The child's fd for f, opening the file for real with the fd's own flags when it is not
   * yet: the open it delayed, so with that open's frame, whichever fop needs it now.
   */
  private realFd(f: ObFd, reason: OpenReason): Promise<number> {
    if (f.real !== undefined) return Promise.resolve(f.real);
    if (f.opening) return f.opening;
    this.realOpens[reason]++;
    const opening = (async () => {
      if (f.moving) await f.moving.catch(() => undefined);
      try {
        const { fd } = await this.child.call('open', { path: f.path, flags: f.flags }, f.frame);
        f.real = fd;
        return fd;
      } catch (e) {
        this.realOpenFailures++;
        throw e;
      } finally {
        f.opening = undefined;
      }
    })();
    f.opening = opening;
    return opening;
  }

  /** Opens for real every behind fd on path (and, for a directory, under it) before the name goes. */
  private async openNamed(path: string, under: boolean): Promise<void> {
    const prefix = path + '/';
    const pending = [...this.fds.values()].filter((f) => f.real === undefined && (f.path === path || (under && f.path.startsWith(prefix))));
    await this.openAll(pending);
  }

  /** Opens for real the behind fds under a directory about to be renamed. */
  private async openUnder(dir: string): Promise<void> {
    const prefix = dir + '/';
    await this.openAll([...this.fds.values()].filter((f) => f.real === undefined && f.path.startsWith(prefix)));
  }

  /**
   * Real opens of fds about to lose their name. One that fails (the file is already gone,
   * a brick is away) is logged and left behind: the namespace change goes on, as a real fd
   * opened earlier could not have stopped it either.
   */
  private async openAll(fds: ObFd[]): Promise<void> {
    await Promise.all(fds.map((f) => this.realFd(f, 'namespace').catch((e: unknown) => {
      this.log.debug(`open of ${f.path} before a namespace change failed: ${FsError.from(e).code}`);
    })));
  }
}

registerXlator('performance/open-behind', OpenBehind);
