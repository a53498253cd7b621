/**
 * What `volume profile` and `volume top` read from a brick (GlusterFS's io-stats on the
 * brick): protocol/server feeds every fop it answers here.
 *
 * - Profile (diagnostics.count-fop-hits, diagnostics.latency-measurement; `profile start`
 *   sets both): calls and min/avg/max latency per fop, reads and writes by block size
 *   (powers of two, as gluster's "1b+ 2b+ ... 128Kb+"), bytes. Two periods: cumulative since
 *   the profile was switched on, and the interval since the last `profile info`, which ends
 *   it. Off, nothing is counted.
 * - Top: per file, opens, reads and writes; per directory, listings (`opendir`: bricks see a
 *   readdir by path, not an opendir). Always counted, as gluster's top needs no profile; each
 *   list keeps at most TOP_KEEP names (the least counted go when it overflows), so memory is
 *   bounded whatever the workload.
 */
import { TOP_LISTS, type BrickProfileReply, type BrickTopReply, type ProfilePeriod, type TopList } from '../../../lib/mgmt/profile.js';

/** Block-size buckets: 2^i bytes and up, i < 32. */
const BLOCK_BUCKETS = 32;
/** Names each top list keeps. */
export const TOP_KEEP = 1024;

interface FopTimes { calls: number; totalNs: number; minNs: number; maxNs: number }

class Period {
  readonly since = Date.now();
  readonly fops = new Map<string, FopTimes>();
  readonly reads = new Array<number>(BLOCK_BUCKETS).fill(0);
  readonly writes = new Array<number>(BLOCK_BUCKETS).fill(0);
  bytesRead = 0;
  bytesWritten = 0;

  snapshot(): ProfilePeriod {
    const fops: ProfilePeriod['fops'] = {};
    for (const [k, f] of this.fops) {
      fops[k] = { calls: f.calls, avgUs: f.totalNs / f.calls / 1000, minUs: f.minNs / 1000, maxUs: f.maxNs / 1000 };
    }
    const blocks = (a: number[]): Record<string, number> => Object.fromEntries(a.flatMap((n, i) => (n ? [[String(2 ** i), n]] : [])));
    return {
      durationS: Math.floor((Date.now() - this.since) / 1000), fops,
      readBlocks: blocks(this.reads), writeBlocks: blocks(this.writes), bytesRead: this.bytesRead, bytesWritten: this.bytesWritten,
    };
  }
}

/** Counts per name, keeping the TOP_KEEP most counted once it overflows. */
class TopCounts {
  private readonly counts = new Map<string, number>();

  add(name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n);
    // Pruned in a batch at twice the size: amortized, not a scan per new name.
    if (this.counts.size > 2 * TOP_KEEP) {
      const keep = this.sorted(TOP_KEEP);
      this.counts.clear();
      for (const e of keep) this.counts.set(e.path, e.count);
    }
  }

  sorted(limit: number): { path: string; count: number }[] {
    return [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit).map(([path, count]) => ({ path, count }));
  }
}

export class BrickProfile {
  private counting = false;
  private latency = false;
  private cumulative = new Period();
  private interval = new Period();
  private intervalNo = 0;
  private readonly top = new Map<TopList, TopCounts>(TOP_LISTS.map((l) => [l, new TopCounts()]));
  private maxOpen = { count: 0, at: new Date() };

  /** Applies the two diagnostics options; switching counting on starts a new profile. */
  configure(countFopHits: boolean, latencyMeasurement: boolean): void {
    const on = countFopHits || latencyMeasurement;
    if (on && !this.counting) {
      this.cumulative = new Period();
      this.interval = new Period();
      this.intervalNo = 0;
    }
    this.counting = on;
    this.latency = latencyMeasurement;
  }

  /** One fop answered; size is the bytes read or written, path the file or directory for top. */
  record(fop: string, ns: number, io?: { read?: number; written?: number; path?: string }): void {
    if (io?.path !== undefined) {
      const list: TopList | undefined = fop === 'open' || fop === 'create' ? 'open' : fop === 'readdir' ? 'opendir' : io.read !== undefined ? 'read' : io.written !== undefined ? 'write' : undefined;
      if (list) this.top.get(list)!.add(io.path);
    }
    if (!this.counting) return;
    for (const p of [this.cumulative, this.interval]) {
      let f = p.fops.get(fop);
      if (!f) p.fops.set(fop, (f = { calls: 0, totalNs: 0, minNs: Infinity, maxNs: 0 }));
      f.calls++;
      const t = this.latency ? ns : 0;
      f.totalNs += t;
      if (t < f.minNs) f.minNs = t;
      if (t > f.maxNs) f.maxNs = t;
      if (io?.read !== undefined) {
        p.reads[blockBucket(io.read)]!++;
        p.bytesRead += io.read;
      }
      if (io?.written !== undefined) {
        p.writes[blockBucket(io.written)]!++;
        p.bytesWritten += io.written;
      }
    }
  }

  /** Fds open on the brick after an open: remembered when it is the most so far. */
  opened(current: number): void {
    if (current > this.maxOpen.count) this.maxOpen = { count: current, at: new Date() };
  }

  /** The profile; ends the current interval (as gluster's `profile info` does). */
  profile(): BrickProfileReply {
    if (!this.counting) return { enabled: false, latency: this.latency };
    const interval = { ...this.interval.snapshot(), number: this.intervalNo++ };
    this.interval = new Period();
    return { enabled: true, latency: this.latency, cumulative: this.cumulative.snapshot(), interval };
  }

  topList(list: TopList, limit: number, currentOpen: number): BrickTopReply {
    return {
      list, entries: this.top.get(list)!.sorted(limit),
      ...(list === 'open' ? { openFds: { current: currentOpen, max: this.maxOpen.count, maxAt: this.maxOpen.at.toISOString() } } : {}),
    };
  }
}

function blockBucket(bytes: number): number {
  return bytes <= 1 ? 0 : Math.min(BLOCK_BUCKETS - 1, 31 - Math.clz32(bytes));
}
