import { FsError } from '../../../lib/errors.js';
import type { EntryLockSpec, FopArgs, FopReply } from '../../../lib/fops.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

interface Waiter {
  owner: string;
  grant: () => void;
  timer: NodeJS.Timeout;
}

interface Held {
  owner: string;
  waiters: Waiter[];
}

/**
 * features/locks: named entry locks on directories, as distribute needs them to serialise
 * layout writes and renames of one name across clients. A lock waits (bounded by
 * lock-timeout) while another owner holds it; the locks of a connection that goes away
 * are dropped (clientGone). An xattrop may take a lock before it (trylock) or drop one after
 * it, so replicate's lock + pre-op and post-op + unlock are one request each.
 */
export class Locks extends Xlator implements FopImpl {
  static override readonly description = 'Entry locks held on the brick for cluster translators';
  static override readonly options = {
    'lock-timeout': { type: 'int', default: 30, min: 1, max: 3600, description: 'Seconds a lock request waits before EAGAIN' },
  } as const;

  private readonly held = new Map<string, Held>();

  override statedump(): Record<string, unknown> {
    return { entryLocks: [...this.held].map(([k, h]) => ({ key: k, owner: h.owner, waiting: h.waiters.length })) };
  }

  async entrylk(a: FopArgs<'entrylk'>): Promise<FopReply<'entrylk'>> {
    if (typeof a.path !== 'string' || typeof a.name !== 'string' || typeof a.owner !== 'string') {
      throw FsError.of('EINVAL', 'entrylk needs path, name and owner');
    }
    const key = `${a.path}\0${a.name}`;
    if (a.cmd === 'unlock') {
      if (!this.dropLock(key, a.owner)) throw FsError.of('EINVAL', 'unlock of a lock not held by this owner');
      return {};
    }
    if (a.cmd !== 'lock' && a.cmd !== 'trylock') throw FsError.of('EINVAL', `unknown entrylk cmd ${String(a.cmd)}`);
    if (this.tryTake(key, a.owner)) return {};
    const h = this.held.get(key)!;
    if (a.cmd === 'trylock') throw FsError.of('EAGAIN', 'entry lock is held');
    const timeoutMs = this.optNumber('lock-timeout') * 1000;
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        owner: a.owner,
        grant: resolve,
        timer: setTimeout(() => {
          h.waiters.splice(h.waiters.indexOf(w), 1);
          reject(FsError.of('EAGAIN', 'entry lock wait timed out'));
        }, timeoutMs),
      };
      h.waiters.push(w);
    });
    return {};
  }

  /**
   * A changelog update with the lock around it. Lock and update are taken in arrival order
   * (synchronously, before any await), so a later request on the same connection sees both.
   */
  async xattrop(a: FopArgs<'xattrop'>): Promise<FopReply<'xattrop'>> {
    const { lock, unlock, ...op } = a;
    if (!lock && !unlock) return this.children[0]!.call('xattrop', a);
    const lockKey = (spec: EntryLockSpec): string => {
      if (typeof spec.name !== 'string' || typeof spec.owner !== 'string') throw FsError.of('EINVAL', 'xattrop lock needs name and owner');
      return `${a.path}\0${spec.name}`;
    };
    const taking = lock && lockKey(lock);
    const dropping = unlock && lockKey(unlock);
    if (taking && !this.tryTake(taking, lock.owner)) throw FsError.of('EAGAIN', 'entry lock is held');
    let pending: Promise<FopReply<'xattrop'>>;
    try {
      pending = this.children[0]!.call('xattrop', op);
    } finally {
      // storage/posix applies an xattrop before its first await, so the counters are
      // changed by now: the lock can go before the reply, and a request this connection
      // sends next (the client's next transaction on the name) finds it free.
      if (dropping) this.dropLock(dropping, unlock.owner);
    }
    try {
      const r = await pending;
      return taking ? { ...r, locked: true } : r;
    } catch (e) {
      if (taking) this.dropLock(taking, lock.owner);
      throw e;
    }
  }

  /** Takes a free lock for owner; false when someone holds it. */
  private tryTake(key: string, owner: string): boolean {
    if (this.held.has(key)) return false;
    this.held.set(key, { owner, waiters: [] });
    return true;
  }

  /** Drops owner's lock (the next waiter gets it); false when owner does not hold it. */
  private dropLock(key: string, owner: string): boolean {
    const h = this.held.get(key);
    if (!h || h.owner !== owner) return false;
    this.handOver(key, h);
    return true;
  }

  /** Drops every lock of owners from a connection that is gone (owners are "clientId:..."). */
  override clientGone(clientId: string): void {
    super.clientGone(clientId);
    const mine = (owner: string): boolean => owner.startsWith(clientId + ':');
    for (const [key, h] of [...this.held]) {
      h.waiters = h.waiters.filter((w) => {
        if (!mine(w.owner)) return true;
        clearTimeout(w.timer);
        return false;
      });
      if (mine(h.owner)) this.handOver(key, h);
    }
  }

  private handOver(key: string, h: Held): void {
    const next = h.waiters.shift();
    if (!next) {
      this.held.delete(key);
      return;
    }
    clearTimeout(next.timer);
    h.owner = next.owner;
    next.grant();
  }
}

registerXlator('features/locks', Locks);
