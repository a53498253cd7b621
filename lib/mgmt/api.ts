// The management daemon's HTTP API: request and reply bodies, shared by the daemon and
// the CLI. docs/mgmt-api.md describes the routes; `--json` output of the CLI reuses these
// shapes, so changing them is a breaking change.

import type { RebalanceState, RebalanceStatus, RebalanceThrottle } from './rebalance.js';

export type { AddBrickRequest, CreateRequest, RemoveBrickRequest } from './args.js';

/** Lifecycle of a volume: created (never started), started, stopped. */
export type VolumeState = 'created' | 'started' | 'stopped';

/**
 * GlusterFS's volume type words: distribute (files hashed over bricks), replicate (one
 * replica set), stripe (one stripe set), and the distributed-/striped- combinations.
 */
export type VolumeType =
  | 'distribute' | 'replicate' | 'stripe' | 'striped-replicate'
  | 'distributed-replicate' | 'distributed-stripe' | 'distributed-striped-replicate';

/** A brick as the daemon stores and shows it. */
export interface BrickInfo {
  host: string;
  path: string;
  /** TCP port the brick process listens on; assigned at create time, stable afterwards. */
  port: number;
}

/** `volume info`: the definition of a volume. */
export interface VolumeInfo {
  name: string;
  /** A UUID fixed at create time. */
  id: string;
  type: VolumeType;
  status: VolumeState;
  /** Increases whenever the generated volfiles change (create, set, add-brick, remove-brick start/stop/commit). */
  version: number;
  bricks: BrickInfo[];
  /** Bricks per stripe set (each N consecutive bricks form one); only on striped volumes. */
  stripeCount?: number;
  /** Bricks per replica set (each N consecutive bricks form one); only on replicated volumes. */
  replicaCount?: number;
  /** How many times the set of distribute subvolumes changed (add-brick, remove-brick start); only when > 0. */
  layoutEpoch?: number;
  /** Free GiB per distribute subvolume, when their free space differed by more than 10% at the last change. */
  layoutWeights?: number[];
  /** A remove-brick in progress (its drain may have completed; `remove-brick ... commit` ends it). */
  removing?: RemovingInfo;
  /** Options changed with `volume set`, as strings. */
  options: Record<string, string>;
  /** ISO 8601. */
  createdAt: string;
}

/** The bricks a remove-brick is draining. */
export interface RemovingInfo {
  bricks: BrickInfo[];
  /** ISO 8601. */
  startedAt: string;
}

/** One brick in `volume status`. */
export interface BrickStatus extends BrickInfo {
  /** Pid of the brick process, or null when none runs. */
  pid: number | null;
  /** The process is alive and its port accepts connections. */
  online: boolean;
}

/** The self-heal daemon of one host of a volume (gluster's "Self-heal Daemon on HOST" line). */
export interface SelfHealStatus {
  /** The host, as the volume's bricks there name it. */
  host: string;
  /** Pid of the self-heal daemon, or null when none runs. */
  pid: number | null;
  /** It runs and heals this volume. */
  online: boolean;
}

/** `volume status` of one volume. */
export interface VolumeStatusInfo {
  name: string;
  status: VolumeState;
  bricks: BrickStatus[];
  /**
   * One per host with a brick of the volume, while a replicated volume is started with
   * cluster.self-heal-daemon on; absent otherwise.
   */
  selfHeal?: SelfHealStatus[];
}

/** POST /v1/volumes/:name/statedump and `volume statedump --json`: each brick's statedump. */
export interface StatedumpReply {
  name: string;
  bricks: Array<{
    host: string;
    path: string;
    /** Every translator of the brick's graph by name, as its SIGUSR1 statedump wrote it; absent when the brick is not running. */
    dump?: Record<string, unknown>;
    /** Why there is no dump. */
    error?: string;
  }>;
}

/** GET /v1/volumes and `volume info --json`. */
export interface VolumeListReply {
  volumes: VolumeInfo[];
}

/** GET /v1/status and `volume status --json`. */
export interface StatusListReply {
  volumes: VolumeStatusInfo[];
}

/** POST /v1/volumes. */
export interface CreateReply {
  volume: VolumeInfo;
  /** Things allowed but worth saying (a brick on the root filesystem). */
  warnings: string[];
}

/**
 * POST /v1/bricks/check: a daemon asks the daemon that owns bricks whether they may become
 * bricks (`volume create`, `add-brick`). The owner writes nothing.
 */
export interface BrickCheckRequest {
  /** HOST[:PORT]:/abs/path, every one on the daemon asked. */
  bricks: string[];
  /** Allow non-empty directories, bricks in or around other bricks, another volume's brick. */
  force?: boolean;
  /** For add-brick: the volume that grows (a directory already its brick is refused even with force). */
  volume?: string;
}

/** The answer to a brick check: each brick with the port its host gives it. */
export interface BrickCheckReply {
  bricks: Array<BrickInfo & {
    /** The volume id the directory carries (a brick of another volume, taken over with force). */
    replaces?: string;
  }>;
  warnings: string[];
}

/** POST /v1/volumes/:name/start. */
export interface StartRequest {
  /** Also when already started: (re)start the bricks that are down. */
  force?: boolean;
}

/** POST /v1/volumes/:name/start and /stop. */
export interface StartStopReply {
  volume: VolumeInfo;
  bricks: BrickStatus[];
}

/** PUT /v1/volumes/:name/options/:key. */
export interface SetOptionRequest {
  value: string;
}

/** POST /v1/volumes/:name/add-brick. */
export interface AddBrickReply {
  volume: VolumeInfo;
  /** The new bricks, with the ports they were given. */
  added: BrickInfo[];
  /** Things allowed but worth saying (a brick on the root filesystem). */
  warnings: string[];
}

/** What started a rebalance run: `volume rebalance VOL start`, or the drain of `remove-brick ... start`. */
export type RebalancePurpose = 'rebalance' | 'remove-brick';

/** POST /v1/volumes/:name/rebalance/start. */
export interface RebalanceStartRequest {
  /** Only rewrite directory layouts; move no files. */
  fixLayout?: boolean;
  /** Default normal. */
  throttle?: RebalanceThrottle;
}

/** A node of a rebalance run that has not acted on it yet (its daemon has not seen the run, or is down). */
export type RebalanceNodeState = RebalanceState | 'not started';

/**
 * One node (host) of a rebalance run: its rebalance process's status file as its daemon
 * read it. A status file saying "running" whose process is dead reads "failed".
 */
export interface RebalanceNodeStatus extends Omit<RebalanceStatus, 'state'> {
  state: RebalanceNodeState;
  /** The node's peer UUID. */
  peer: string;
  /** The node as the volume's bricks name it. */
  host: string;
  /** Present (true) on the row of the daemon that answered. */
  self?: true;
  /** Pid of its rebalance process (on its host), or null when none runs. */
  pid: number | null;
  /** Whether that process is alive. */
  alive: boolean;
  /** Whether the node's management daemon is connected (its row is up to date). */
  connected: boolean;
}

/**
 * GET /v1/volumes/:name/rebalance/status (and the replies of rebalance start/stop): the
 * run, every node's row, and their sum (the fields of RebalanceStatus: counts and rates
 * added up, times from the first start to the last update, state running while any node
 * runs or has not started, else failed, stopped or completed in that order of precedence).
 */
export interface RebalanceStatusReply extends RebalanceStatus {
  volume: string;
  /** The run's id: every node runs this one. */
  runId: string;
  purpose: RebalancePurpose;
  throttle: RebalanceThrottle;
  /** The volume's layoutEpoch when the run started. */
  layoutEpoch: number;
  /** Pid of this host's rebalance process, or null when none runs here. */
  pid: number | null;
  /** Whether any node's rebalance process is alive. */
  alive: boolean;
  /** One row per host with bricks of the volume, in brick order. */
  nodes: RebalanceNodeStatus[];
}

/** POST /v1/volumes/:name/remove-brick/start. */
export interface RemoveBrickStartReply {
  volume: VolumeInfo;
  removing: RemovingInfo;
  /** The drain just started. */
  rebalance: RebalanceStatusReply;
}

/** GET /v1/volumes/:name/remove-brick/status. */
export interface RemoveBrickStatusReply {
  volume: string;
  removing: RemovingInfo;
  /** The drain: the last run, when this removal started it over the current layout; null if it never started. */
  rebalance: RebalanceStatusReply | null;
  /** True when `commit` would be accepted without force: the drain completed with no failed file and no process left. */
  complete: boolean;
}

/** POST /v1/volumes/:name/remove-brick/commit and /stop. */
export interface RemoveBrickEndReply {
  volume: VolumeInfo;
  /** The bricks taken out of the volume (commit), or kept in it (stop). */
  bricks: BrickInfo[];
  warnings: string[];
}

/** Reply of GET /v1/volumes/:name, DELETE and option changes. */
export interface VolumeReply {
  volume: VolumeInfo;
}

/** GET /v1/health. */
export interface HealthReply {
  ok: true;
  pid: number;
  stateDir: string;
  /** Where the volume definitions live: file:DIR, or etcd://H:P,.../PREFIX shared by a pool. */
  store: string;
  /** False while bricks of started volumes are still being adopted or respawned. */
  ready: boolean;
  /** This daemon's peer UUID (made at its first start, kept in STATE/daemon.info). */
  uuid: string;
  /** The address other daemons of a pool reach this one at (its --listen address, or its host name when that is a wildcard). */
  hostname: string;
  /** The port of this management API. */
  port: number;
  /** The pool's id, kept in the shared store (etcd); null with the file store, which is no pool. */
  clusterId: string | null;
}

/** One daemon of the pool, as `peer status` and `pool list` show it. */
export interface PeerInfo {
  uuid: string;
  /** The address the pool reaches it at: as typed to `peer probe` (its own address for the prober). */
  hostname: string;
  /** Its management port. */
  port: number;
  /** Its liveness key is in the store (its lease is renewed): "Peer in Cluster (Connected)". */
  connected: boolean;
  /** Present (true) on the daemon that answered. */
  self?: true;
}

/** GET /v1/peers: this daemon and the other members of its pool. */
export interface PoolReply {
  /** This daemon. */
  self: PeerInfo;
  /** The other members, by hostname; empty when this daemon is in no pool (never probed, detached, or on the file store). */
  peers: PeerInfo[];
  /** The store kind: 'file' (one host, no pool) or 'etcd'. */
  store: 'file' | 'etcd';
  clusterId: string | null;
}

/** POST /v1/peers (`peer probe HOST[:PORT]`). */
export interface ProbeRequest {
  host: string;
  /** Management port of the daemon probed (default 7007). */
  port?: number;
}

/**
 * What a probe did: 'probed' (recorded as a peer), 'self' (it is this daemon: gluster's
 * "Probe on localhost not needed") or 'known' (already in the peer list).
 */
export type ProbeResult = 'probed' | 'self' | 'known';

/** Reply of POST /v1/peers. */
export interface ProbeReply {
  result: ProbeResult;
  /** gluster's sentence for the result, as `peer probe` prints it after "peer probe: success". */
  message: string;
  peer: PeerInfo;
}

/** Reply of DELETE /v1/peers/:peer (`peer detach`). */
export interface DetachReply {
  /** The peer taken out of the pool. */
  peer: PeerInfo;
  warnings: string[];
}

/** Every error reply: what was wrong and what to do. */
export interface ErrorReply {
  error: string;
}

/** Header carrying the volume version on volfile replies. */
export const VERSION_HEADER = 'x-brickfs-volume-version';
