// `brickfs bench` options as typed, checked into what the run uses. Every refusal is a
// UsageError (exit 2) that says what to type instead.
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import type { Part } from './workloads.js';

const MiB = 1 << 20;

export const DEFAULT_SIZE = '512M';
export const DEFAULT_RUNTIME_S = 15;
export const DEFAULT_FILES = 4000;
export const DEFAULT_ROUNDS = 1;
const MAX_ROUNDS = 20;

/** The options as yargs hands them over (numbers may be NaN when mistyped). */
export interface RawBenchOptions {
  dir: string;
  compare?: readonly string[];
  size: string;
  runtime: number | string;
  files: number | string;
  rounds?: number | string;
  skip?: Part;
  json?: string;
  svg?: string;
  /** false for --no-drop-caches. */
  dropCaches?: boolean;
}

/** What one bench run does. */
export interface BenchOptions {
  /** Absolute paths, the first DIR first; ratios are against dirs[0]. */
  dirs: string[];
  /** Size of the sequential fio file. */
  sizeBytes: number;
  /** Size of the random-I/O fio file: half the sequential one (256 MiB by default). */
  randSizeBytes: number;
  runtimeSeconds: number;
  /** Number of files of the small-file set. */
  files: number;
  /** Times every part runs on every directory; each figure is the median of the rounds. */
  rounds: number;
  skipped: Part[];
  json?: string;
  svg?: string;
  /** Drop the machine's page cache between each write and its read (needs root). */
  dropCaches: boolean;
}

const UNITS: Record<string, number> = { '': 1, k: 1 << 10, m: MiB, g: 1 << 30, t: 2 ** 40 };

/** Parses a size the way fio does (K, M, G, T are powers of 1024; an optional "iB" or "B"); NaN when it is not one. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
}

/** A whole number as typed ("15"), NaN for anything else ("", "1e3", "abc", true). */
function wholeNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  return typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
}

/** Checks and converts the options; throws UsageError naming the option and what to type. */
export function benchOptions(raw: RawBenchOptions): BenchOptions {
  const size = parseSize(String(raw.size));
  if (!Number.isSafeInteger(size) || size < 2 * MiB || size % MiB !== 0) {
    throw new UsageError(`--size must be a whole number of MiB, at least 2M, such as 512M or 1G; got "${raw.size}"`);
  }
  const runtime = wholeNumber(raw.runtime);
  if (!Number.isInteger(runtime) || runtime < 1 || runtime > 3600) {
    throw new UsageError(`--runtime must be a number of seconds from 1 to 3600, such as 15; got "${raw.runtime}"`);
  }
  const files = wholeNumber(raw.files);
  if (!Number.isInteger(files) || files < 1 || files > 1_000_000) {
    throw new UsageError(`--files must be a whole number from 1 to 1000000, such as 4000; got "${raw.files}"`);
  }
  const rounds = wholeNumber(raw.rounds ?? DEFAULT_ROUNDS);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
    throw new UsageError(`--rounds must be a whole number from 1 to ${MAX_ROUNDS}, such as 3; got "${raw.rounds}"`);
  }
  const dirs = [raw.dir, ...(raw.compare ?? [])].map(String);
  const empty = dirs.find((d) => d.trim() === '');
  if (empty !== undefined) throw new UsageError('a directory name is empty; give DIR [--compare DIR...]');
  for (const [opt, file] of [['--json', raw.json], ['--svg', raw.svg]] as const) {
    if (file !== undefined && String(file).trim() === '') throw new UsageError(`${opt} needs a file name, such as ${opt} bench${opt === '--json' ? '.json' : '.svg'}`);
  }
  return {
    dirs: dirs.map((d) => path.resolve(d)),
    sizeBytes: size,
    // Whole 4 KiB blocks, as the random jobs use.
    randSizeBytes: Math.floor(size / 2 / 4096) * 4096,
    runtimeSeconds: runtime,
    files,
    rounds,
    skipped: raw.skip ? [raw.skip] : [],
    json: raw.json === undefined ? undefined : path.resolve(String(raw.json)),
    svg: raw.svg === undefined ? undefined : path.resolve(String(raw.svg)),
    dropCaches: raw.dropCaches !== false,
  };
}

/** "512 MiB", "1.5 GiB": a byte count for messages. */
export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${+(n / (1 << 30)).toFixed(2)} GiB`;
  return `${+(n / MiB).toFixed(1)} MiB`;
}
