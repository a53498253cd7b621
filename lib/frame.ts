import type { TraceContext } from './trace.js';

/**
 * Who asks for a fop: the caller's credentials, carried by every fop from the FUSE request
 * down the graph and over the wire to the brick, which creates entries owned by the caller
 * and checks permissions as the kernel would (GlusterFS's call_frame_t root: uid, gid,
 * groups, pid).
 */
export interface Frame {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups (the primary gid need not be among them). */
  readonly groups: readonly number[];
  /** The calling process; negative for brickfs' own services, as GlusterFS's internal client pids. */
  readonly pid: number;
  /** The span this fop runs under, while diagnostics.trace is on (lib/trace.ts); absent otherwise. */
  readonly trace?: TraceContext;
}

/** GlusterFS's GF_CLIENT_PID_* for the pool's own services: what a brick log names as the caller. */
export const INTERNAL_PID = {
  /** A translator's own work: lookups it needs, a heal on access, reopening an fd after a reconnect. */
  xlator: -1,
  rebalance: -3,
  selfHeal: -6,
} as const;

/**
 * brickfs' own work done with root's rights: self-heal, rebalance, and what a translator
 * does for itself rather than for a caller (an fd reopened after a reconnect was already
 * allowed when it was opened).
 */
export const ROOT_FRAME: Frame = serviceFrame(INTERNAL_PID.xlator);

/** A service's frame: root, with the service's pid. */
export function serviceFrame(pid: number): Frame {
  return Object.freeze({ uid: 0, gid: 0, groups: Object.freeze([]) as readonly number[], pid });
}

/** Most supplementary groups a frame carries over the wire (Linux's NGROUPS_MAX is 65536; FUSE reads them from /proc). */
export const MAX_FRAME_GROUPS = 1024;

/**
 * A frame from the wire, checked: numbers where numbers belong, bounded groups. Anything
 * malformed is refused rather than defaulted, so a bad frame never becomes root's.
 */
export function frameFromWire(v: unknown): Frame | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const id = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
  if (!id(o.uid) || !id(o.gid) || typeof o.pid !== 'number' || !Number.isInteger(o.pid)) return undefined;
  const groups = o.groups ?? [];
  if (!Array.isArray(groups) || groups.length > MAX_FRAME_GROUPS || !groups.every(id)) return undefined;
  return { uid: o.uid, gid: o.gid, groups: groups as number[], pid: o.pid };
}
