import { type Frame } from '../../../lib/frame.js';
import { FsError } from '../../../lib/errors.js';
import { ENTRYLK_WHOLE_DIR, type FopArgs, type FopReply } from '../../../lib/fops.js';
import { registerXlator } from '../../../lib/registry.js';
import { Xlator, type FopImpl } from '../../../lib/xlator.js';

interface Waiter {
  name: string;
  owner: string;
  grant: () => void;
  timer: NodeJS.Timeout;
}

/** Whether locks of these two names on one directory exclude each other. */
function conflicts(a: string, b: string): boolean {
  if (a === b) return true;
  // The whole-directory lock excludes every entry name, not other internal names (inode).
  const entry = (n: string): boolean => !n.startsWith('\u0000');
  return (a === ENTRYLK_WHOLE_DIR && entry(b)) || (b === ENTRYLK_WHOLE_DIR && entry(a));
}

/**
 * features/locks: named entry locks on directories, as distribute needs them to serialise
 * layout writes and renames of one name across clients. A lock waits (bounded by
 * lock-timeout) while another owner holds it; the locks of a connection that goes away
 * are dropped (clientGone). An xattrop may take a lock before it (trylock) or drop one after
 * it, so replicate's lock + pre-op and post-op + unlock are one request each.
 * ENTRYLK_WHOLE_DIR locks every entry name of a directory at once (replicate's entry
 * self-heal); waiters are granted in arrival order per directory, so a whole-directory
 * request is not starved by a stream of name locks, nor they by it.
 */
export class Locks extends Xlator implements FopImpl {
  static override readonly description = 'Entry locks held on the brick for cluster translators';
  static override readonly options = {
    'lock-timeout': { type: 'int', default: 30, min: 1, max: 3600, description: 'Seconds a lock request waits before EAGAIN' },
  } as const;

  /** Held locks: directory, then name, then owner. */
  private readonly held = new Map<string, Map<string, string>>();
  /** Requests waiting, per directory, in arrival order. */
  private readonly waiting = new Map<string, Waiter[]>();

  override statedump(): Record<string, unknown> {
    return {
      entryLocks: [...this.held].flatMap(([dir, names]) => [...names].map(([name, owner]) => ({
        key: `${dir}\0${name}`, owner, waiting: (this.waiting.get(dir) ?? []).filter((w) => conflicts(w.name, name)).length,
      }))),
    };
  }

  async entrylk(a: FopArgs<'entrylk'>, f: Frame): Promise<FopReply<'entrylk'>> {
    if (typeof a.path !== 'string' || typeof a.name !== 'string' || typeof a.owner !== 'string') {
      throw FsError.of('EINVAL', 'entrylk needs path, name and owner');
    }
    if (a.cmd === 'unlock') {
      if (!this.dropLock(a.path, a.name, a.owner)) throw FsError.of('EINVAL', 'unlock of a lock not held by this owner');
      return {};
    }
    if (a.cmd !== 'lock' && a.cmd !== 'trylock') throw FsError.of('EINVAL', `unknown entrylk cmd ${String(a.cmd)}`);
    if (this.tryTake(a.path, a.name, a.owner)) return {};
    if (a.cmd === 'trylock') throw FsError.of('EAGAIN', 'entry lock is held');
    const dir = a.path;
    const timeoutMs = this.optNumber('lock-timeout') * 1000;
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        name: a.name,
        owner: a.owner,
        grant: resolve,
        timer: setTimeout(() => {
          const list = this.waiting.get(dir) ?? [];
          list.splice(list.indexOf(w), 1);
          if (list.length === 0) this.waiting.delete(dir);
          reject(FsError.of('EAGAIN', 'entry lock wait timed out'));
          // Requests behind this one may go now.
          this.wake(dir);
        }, timeoutMs),
      };
      const list = this.waiting.get(dir) ?? [];
      list.push(w);
      this.waiting.set(dir, list);
      // A client holding a lock in a burst (replicate's eager locks) lets it go when told.
      for (const [name, owner] of this.held.get(dir) ?? []) if (conflicts(name, a.name!)) this.lockContended(dir, name, owner);
    });
    return {};
  }

  /**
   * A changelog update with the lock around it. Lock and update are taken in arrival order
   * (synchronously, before any await), so a later request on the same connection sees both.
   */
  async xattrop(a: FopArgs<'xattrop'>, f: Frame): Promise<FopReply<'xattrop'>> {
    const { lock, unlock, ...op } = a;
    if (!lock && !unlock) return this.children[0]!.call('xattrop', a, f);
    for (const spec of [lock, unlock]) {
      if (spec && (typeof spec.name !== 'string' || typeof spec.owner !== 'string')) throw FsError.of('EINVAL', 'xattrop lock needs name and owner');
    }
    if (lock && !this.tryTake(a.path, lock.name, lock.owner)) throw FsError.of('EAGAIN', 'entry lock is held');
    let pending: Promise<FopReply<'xattrop'>>;
    try {
      pending = this.children[0]!.call('xattrop', op, f);
    } finally {
      // storage/posix applies an xattrop before its first await, so the counters are
      // changed by now: the lock can go before the reply, and a request this connection
      // sends next (the client's next transaction on the name) finds it free.
      if (unlock) this.dropLock(a.path, unlock.name, unlock.owner);
    }
    try {
      const r = await pending;
      return lock ? { ...r, locked: true } : r;
    } catch (e) {
      if (lock) this.dropLock(a.path, lock.name, lock.owner);
      throw e;
    }
  }

  /**
   * A create that starts a write burst: the burst's lock is taken first (trylock) and kept
   * only if storage/posix made the file and set the marks; without the lock the file is
   * created plain. Taken synchronously, in arrival order, as xattrop's.
   */
  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    const { burst, ...plain } = a;
    if (!burst) return this.children[0]!.call('create', a, f);
    if (typeof burst.lock?.name !== 'string' || typeof burst.lock.owner !== 'string') throw FsError.of('EINVAL', 'create burst lock needs name and owner');
    if (!this.tryTake(a.path, burst.lock.name, burst.lock.owner)) return this.children[0]!.call('create', plain, f);
    let r: FopReply<'create'>;
    try {
      r = await this.children[0]!.call('create', a, f);
    } catch (e) {
      this.dropLock(a.path, burst.lock.name, burst.lock.owner);
      throw e;
    }
    if (!r.burst) this.dropLock(a.path, burst.lock.name, burst.lock.owner);
    return r;
  }

  /** Whether name on dir is free of held locks and of conflicting requests waiting before (all waiting when `before` is undefined). */
  private free(dir: string, name: string, before?: Waiter): boolean {
    for (const h of this.held.get(dir)?.keys() ?? []) if (conflicts(h, name)) return false;
    for (const w of this.waiting.get(dir) ?? []) {
      if (w === before) break;
      if (conflicts(w.name, name)) return false;
    }
    return true;
  }

  private take(dir: string, name: string, owner: string): void {
    const names = this.held.get(dir) ?? new Map<string, string>();
    names.set(name, owner);
    this.held.set(dir, names);
  }

  /** Takes a free lock for owner; false when someone holds it, or a conflicting request waits for it. */
  private tryTake(dir: string, name: string, owner: string): boolean {
    if (!this.free(dir, name)) return false;
    this.take(dir, name, owner);
    return true;
  }

  /** Drops owner's lock (waiters it held up get theirs); false when owner does not hold it. */
  private dropLock(dir: string, name: string, owner: string): boolean {
    const names = this.held.get(dir);
    if (names?.get(name) !== owner) return false;
    names.delete(name);
    if (names.size === 0) this.held.delete(dir);
    this.wake(dir);
    return true;
  }

  /** Grants, in arrival order, every waiting request of a directory that nothing holds up now. */
  private wake(dir: string): void {
    const list = this.waiting.get(dir);
    if (!list) return;
    for (const w of [...list]) {
      if (!this.free(dir, w.name, w)) continue;
      list.splice(list.indexOf(w), 1);
      clearTimeout(w.timer);
      this.take(dir, w.name, w.owner);
      w.grant();
    }
    if (list.length === 0) this.waiting.delete(dir);
  }

  /** Drops every lock of owners from a connection that is gone (owners are "clientId:..."). */
  override clientGone(clientId: string): void {
    super.clientGone(clientId);
    const mine = (owner: string): boolean => owner.startsWith(clientId + ':');
    const touched = new Set<string>();
    for (const [dir, list] of [...this.waiting]) {
      const kept = list.filter((w) => {
        if (!mine(w.owner)) return true;
        clearTimeout(w.timer);
        return false;
      });
      if (kept.length === list.length) continue;
      touched.add(dir);
      if (kept.length) this.waiting.set(dir, kept);
      else this.waiting.delete(dir);
    }
    for (const [dir, names] of [...this.held]) {
      for (const [name, owner] of [...names]) {
        if (!mine(owner)) continue;
        names.delete(name);
        touched.add(dir);
      }
      if (names.size === 0) this.held.delete(dir);
    }
    for (const dir of touched) this.wake(dir);
  }
}

registerXlator('features/locks', Locks);
