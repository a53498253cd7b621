// The trusted storage pool (glusterd's peer handling, glusterd2's peer and liveness keys):
// who this daemon is, which daemons are its peers, and which of them are alive.
//
// A pool is the daemons sharing one configuration store (etcd); the file store serves one
// host and is no pool. In the store (docs/pool.md):
//
//   /brickfs/cluster          {id, createdAt}: the pool's id, made by the first daemon on
//                             the store; a probe compares it to tell "same store" apart
//   /brickfs/peers/<uuid>     {uuid, hostname, port, address, addedAt}: a member, written
//                             by `peer probe` (for the prober too), removed by `peer detach`
//   /brickfs/alive/<uuid>     {uuid, hostname, port, pid, since}: put with the daemon's
//                             lease (glusterd2's alive/<uuid>); gone when the daemon stops
//                             renewing, so "Connected" is this key being there
//
// Membership and liveness are apart, as in glusterd2: a member that is down stays a member
// (Disconnected) until detached; a daemon on the store that was never probed is alive but
// no member, and sees a pool of itself alone.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import type { DetachReply, HealthReply, PeerInfo, PoolReply, ProbeReply, ProbeRequest } from '../../lib/mgmt/api.js';
import { DEFAULT_MGMT_PORT } from '../../lib/mgmt/client.js';
import { formatBrick } from '../../lib/mgmt/args.js';
import type { ConfigStore, StoreLease } from './config-store.js';
import type { MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { isThisHost } from './hosts.js';
import { writeFileAtomic, type StatePaths } from './store.js';
import { mgmtFetch, mgmtUrl } from '../../lib/mgmt/http.js';

const log = new Logger('mgmt:peers');

export const CLUSTER_KEY = '/brickfs/cluster';
export const PEERS_PREFIX = '/brickfs/peers/';
export const ALIVE_PREFIX = '/brickfs/alive/';
/** The pool's secret: the bearer token daemons of the pool send each other (docs/security.md). */
export const SECRET_KEY = '/brickfs/secret';

/** TTL of the liveness lease: a daemon killed shows Disconnected this long after (plus etcd's expiry check). */
export const PEER_LIVENESS_TTL_MS = 4000;
/** How long a probe waits for the other daemon's answer. */
export const PROBE_TIMEOUT_MS = 5000;

/** Who this daemon is to the pool. */
export interface PeerIdentity {
  uuid: string;
  /** The address peers reach it at. */
  hostname: string;
  /** Its management port (set once it listens). */
  port: number;
}

/** A member as stored under PEERS_PREFIX. */
interface MemberRecord {
  uuid: string;
  /** As typed to `peer probe` (the prober's own: its advertised address). */
  hostname: string;
  port: number;
  /** The address the daemon advertises itself (its --listen address). */
  address: string;
  addedAt: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * This daemon's peer UUID, from STATE/daemon.info (`UUID=...`, as glusterd.info), made on
 * the first start. A damaged file is an error saying what to do: a new UUID would make the
 * host a stranger to its pool.
 */
export async function loadPeerUuid(paths: StatePaths): Promise<string> {
  const file = paths.daemonInfo;
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text !== undefined) {
    const m = /^UUID=(\S+)$/m.exec(text);
    if (!m || !UUID_RE.test(m[1]!)) {
      throw new Error(`${file} holds no UUID=<uuid> line; restore it from a backup (the pool knows this host by that UUID), or remove it to give this host a new identity`);
    }
    return m[1]!.toLowerCase();
  }
  const uuid = randomUUID();
  await writeFileAtomic(file, `UUID=${uuid}\n`);
  log.info(`new peer UUID ${uuid} in ${file}`);
  return uuid;
}

/** The address a daemon listening on `listen` advertises: that address, or the host name for a wildcard. */
export function advertisedHost(listen: string): string {
  return listen === '0.0.0.0' || listen === '::' || listen === '' ? os.hostname() : listen;
}

/** Whether host is a loopback name or address (localhost, 127.x, ::1). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h.startsWith('127.') || h === '::1';
}

function sameHost(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** "HOST:PORT" as typed, IPv6 in brackets. */
export function hostPort(host: string, port: number): string {
  return `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Reads the pool's id, making it when this daemon is the first on the store. */
export async function ensureClusterId(config: ConfigStore): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await config.get(CLUSTER_KEY);
    if (cur) {
      const id = (JSON.parse(cur.value) as { id?: unknown }).id;
      if (typeof id !== 'string') throw new Error(`${CLUSTER_KEY} in the configuration store is damaged (${cur.value}); restore it from a backup`);
      return id;
    }
    const made = { id: randomUUID(), createdAt: new Date().toISOString() };
    if (await config.putIf(CLUSTER_KEY, JSON.stringify(made), 0)) {
      log.info(`new pool: cluster id ${made.id}`);
      return made.id;
    }
  }
  throw new Error(`${CLUSTER_KEY} keeps changing in the configuration store; is another program writing it?`);
}

/**
 * The pool's secret, made with the pool by the first daemon on the store. Readable only
 * through the store: whoever reads the store may already rewrite every volume, so the
 * secret gives its holder nothing the store does not.
 */
export async function ensurePoolSecret(config: ConfigStore): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await config.get(SECRET_KEY);
    if (cur) {
      const secret = (JSON.parse(cur.value) as { secret?: unknown }).secret;
      if (typeof secret !== 'string' || secret.length < 32) throw new Error(`${SECRET_KEY} in the configuration store is damaged; remove it (every daemon of the pool then takes a new one when restarted)`);
      return secret;
    }
    if (await config.putIf(SECRET_KEY, JSON.stringify({ secret: randomBytes(32).toString('base64url') }), 0)) continue;
  }
  throw new Error(`${SECRET_KEY} keeps changing in the configuration store; is another program writing it?`);
}

/**
 * This daemon's liveness key, put with a lease the store renews (glusterd2's alive/<uuid>).
 * When the lease is lost (the store unreachable for a whole TTL), the key is put again with a
 * new lease as soon as the store answers, retried with backoff until close().
 */
export class Liveness {
  private lease: StoreLease | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly registered = new Set<(lease: StoreLease) => void>();

  constructor(private readonly config: ConfigStore, private readonly key: string, private readonly value: () => string, private readonly ttlMs = PEER_LIVENESS_TTL_MS) {}

  /** Puts the key once; rejects when the store does not take it. */
  async start(): Promise<void> {
    await this.register();
  }

  private async register(): Promise<void> {
    const lease = await this.config.lease(this.ttlMs);
    try {
      // A key left by a previous run of this daemon (killed, its lease not expired yet) is taken over.
      for (let attempt = 0; ; attempt++) {
        const cur = await this.config.get(this.key);
        if (await this.config.putIf(this.key, this.value(), cur?.revision ?? 0, lease)) break;
        if (attempt >= 5) throw new Error(`${this.key} keeps changing in the configuration store`);
      }
    } catch (e) {
      await lease.revoke().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await lease.revoke().catch(() => undefined);
      return;
    }
    this.lease = lease;
    for (const fn of [...this.registered]) fn(lease);
    lease.onLost(() => {
      if (this.closed || this.lease !== lease) return;
      this.lease = undefined;
      log.warn(`liveness lease lost (the configuration store did not answer for ${this.ttlMs} ms): peers see this daemon Disconnected until it is renewed`);
      this.again(250);
    });
  }

  /** The lease held now (undefined while lost): keys put with it go when this daemon does. */
  get current(): StoreLease | undefined {
    return this.lease;
  }

  /** Calls fn with each new lease (after a loss, keys put with the old one are gone and must be put again). */
  onRegistered(fn: (lease: StoreLease) => void): void {
    this.registered.add(fn);
  }

  private again(delayMs: number): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.register().then(
        () => log.info('liveness key registered again: peers see this daemon Connected'),
        (e: Error) => {
          log.debug(`liveness: ${e.message}; trying again`);
          this.again(Math.min(delayMs * 2, 5000));
        },
      );
    }, delayMs);
    this.retry.unref();
  }

  /** Removes the key (peers see this daemon Disconnected at once) and stops renewing. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => undefined);
  }
}

/** The other daemon's identity and store, from its health reply; errors say what to check. */
async function fetchHealth(host: string, port: number): Promise<HealthReply> {
  const where = hostPort(host, port);
  let res: Response;
  try {
    res = await mgmtFetch(mgmtUrl(where, '/v1/health'), { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : (err.cause?.code ?? err.message);
    throw new MgmtError(502,
      `Probe returned with Transport endpoint is not connected: cannot reach a management daemon at ${where} (${why}); ` +
      `check that \`brickfs daemon --listen ${host} --port ${port} --store ...\` runs there and that this host reaches it`);
  }
  const text = await res.text();
  let h: Partial<HealthReply> | undefined;
  try {
    h = JSON.parse(text) as Partial<HealthReply>;
  } catch { /* below */ }
  if (!res.ok || !h || h.ok !== true) {
    throw new MgmtError(502, `${where} answered HTTP ${res.status} without a brickfs health reply; is it a brickfs management daemon?`);
  }
  if (typeof h.uuid !== 'string') {
    throw new MgmtError(502, `the daemon at ${where} does not say its peer UUID (an older brickfs?); upgrade it first`);
  }
  return h as HealthReply;
}

/** The daemon that owns a brick: where to reach its management API. */
export interface BrickOwner {
  uuid: string;
  /** The member's address as the pool knows it (what volfiles name for its bricks). */
  hostname: string;
  port: number;
  self: boolean;
}

/** `peer probe`, `peer detach`, `peer status` and `pool list`. */
export class PeerOps {
  private liveness: Liveness | undefined;
  private readonly leaseListeners = new Set<(lease: StoreLease) => void>();

  /**
   * `config` is the configuration store (shared: etcd; else the file store, no pool);
   * clusterId is ensureClusterId's for a shared store, null otherwise.
   */
  constructor(
    private readonly ctx: MgmtContext,
    private readonly config: ConfigStore,
    readonly self: PeerIdentity,
    readonly clusterId: string | null,
    private readonly storeWhere: string,
    /** The pool's secret, sent to other daemons of the pool (null with the file store). */
    readonly poolSecret: string | null = null,
  ) {}

  /**
   * A request to another daemon of the pool (where: HOST:PORT): with the pool's secret, since a
   * daemon takes requests only from root on its host and its peers; over https under
   * secure-access. body, when given, is sent as JSON.
   */
  askPeer(where: string, pathname: string, init: { method?: string; body?: unknown; timeoutMs: number }): Promise<Response> {
    const headers: Record<string, string> = this.poolSecret === null ? {} : { authorization: `Bearer ${this.poolSecret}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return mgmtFetch(mgmtUrl(where, pathname), {
      method: init.method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs),
    });
  }

  /** The names the pool knows this daemon by (its member record), which peers send as Host. */
  async selfNames(): Promise<string[]> {
    const mine = (await this.members()).find((m) => m.uuid === this.self.uuid);
    return mine ? [mine.hostname, mine.address] : [];
  }

  private get shared(): boolean {
    return this.clusterId !== null;
  }

  /** Starts publishing this daemon's liveness (shared store only); call once it listens. */
  async startLiveness(): Promise<void> {
    if (!this.shared) return;
    const l = new Liveness(this.config, ALIVE_PREFIX + this.self.uuid, () => JSON.stringify({
      uuid: this.self.uuid, hostname: this.self.hostname, port: this.self.port, pid: process.pid, since: new Date().toISOString(),
    }));
    l.onRegistered((lease) => { for (const fn of [...this.leaseListeners]) fn(lease); });
    await l.start();
    this.liveness = l;
    const lease = l.current;
    if (lease) for (const fn of [...this.leaseListeners]) fn(lease);
  }

  /** This daemon's liveness lease now (none on the file store, or while lost). */
  get lease(): StoreLease | undefined {
    return this.liveness?.current;
  }

  /** Calls fn with every liveness lease this daemon takes (the first, and each after a loss). */
  onLease(fn: (lease: StoreLease) => void): void {
    this.leaseListeners.add(fn);
  }

  /** This daemon as a brick owner. */
  get selfOwner(): BrickOwner {
    return { uuid: this.self.uuid, hostname: this.self.hostname, port: this.self.port, self: true };
  }

  /**
   * The daemon that owns a brick on host: this one for a name of this machine (localhost,
   * its addresses), else the member of the pool known by that hostname or address. A host
   * that is neither is refused, saying to probe it.
   */
  async ownerOf(host: string): Promise<BrickOwner> {
    if (await isThisHost(host)) return this.selfOwner;
    const members = this.shared ? await this.storeRead(() => this.members()) : [];
    const me = members.some((m) => m.uuid === this.self.uuid);
    const m = me ? members.find((x) => x.uuid !== this.self.uuid && (sameHost(x.hostname, host) || sameHost(x.address, host))) : undefined;
    if (!m) {
      throw new MgmtError(409,
        `host ${host} is not a member of this daemon's pool; add it with \`brickfs peer probe ${host}\` first ` +
        '(`brickfs pool list` lists the pool), or use localhost for a brick on this host');
    }
    return { uuid: m.uuid, hostname: m.hostname, port: m.port, self: false };
  }

  /** A member by UUID, and whether its daemon is alive; undefined when it is no member. */
  async member(uuid: string): Promise<{ owner: BrickOwner; connected: boolean } | undefined> {
    if (uuid === this.self.uuid) return { owner: this.selfOwner, connected: true };
    const [members, alive] = await Promise.all([this.storeRead(() => this.members()), this.storeRead(() => this.aliveSet())]);
    const m = members.find((x) => x.uuid === uuid);
    return m && { owner: { uuid: m.uuid, hostname: m.hostname, port: m.port, self: false }, connected: alive.has(uuid) };
  }

  /** UUIDs of the daemons whose liveness key is in the store now. */
  async aliveUuids(): Promise<Set<string>> {
    return this.storeRead(() => this.aliveSet());
  }

  /** Withdraws the liveness key (a clean stop shows Disconnected at once). */
  async close(): Promise<void> {
    await this.liveness?.close();
    this.liveness = undefined;
  }

  private async members(): Promise<Array<MemberRecord & { revision: number }>> {
    if (!this.shared) return [];
    const out: Array<MemberRecord & { revision: number }> = [];
    for (const kv of await this.config.list(PEERS_PREFIX)) {
      try {
        const r = JSON.parse(kv.value) as MemberRecord;
        if (typeof r.uuid === 'string' && typeof r.hostname === 'string' && typeof r.port === 'number') out.push({ ...r, revision: kv.revision });
        else log.warn(`${kv.key}: not a peer record; ignored`);
      } catch {
        log.warn(`${kv.key}: not JSON; ignored`);
      }
    }
    return out;
  }

  private async aliveSet(): Promise<Set<string>> {
    if (!this.shared) return new Set();
    return new Set((await this.config.list(ALIVE_PREFIX)).map((kv) => kv.key.slice(ALIVE_PREFIX.length)));
  }

  private selfRecord(): MemberRecord {
    return { uuid: this.self.uuid, hostname: this.self.hostname, port: this.self.port, address: this.self.hostname, addedAt: new Date().toISOString() };
  }

  private selfInfo(members: readonly MemberRecord[]): PeerInfo {
    const mine = members.find((m) => m.uuid === this.self.uuid);
    return { uuid: this.self.uuid, hostname: mine?.hostname ?? this.self.hostname, port: this.self.port, connected: true, self: true };
  }

  /** This daemon and the other members of its pool (none unless it is a member itself). */
  async pool(): Promise<PoolReply> {
    const [members, alive] = await Promise.all([this.storeRead(() => this.members()), this.storeRead(() => this.aliveSet())]);
    const member = members.some((m) => m.uuid === this.self.uuid);
    const peers = member
      ? members.filter((m) => m.uuid !== this.self.uuid)
        .map((m): PeerInfo => ({ uuid: m.uuid, hostname: m.hostname, port: m.port, connected: alive.has(m.uuid) }))
        .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.port - b.port)
      : [];
    return { self: this.selfInfo(members), peers, store: this.shared ? 'etcd' : 'file', clusterId: this.clusterId };
  }

  /** A store read; an unreachable store is a 503 saying so. */
  private async storeRead<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new MgmtError(503, `the configuration store cannot be read (${(e as Error).message}); try again once it answers`);
    }
  }

  /** `peer probe HOST[:PORT]`: checks the daemon there uses this store, then records both as members. */
  async probe(req: ProbeRequest): Promise<ProbeReply> {
    const host = typeof req?.host === 'string' ? req.host.trim().replace(/^\[|\]$/g, '') : '';
    const port = req?.port ?? DEFAULT_MGMT_PORT;
    if (host === '' || /[\s/]/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UsageError('expected {"host": HOST, "port"?: 1-65535} (brickfs peer probe HOST[:PORT])');
    }
    const typed = hostPort(host, port);
    if (!this.shared) {
      throw new MgmtError(409,
        `this daemon keeps its configuration in the file store (${this.storeWhere}), which serves one host: a pool needs a store ` +
        'every daemon shares. Start every daemon of the pool with the same --store etcd://H1:2379,H2:2379,H3:2379 (docs/pool.md)');
    }
    const selfReply = (): ProbeReply => ({ result: 'self', message: 'Probe on localhost not needed', peer: { uuid: this.self.uuid, hostname: this.self.hostname, port: this.self.port, connected: true, self: true } });
    const hereToo = await isThisHost(host);
    if (port === this.self.port && hereToo) return selfReply();
    if (!hereToo && isLoopback(this.self.hostname)) {
      throw new MgmtError(409,
        `this daemon listens on ${this.self.hostname} only, where no other host reaches it; restart it with ` +
        '--listen ADDR (this host\'s address on the pool\'s network) before probing other hosts');
    }
    return this.ctx.lock.run(async () => {
      const members = await this.members();
      const alive = await this.aliveSet();
      const info = (m: MemberRecord): PeerInfo => ({ uuid: m.uuid, hostname: m.hostname, port: m.port, connected: alive.has(m.uuid) });
      const knownReply = (m: MemberRecord): ProbeReply => ({ result: 'known', message: `Host ${host} port ${port} already in peer list`, peer: info(m) });
      const byName = members.find((m) => m.uuid !== this.self.uuid && m.port === port && (sameHost(m.hostname, host) || sameHost(m.address, host)));
      if (byName) return knownReply(byName);
      const remote = await fetchHealth(host, port);
      if (remote.uuid === this.self.uuid) return selfReply();
      if (remote.clusterId === null || remote.clusterId === undefined) {
        throw new MgmtError(409,
          `${typed} keeps its configuration in its own file store (${remote.store}), so it cannot join this pool; restart it with ` +
          `--store ${this.storeWhere.replace(/\/$/, '')} (the store of this daemon)`);
      }
      if (remote.clusterId !== this.clusterId) {
        throw new MgmtError(409,
          `${typed} uses another configuration store (${remote.store}, cluster id ${remote.clusterId}; this daemon: ${this.storeWhere}, ` +
          `cluster id ${this.clusterId}); every daemon of a pool must be started with the same --store`);
      }
      const byUuid = members.find((m) => m.uuid === remote.uuid);
      if (byUuid) return knownReply(byUuid);
      if (!members.some((m) => m.uuid === this.self.uuid)) {
        // The prober joins too: the pool is every member, the one asking included.
        await this.config.putIf(PEERS_PREFIX + this.self.uuid, JSON.stringify(this.selfRecord()), 0);
      }
      const rec: MemberRecord = { uuid: remote.uuid, hostname: host, port, address: remote.hostname, addedAt: new Date().toISOString() };
      if (!(await this.config.putIf(PEERS_PREFIX + remote.uuid, JSON.stringify(rec), 0))) {
        const now = await this.config.get(PEERS_PREFIX + remote.uuid);
        if (now) return knownReply(JSON.parse(now.value) as MemberRecord);
      }
      log.info(`peer probe ${typed}: ${remote.uuid} is now a member of the pool`);
      return { result: 'probed', message: '', peer: info(rec) };
    });
  }

  /** `peer detach HOST[:PORT]|UUID [force]`: takes a member out of the pool; refused while it holds bricks, unless force. */
  async detach(target: string, force: boolean): Promise<DetachReply> {
    const t = target.trim();
    const byUuid = UUID_RE.test(t);
    let host = t;
    let port: number | undefined;
    if (!byUuid) {
      const m = /^(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?$/.exec(t);
      if (!m) throw new UsageError(`"${target}" is not HOST, HOST:PORT or a peer UUID (for example: brickfs peer detach 10.0.0.2)`);
      host = m[1]!.replace(/^\[|\]$/g, '');
      port = m[2] === undefined ? undefined : Number(m[2]);
    }
    const notInPool = (): MgmtError => new MgmtError(404, `${target} is not part of cluster; \`brickfs pool list\` lists the pool`);
    const isSelf = byUuid
      ? sameHost(t, this.self.uuid)
      : (port === undefined || port === this.self.port) && (await isThisHost(host)) && !(await this.otherAt(host, port));
    if (isSelf) {
      throw new MgmtError(409, `${target} is localhost; detach this host from another peer of the pool`);
    }
    if (!this.shared) throw notInPool();
    return this.ctx.lock.run(async () => {
      const members = await this.members();
      if (!members.some((m) => m.uuid === this.self.uuid)) throw notInPool();
      const found = members.filter((m) => m.uuid !== this.self.uuid && (sameHost(m.uuid, t)
        || ((sameHost(m.hostname, host) || sameHost(m.address, host)) && (port === undefined || m.port === port))));
      if (found.length === 0) throw notInPool();
      if (found.length > 1) {
        throw new UsageError(`${target} names ${found.length} peers (${found.map((m) => hostPort(m.hostname, m.port)).join(', ')}); give HOST:PORT or the peer's UUID`);
      }
      const peer = found[0]!;
      const label = peer.port === DEFAULT_MGMT_PORT ? peer.hostname : hostPort(peer.hostname, peer.port);
      const names = new Set([peer.hostname.toLowerCase(), peer.address.toLowerCase()]);
      const bricks = this.ctx.store.list().flatMap((v) => v.bricks.filter((b) => (b.peer !== undefined ? b.peer === peer.uuid : names.has(b.host.toLowerCase()))).map((b) => `${v.name}: ${formatBrick(b, false)}`));
      const warnings: string[] = [];
      if (bricks.length > 0) {
        if (!force) {
          throw new MgmtError(409,
            `Peer ${label} hosts one or more bricks (${bricks.join(', ')}). If the peer is in not recoverable state then use ` +
            'either replace-brick or remove-brick command with force to remove all bricks from the peer and attempt the peer detach again ' +
            '(or detach it anyway with `force`: those bricks then belong to no member)');
        }
        warnings.push(`peer ${label} still holds bricks (${bricks.join(', ')}); they belong to no member of the pool now`);
      }
      if (!(await this.config.removeIf(PEERS_PREFIX + peer.uuid, peer.revision))) {
        throw new MgmtError(409, `peer ${label} was changed through another daemon meanwhile; nothing was changed here, try again`);
      }
      const alive = await this.aliveSet();
      log.info(`peer detach ${target}: ${peer.uuid} left the pool`);
      return { peer: { uuid: peer.uuid, hostname: peer.hostname, port: peer.port, connected: alive.has(peer.uuid) }, warnings };
    });
  }

  /** Whether a member other than this daemon is at host (and port): on one machine several daemons share an address. */
  private async otherAt(host: string, port: number | undefined): Promise<boolean> {
    if (!this.shared || port === this.self.port) return false;
    const members = await this.storeRead(() => this.members());
    return members.some((m) => m.uuid !== this.self.uuid && (sameHost(m.hostname, host) || sameHost(m.address, host)) && (port === undefined || m.port === port));
  }

  /** The identity fields of the health reply. */
  healthFields(): Pick<HealthReply, 'uuid' | 'hostname' | 'port' | 'clusterId'> {
    return { uuid: this.self.uuid, hostname: this.self.hostname, port: this.self.port, clusterId: this.clusterId };
  }
}
