// The contract between the management daemon and the rebalance process it spawns
// (client/rebalance/main.ts), and the shape `volume rebalance VOL status --json` prints.
//
// The daemon runs, detached, one process per volume:
//   node dist/client/rebalance/main.js --volfile FILE --status FILE --checkpoint FILE
//        [--fix-layout] [--resume] [--throttle lazy|normal|aggressive]
// FILE paths are absolute. The process builds the client graph from the volfile (no FUSE),
// walks the volume, and rewrites the status file atomically about twice a second and once
// more when it ends. SIGTERM stops it after the file in hand (state "stopped"); started
// again with --resume it skips the directories listed in the checkpoint file. Exit code 0
// when completed or stopped, 1 when failed (the status file says why).

/** Life of one rebalance run. */
export type RebalanceState = 'running' | 'stopped' | 'completed' | 'failed';

/** What a run does: fix-layout only, or move files (a full rebalance or a remove-brick drain). */
export type RebalanceMode = 'fix-layout' | 'migrate';

/** How hard the rebalance process pushes: share of its time spent moving data. */
export type RebalanceThrottle = 'lazy' | 'normal' | 'aggressive';

export const REBALANCE_THROTTLES: readonly RebalanceThrottle[] = ['lazy', 'normal', 'aggressive'];

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
  /** Files the volume holds, counted by a quick listing before moving; null until counted. */
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
