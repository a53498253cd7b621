import { FsError } from '../../../lib/errors.js';

/** What the gate keeps of an open fd, in its owner's per-fd state (storage/posix's slot on the Fd). */
export interface GatedFd {
  /** The file it is open on moved to another brick: every fop through it answers ESTALE. */
  moved?: boolean;
}

interface Frozen {
  owner: string;
  thawed: Promise<void>;
  release: () => void;
  /** Thaws it once the freeze has lasted the gate's freeze timeout. */
  expiry?: NodeJS.Timeout;
}

/**
 * The brick's side of moving a file to another brick (rebalance), by inode number:
 * writes in flight are counted so a freeze can wait for them; a watched inode notes any
 * change (the mover copies again); a frozen inode holds changes until thaw or commit; the
 * fds still open on a committed (moved) file answer ESTALE, which sends the client to
 * look the name up again and reopen it where the data now lives. Moved is kept on each fd
 * (GatedFd), not per inode: the inode number is reused by the next file the brick creates.
 * Costs nothing on the hot path beyond two map operations per write.
 * A freeze lasts at most freezeTimeoutMs (storage/posix's freeze-timeout): then the inode is
 * thawed by itself, its watch marked dirty (a new freeze says so), the mover may no longer
 * commit, and onExpire is told (the brick logs it).
 */
export class MigrationGate {
  constructor(
    private readonly freezeTimeoutMs: () => number = () => 120_000,
    private readonly onExpire: (ino: number, owner: string, ms: number) => void = () => {},
  ) {}

  private readonly inflight = new Map<number, number>();
  private readonly drained = new Map<number, Array<() => void>>();
  private readonly watched = new Map<number, { owner: string; dirty: boolean }>();
  private readonly frozen = new Map<number, Frozen>();
  /** Fds marked moved and not yet forgotten. */
  private movedFds = 0;

  /** True while some inode is watched or frozen (path fops then look up their inode). */
  get busy(): boolean {
    return this.watched.size > 0 || this.frozen.size > 0;
  }

  /** True while the inode is watched or frozen: a copy of its data handed out now may soon be the old brick's. */
  moving(ino: number): boolean {
    return this.watched.has(ino) || this.frozen.has(ino);
  }

  /** Before any fd fop: a moved file's data is stale. */
  checkFd(fd: GatedFd): void {
    if (fd.moved) throw FsError.of('ESTALE', 'the file was moved to another brick');
  }

  /** The file open on these fds moved away. */
  markMoved(fds: Iterable<GatedFd>): void {
    for (const fd of fds) {
      if (fd.moved) continue;
      fd.moved = true;
      this.movedFds++;
    }
  }

  /** fd is being closed. */
  forgetFd(fd: GatedFd): void {
    if (fd.moved) this.movedFds--;
    fd.moved = undefined;
  }

  /**
   * Runs a change to an inode: waits while it is frozen, refuses it once moved (through
   * fd), counts it in flight (a freeze waits for it), and marks a watched inode dirty.
   */
  async change<T>(ino: number, fn: () => Promise<T>, fd?: GatedFd): Promise<T> {
    if (this.frozen.size > 0) {
      for (let f = this.frozen.get(ino); f; f = this.frozen.get(ino)) await f.thawed;
    }
    if (fd !== undefined) this.checkFd(fd);
    this.inflight.set(ino, (this.inflight.get(ino) ?? 0) + 1);
    const w = this.watched.get(ino);
    if (w) w.dirty = true;
    try {
      return await fn();
    } finally {
      const n = this.inflight.get(ino)! - 1;
      if (n > 0) this.inflight.set(ino, n);
      else {
        this.inflight.delete(ino);
        for (const wake of this.drained.get(ino) ?? []) wake();
        this.drained.delete(ino);
      }
    }
  }

  watch(ino: number, owner: string): void {
    this.watched.set(ino, { owner, dirty: false });
  }

  /** Freezes an inode once its changes in flight are done; says whether it changed since watch. */
  async freeze(ino: number, owner: string): Promise<{ dirty: boolean }> {
    const cur = this.frozen.get(ino);
    if (cur && cur.owner !== owner) throw FsError.of('EBUSY', 'the file is being moved by another rebalance');
    if (!cur) {
      let release!: () => void;
      const thawed = new Promise<void>((r) => { release = r; });
      const f: Frozen = { owner, thawed, release };
      const ms = this.freezeTimeoutMs();
      f.expiry = setTimeout(() => this.expire(ino, f, ms), ms);
      f.expiry.unref();
      this.frozen.set(ino, f);
    }
    while (this.inflight.has(ino)) {
      await new Promise<void>((r) => {
        const list = this.drained.get(ino) ?? [];
        list.push(r);
        this.drained.set(ino, list);
      });
    }
    const w = this.watched.get(ino);
    return { dirty: w ? w.dirty || w.owner !== owner : true };
  }

  /** Releases a frozen inode. */
  thaw(ino: number, owner: string): void {
    const f = this.frozen.get(ino);
    if (f && f.owner !== owner) throw FsError.of('EBUSY', 'the file is frozen by another rebalance');
    const w = this.watched.get(ino);
    if (w?.owner === owner) this.watched.delete(ino);
    if (f) {
      this.frozen.delete(ino);
      clearTimeout(f.expiry);
      f.release();
    }
  }

  /** A freeze that lasted its bound: the writes it holds go on, and the mover finds it gone. */
  private expire(ino: number, f: Frozen, ms: number): void {
    if (this.frozen.get(ino) !== f) return;
    this.frozen.delete(ino);
    const w = this.watched.get(ino);
    if (w) w.dirty = true;
    f.release();
    this.onExpire(ino, f.owner, ms);
  }

  /** True when owner holds a freeze on ino. */
  holds(ino: number, owner: string): boolean {
    return this.frozen.get(ino)?.owner === owner;
  }

  /** Drops every watch and freeze of owners from a connection that went away. */
  ownerGone(clientId: string): void {
    const mine = (owner: string): boolean => owner.startsWith(clientId + ':');
    for (const [ino, w] of [...this.watched]) if (mine(w.owner)) this.watched.delete(ino);
    for (const [ino, f] of [...this.frozen]) {
      if (!mine(f.owner)) continue;
      this.frozen.delete(ino);
      clearTimeout(f.expiry);
      f.release();
    }
  }

  statedump(): Record<string, unknown> {
    return { inflight: this.inflight.size, watched: this.watched.size, frozen: this.frozen.size, movedFds: this.movedFds };
  }
}
