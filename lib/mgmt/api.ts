// The management daemon's HTTP API: request and reply bodies, shared by the daemon and
// the CLI. docs/mgmt-api.md describes the routes; `--json` output of the CLI reuses these
// shapes, so changing them is a breaking change.

export type { CreateRequest } from './args.js';

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
  /** Increases whenever the generated volfiles change (create, set). */
  version: number;
  bricks: BrickInfo[];
  /** Bricks per stripe set (each N consecutive bricks form one); only on striped volumes. */
  stripeCount?: number;
  /** Bricks per replica set (each N consecutive bricks form one); only on replicated volumes. */
  replicaCount?: number;
  /** Options changed with `volume set`, as strings. */
  options: Record<string, string>;
  /** ISO 8601. */
  createdAt: string;
}

/** One brick in `volume status`. */
export interface BrickStatus extends BrickInfo {
  /** Pid of the brick process, or null when none runs. */
  pid: number | null;
  /** The process is alive and its port accepts connections. */
  online: boolean;
}

/** `volume status` of one volume. */
export interface VolumeStatusInfo {
  name: string;
  status: VolumeState;
  bricks: BrickStatus[];
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

/** Reply of GET /v1/volumes/:name, DELETE and option changes. */
export interface VolumeReply {
  volume: VolumeInfo;
}

/** GET /v1/health. */
export interface HealthReply {
  ok: true;
  pid: number;
  stateDir: string;
  /** False while bricks of started volumes are still being adopted or respawned. */
  ready: boolean;
}

/** Every error reply: what was wrong and what to do. */
export interface ErrorReply {
  error: string;
}

/** Header carrying the volume version on volfile replies. */
export const VERSION_HEADER = 'x-brickfs-volume-version';
