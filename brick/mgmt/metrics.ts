// The daemon's GET /metrics (Prometheus text format, prom-client): volumes, this host's
// bricks (online, capacity, heal pending, per-fop counters and latency histograms), the last
// rebalance of each volume, and the brick and mount processes on this host as their stats
// sockets tell (lib/stats-socket.ts). Built afresh per scrape from what is true then:
// nothing is kept between scrapes. Metric names and a scrape config: docs/metrics.md.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Counter, Gauge, Registry, PrometheusContentType, MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import { LATENCY_BUCKETS_S, type FopStatsSnapshot } from '../../lib/fop-stats.js';
import { BRICK_PRIVATE_DIR } from '../../lib/fops.js';
import { formatBrick } from '../../lib/mgmt/args.js';
import { queryStats, statsPids, statsSocket } from '../../lib/stats-socket.js';
import { brickState, pidAlive } from './bricks.js';
import type { MgmtContext } from './context.js';
import type { RebalanceOps } from './rebalance.js';

/** What a mount's stats socket answers (client/mount.ts). */
interface MountStats extends FopStatsSnapshot {
  volume: string;
  mountpoint: string;
  caches: Record<string, { type: string; hits: number; misses: number }>;
}

type Labels = Record<string, string>;

/** One latency histogram in prom-client's JSON form, from the processes' bucket counts. */
function histogram(name: string, help: string, series: { labels: Labels; stats: FopStatsSnapshot }[]): MetricObjectWithValues<MetricValueWithName<string>> {
  const values: MetricValueWithName<string>[] = [];
  for (const { labels, stats } of series) {
    for (const [fop, c] of Object.entries(stats.fops)) {
      const l = { ...labels, fop };
      let cum = 0;
      LATENCY_BUCKETS_S.forEach((le, i) => {
        cum += c.buckets[i] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { ...l, le }, value: cum });
      });
      values.push({ metricName: `${name}_bucket`, labels: { ...l, le: '+Inf' }, value: c.calls });
      values.push({ metricName: `${name}_sum`, labels: l, value: c.seconds });
      values.push({ metricName: `${name}_count`, labels: l, value: c.calls });
    }
  }
  return { name, help, type: 'histogram' as never, values, aggregator: 'sum', collect: () => undefined };
}

/** Entries of a brick's heal index (what `volume heal VOL info` would list); null when unreadable. */
async function healPending(brickPath: string): Promise<number | null> {
  try {
    return (await fsp.readdir(path.join(brickPath, BRICK_PRIVATE_DIR, 'index'))).length;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 0 : null;
  }
}

/** The registry of one scrape. */
export async function collectMetrics(ctx: MgmtContext, rebalance: RebalanceOps): Promise<Registry> {
  // Loaded at the first scrape, not with the daemon: it costs a third of a second to load.
  const { AggregatorRegistry, Counter, Gauge, Registry } = await import('prom-client');
  const reg = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []): Gauge => new Gauge({ name, help, labelNames, registers: [reg] });
  const counter = (name: string, help: string, labelNames: string[]): Counter => new Counter({ name, help, labelNames, registers: [reg] });
  const B = ['volume', 'brick'];
  const M = ['volume', 'mountpoint'];
  const volumes = gauge('brickfs_volumes', 'Volumes defined in the pool');
  const volumesStarted = gauge('brickfs_volumes_started', 'Volumes started');
  const volStarted = gauge('brickfs_volume_started', '1 when the volume is started', ['volume']);
  const volBricks = gauge('brickfs_volume_bricks', 'Bricks of the volume, on every host', ['volume']);
  const online = gauge('brickfs_brick_online', '1 when this host\'s brick process runs and accepts connections', B);
  const capacity = gauge('brickfs_brick_capacity_bytes', 'Size of the filesystem holding the brick (statfs)', B);
  const free = gauge('brickfs_brick_free_bytes', 'Bytes available to the brick on its filesystem (statfs)', B);
  const heal = gauge('brickfs_brick_heal_pending', 'Entries in the brick\'s heal index (files it blames others for, or is blamed for)', B);
  const bCalls = counter('brickfs_brick_fop_calls_total', 'Fops the brick answered, since its process started', [...B, 'fop']);
  const bErrors = counter('brickfs_brick_fop_errors_total', 'Fops the brick answered with an error, since its process started', [...B, 'fop']);
  const bRead = counter('brickfs_brick_read_bytes_total', 'Bytes the brick read for clients, since its process started', B);
  const bWritten = counter('brickfs_brick_written_bytes_total', 'Bytes clients wrote to the brick, since its process started', B);
  const rbRunning = gauge('brickfs_rebalance_running', '1 while a rebalance (or remove-brick drain) of the volume runs', ['volume']);
  const rbScanned = gauge('brickfs_rebalance_files_scanned', 'Files the last rebalance of the volume looked at', ['volume']);
  const rbMoved = gauge('brickfs_rebalance_files_moved', 'Files the last rebalance of the volume moved', ['volume']);
  const rbFailed = gauge('brickfs_rebalance_files_failed', 'Files the last rebalance of the volume could not move', ['volume']);
  const rbBytes = gauge('brickfs_rebalance_bytes_moved', 'Bytes the last rebalance of the volume moved', ['volume']);
  const mCalls = counter('brickfs_mount_fop_calls_total', 'Fops a mount on this host ran, since it was mounted', [...M, 'fop']);
  const mErrors = counter('brickfs_mount_fop_errors_total', 'Fops a mount on this host ran that failed', [...M, 'fop']);
  const mRead = counter('brickfs_mount_read_bytes_total', 'Bytes read through a mount on this host', M);
  const mWritten = counter('brickfs_mount_written_bytes_total', 'Bytes written through a mount on this host', M);
  const cHits = counter('brickfs_mount_cache_hits_total', 'Answers a cache translator of a mount gave from its cache', [...M, 'cache']);
  const cMisses = counter('brickfs_mount_cache_misses_total', 'Requests a cache translator of a mount passed down', [...M, 'cache']);
  const cRatio = gauge('brickfs_mount_cache_hit_ratio', 'hits / (hits + misses) of a mount\'s cache translator since it was mounted', [...M, 'cache']);

  const brickSeries: { labels: Labels; stats: FopStatsSnapshot }[] = [];
  const all = ctx.store.list();
  volumes.set(all.length);
  volumesStarted.set(all.filter((v) => v.status === 'started').length);
  await Promise.all(all.map(async (vol) => {
    volStarted.set({ volume: vol.name }, vol.status === 'started' ? 1 : 0);
    volBricks.set({ volume: vol.name }, vol.bricks.length);
    const rb = await rebalance.view(vol);
    if (rb) {
      const l = { volume: vol.name };
      rbRunning.set(l, rb.alive && rb.state === 'running' ? 1 : 0);
      rbScanned.set(l, rb.filesScanned);
      rbMoved.set(l, rb.filesMoved);
      rbFailed.set(l, rb.filesFailed);
      rbBytes.set(l, rb.bytesMoved);
    }
    for (const b of await ctx.myBricks(vol)) {
      const labels = { volume: vol.name, brick: formatBrick(b, false) };
      const st = vol.status === 'started' ? await brickState(ctx.brickProc(vol, b)) : { pid: null, online: false };
      online.set(labels, st.online ? 1 : 0);
      const fsStat = await fsp.statfs(b.path).catch(() => undefined);
      if (fsStat) {
        capacity.set(labels, fsStat.blocks * fsStat.bsize);
        free.set(labels, fsStat.bavail * fsStat.bsize);
      }
      const pending = await healPending(b.path);
      if (pending !== null) heal.set(labels, pending);
      if (st.pid === null) continue;
      const stats = await queryStats<FopStatsSnapshot>(statsSocket('brick', st.pid), '/stats').catch(() => undefined);
      if (!stats) continue;
      for (const [fop, c] of Object.entries(stats.fops)) {
        bCalls.inc({ ...labels, fop }, c.calls);
        bErrors.inc({ ...labels, fop }, c.errors);
      }
      bRead.inc(labels, stats.bytesRead);
      bWritten.inc(labels, stats.bytesWritten);
      brickSeries.push({ labels, stats });
    }
  }));

  // A process killed (SIGKILL) leaves its socket behind: nobody but us would remove it.
  for (const kind of ['brick', 'mount'] as const) {
    for (const pid of statsPids(kind)) if (!pidAlive(pid)) await fsp.rm(statsSocket(kind, pid), { force: true }).catch(() => undefined);
  }
  const mountSeries: { labels: Labels; stats: FopStatsSnapshot }[] = [];
  await Promise.all(statsPids('mount').map(async (pid) => {
    const m = await queryStats<MountStats>(statsSocket('mount', pid), '/stats').catch(() => undefined);
    if (!m) return;
    const labels = { volume: m.volume, mountpoint: m.mountpoint };
    for (const [fop, c] of Object.entries(m.fops)) {
      mCalls.inc({ ...labels, fop }, c.calls);
      mErrors.inc({ ...labels, fop }, c.errors);
    }
    mRead.inc(labels, m.bytesRead);
    mWritten.inc(labels, m.bytesWritten);
    for (const c of Object.values(m.caches)) {
      const l = { ...labels, cache: c.type.replace(/^performance\//, '') };
      cHits.inc(l, c.hits);
      cMisses.inc(l, c.misses);
      if (c.hits + c.misses > 0) cRatio.set(l, c.hits / (c.hits + c.misses));
    }
    mountSeries.push({ labels, stats: m });
  }));

  // prom-client has no way to set a histogram's buckets from counts kept elsewhere; its
  // aggregation of metrics in JSON form (cluster workers') does, and formats them as its own.
  const histograms = AggregatorRegistry.aggregate<PrometheusContentType>([[
    histogram('brickfs_brick_fop_latency_seconds', 'Time the brick took to answer each fop (from its arrival to its reply)', brickSeries),
    histogram('brickfs_mount_fop_latency_seconds', 'Time each fop took through a mount\'s translator graph', mountSeries),
  ]]);
  return Registry.merge([reg, histograms]);
}
