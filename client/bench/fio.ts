// The fio part of `brickfs bench`: DESIGN.md's four fio workloads, run one job at a time
// with JSON output, and the page cache dropped between each write and its read.
import fs from 'node:fs';
import path from 'node:path';
import { OperationError } from '../../lib/errors.js';
import type { BenchOptions } from './options.js';
import type { CacheDropper, Procs } from './system.js';
import { WORKLOADS, type Measure, type WorkloadKey } from './workloads.js';

/** One fio invocation: which workload it measures and its job options. */
export interface FioJob {
  key: WorkloadKey;
  /** fio job options without the leading "--". */
  options: Record<string, string | number | true>;
}

/**
 * Options every job shares: one synchronous I/O at a time through the page cache, as an
 * application does. thread: the job runs inside the fio process (a forked job calls setsid),
 * so stopping fio on an interrupted run stops the I/O too.
 */
const COMMON = { ioengine: 'psync', iodepth: 1, direct: 0, fallocate: 'none', thread: true } as const;

/**
 * The four jobs in the order they run. Each write makes the file its read partner reads.
 * fallocate=none: not every filesystem under test has fallocate, and each must lay files out
 * the same way. overwrite=1: the random file is fully written before the timed part, so the
 * random read reads data rather than holes.
 */
export function fioJobs(o: Pick<BenchOptions, 'sizeBytes' | 'randSizeBytes' | 'runtimeSeconds'>): FioJob[] {
  const seq = { ...COMMON, filename: 'seq.fio', bs: '1M', size: o.sizeBytes };
  const rand = { ...COMMON, filename: 'rand.fio', bs: '4k', size: o.randSizeBytes, runtime: o.runtimeSeconds, time_based: true as const };
  return [
    { key: 'seq-write', options: { name: 'seq-write', rw: 'write', end_fsync: 1, ...seq } },
    { key: 'seq-read', options: { name: 'seq-read', rw: 'read', ...seq } },
    { key: 'rand-write', options: { name: 'rand-write', rw: 'randwrite', end_fsync: 1, overwrite: 1, ...rand } },
    { key: 'rand-read', options: { name: 'rand-read', rw: 'randread', ...rand } },
  ];
}

/**
 * The fio command line of a job run in dir, its JSON report written to outFile. The file is
 * given as an absolute --filename rather than --directory: fio resolves a filename as soon as
 * it parses it, so a --directory after it is silently ignored and the job runs in the cwd.
 * A ":" separates file names for fio, so one inside the path is escaped.
 */
export function fioArgs(job: FioJob, dir: string, outFile: string): string[] {
  const args = Object.entries(job.options).map(([k, v]) => {
    if (k === 'filename') return `--filename=${path.join(dir, String(v)).replace(/:/g, '\\:')}`;
    return v === true ? `--${k}` : `--${k}=${v}`;
  });
  return [...args, '--output-format=json', `--output=${outFile}`];
}

interface FioDirection {
  bw_bytes?: number;
  iops?: number;
  io_bytes?: number;
}

interface FioJobReport {
  jobname?: string;
  error?: number;
  read?: FioDirection;
  write?: FioDirection;
}

/** Reads the figure of a workload out of fio's --output-format=json report. */
export function parseFioJson(text: string, key: WorkloadKey): Measure {
  // fio may print notes before the JSON document; the document starts at the first "{".
  const start = text.indexOf('{');
  let doc: { jobs?: FioJobReport[] };
  try {
    doc = JSON.parse(start < 0 ? text : text.slice(start)) as { jobs?: FioJobReport[] };
  } catch (e) {
    throw new OperationError(`fio's JSON report for ${key} does not parse: ${(e as Error).message}`);
  }
  const job = doc.jobs?.[0];
  if (!job) throw new OperationError(`fio's JSON report for ${key} has no job`);
  if (job.error) throw new OperationError(`fio job ${key} failed with error ${job.error}`);
  const writes = key === 'seq-write' || key === 'rand-write';
  const d = writes ? job.write : job.read;
  if (!d || !d.io_bytes) throw new OperationError(`fio job ${key} did no I/O`);
  const unit = WORKLOADS[key].unit;
  const value = unit === 'MiB/s' ? (d.bw_bytes ?? 0) / (1 << 20) : d.iops ?? 0;
  return { value, unit };
}

/** fio's version, or an OperationError saying how to install it. */
export async function checkFio(procs: Procs): Promise<string> {
  try {
    return (await procs.run('fio', ['--version'], { captureStdout: true })).trim();
  } catch {
    throw new OperationError('fio is not installed: apt-get install fio (or run with --skip fio)');
  }
}

export interface FioContext {
  procs: Procs;
  dropper: CacheDropper;
  /** Where fio writes its JSON reports: outside the directory under test. */
  reportDir: string;
  /** Called with each figure as soon as it is known. */
  measured: (key: WorkloadKey, m: Measure) => void;
}

/** Runs the four fio jobs in scratch (a fresh directory on the filesystem under test). */
export async function runFio(ctx: FioContext, o: BenchOptions, scratch: string): Promise<void> {
  for (const job of fioJobs(o)) {
    const out = path.join(ctx.reportDir, `${job.key}.json`);
    // Writes start from a settled disk: the directory measured before (its small files, its
    // removed scratch) leaves dirty pages and freed blocks that the disk would still be
    // writing back during this one's write (seen: 512 MiB right after removing 512 MiB took
    // twice as long as after a sync).
    if (job.key.endsWith('-write')) await ctx.dropper.drop();
    await ctx.procs.run('fio', fioArgs(job, scratch, out));
    ctx.measured(job.key, parseFioJson(await fs.promises.readFile(out, 'utf8'), job.key));
    const file = path.join(scratch, String(job.options.filename));
    // The read partner must find the file where it was meant to be, not somewhere fio chose.
    const size = await fs.promises.stat(file).then((s) => s.size, () => -1);
    if (size !== Number(job.options.size)) {
      throw new OperationError(`fio job ${job.key} left ${file} ${size < 0 ? 'missing' : `at ${size} bytes, not ${job.options.size}`}`);
    }
    if (job.key.endsWith('-write')) await ctx.dropper.drop();
    // Free the space once the read is done: the small-file part runs in the same directory.
    else await fs.promises.rm(file, { force: true });
  }
}
