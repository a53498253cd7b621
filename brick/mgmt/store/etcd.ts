/**
 * The configuration store in etcd (v3 API, through the etcd3 client over gRPC): the store
 * of a pool of hosts, as glusterd2 kept its own.
 *
 * Layout, after glusterd2: every key of the pool lives under one prefix (glusterd2 used
 * "gluster-<cluster id>/"; ours defaults to "brickfs/", etcd://H:P/PREFIX chooses another),
 * so one etcd can serve several pools and a pool's keys are one range. Under it:
 *
 *   PREFIX kv/<key>                  the caller's keys (what get/list/watch see)
 *   PREFIX locks/<name>/<lease id>   one key per contender for a lock (see lock()), apart
 *                                    from the caller's keys so that list('') never shows them
 *
 * What is taken from glusterd2 and what is not:
 * - Liveness is a lease kept alive by the client (glusterd2's session, TTL 30 s, holding
 *   "alive/<peer id>"); a lease whose renewal stops reaching etcd is reported lost, here as
 *   soon as a whole TTL passes without a renewal answered (etcd3 alone waits 2 TTLs).
 * - The operation lock is etcd's concurrency.Mutex recipe (glusterd2's transaction/lock.go:
 *   "locks/" prefix, its own 10 s lease, a bounded wait that ends in "another transaction
 *   is in progress"): each contender puts a key with its lease, and the one with the lowest
 *   create revision holds the lock; the others each watch the key just before theirs for
 *   its deletion, so waiters are served in arrival order and a dead holder's key goes with
 *   its lease.
 * - Changes are conditional on the revision read: a transaction comparing the key's
 *   mod_revision (create_revision 0 for "absent"). glusterd2 mostly wrote unconditionally
 *   under its cluster lock; here two daemons changing one key cannot both win even without it.
 * - Watches start at the revision of a read made first (glusterd2's WithRev), so nothing
 *   between the caller's last read and the watch is missed, and etcd3 resumes from the last
 *   revision seen after a reconnection. A watch etcd cancels (that revision compacted away
 *   meanwhile) starts again from now, and the caller is told to read everything again.
 * - Every call has a deadline (glusterd2: 5 s on get/put/delete), so a dead or unreachable
 *   etcd is an error (ENOTCONN or ETIMEDOUT, naming the endpoints) rather than a hang. Such
 *   a failure of putIf/removeIf may or may not have been applied: re-read.
 */
import os from 'node:os';
import etcd3 from 'etcd3';
import type { Etcd3, IKeyValue, IWatchResponse, Lease, Namespace, Watcher } from 'etcd3';
import { FsError } from '../../../lib/errors.js';
import { Logger } from '../../../lib/log.js';
import type { ConfigStore, StoreEvent, StoreLease, StoreLock, StoreWatch, Versioned } from '../config-store.js';
import { ETCD_DEFAULT_PREFIX } from './url.js';

const log = new Logger('config-store:etcd');

export interface EtcdStoreOptions {
  /** Key prefix of the pool (default 'brickfs/'); a '/' is added when missing. */
  prefix?: string;
  /** Deadline of one request to etcd (default 5000 ms, glusterd2's). */
  opTimeoutMs?: number;
  /** TTL of the lease behind each held lock (default 10000 ms, glusterd2's lockTTL). */
  lockTtlMs?: number;
  /**
   * Reach etcd over TLS, presenting this certificate (etcd's --client-cert-auth) and trusting
   * the CA's (the host's certificate directory under secure-access, lib/tls.ts). gRPC checks
   * etcd's certificate names the endpoint's address (subjectAltName).
   */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
}

/** host:port of an endpoint given as host:port, http://host:port or https://host:port (the scheme is the store's tls option). */
function normalizeEndpoint(e: string): string {
  const s = e.trim();
  const hp = s.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (!/^(\[[0-9A-Fa-f:.%\w-]+\]|[A-Za-z0-9.-]+):\d+$/.test(hp)) throw new Error(`etcd endpoint ${JSON.stringify(e)} is not HOST:PORT`);
  return hp;
}

function ctorName(e: unknown): string {
  return (e as { constructor?: { name?: string } } | null)?.constructor?.name ?? '';
}

/** A revision as etcd3 gives it (int64 as a decimal string) as a number (exact below 2^53). */
function rev(s: string | number | undefined): number {
  return Number(s ?? 0);
}

function checkRevision(what: string, expected: number): void {
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new FsError('EINVAL', `${what}: expected revision ${expected} is not a revision (0 for an absent key)`);
  }
}

export class EtcdConfigStore implements ConfigStore {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  private readonly opTimeoutMs: number;
  private readonly lockTtlMs: number;
  private readonly client: Etcd3;
  /** The caller's keys. */
  private readonly ns: Namespace;
  /** The lock contenders' keys. */
  private readonly lockNs: Namespace;
  private readonly leases = new Set<EtcdLease>();
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(endpoints: readonly string[], options: EtcdStoreOptions = {}) {
    if (endpoints.length === 0) throw new Error('the etcd store needs at least one endpoint');
    this.endpoints = endpoints.map(normalizeEndpoint);
    const p = options.prefix ?? ETCD_DEFAULT_PREFIX;
    this.prefix = p === '' || p.endsWith('/') ? p : `${p}/`;
    this.opTimeoutMs = options.opTimeoutMs ?? 5000;
    this.lockTtlMs = options.lockTtlMs ?? 10_000;
    const opTimeoutMs = this.opTimeoutMs;
    this.client = new etcd3.Etcd3({
      hosts: this.endpoints.map((e) => `${options.tls ? 'https' : 'http'}://${e}`),
      ...(options.tls ? { credentials: { rootCertificate: options.tls.ca, privateKey: options.tls.key, certChain: options.tls.cert } } : {}),
      dialTimeout: opTimeoutMs,
      // Unary calls get a deadline; streams (watch, lease keepalive) live on, and gRPC's
      // keepalive pings find a peer that went away without closing the connection.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opTimeoutMs }),
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5000 },
    });
    this.ns = this.client.namespace(`${this.prefix}kv/`);
    this.lockNs = this.client.namespace(`${this.prefix}locks/`);
  }

  /** How errors name this store. */
  get where(): string {
    return `config store etcd://${this.endpoints.join(',')}/${this.prefix}`;
  }

  async get(key: string): Promise<Versioned | undefined> {
    const res = await this.call('get', key, () => this.ns.get(key).exec());
    const kv = res.kvs[0];
    return kv ? versioned(key, kv) : undefined;
  }

  async list(prefix: string): Promise<Versioned[]> {
    const res = await this.call('list', prefix, () => this.ns.getAll().prefix(prefix).sort('Key', 'Ascend').exec());
    return res.kvs.map((kv) => versioned(kv.key.toString('utf8'), kv));
  }

  async putIf(key: string, value: string, expected: number, lease?: StoreLease): Promise<boolean> {
    checkRevision(`putIf ${key}`, expected);
    const put = this.ns.put(key).value(value);
    if (lease) put.lease(this.leaseOf(lease).id);
    const res = await this.call('putIf', key, () =>
      (expected === 0 ? this.ns.if(key, 'Create', '==', 0) : this.ns.if(key, 'Mod', '==', expected)).then(put).commit(),
    );
    return res.succeeded;
  }

  async removeIf(key: string, expected: number): Promise<boolean> {
    checkRevision(`removeIf ${key}`, expected);
    if (expected === 0) return false; // an absent key cannot be removed
    const res = await this.call('removeIf', key, () =>
      this.ns.if(key, 'Mod', '==', expected).then(this.ns.delete().key(key)).commit(),
    );
    return res.succeeded;
  }

  async watch(prefix: string, fn: (e: StoreEvent) => void, onGap?: () => void): Promise<StoreWatch> {
    const w = new EtcdWatch(this, prefix);
    await this.startWatcher(w, fn, onGap);
    this.watches.add(w);
    return w;
  }

  /** Gives w an etcd watcher from the store's revision now on; its cancellation by etcd starts another. */
  private async startWatcher(w: EtcdWatch, fn: (e: StoreEvent) => void, onGap?: () => void): Promise<void> {
    const { prefix } = w;
    // The watch starts right after the store's revision now, as read here.
    const head = await this.call('watch', prefix, () => this.ns.getAll().prefix(prefix).limit(1).exec());
    const watcher = this.ns
      .watch()
      .prefix(prefix)
      .startRevision(String(rev(head.header.revision) + 1))
      .watcher();
    watcher.on('data', (res: IWatchResponse) => {
      for (const ev of res.events) {
        const e: StoreEvent = { key: ev.kv.key.toString('utf8'), revision: rev(ev.kv.mod_revision) };
        if (ev.type === 'Put') e.value = ev.kv.value.toString('utf8');
        try {
          fn(e);
        } catch (err) {
          log.error(`watch ${prefix}: the callback threw on ${e.key}@${e.revision}: ${(err as Error)?.stack ?? String(err)}`);
        }
      }
    });
    watcher.on('disconnected', (err: Error) => log.debug(`watch ${prefix}: disconnected (${err?.message}); reconnecting`));
    let up = false;
    // etcd cancels a watch it cannot resume (its next revision compacted away while this
    // client was cut off): the changes in between are lost, so watch on from now and say so.
    watcher.on('error', (err: Error) => {
      if (!up || w.closed) return; // before 'connected', connected() below has it
      log.warn(`${this.where}: watch ${prefix} cancelled by etcd (${err?.message}); watching again from now, and reading everything again`);
      watcher.removeAllListeners('data');
      void watcher.cancel().catch(() => undefined);
      const again = (delayMs: number): void => {
        if (w.closed || this.closed) return;
        this.startWatcher(w, fn, onGap).then(
          () => onGap?.(),
          (e: Error) => {
            log.debug(`watch ${prefix}: ${e.message}; trying again`);
            setTimeout(() => again(Math.min(delayMs * 2, 5000)), delayMs).unref();
          },
        );
      };
      again(250);
    });
    try {
      await this.call('watch', prefix, () => connected(watcher));
    } catch (e) {
      void watcher.cancel().catch(() => undefined);
      throw e;
    }
    up = true;
    if (w.closed) {
      void watcher.cancel().catch(() => undefined);
      return;
    }
    w.watcher = watcher;
  }

  async lease(ttlMs: number): Promise<StoreLease> {
    if (!(ttlMs > 0)) throw new FsError('EINVAL', `lease: ttl ${ttlMs} ms is not positive`);
    this.checkOpen('lease', '');
    // etcd counts TTLs in whole seconds (and raises a short one to its own minimum).
    const ttl = Math.max(1, Math.ceil(ttlMs / 1000));
    const started = Date.now();
    const l = this.ns.lease(ttl);
    l.on('lost', () => undefined); // a failed grant is reported by grant() below
    let id: string;
    try {
      id = await this.call('lease', `${ttlMs} ms`, () => l.grant());
    } catch (e) {
      l.release();
      throw e;
    }
    const lease = new EtcdLease(this, l, id, ttl * 1000, started);
    this.leases.add(lease);
    return lease;
  }

  async lock(name: string, waitMs: number): Promise<StoreLock> {
    const dir = `${encodeURIComponent(name)}/`;
    const lease = (await this.lease(this.lockTtlMs)) as EtcdLease;
    const key = `${dir}${lease.id}`;
    const deadline = Date.now() + Math.max(0, waitMs);
    try {
      const put = await this.call('lock', name, () =>
        this.lockNs.put(key).value(`${os.hostname()} pid ${process.pid}`).lease(lease.id).exec(),
      );
      const mine = rev(put.header.revision);
      for (;;) {
        // The contender just before us: the newest key created before ours.
        const ahead = await this.call('lock', name, () =>
          this.lockNs.getAll().prefix(dir).maxCreateRevision(mine - 1).sort('Create', 'Descend').limit(1).exec(),
        );
        if (ahead.kvs.length === 0) break;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new FsError('EBUSY', `lock ${name} is held by another (${ahead.kvs[0].value.toString()}); waited ${waitMs} ms`);
        }
        await this.deleted(ahead.kvs[0].key.toString('utf8'), rev(ahead.header.revision) + 1, left);
      }
      // Still ours? (Our lease may have been lost while we waited.)
      const own = await this.call('lock', name, () => this.lockNs.get(key).exec());
      if (own.kvs.length === 0 || rev(own.kvs[0].create_revision) !== mine || lease.isLost) {
        throw new FsError('ESTALE', `lock ${name}: the lease behind our claim was lost while waiting`);
      }
    } catch (e) {
      await lease.revoke().catch(() => undefined);
      throw e;
    }
    return new EtcdLock(lease);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const watches = [...this.watches];
    const leases = [...this.leases];
    await Promise.allSettled([...watches.map((w) => w.close()), ...leases.map((l) => l.revoke())]);
    this.closed = true;
    this.client.close();
  }

  /** Resolves when the key is deleted at or after revision from, or after ms. */
  private deleted(key: string, from: number, ms: number): Promise<void> {
    const watcher = this.lockNs.watch().key(key).only('delete').startRevision(String(from)).watcher();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        watcher.removeAllListeners('delete');
        void watcher.cancel().catch(() => undefined);
        resolve();
      };
      const timer = setTimeout(done, ms);
      watcher.on('delete', done);
      // A broken watch ends the wait; the caller looks again (and meets the error there).
      watcher.on('error', done);
    });
  }

  /** The etcd lease behind a StoreLease, refusing another store's. */
  private leaseOf(lease: StoreLease): EtcdLease {
    if (!(lease instanceof EtcdLease) || lease.store !== this) {
      throw new FsError('EINVAL', `${this.where}: the lease ${lease.id} is not one of this store's`);
    }
    return lease;
  }

  private checkOpen(what: string, key: string): void {
    if (this.closed) throw new FsError('ESHUTDOWN', `${this.where}: ${what} ${key}: the store is closed`);
  }

  /** Runs one request: never longer than the deadline (plus a little), errors as FsError naming the store. */
  async call<T>(what: string, key: string, fn: () => Promise<T>): Promise<T> {
    this.checkOpen(what, key);
    let timer: NodeJS.Timeout | undefined;
    const bound = this.opTimeoutMs + 1000;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FsError('ETIMEDOUT', `${this.where}: ${what} ${key}: no answer in ${bound} ms (etcd stopped, overloaded or cut off)`)),
            bound,
          );
        }),
      ]);
    } catch (e) {
      throw this.storeError(what, key, e);
    } finally {
      clearTimeout(timer);
    }
  }

  private storeError(what: string, key: string, e: unknown): FsError {
    if (e instanceof FsError) return e;
    const name = ctorName(e);
    const msg = `${this.where}: ${what} ${key}: ${(e as Error)?.message ?? String(e)}`;
    if (e instanceof etcd3.GRPCDeadlineExceededError) return new FsError('ETIMEDOUT', msg);
    if (name === 'BrokenCircuitError') {
      // etcd3's breaker: after 3 failed calls in a row, none is tried for 5 s.
      return new FsError('ENOTCONN', `${this.where}: ${what} ${key}: etcd unreachable (its last calls failed; the next try is within 5 s)`);
    }
    if (
      e instanceof etcd3.GRPCUnavailableError ||
      e instanceof etcd3.GRPCCancelledError ||
      e instanceof etcd3.ClientClosedError
    ) {
      return new FsError('ENOTCONN', `${msg} (etcd unreachable)`);
    }
    // A member cut off from the others (or a cluster without a majority) takes the request
    // and answers late that it could not commit it: unreachable as far as the caller goes.
    if (/context deadline exceeded|etcdserver: (request timed out|no leader|leader changed|too many requests)/.test(msg)) {
      return new FsError('ETIMEDOUT', `${msg} (the etcd member reached could not get it committed: it reaches no majority of its cluster, or etcd is overloaded)`);
    }
    if (e instanceof etcd3.EtcdLeaseInvalidError) return new FsError('ENOENT', `${msg} (the lease has expired or was revoked)`);
    if (e instanceof etcd3.EtcdPermissionDeniedError) return new FsError('EACCES', msg);
    return new FsError('EIO', msg);
  }

  /** @internal */
  forget(x: EtcdLease | EtcdWatch): void {
    if (x instanceof EtcdLease) this.leases.delete(x);
    else this.watches.delete(x);
  }
}

function versioned(key: string, kv: IKeyValue): Versioned {
  return { key, value: kv.value.toString('utf8'), revision: rev(kv.mod_revision) };
}

/** Resolves when etcd acknowledged the watcher, rejects on its error. */
function connected(watcher: Watcher): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ok = (): void => {
      watcher.off('error', bad);
      resolve();
    };
    const bad = (err: Error): void => {
      watcher.off('connected', ok);
      reject(err);
    };
    watcher.once('connected', ok);
    watcher.once('error', bad);
  });
}

class EtcdWatch implements StoreWatch {
  private closing: Promise<void> | undefined;
  /** The etcd watcher now (another after etcd cancelled one). */
  watcher: Watcher | undefined;
  closed = false;

  constructor(
    private readonly store: EtcdConfigStore,
    readonly prefix: string,
  ) {}

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      const watcher = this.watcher;
      this.store.forget(this);
      if (!watcher) return;
      watcher.removeAllListeners('data');
      // The cancel waits for etcd's answer; with etcd gone it is dropped at the reconnection.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        watcher.cancel().catch((e: Error) => log.debug(`watch ${this.prefix}: cancel: ${e.message}`)),
        new Promise<void>((r) => (timer = setTimeout(r, 2000))),
      ]);
      clearTimeout(timer);
    })();
    return this.closing;
  }
}

/** A lease renewed by etcd3 every TTL/3; lost when a whole TTL passes without a renewal answered. */
export class EtcdLease implements StoreLease {
  private state: 'alive' | 'lost' | 'revoked' = 'alive';
  private readonly lostFns: Array<() => void> = [];
  private readonly watchdog: NodeJS.Timeout;
  private lastRenewal: number;
  private ttlMs: number;
  private revoking: Promise<void> | undefined;
  private renewing = true;

  constructor(
    /** @internal */ readonly store: EtcdConfigStore,
    private readonly lease: Lease,
    readonly id: string,
    ttlMs: number,
    grantRequestedAt: number,
  ) {
    this.ttlMs = ttlMs;
    this.lastRenewal = grantRequestedAt;
    lease.on('keepaliveSucceeded', (res: { TTL: string }) => {
      this.lastRenewal = Date.now();
      // etcd may have raised the TTL to its minimum: that is how long the keys now live.
      const granted = Number(res.TTL) * 1000;
      if (granted > 0) this.ttlMs = granted;
    });
    lease.on('lost', (err: Error) => this.lost(err?.message ?? 'lost'));
    this.watchdog = setInterval(() => {
      if (this.state === 'alive' && Date.now() - this.lastRenewal > this.ttlMs) {
        this.lost(`no renewal reached etcd for ${Date.now() - this.lastRenewal} ms (ttl ${this.ttlMs} ms)`);
      }
    }, Math.min(250, Math.max(50, Math.floor(ttlMs / 8))));
    this.watchdog.unref();
  }

  get isLost(): boolean {
    return this.state === 'lost';
  }

  onLost(fn: () => void): void {
    if (this.state === 'lost') queueMicrotask(fn);
    else this.lostFns.push(fn);
  }

  /**
   * Stops renewing without revoking: the lease and its keys expire by themselves after the
   * TTL and onLost is called then. What a daemon that hangs or dies looks like (tests use it).
   */
  stopRenewing(): void {
    this.renewing = false;
    this.lease.release();
  }

  revoke(): Promise<void> {
    this.revoking ??= (async () => {
      if (this.state === 'alive') this.state = 'revoked';
      clearInterval(this.watchdog);
      this.store.forget(this);
      await this.store.call('revoke lease', this.id, () => this.lease.revoke());
    })();
    return this.revoking;
  }

  private lost(why: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    clearInterval(this.watchdog);
    this.store.forget(this);
    log.warn(`${this.store.where}: lease ${this.id} lost: ${why}`);
    // Stop renewing, and drop it now if etcd still has it: nothing should outlive our word
    // (not after stopRenewing, which stands for a holder that hung: etcd expires it).
    if (this.renewing) void this.lease.revoke().catch(() => undefined);
    else this.lease.release();
    for (const fn of this.lostFns.splice(0)) {
      try {
        fn();
      } catch (e) {
        log.error(`lease ${this.id}: an onLost callback threw: ${(e as Error)?.stack ?? String(e)}`);
      }
    }
  }
}

class EtcdLock implements StoreLock {
  constructor(private readonly lease: EtcdLease) {}

  release(): Promise<void> {
    return this.lease.revoke();
  }
}
