/**
 * Per-fop counters a brick or mount process keeps for its whole life, for Prometheus (the
 * daemon's /metrics, docs/metrics.md): calls, failures and a latency histogram per fop, and the
 * bytes read and written. Always on: a record is two array increments and a short bucket scan,
 * next to a fop that costs tens of microseconds at least. Counters only grow (Prometheus takes
 * the rates); `volume profile`'s resettable figures are brick/xlators/protocol/profile.ts.
 */

/** Upper bounds of the latency buckets, in seconds (Prometheus' `le`); +Inf is implied. */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];

const BUCKETS_NS = LATENCY_BUCKETS_S.map((s) => s * 1e9);

/** One fop's counters, as a snapshot carries them. */
export interface FopCounters {
  calls: number;
  errors: number;
  /** Sum of the latencies, seconds. */
  seconds: number;
  /** Calls per latency bucket (not cumulative), one more than LATENCY_BUCKETS_S for +Inf. */
  buckets: number[];
}

/** What a process answers for its counters (lib/stats-socket.ts carries it as JSON). */
export interface FopStatsSnapshot {
  fops: Record<string, FopCounters>;
  bytesRead: number;
  bytesWritten: number;
}

export class FopStats {
  private readonly fops = new Map<string, FopCounters>();
  private bytesRead = 0;
  private bytesWritten = 0;

  /** Counts one finished fop that took ns nanoseconds. */
  record(fop: string, ns: number, ok: boolean): void {
    let c = this.fops.get(fop);
    if (!c) this.fops.set(fop, (c = { calls: 0, errors: 0, seconds: 0, buckets: new Array<number>(BUCKETS_NS.length + 1).fill(0) }));
    c.calls++;
    if (!ok) c.errors++;
    c.seconds += ns / 1e9;
    let i = 0;
    while (i < BUCKETS_NS.length && ns > BUCKETS_NS[i]!) i++;
    c.buckets[i]!++;
  }

  /** Counts bytes a read answered or a write carried. */
  bytes(kind: 'read' | 'write', n: number): void {
    if (kind === 'read') this.bytesRead += n;
    else this.bytesWritten += n;
  }

  snapshot(): FopStatsSnapshot {
    const fops: Record<string, FopCounters> = {};
    for (const [k, c] of this.fops) fops[k] = { ...c, buckets: [...c.buckets] };
    return { fops, bytesRead: this.bytesRead, bytesWritten: this.bytesWritten };
  }
}

/** A start mark for elapsedNs(): performance.now(), a double, where hrtime.bigint() would allocate a BigInt per fop. */
export function startMark(): number {
  return performance.now();
}

/** Nanoseconds since a startMark(). */
export function elapsedNs(start: number): number {
  return (performance.now() - start) * 1e6;
}
