import { type Frame } from '../../../lib/frame.js';
import fs from 'node:fs';
import { FsError } from '../../../lib/errors.js';
import type { FopArgs, FopReply } from '../../../lib/fops.js';
import { O_ACCMODE, O_DIRECT } from '../../../lib/fops.js';
import { CtxKey, type Fd } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

const { O_CREAT, O_RDONLY, O_TRUNC } = fs.constants;

/** Why a behind fd was opened for real (statedump counters). */
type OpenReason = 'enosys' | 'sequential' | 'fd-fop' | 'namespace';

/** This translator's state of an fd (its slot in the fd's ctx). */
interface ObFd {
  /** The child has the fd open (it keeps its own slot on the same Fd). */
  real: boolean;
  /** The real open in flight. */
  opening?: Promise<void>;
  /** A rename of this fd's name in flight: reads by path wait for it. */
  moving?: Promise<unknown>;
  /**
   * The last rename of its name answered here. The inode's name follows a rename only once
   * the answer is back at the bridge; a read by path meanwhile (another thread's read on the
   * fd) uses the name the rename gave, while the fd's path is still the old one.
   */
  renamed?: { from: string; to: string };
  /** Released: a real open must not start for it any more. */
  released?: boolean;
  /** Reads answered by path so far. */
  readsByPath: number;
  /** The open's caller: a real open made later for this fd (delayed, or before a namespace change) goes with it. */
  frame: Frame;
}

/** Not open below, and no real open on its way. */
function isBehind(f: ObFd): boolean {
  return !f.real && f.opening === undefined;
}

/**
 * performance/open-behind: an open for reading only (no O_TRUNC, O_CREAT or O_DIRECT) is
 * answered at once, the child not told, and no round trip. Reads on it go down as
 * readfile(path), one request where open, read and release were three; a close of it
 * answers locally too. A child that cannot read by path (ENOSYS: stripe, a replica set unsure
 * of its copies, an older brick) gets the open it was spared, on the same Fd with the same
 * flags, and the fd reads through it from then on. An fd read a second time (a file longer
 * than one read: the kernel reads a small file in one request) is opened for real in the
 * background and reads through the fd once it is open, since many reads cost more by path on
 * replicas (a changelog check each) than through an fd. fstat of a not-yet-opened fd is a
 * lookup of its path; any other fd fop (write, ftruncate, fsync) opens it for real first.
 *
 * Names: before this client's unlink or rmdir of a name, a rename over it, or a rename of
 * a directory above it, every behind fd on that name (or under it) is opened for real, so an
 * open-then-unlinked file reads on (GlusterFS's open-behind does the same). The fds of a
 * rename's source follow it with their inode; reads by path wait for the rename in flight.
 * Another client's unlink or rename of a file open behind here is not seen: its reads answer
 * ENOENT, where a real fd would read on (the same trade as GlusterFS's open-behind).
 */
export class OpenBehind extends Xlator implements FopImpl {
  static override readonly description = 'Answers read-only opens at once and reads their files by path until an fd is needed';
  static override readonly options = {} as const;
  /** `volume set performance.open-behind on|off` puts the translator in the client graph or leaves it out. */
  static readonly volumeSwitch = { key: 'performance.open-behind', default: true, description: 'Answer read-only opens at once and read small files by path, one round trip per file; another client\'s unlink of a file open here makes its reads fail (on/off)' } as const;

  private readonly fdKey = new CtxKey<ObFd>(this.name);
  /**
   * Fds not open below yet (a real open in flight included): the ones a namespace change
   * must open first, found by their current path, a directory's taking every fd under it.
   */
  private readonly notOpened = new Set<Fd>();
  private openFds = 0;
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
    return {
      openFds: this.openFds, behindFds: this.notOpened.size, openedBehind: this.openedBehind, passedThrough: this.passedThrough,
      readfiles: this.readfiles, readsByFd: this.readsByFd, realOpens: { ...this.realOpens }, realOpenFailures: this.realOpenFailures,
      localFlushes: this.localFlushes, localReleases: this.localReleases, lookups: this.lookups,
    };
  }

  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const behind = (a.flags & O_ACCMODE) === O_RDONLY && (a.flags & (O_TRUNC | O_CREAT | O_DIRECT)) === 0;
    if (!behind) {
      await this.child.call('open', a, f);
      this.passedThrough++;
      this.track(a.fd, { real: true, readsByPath: 0, frame: f });
      return {};
    }
    this.openedBehind++;
    this.track(a.fd, { real: false, readsByPath: 0, frame: f });
    this.notOpened.add(a.fd);
    return {};
  }

  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const r = await this.child.call('create', a, f);
    this.track(a.fd, { real: true, readsByPath: 0, frame: f });
    return r;
  }

  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    const ob = this.fdOf(a.fd);
    let reason: OpenReason = 'fd-fop';
    if (isBehind(ob)) {
      if (ob.moving) await ob.moving.catch(() => undefined);
      // A real open may have started while waiting.
      if (isBehind(ob)) {
        const r = await this.readByPath(a.fd, ob, a, f);
        if (r) return r;
        reason = 'enosys';
      }
    }
    await this.realOpen(a.fd, ob, reason);
    this.readsByFd++;
    return this.child.call('read', a, f);
  }

  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    const ob = this.fdOf(a.fd);
    if (isBehind(ob)) {
      if (ob.moving) await ob.moving.catch(() => undefined);
      if (isBehind(ob)) {
        this.lookups++;
        const { iatt } = await this.child.call('lookup', { path: this.pathOf(a.fd, ob), inode: a.fd.inode }, f);
        return { iatt };
      }
    }
    await this.realOpen(a.fd, ob, 'fd-fop');
    return this.child.call('fstat', a, f);
  }

  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    await this.realOpen(a.fd, this.fdOf(a.fd), 'fd-fop');
    return this.child.call('write', a, f);
  }

  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    await this.realOpen(a.fd, this.fdOf(a.fd), 'fd-fop');
    return this.child.call('writev', a, f);
  }

  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    await this.realOpen(a.fd, this.fdOf(a.fd), 'fd-fop');
    return this.child.call('ftruncate', a, f);
  }

  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    await this.realOpen(a.fd, this.fdOf(a.fd), 'fd-fop');
    return this.child.call('fsync', a, f);
  }

  /** A close of an fd never opened below has nothing to flush. */
  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    const ob = this.fdOf(a.fd);
    if (isBehind(ob)) {
      this.localFlushes++;
      return {};
    }
    await this.realOpen(a.fd, ob, 'fd-fop');
    return this.child.call('flush', a, f);
  }

  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    const ob = this.fdOf(a.fd);
    a.fd.ctx.take(this.fdKey);
    this.openFds--;
    ob.released = true;
    this.notOpened.delete(a.fd);
    if (isBehind(ob)) {
      this.localReleases++;
      return {};
    }
    if (!ob.real) {
      try {
        await ob.opening;
      } catch {
        // The real open failed: nothing is open below.
        return {};
      }
    }
    return this.child.call('release', a, f);
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
   * first; fds on the source name itself stay behind and follow it with their inode.
   */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    if (a.from === a.to) return this.child.call('rename', a, f);
    const onSource = [...this.notOpened].filter((fd) => this.pathOf(fd) === a.from);
    // Reads by the source name wait from now on, until the rename is answered.
    const moved = onSource.filter((fd) => isBehind(this.fdOf(fd)));
    // A real open of the source already on its way uses the old name: let it land first.
    const landing = onSource.map((fd) => this.fdOf(fd).opening).filter((p) => p !== undefined).map((p) => p.catch(() => undefined));
    const renamed = (async () => {
      await Promise.all([this.openNamed(a.to, true), this.openUnder(a.from), ...landing]);
      const r = await this.child.call('rename', a, f);
      for (const fd of moved) {
        // Released meanwhile: nothing reads by its name any more.
        const ob = fd.ctx.get(this.fdKey);
        if (ob) ob.renamed = { from: fd.path, to: a.to };
      }
      return r;
    })();
    for (const fd of moved) this.fdOf(fd).moving = renamed;
    try {
      return await renamed;
    } finally {
      for (const fd of moved) {
        const ob = fd.ctx.get(this.fdKey);
        if (ob?.moving === renamed) ob.moving = undefined;
      }
    }
  }

  private track(fd: Fd, ob: ObFd): void {
    fd.ctx.set(this.fdKey, ob);
    this.openFds++;
  }

  private fdOf(fd: Fd): ObFd {
    const f = fd.ctx.get(this.fdKey);
    if (!f) throw FsError.of('EBADF', `fd on ${fd.path} is not open`);
    return f;
  }

  /** The name a read by path of fd uses now: its inode's, or the one a rename answered here gave it. */
  private pathOf(fd: Fd, ob = this.fdOf(fd)): string {
    const path = fd.path;
    if (!ob.renamed) return path;
    if (path === ob.renamed.from) return ob.renamed.to;
    // The inode's name has followed.
    ob.renamed = undefined;
    return path;
  }

  /** A read by path, with the read's frame; undefined when the child cannot read by path (the fd is opened for real). */
  private async readByPath(fd: Fd, ob: ObFd, a: FopArgs<'read'>, frame: Frame): Promise<FopReply<'read'> | undefined> {
    this.readfiles++;
    let r: FopReply<'readfile'>;
    try {
      r = await this.child.call('readfile', { path: this.pathOf(fd, ob), inode: fd.inode, offset: a.offset, size: a.size }, frame);
    } catch (e) {
      if (FsError.from(e).code !== 'ENOSYS') throw e;
      return undefined;
    }
    // A second read: a file longer than one read (the kernel reads a small file whole, in one
    // request, up to the size it knows). The next reads go through a real fd, opened meanwhile.
    if (++ob.readsByPath >= 2 && isBehind(ob) && !ob.released) {
      this.realOpen(fd, ob, 'sequential').catch((e: unknown) => {
        this.log.debug(`background open of ${fd.path} failed: ${FsError.from(e).code}`);
      });
    }
    return { data: r.data };
  }

  /**
   * Opens fd below when it is not yet, with its own flags: the open it delayed, so with that
   * open's frame, whichever fop needs it now. The child keeps its state in its own slot of
   * the same Fd.
   */
  private realOpen(fd: Fd, ob: ObFd, reason: OpenReason): Promise<void> {
    if (ob.real) return Promise.resolve();
    if (ob.opening) return ob.opening;
    this.realOpens[reason]++;
    const opening = (async () => {
      if (ob.moving) await ob.moving.catch(() => undefined);
      try {
        await this.child.call('open', { path: this.pathOf(fd, ob), flags: fd.flags, fd }, ob.frame);
        ob.real = true;
        this.notOpened.delete(fd);
      } catch (e) {
        this.realOpenFailures++;
        throw e;
      } finally {
        ob.opening = undefined;
      }
    })();
    ob.opening = opening;
    return opening;
  }

  /** Opens for real every behind fd on path (and, for a directory, under it) before the name goes. */
  private async openNamed(path: string, under: boolean): Promise<void> {
    const prefix = path + '/';
    await this.openAll([...this.notOpened].filter((fd) => {
      const p = this.pathOf(fd);
      return p === path || (under && p.startsWith(prefix));
    }));
  }

  /** Opens for real the behind fds under a directory about to be renamed. */
  private async openUnder(dir: string): Promise<void> {
    const prefix = dir + '/';
    await this.openAll([...this.notOpened].filter((fd) => this.pathOf(fd).startsWith(prefix)));
  }

  /**
   * Real opens of fds about to lose their name. One that fails (the file is already gone,
   * a brick is away) is logged and left behind: the namespace change goes on, as a real fd
   * opened earlier could not have stopped it either.
   */
  private async openAll(fds: Fd[]): Promise<void> {
    await Promise.all(fds.map((fd) => this.realOpen(fd, this.fdOf(fd), 'namespace').catch((e: unknown) => {
      this.log.debug(`open of ${fd.path} before a namespace change failed: ${FsError.from(e).code}`);
    })));
  }
}

registerXlator('performance/open-behind', OpenBehind);
