/**
 * A developer's latency profile of one process, by layer (`volume profile` and the daemon's
 * /metrics are the operator's: docs/metrics.md): when BRICKFS_PROFILE is set,
 * the FUSE bridge, protocol/client and protocol/server record how long each operation took,
 * by layer and fop. SIGUSR2 writes the table to stderr (the mount or brick log) and resets
 * it. Off, the hot path pays one boolean test.
 */
const enabled = !!process.env.BRICKFS_PROFILE;

interface Stat { count: number; totalNs: bigint; maxNs: bigint }

const stats = new Map<string, Stat>();

export const profiling = enabled;

/** A start mark for record(); 0n when profiling is off. */
export function profileStart(): bigint {
  return enabled ? process.hrtime.bigint() : 0n;
}

export function profileRecord(layer: string, op: string, start: bigint): void {
  if (!enabled) return;
  const ns = process.hrtime.bigint() - start;
  const key = `${layer} ${op}`;
  let s = stats.get(key);
  if (!s) stats.set(key, (s = { count: 0, totalNs: 0n, maxNs: 0n }));
  s.count++;
  s.totalNs += ns;
  if (ns > s.maxNs) s.maxNs = ns;
}

/** The table, slowest total first; resets the counters. */
export function profileReport(): string {
  const rows = [...stats.entries()].sort((a, b) => Number(b[1].totalNs - a[1].totalNs));
  stats.clear();
  const lines = ['layer op                      count   total ms   avg us   max us'];
  for (const [key, s] of rows) {
    const avgUs = Number(s.totalNs / BigInt(s.count)) / 1000;
    lines.push(`${key.padEnd(28)} ${String(s.count).padStart(6)} ${(Number(s.totalNs) / 1e6).toFixed(1).padStart(10)} ${avgUs.toFixed(0).padStart(8)} ${(Number(s.maxNs) / 1000).toFixed(0).padStart(8)}`);
  }
  return lines.join('\n');
}

// Always handled: SIGUSR2's default action would kill a mount or brick started without
// profiling (and leave a dead mount, ENOTCONN, behind).
process.on('SIGUSR2', () => process.stderr.write(enabled
  ? `profile (pid ${process.pid}):\n${profileReport()}\n`
  : `profile (pid ${process.pid}): profiling is off; start the mount or brick with BRICKFS_PROFILE=1 in its environment\n`));
