// The one table of `brickfs bench` workloads: the JSON keys, the table rows, the SVG groups
// and which direction is better all come from here, so they cannot disagree.

/** Whether a bigger number is better (rates) or a smaller one (elapsed times). */
export type Better = 'higher' | 'lower';

/** Which part of the bench produces a workload (what `--skip` names). */
export type Part = 'fio' | 'smallfile';

/** The parts in the order a run does them. */
export const PARTS: readonly Part[] = ['fio', 'smallfile'];

export interface WorkloadInfo {
  /** Row label in the table. */
  readonly label: string;
  /** Short label under the bar group of the SVG chart. */
  readonly short: string;
  readonly unit: 'MiB/s' | 'IOPS' | 's' | 'ops/s';
  readonly better: Better;
  readonly part: Part;
}

export const WORKLOADS = {
  'seq-write': { label: 'fio seq write 1 MiB', short: 'seq write', unit: 'MiB/s', better: 'higher', part: 'fio' },
  'seq-read': { label: 'fio seq read 1 MiB', short: 'seq read', unit: 'MiB/s', better: 'higher', part: 'fio' },
  'rand-write': { label: 'fio rand write 4 KiB', short: 'rand write', unit: 'IOPS', better: 'higher', part: 'fio' },
  'rand-read': { label: 'fio rand read 4 KiB', short: 'rand read', unit: 'IOPS', better: 'higher', part: 'fio' },
  'untar': { label: "untar npm's sources", short: 'untar', unit: 's', better: 'lower', part: 'smallfile' },
  'find-stat': { label: 'find + stat all', short: 'find+stat', unit: 's', better: 'lower', part: 'smallfile' },
  'rename': { label: 'rename every file', short: 'rename', unit: 's', better: 'lower', part: 'smallfile' },
  'read-all': { label: 'read every file', short: 'read all', unit: 's', better: 'lower', part: 'smallfile' },
  'cp-r': { label: 'cp -r of the tree', short: 'cp -r', unit: 's', better: 'lower', part: 'smallfile' },
  'rm-rf': { label: 'rm -rf', short: 'rm -rf', unit: 's', better: 'lower', part: 'smallfile' },
  'small-create': { label: 'small files: create', short: 'sf create', unit: 'ops/s', better: 'higher', part: 'smallfile' },
  'small-stat': { label: 'small files: stat', short: 'sf stat', unit: 'ops/s', better: 'higher', part: 'smallfile' },
  'small-read': { label: 'small files: read', short: 'sf read', unit: 'ops/s', better: 'higher', part: 'smallfile' },
  'small-rename': { label: 'small files: rename', short: 'sf rename', unit: 'ops/s', better: 'higher', part: 'smallfile' },
  'small-delete': { label: 'small files: delete', short: 'sf delete', unit: 'ops/s', better: 'higher', part: 'smallfile' },
} as const satisfies Record<string, WorkloadInfo>;

export type WorkloadKey = keyof typeof WORKLOADS;

/** Every workload key, in table order. */
export const WORKLOAD_KEYS = Object.keys(WORKLOADS) as WorkloadKey[];

/** One measured figure, as it appears in the JSON report. */
export interface Measure {
  value: number;
  unit: WorkloadInfo['unit'];
}

/** The figures of one directory, keyed by workload (skipped parts are absent). */
export type Results = Partial<Record<WorkloadKey, Measure>>;
