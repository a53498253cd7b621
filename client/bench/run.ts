// One `brickfs bench` run: checks everything it can before any workload starts, then runs
// each part on every directory in turn (for each round), each in a fresh scratch
// subdirectory removed after.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperationError } from '../../lib/errors.js';
import { checkFio, runFio } from './fio.js';
import { formatBytes, type BenchOptions } from './options.js';
import { formatRatio, formatValue, medianResults, speedRatio, workloadSection, workloadsOf, type BenchReport, type DirReport } from './report.js';
import { makeTarball, npmSourceDir, runSmallfile, type Tarball } from './smallfile.js';
import { CacheDropper, freeBytes, fstypeOf, hostInfo, Procs, sleepSync } from './system.js';
import { PARTS, WORKLOADS, type Measure, type Part, type Results, type WorkloadKey } from './workloads.js';

/** Where a run reports progress (one line per phase) and warnings. */
export interface BenchOutput {
  progress: (line: string) => void;
  warn: (line: string) => void;
}

/** Prefix of the scratch subdirectories; what the integration test checks is gone. */
export const SCRATCH_PREFIX = 'brickfs-bench-';

/** Room the run needs on each directory besides the fio files: npm's tree and the small files. */
const SMALL_PART_BYTES = 64 << 20;

/** A bench run over the directories of its options. */
export class BenchRun {
  private readonly procs = new Procs();
  /** Scratch directories that exist right now, removed at the end or on interruption. */
  private readonly scratch = new Set<string>();
  private readonly dropper: CacheDropper;

  constructor(private readonly o: BenchOptions, private readonly out: BenchOutput) {
    this.dropper = new CacheDropper(this.procs, (m) => out.warn(m), o.dropCaches);
  }

  /** Refuses (OperationError, exit 1) anything that would make the run fail halfway, before it starts. */
  async preflight(): Promise<void> {
    for (const d of this.o.dirs) await checkDir(d);
    for (const f of [this.o.json, this.o.svg]) {
      if (f === undefined) continue;
      const parent = path.dirname(f);
      try {
        fs.accessSync(parent, fs.constants.W_OK);
      } catch (e) {
        throw new OperationError(`cannot write ${f}: ${path.dirname(f)} is missing or not writable (${(e as NodeJS.ErrnoException).code})`);
      }
    }
    if (!this.o.skipped.includes('fio')) await checkFio(this.procs);
    if (!this.o.skipped.includes('smallfile')) npmSourceDir();
    const need = (this.o.skipped.includes('fio') ? 0 : Math.max(this.o.sizeBytes, this.o.randSizeBytes)) + SMALL_PART_BYTES;
    for (const d of this.o.dirs) {
      const free = await freeBytes(d);
      if (free !== undefined && free < need) {
        throw new OperationError(`${d} has ${formatBytes(free)} free; the bench needs about ${formatBytes(need)} there (a smaller --size needs less)`);
      }
    }
  }

  /** Runs every part on every directory; the report of the whole run. */
  async run(): Promise<BenchReport> {
    // Said before it happens: it empties the page cache of every process on the machine.
    this.out.progress(this.o.dropCaches
      ? 'bench: dropping the page cache of this machine (sync; echo 3 > /proc/sys/vm/drop_caches) between each write and its read; --no-drop-caches to skip'
      : 'bench: not dropping the page cache (--no-drop-caches): read figures may come from memory');
    const started = new Date().toISOString();
    const runScratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), SCRATCH_PREFIX));
    this.scratch.add(runScratch);
    try {
      let tarball: Tarball | undefined;
      if (!this.o.skipped.includes('smallfile')) tarball = await makeTarball(this.procs, runScratch);
      const dirs: DirReport[] = this.o.dirs.map((dir) => ({ dir, fstype: fstypeOf(dir), results: {} }));
      const rounds: Results[][] = this.o.dirs.map(() => []);
      const parts = PARTS.filter((p) => !this.o.skipped.includes(p));
      for (let r = 0; r < this.o.rounds; r++) {
        // Part by part, every directory in turn, the order reversed every other round: a
        // slow spell of the machine (disk writeback, another tenant) lands on all of them.
        const order = this.o.dirs.map((_, i) => i);
        if (r % 2 === 1) order.reverse();
        const round: Results[] = this.o.dirs.map(() => ({}));
        for (const part of parts) {
          for (const i of order) await this.runPart(part, i, r, round, runScratch, tarball);
        }
        round.forEach((res, i) => rounds[i]!.push(res));
      }
      dirs.forEach((d, i) => {
        d.results = medianResults(rounds[i]!);
        if (this.o.rounds > 1) d.rounds = rounds[i];
      });
      return {
        version: 1,
        started,
        finished: new Date().toISOString(),
        host: hostInfo(),
        options: {
          sizeBytes: this.o.sizeBytes,
          randSizeBytes: this.o.randSizeBytes,
          runtimeSeconds: this.o.runtimeSeconds,
          files: this.o.files,
          skipped: this.o.skipped,
          untarFiles: tarball?.files ?? null,
          rounds: this.o.rounds,
          dropCaches: this.o.dropCaches,
        },
        workloads: workloadSection(workloadsOf(this.o.skipped)),
        dirs,
      };
    } finally {
      await this.removeScratch(runScratch);
    }
  }

  /**
   * Stops the tools still running and removes every scratch directory, synchronously (from a
   * signal handler), so a second Ctrl-C or SIGTERM waits until it is done (SIGKILL does not).
   * Never throws; returns what it could not remove, with why.
   */
  abort(): string[] {
    this.procs.killAll();
    const left: string[] = [];
    for (const d of this.scratch) {
      const e = removeTreeSync(d);
      if (e) left.push(`${d} (${e.code ?? e.message})`);
    }
    this.scratch.clear();
    return left;
  }

  /** One part on one directory, in a fresh scratch subdirectory; its figures go into round[index]. */
  private async runPart(part: Part, index: number, round: number, results: Results[], runScratch: string, tarball: Tarball | undefined): Promise<void> {
    const dir = this.o.dirs[index]!;
    const rounds = this.o.rounds > 1 ? ` round ${round + 1}/${this.o.rounds}` : '';
    const tag = `bench${rounds} [${index + 1}/${this.o.dirs.length}] ${dir}`;
    const scratch = await fs.promises.mkdtemp(path.join(dir, SCRATCH_PREFIX));
    this.scratch.add(scratch);
    this.out.progress(`${tag} [${fstypeOf(dir)}]: ${part} in ${scratch}`);
    const measured = (key: WorkloadKey, m: Measure): void => {
      results[index]![key] = m;
      const w = WORKLOADS[key];
      const first = index === 0 ? undefined : results[0]![key];
      const vs = first ? ` (${formatRatio(speedRatio(w.better, first.value, m.value))} vs first)` : '';
      this.out.progress(`${tag}: ${w.label}: ${formatValue(m.value)} ${m.unit}${vs}`);
    };
    try {
      if (part === 'fio') {
        const reportDir = path.join(runScratch, `fio-${index}-${round}`);
        await fs.promises.mkdir(reportDir);
        await runFio({ procs: this.procs, dropper: this.dropper, reportDir, measured }, this.o, scratch);
      } else if (tarball) {
        await runSmallfile({ procs: this.procs, dropper: this.dropper, tarball, measured }, this.o, scratch);
      }
    } finally {
      await this.removeScratch(scratch);
    }
  }

  private async removeScratch(d: string): Promise<void> {
    await fs.promises.rm(d, { recursive: true, force: true });
    this.scratch.delete(d);
  }
}

/**
 * rm -rf that outlasts files still appearing for a moment (ENOTEMPTY: on a mount, the reply to
 * a killed tool's last create can come after the kill), re-walking the tree on each try.
 */
function removeTreeSync(d: string, tries = 30): NodeJS.ErrnoException | undefined {
  for (let i = 1; ; i++) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
      return undefined;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (i >= tries || !['ENOTEMPTY', 'EBUSY'].includes(err.code ?? '')) return err;
      sleepSync(100);
    }
  }
}

/** A directory the bench can work in: exists, is a directory, and takes a new subdirectory. */
async function checkDir(d: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(d);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OperationError(code === 'ENOENT' ? `${d} does not exist: create it, or give an existing directory (a mount point)` : `cannot use ${d}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new OperationError(`${d} is not a directory: give a directory (a mount point) to run the bench in`);
  try {
    // access(W_OK) alone says yes to root on most filesystems; making a directory is the real test.
    await fs.promises.access(d, fs.constants.W_OK | fs.constants.X_OK);
    const probe = await fs.promises.mkdtemp(path.join(d, SCRATCH_PREFIX));
    await fs.promises.rmdir(probe);
  } catch (e) {
    throw new OperationError(`${d} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): the bench writes files there`);
  }
}
