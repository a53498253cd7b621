import { FsError } from '../../../../lib/errors.js';
import { CtxKey, type Fd } from '../../../../lib/inode.js';

/**
 * Replicate's slot on an open fd. The same Fd object goes to every replica, each keeping its
 * own slot; this one says which of them the open reached. The file's path is the fd's own
 * (it follows renames through the inode).
 */
export interface ReplicaFd {
  /** Replicas the fd is open on; a write's burst blames those it is not open on. */
  openOn: number[];
  /** Replica reads go to; undefined when no copy can be trusted (split-brain: EIO). */
  readChild: number | undefined;
  /** Replica fstat answers from (see attrReplica). */
  attrChild: number;
}

/** The fds open through one replicate instance: its slot on each. */
export class ReplicaFds {
  private readonly key: CtxKey<ReplicaFd>;
  /** Fds open here, for the statedump. */
  count = 0;

  constructor(private readonly owner: string) {
    this.key = new CtxKey<ReplicaFd>(owner);
  }

  of(fd: Fd): ReplicaFd {
    const r = fd.ctx.get(this.key);
    if (!r) throw FsError.of('EBADF', `${this.owner}: fd on ${fd.path} is not open here`);
    return r;
  }

  /** Hangs replicate's state on an fd the replicas in r.openOn opened. */
  opened(fd: Fd, r: ReplicaFd): void {
    if (!fd.ctx.has(this.key)) this.count++;
    fd.ctx.set(this.key, r);
  }

  /** The fd was released: its slot goes. */
  released(fd: Fd): void {
    if (fd.ctx.take(this.key)) this.count--;
  }
}
