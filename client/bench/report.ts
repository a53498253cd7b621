// What `brickfs bench` reports: the JSON document (docs/bench.md, version 1), the table on
// stdout and the SVG bar chart. One convention for every comparison: a ratio is the speed of
// a directory relative to the first one, so above 1 always means faster than the first,
// whether the workload is a rate (other/first) or an elapsed time (first/other).
import { formatBytes } from './options.js';
import type { HostInfo } from './system.js';
import { WORKLOAD_KEYS, WORKLOADS, type Better, type Part, type Results, type WorkloadInfo, type WorkloadKey } from './workloads.js';

/** The figures of one directory. */
export interface DirReport {
  dir: string;
  /** Filesystem type from /proc/mounts ("ext4", "fuse.brickfs", "fuse.glusterfs"...). */
  fstype: string;
  /** The figures: with several rounds, the median of each workload's rounds. */
  results: Results;
  /** Each round's figures, in round order; only when the run had more than one round. */
  rounds?: Results[];
}

/** The JSON report, schema version 1 (docs/bench.md). */
export interface BenchReport {
  version: 1;
  /** ISO 8601 times of the start and end of the run. */
  started: string;
  finished: string;
  host: HostInfo;
  options: {
    sizeBytes: number;
    randSizeBytes: number;
    runtimeSeconds: number;
    files: number;
    skipped: Part[];
    /** Non-directory entries of the untarred tree, or null when the small-file part was skipped. */
    untarFiles: number | null;
    /** Rounds of the run (1 when --rounds was not given); added after version 1's first fields. */
    rounds: number;
    /** Whether the page cache was dropped between writes and reads (false: --no-drop-caches); absent in reports from before the option. */
    dropCaches?: boolean;
  };
  /** The workloads of this run, in table order: label, unit and which direction is better. */
  workloads: Partial<Record<WorkloadKey, Pick<WorkloadInfo, 'label' | 'unit' | 'better'>>>;
  dirs: DirReport[];
}

/** The workloads a run measures when the given parts are skipped, in table order. */
export function workloadsOf(skipped: readonly Part[]): WorkloadKey[] {
  return WORKLOAD_KEYS.filter((k) => !skipped.includes(WORKLOADS[k].part));
}

/** The `workloads` section of the JSON report. */
export function workloadSection(keys: readonly WorkloadKey[]): BenchReport['workloads'] {
  const out: BenchReport['workloads'] = {};
  for (const k of keys) out[k] = { label: WORKLOADS[k].label, unit: WORKLOADS[k].unit, better: WORKLOADS[k].better };
  return out;
}

/** Each workload's median over rounds (the mean of the middle two for an even count); workloads missing from a round are left out of it. */
export function medianResults(rounds: readonly Results[]): Results {
  const out: Results = {};
  for (const k of WORKLOAD_KEYS) {
    const got = rounds.map((r) => r[k]).filter((m) => m !== undefined);
    if (!got.length) continue;
    const v = got.map((m) => m.value).sort((a, b) => a - b);
    const mid = v.length >> 1;
    out[k] = { value: v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, unit: got[0]!.unit };
  }
  return out;
}

/** Speed of `other` relative to `first`: above 1 is faster than the first; undefined when it cannot be computed. */
export function speedRatio(better: Better, first: number | undefined, other: number | undefined): number | undefined {
  if (first === undefined || other === undefined || !Number.isFinite(first) || !Number.isFinite(other)) return undefined;
  const [num, den] = better === 'higher' ? [other, first] : [first, other];
  return num > 0 && den > 0 ? num / den : undefined;
}

/** A figure with three significant digits or more, never in exponent form. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

/** "0.69x": a ratio as printed in the table and on the chart. */
export function formatRatio(r: number | undefined): string {
  return r === undefined ? 'n/a' : `${r.toFixed(r >= 100 ? 0 : 2)}x`;
}

/** The plain-text table: one row per workload, one column per directory, ratios against the first. */
export function formatTable(report: BenchReport): string {
  const keys = WORKLOAD_KEYS.filter((k) => report.workloads[k]);
  const first = report.dirs[0];
  const head = ['workload', 'unit', 'better'];
  const rows = keys.map((k) => [WORKLOADS[k].label, WORKLOADS[k].unit, WORKLOADS[k].better]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Each directory column: values right-aligned, then the ratio, so both line up.
  const cols = report.dirs.map((d, di) => {
    const values = keys.map((k) => {
      const m = d.results[k];
      return m ? formatValue(m.value) : '-';
    });
    const ratios = keys.map((k) => (di === 0 ? '' : `(${formatRatio(speedRatio(WORKLOADS[k].better, first?.results[k]?.value, d.results[k]?.value))})`));
    const vw = Math.max(...values.map((v) => v.length), 1);
    const rw = Math.max(...ratios.map((r) => r.length), 0);
    const cells = values.map((v, i) => (rw ? `${v.padStart(vw)} ${ratios[i]!.padEnd(rw)}` : v.padStart(vw)));
    const titles = [d.dir, `[${d.fstype}]`];
    const w = Math.max(...cells.map((c) => c.length), ...titles.map((t) => t.length));
    return { titles, cells, w };
  });
  const line = (left: string[], right: string[]): string =>
    [...left.map((c, i) => c.padEnd(widths[i]!)), ...right.map((c, i) => c.padEnd(cols[i]!.w))].join('  ').trimEnd();
  const out = [
    line(head, cols.map((c) => c.titles[0]!)),
    line(['', '', ''], cols.map((c) => c.titles[1]!)),
    ...rows.map((r, i) => line(r, cols.map((c) => c.cells[i]!))),
    '',
  ];
  if (first && report.dirs.length > 1) {
    out.push(`(ratio) = speed relative to the first column, ${first.dir}:`,
      '  rates (MiB/s, IOPS, ops/s; higher is better): other/first; times (s; lower is better): first/other.',
      '  So above 1 always means faster than the first column, below 1 slower.');
  }
  const notes: string[] = [];
  if (report.options.untarFiles !== null) {
    notes.push(`untar ... rm -rf: npm's sources, ${report.options.untarFiles} files`);
    notes.push(`small files: ${report.options.files} files of 1-16 KiB in a 3-level tree, one operation at a time`);
  }
  if (!report.options.skipped.includes('fio')) {
    const o = report.options;
    notes.push(`fio (psync, iodepth 1): 1 MiB blocks over a ${formatBytes(o.sizeBytes)} file; 4 KiB blocks over a ${formatBytes(o.randSizeBytes)} file for ${o.runtimeSeconds} s`);
  }
  if (report.options.dropCaches === false) notes.push('page cache not dropped (--no-drop-caches): read figures may have come from memory');
  if (notes.length) out.push(...notes.map((l) => `${l}.`));
  return `${out.join('\n')}\n`;
}

/** The JSON report as written by --json (stable: docs/bench.md). */
export function toJson(report: BenchReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Escapes text for SVG element content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/**
 * The log axis of the chart, in decades: from a decade below the smallest ratio (at most 0.1,
 * so that a 0.1x bar still has a decade of height) to the decade at or above the largest (at
 * least 10). Ratios from 0.1x to 10x, common between filesystems, then share one readable axis;
 * a linear one flattened every bar below 1 when one figure was 10x.
 */
export function logAxis(ratios: readonly number[]): { lo: number; hi: number } {
  const shown = ratios.filter((r) => Number.isFinite(r) && r > 0);
  const min = Math.min(0.1, ...shown);
  const max = Math.max(10, ...shown);
  return { lo: Math.floor(Math.log10(min) + 1e-9) - 1, hi: Math.ceil(Math.log10(max) - 1e-9) };
}

/** Rounds SVG coordinates so the text stays short and diffable. */
const n = (x: number): string => String(Math.round(x * 10) / 10);

/**
 * A grouped bar chart: one group per workload, one bar per directory, each bar the speed
 * relative to the first directory (so the first is always 1.0 and different units share one
 * axis). The bars are the only <rect> elements; background and legend swatches are paths.
 */
export function toSvg(report: BenchReport): string {
  const keys = WORKLOAD_KEYS.filter((k) => report.workloads[k]);
  const dirs = report.dirs;
  const first = dirs[0];
  const ratios = keys.map((k) => dirs.map((d) => speedRatio(WORKLOADS[k].better, first?.results[k]?.value, d.results[k]?.value)));
  const axis = logAxis(ratios.flat().filter((r): r is number => r !== undefined));

  const barW = dirs.length <= 2 ? 24 : Math.max(8, Math.floor(72 / dirs.length));
  const groupW = Math.max(64, dirs.length * barW + 20);
  const legendRows = dirs.length;
  // Room for the first group's label, which is rotated and runs left of its group.
  const left = 96;
  const plotTop = 48 + legendRows * 18;
  const plotH = 280;
  const bottom = 90;
  const width = Math.max(560, left + keys.length * groupW + 24);
  const height = plotTop + plotH + bottom;
  // Log scale, bars rising from the bottom of the axis; a ratio off the axis (0, infinite) stays at its end.
  const y = (r: number): number => {
    const d = Math.min(axis.hi, Math.max(axis.lo, r > 0 ? Math.log10(r) : axis.lo));
    return plotTop + plotH - ((d - axis.lo) / (axis.hi - axis.lo)) * plotH;
  };

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<path d="M0 0H${width}V${height}H0Z" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">brickfs bench: speed relative to ${escapeXml(first?.dir ?? '')} (= 1.0; higher is faster; log scale)</text>`);
  dirs.forEach((d, i) => {
    const ly = 40 + i * 18;
    out.push(`<path d="M${left} ${ly - 10}h12v12h-12Z" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${left + 18}" y="${ly}">${escapeXml(`${d.dir} [${d.fstype}]`)}</text>`);
  });
  // Axis and grid: 1, 2 and 5 of every decade, the decades darker.
  for (let e = axis.lo; e <= axis.hi; e++) {
    for (const m of e < axis.hi ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      const ty = y(t);
      out.push(`<path d="M${left} ${n(ty)}H${width - 16}" stroke="${m === 1 ? '#bbbbbb' : '#e4e4e4'}" stroke-width="1"/>`);
      out.push(`<text x="${left - 6}" y="${n(ty + 4)}" text-anchor="end">${escapeXml(formatAxis(t))}</text>`);
    }
  }
  out.push(`<path d="M${left} ${plotTop}V${plotTop + plotH}H${width - 16}" stroke="#333333" fill="none"/>`);
  out.push(`<path d="M${left} ${n(y(1))}H${width - 16}" stroke="#333333" stroke-dasharray="4 3"/>`);
  // One group per workload.
  keys.forEach((k, gi) => {
    const gx = left + gi * groupW + (groupW - dirs.length * barW) / 2;
    dirs.forEach((d, di) => {
      const r = ratios[gi]![di];
      const bx = gx + di * barW;
      const by = r === undefined ? plotTop + plotH : y(r);
      const m = d.results[k];
      const tip = `${d.dir}: ${WORKLOADS[k].label}: ${m ? `${formatValue(m.value)} ${m.unit}` : '-'} (${formatRatio(r)})`;
      out.push(`<rect class="bar" x="${n(bx)}" y="${n(by)}" width="${barW - 2}" height="${n(plotTop + plotH - by)}" fill="${PALETTE[di % PALETTE.length]}"><title>${escapeXml(tip)}</title></rect>`);
      out.push(`<text x="${n(bx + (barW - 2) / 2)}" y="${n(by - 3)}" font-size="9" text-anchor="middle">${escapeXml(barLabel(r))}</text>`);
    });
    const lx = left + gi * groupW + groupW / 2;
    const ly = plotTop + plotH + 14;
    out.push(`<text x="${n(lx)}" y="${ly}" text-anchor="end" transform="rotate(-35 ${n(lx)} ${ly})">${escapeXml(`${WORKLOADS[k].short} (${WORKLOADS[k].unit})`)}</text>`);
  });
  out.push(`<text x="${left}" y="${height - 8}" font-size="10" fill="#555555">${escapeXml('Rates: other/first. Times (s): first/other. Above 1 = faster than the first directory.')}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The ratio over a bar: two significant digits below 1, so 0.02 and 0.04 stay apart. */
function barLabel(r: number | undefined): string {
  if (r === undefined) return 'n/a';
  return r.toFixed(r >= 10 ? 0 : r >= 1 ? 1 : 2);
}

/** Axis tick text without float noise (0.30000000000000004), however small the decade. */
function formatAxis(t: number): string {
  return String(Number(t.toPrecision(1)));
}
