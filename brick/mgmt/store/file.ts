/**
 * The embedded configuration store: every key in one JSON file (DIR/config-store.json),
 * rewritten whole and atomically on each change, with the global revision counter in it.
 *
 * It is for one host and one process: watches, leases and locks live in that process's
 * memory, so a second process writing the same file would go unseen by them and lose
 * changes. DIR/config-store.lock (the owner's pid, created with link(2), which fails when
 * it exists) refuses a second live process; a lock file whose pid is dead is taken over.
 * Inside the owning process, every FileConfigStore of one directory is a handle on one
 * shared state, so two of them behave as two clients of one etcd.
 *
 * Leases do not outlive their process: keys put with a lease are dropped when the file is
 * loaded. A lease is renewed by a timer every third of its ttl; a renewal that finds the
 * deadline passed (the event loop stalled that long) loses the lease, as etcd would.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { FsError } from '../../../lib/errors.js';
import type { ConfigStore, StoreEvent, StoreLease, StoreLock, StoreWatch, Versioned } from '../config-store.js';
import { pidAlive, readPidfile } from '../bricks.js';
import { writeFileAtomic } from '../store.js';

const DATA_FILE = 'config-store.json';
const LOCK_FILE = 'config-store.lock';

interface Entry {
  value: string;
  revision: number;
  /** The lease the key goes with. */
  lease?: string;
}

interface DataFile {
  format: 1;
  revision: number;
  keys: Record<string, Entry>;
}

interface Watcher {
  prefix: string;
  fn: (e: StoreEvent) => void;
}

interface LeaseState {
  id: string;
  ttlMs: number;
  deadline: number;
  renew?: NodeJS.Timeout;
  expire?: NodeJS.Timeout;
  lost: Array<() => void>;
}

interface LockWaiter {
  holder: object;
  grant: () => void;
}

interface LockState {
  holder: object;
  queue: LockWaiter[];
}

/** Takes DIR/config-store.lock for this process, or throws EBUSY naming the live owner. */
async function takeLockFile(dir: string): Promise<string> {
  const file = path.join(dir, LOCK_FILE);
  const tmp = `${file}.${process.pid}.${randomUUID()}`;
  await fsp.writeFile(tmp, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // link(2) publishes a file whose content is already complete, or fails with EEXIST.
        await fsp.link(tmp, file);
        return file;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = readPidfile(file);
      if (owner === process.pid) return file;
      if (owner !== null && pidAlive(owner)) {
        throw new FsError('EBUSY', `configuration store ${dir} is in use by process ${owner} (${file}); ` +
          'the file store serves one process: stop that daemon first, or give another state directory');
      }
      if (attempt > 2) throw new FsError('EBUSY', `cannot take ${file}: it keeps coming back; is another daemon starting?`);
      // Its owner died without removing it.
      await fsp.rm(file, { force: true });
    }
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

function checkData(v: unknown, file: string): DataFile {
  const f = v as Partial<DataFile> | null;
  const ok = !!f && typeof f === 'object' && f.format === 1 && Number.isSafeInteger(f.revision) &&
    !!f.keys && typeof f.keys === 'object' &&
    Object.values(f.keys).every((e) => typeof e?.value === 'string' && Number.isSafeInteger(e.revision) && e.revision > 0);
  if (!ok) throw new Error(`${file} is damaged; restore it from a backup or move it away to start empty`);
  return f as DataFile;
}

/** The state of one directory, shared by every handle this process has open on it. */
class Backend {
  private revision = 0;
  private keys = new Map<string, Entry>();
  private readonly watchers = new Set<Watcher>();
  private readonly leases = new Map<string, LeaseState>();
  private readonly locks = new Map<string, LockState>();
  /** Changes run one at a time, each persisted before the next reads. */
  private tail: Promise<unknown> = Promise.resolve();
  handles = 0;

  private constructor(readonly dir: string, private readonly lockFile: string) {}

  static async open(dir: string): Promise<Backend> {
    await fsp.mkdir(dir, { recursive: true });
    const lockFile = await takeLockFile(dir);
    const b = new Backend(dir, lockFile);
    try {
      await b.load();
    } catch (e) {
      await b.releaseLockFile();
      throw e;
    }
    return b;
  }

  private get file(): string { return path.join(this.dir, DATA_FILE); }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new Error(`${this.file} is not valid JSON (${(e as Error).message}); restore it from a backup or move it away to start empty`);
    }
    const data = checkData(parsed, this.file);
    this.revision = data.revision;
    const keys = new Map(Object.entries(data.keys));
    // The leases died with the process that held them.
    const orphans = [...keys].filter(([, e]) => e.lease !== undefined).map(([k]) => k);
    if (orphans.length > 0) {
      for (const k of orphans) keys.delete(k);
      await this.persist(keys, this.revision + 1);
    } else {
      this.keys = keys;
    }
  }

  private async persist(keys: Map<string, Entry>, revision: number): Promise<void> {
    const sorted = [...keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const data: DataFile = { format: 1, revision, keys: Object.fromEntries(sorted) };
    // Volume definitions hold the volumes' credentials: root's only.
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, 1)}\n`, 0o600);
    // Only once on disk: memory never runs ahead of what a restart would see.
    this.keys = keys;
    this.revision = revision;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  private emit(events: StoreEvent[]): void {
    for (const e of events) {
      for (const w of [...this.watchers]) {
        if (!e.key.startsWith(w.prefix) || !this.watchers.has(w)) continue;
        try {
          w.fn(e);
        } catch { /* a watcher's failure is its own; the others still hear of the change */ }
      }
    }
  }

  get(key: string): Versioned | undefined {
    const e = this.keys.get(key);
    return e && { key, value: e.value, revision: e.revision };
  }

  list(prefix: string): Versioned[] {
    return [...this.keys]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, e]) => ({ key, value: e.value, revision: e.revision }));
  }

  putIf(key: string, value: string, expected: number, lease?: string): Promise<boolean> {
    return this.serial(async () => {
      if ((this.keys.get(key)?.revision ?? 0) !== expected) return false;
      if (lease !== undefined && !this.leases.has(lease)) throw new FsError('ENOENT', `lease ${lease} has expired or was revoked`);
      const revision = this.revision + 1;
      const next = new Map(this.keys);
      next.set(key, { value, revision, ...(lease === undefined ? {} : { lease }) });
      await this.persist(next, revision);
      this.emit([{ key, value, revision }]);
      return true;
    });
  }

  removeIf(key: string, expected: number): Promise<boolean> {
    return this.serial(async () => {
      const cur = this.keys.get(key);
      if (!cur || cur.revision !== expected) return false;
      await this.removeKeys([key]);
      return true;
    });
  }

  /** Removes keys in one revision (as etcd's lease revoke does); call inside serial(). */
  private async removeKeys(keys: string[]): Promise<void> {
    const present = keys.filter((k) => this.keys.has(k));
    if (present.length === 0) return;
    const revision = this.revision + 1;
    const next = new Map(this.keys);
    for (const k of present) next.delete(k);
    await this.persist(next, revision);
    this.emit(present.map((key) => ({ key, revision })));
  }

  watch(w: Watcher): () => void {
    this.watchers.add(w);
    return () => { this.watchers.delete(w); };
  }

  grantLease(ttlMs: number): LeaseState {
    const st: LeaseState = { id: randomUUID(), ttlMs, deadline: Date.now() + ttlMs, lost: [] };
    st.renew = setInterval(() => {
      if (Date.now() > st.deadline) this.expireLease(st);
      else st.deadline = Date.now() + ttlMs;
    }, Math.max(1, Math.floor(ttlMs / 3)));
    st.expire = this.expiryTimer(st);
    this.leases.set(st.id, st);
    return st;
  }

  private expiryTimer(st: LeaseState): NodeJS.Timeout {
    return setTimeout(() => {
      if (Date.now() >= st.deadline) this.expireLease(st);
      else st.expire = this.expiryTimer(st);
    }, Math.max(1, st.deadline - Date.now()));
  }

  /** Stops renewing: the lease expires at its deadline (its holder went away without revoking). */
  stopRenewing(st: LeaseState): void {
    clearInterval(st.renew);
  }

  private expireLease(st: LeaseState): void {
    if (!this.leases.has(st.id)) return;
    void this.dropLease(st).catch(() => undefined);
    for (const fn of st.lost.splice(0)) {
      try {
        fn();
      } catch { /* the holder's handler failing changes nothing here */ }
    }
  }

  /** Forgets a lease and removes its keys (revoke, expiry). */
  dropLease(st: LeaseState): Promise<void> {
    if (!this.leases.delete(st.id)) return Promise.resolve();
    clearInterval(st.renew);
    clearTimeout(st.expire);
    return this.serial(async () => {
      const keys = [...this.keys].filter(([, e]) => e.lease === st.id).map(([k]) => k);
      await this.removeKeys(keys);
    });
  }

  lock(name: string, holder: object, waitMs: number): Promise<void> {
    const cur = this.locks.get(name);
    if (!cur) {
      this.locks.set(name, { holder, queue: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: LockWaiter = {
        holder,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const q = this.locks.get(name)?.queue;
        const i = q ? q.indexOf(waiter) : -1;
        if (i >= 0) q!.splice(i, 1);
        reject(new FsError('EBUSY', `lock ${name} is still held after ${waitMs} ms; another operation is in progress, try again`));
      }, Math.max(0, waitMs));
      cur.queue.push(waiter);
    });
  }

  /** Gives the lock to the next waiter, or frees it; a no-op unless holder holds it. */
  unlock(name: string, holder: object): void {
    const cur = this.locks.get(name);
    if (!cur || cur.holder !== holder) return;
    const next = cur.queue.shift();
    if (!next) {
      this.locks.delete(name);
      return;
    }
    cur.holder = next.holder;
    next.grant();
  }

  /** Once the last handle closed: every timer stopped, the lock file removed. */
  async shutdown(): Promise<void> {
    for (const st of this.leases.values()) {
      clearInterval(st.renew);
      clearTimeout(st.expire);
    }
    this.leases.clear();
    this.watchers.clear();
    await this.tail;
    await this.releaseLockFile();
  }

  private async releaseLockFile(): Promise<void> {
    if (readPidfile(this.lockFile) === process.pid) await fsp.rm(this.lockFile, { force: true });
  }
}

/** Open backends by directory; closing is the promise of a backend still shutting down. */
const open = new Map<string, Promise<Backend>>();
const closing = new Map<string, Promise<void>>();

async function acquire(dir: string): Promise<Backend> {
  let p = open.get(dir);
  if (!p) {
    const before = closing.get(dir) ?? Promise.resolve();
    p = before.then(() => Backend.open(dir));
    open.set(dir, p);
    p.catch(() => { if (open.get(dir) === p) open.delete(dir); });
  }
  const b = await p;
  b.handles++;
  return b;
}

function release(b: Backend): Promise<void> {
  if (--b.handles > 0) return Promise.resolve();
  open.delete(b.dir);
  const done = b.shutdown().finally(() => { if (closing.get(b.dir) === done) closing.delete(b.dir); });
  closing.set(b.dir, done);
  return done;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('a key is a non-empty string');
}

function checkRevision(expected: unknown): asserts expected is number {
  if (!Number.isSafeInteger(expected) || (expected as number) < 0) throw new TypeError('an expected revision is an integer >= 0');
}

/** The embedded ConfigStore: one JSON file in dir, served to this process only. */
export class FileConfigStore implements ConfigStore {
  readonly dir: string;
  private readonly backend: Promise<Backend>;
  private closed = false;
  private readonly watches = new Set<() => void>();
  private readonly leases = new Set<LeaseState>();
  /** Locks this handle holds, each call its own holder (a handle cannot take a lock twice). */
  private readonly held = new Map<object, string>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.backend = acquire(this.dir);
    // A failed open is reported by the first call; it must not also be an unhandled rejection.
    this.backend.catch(() => undefined);
  }

  /** Resolves once the store is open (the lock file taken, the file read); rejects like every call would. */
  async ready(): Promise<void> {
    await this.b();
  }

  private async b(): Promise<Backend> {
    if (this.closed) throw new Error(`configuration store ${this.dir} is closed`);
    return this.backend;
  }

  async get(key: string): Promise<Versioned | undefined> {
    checkKey(key);
    return (await this.b()).get(key);
  }

  async list(prefix: string): Promise<Versioned[]> {
    if (typeof prefix !== 'string') throw new TypeError('a prefix is a string');
    return (await this.b()).list(prefix);
  }

  async putIf(key: string, value: string, expected: number, lease?: StoreLease): Promise<boolean> {
    checkKey(key);
    checkRevision(expected);
    if (typeof value !== 'string') throw new TypeError('a value is a string');
    return (await this.b()).putIf(key, value, expected, lease?.id);
  }

  async removeIf(key: string, expected: number): Promise<boolean> {
    checkKey(key);
    checkRevision(expected);
    return (await this.b()).removeIf(key, expected);
  }

  async watch(prefix: string, fn: (e: StoreEvent) => void): Promise<StoreWatch> {
    if (typeof prefix !== 'string') throw new TypeError('a prefix is a string');
    const stop = (await this.b()).watch({ prefix, fn });
    this.watches.add(stop);
    return {
      close: async () => {
        this.watches.delete(stop);
        stop();
      },
    };
  }

  async lease(ttlMs: number): Promise<StoreLease> {
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new TypeError('a lease ttl is a positive number of milliseconds');
    const b = await this.b();
    const st = b.grantLease(ttlMs);
    this.leases.add(st);
    return {
      id: st.id,
      onLost: (fn) => { st.lost.push(fn); },
      revoke: async () => {
        this.leases.delete(st);
        st.lost.length = 0;
        await b.dropLease(st);
      },
    };
  }

  async lock(name: string, waitMs: number): Promise<StoreLock> {
    checkKey(name);
    const b = await this.b();
    const holder = {};
    await b.lock(name, holder, waitMs);
    if (this.closed) {
      b.unlock(name, holder);
      throw new Error(`configuration store ${this.dir} is closed`);
    }
    this.held.set(holder, name);
    return {
      release: async () => {
        if (!this.held.delete(holder)) return;
        b.unlock(name, holder);
      },
    };
  }

  /**
   * Stops this handle: its watches end, its locks are released, its leases are no longer
   * renewed (their keys go when the ttl runs out, or at once when this was the last handle).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let b: Backend;
    try {
      b = await this.backend;
    } catch {
      return;
    }
    for (const stop of this.watches) stop();
    this.watches.clear();
    for (const [holder, name] of this.held) b.unlock(name, holder);
    this.held.clear();
    for (const st of this.leases) b.stopRenewing(st);
    this.leases.clear();
    await release(b);
  }
}
