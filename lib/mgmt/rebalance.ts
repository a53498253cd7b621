// The contract between the management daemon and the rebalance process it spawns
// (client/rebalance/main.ts), and the shape `volume rebalance VOL status --json` prints.
//
// Each daemon holding bricks of the volume runs, detached, one process per volume (a node
// of the run, as gluster's rebalance runs on every node):
//   node dist/client/rebalance/main.js --volfile FILE --status FILE --checkpoint FILE
//        [--fix-layout] [--resume] [--throttle lazy|normal|aggressive]
//        [--subvols NAME[:I/N],... --node TAG --no-settle] [--settle]
// FILE paths are absolute. The process builds the client graph from the volfile (no FUSE),
// walks the volume, and rewrites the status file atomically about twice a second and once
// more when it ends. SIGTERM stops it after the file in hand (state "stopped"); started
// again with --resume it skips the directories listed in the checkpoint file. Exit code 0
// when completed or stopped, 1 when failed (the status file says why).
//
// With --subvols the process moves only files found on the distribute subvolumes named
// (this node's: a brick of them is on its host); a subvolume with bricks on N hosts is shared
// by hash: this node, the I-th of them, takes the files whose gfid hashes to I mod N (what
// gluster's gf_defrag_should_i_migrate does with node uuids). Without it every subvolume is
// its own (a volume on one host). --node names the node in the staging names of its copies,
// so that one node clearing its leftovers never removes another's copy in flight.
// --no-settle leaves directory layouts unsettled: other nodes may still be moving entries
// of the same directory. --settle moves nothing and only marks every directory settled: the
// first node runs it once every node of such a run has completed with no failed file.
//
// When the volfile's cluster/distribute lists decommissioned-bricks (a remove-brick drain),
// the files on those subvolumes are the run's whole work: only they are counted, scanned and
// moved; files on the other subvolumes stay where they are, and a directory where one of
// them is off its hashed subvolume (with no link file there) is left unsettled.

/** Life of one rebalance run. */
export type RebalanceState = 'running' | 'stopped' | 'completed' | 'failed';

/** What a run does: fix-layout only, or move files (a full rebalance or a remove-brick drain). */
export type RebalanceMode = 'fix-layout' | 'migrate';

/** How hard the rebalance process pushes: share of its time spent moving data. */
export type RebalanceThrottle = 'lazy' | 'normal' | 'aggressive';

export const REBALANCE_THROTTLES: readonly RebalanceThrottle[] = ['lazy', 'normal', 'aggressive'];

/** A distribute subvolume a node moves files of: the I-th of the N hosts holding its bricks. */
export interface RebalanceSubvolShare {
  name: string;
  index: number;
  of: number;
}

/** `--subvols` as the daemon writes it: NAME:I/N,... */
export function formatSubvolShares(shares: readonly RebalanceSubvolShare[]): string {
  return shares.map((s) => `${s.name}:${s.index}/${s.of}`).join(',');
}

/** Parses `--subvols`; throws RangeError naming the bad item. */
export function parseSubvolShares(text: string): RebalanceSubvolShare[] {
  return text.split(',').filter(Boolean).map((item) => {
    const m = /^([^:,]+)(?::(\d+)\/(\d+))?$/.exec(item);
    const index = m?.[2] === undefined ? 0 : Number(m[2]);
    const of = m?.[3] === undefined ? 1 : Number(m[3]);
    if (!m || of < 1 || index >= of) throw new RangeError(`bad --subvols item ${JSON.stringify(item)}: expected NAME or NAME:I/N with I < N`);
    return { name: m[1]!, index, of };
  });
}

/** The status file the rebalance process writes (and the daemon serves, adding pid/alive). */
export interface RebalanceStatus {
  mode: RebalanceMode;
  state: RebalanceState;
  /** ISO 8601 times. */
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** Seconds since this run started (a resumed run counts from its own start). */
  elapsedS: number;
  dirsScanned: number;
  /** Directories whose layout was rewritten for the current brick set. */
  dirsFixed: number;
  filesScanned: number;
  filesMoved: number;
  /** Files that could not be moved (they stay where they were, still reachable). */
  filesFailed: number;
  /** Files left in place on purpose: hard links, special files, files already where they belong. */
  filesSkipped: number;
  bytesMoved: number;
  /** The files this run will scan (of a drain: those on the bricks being removed), counted by a quick listing before moving; null until counted. */
  filesTotal: number | null;
  rateFilesPerS: number;
  rateBytesPerS: number;
  /** Seconds left at the current rate; null when unknown. */
  etaS: number | null;
  /** True when this run continued a stopped one (--resume). */
  resumed: boolean;
  /** Why the run failed, or the last per-file error. */
  error?: string;
}

/**
 * The counts of a remove-brick drain in words: `remove-brick status` prints this line and a
 * commit refused for want of a complete drain says it, so the two always agree. The files
 * left are those counted on the bricks being removed less those moved off them: failed and
 * skipped files stay on them.
 */
export function drainProgress(r: Pick<RebalanceStatus, 'state' | 'filesTotal' | 'filesMoved' | 'filesFailed' | 'filesSkipped'> & { alive: boolean }): string {
  const left = r.filesTotal === null ? 'unknown' : String(Math.max(0, r.filesTotal - r.filesMoved));
  return `files on the bricks being removed: ${r.filesTotal ?? 'counting'}, moved: ${r.filesMoved}, failed: ${r.filesFailed}, ` +
    `skipped: ${r.filesSkipped}, left: ${left}; state ${r.state}${r.state !== 'running' && r.alive ? ', a process still running' : ''}`;
}
