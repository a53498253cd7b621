// The small-file workload, run by `brickfs bench` as a child process, one phase per run:
//   node worker.js PHASE DIR [FILES]
// It prints one JSON line {"ops":N,"seconds":S}. Timing is taken inside this process around
// the file operations only, so Node's start-up is never counted, and the parent can drop the
// page cache between phases. Operations are done one at a time, as a single-threaded
// program does them: the figures measure per-operation latency, not parallelism.
import fs from 'node:fs/promises';
import { realpathSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../../lib/prng.js';

/** The phases this worker knows, in the order the bench runs them. */
export const PHASES = ['tree-rename', 'tree-read', 'create', 'stat', 'read', 'rename', 'delete'] as const;
export type Phase = (typeof PHASES)[number];

/** What a phase prints. */
export interface PhaseResult {
  ops: number;
  seconds: number;
}

/** Directory of the small-file set inside the scratch directory. */
export const SMALL_DIR = 'small';
const FANOUT = 10;
const MIN_BYTES = 1024;
const MAX_BYTES = 16 * 1024;
const RENAMED = '.renamed';


interface SmallFile {
  path: string;
  size: number;
}

/** The small-file set: `files` files of 1–16 KiB spread over a 3-level tree (small/dX/dY/fN). */
export function smallFiles(root: string, files: number): { dirs: string[]; files: SmallFile[] } {
  const base = path.join(root, SMALL_DIR);
  const dirs = [base];
  const leaves: string[] = [];
  for (let i = 0; i < FANOUT; i++) {
    const d = path.join(base, `d${i}`);
    dirs.push(d);
    for (let j = 0; j < FANOUT; j++) {
      const leaf = path.join(d, `d${j}`);
      dirs.push(leaf);
      leaves.push(leaf);
    }
  }
  const rnd = mulberry32(4000);
  const list: SmallFile[] = [];
  for (let n = 0; n < files; n++) {
    list.push({ path: path.join(leaves[n % leaves.length]!, `f${n}`), size: MIN_BYTES + Math.floor(rnd() * (MAX_BYTES - MIN_BYTES + 1)) });
  }
  return { dirs, files: list };
}

/** Every regular file under dir (symlinks and special files are left out). */
async function walk(dir: string, out: string[] = []): Promise<string[]> {
  const entries: Dirent[] = await fs.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Runs fn over every item one at a time and times only that loop. */
async function timed<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<PhaseResult> {
  const start = process.hrtime.bigint();
  for (const item of items) await fn(item);
  return { ops: items.length, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Runs one phase on the scratch directory dir. */
export async function runPhase(phase: Phase, dir: string, files: number): Promise<PhaseResult> {
  const set = smallFiles(dir, files);
  const renamed = (f: SmallFile): string => f.path + RENAMED;
  switch (phase) {
    case 'tree-rename': {
      const all = await walk(dir);
      return timed(all, (p) => fs.rename(p, p + RENAMED));
    }
    case 'tree-read': {
      const all = await walk(dir);
      return timed(all, (p) => fs.readFile(p));
    }
    case 'create': {
      // The 111 directories are made first and not counted: the figure is file creation.
      for (const d of set.dirs) await fs.mkdir(d, { recursive: true });
      const data = Buffer.alloc(MAX_BYTES, 'brickfs small file\n');
      return timed(set.files, (f) => fs.writeFile(f.path, data.subarray(0, f.size), { flag: 'wx' }));
    }
    case 'stat':
      return timed(set.files, async (f) => {
        const st = await fs.stat(f.path);
        if (st.size !== f.size) throw new Error(`${f.path}: size ${st.size}, expected ${f.size}`);
      });
    case 'read':
      return timed(set.files, async (f) => {
        const b = await fs.readFile(f.path);
        if (b.length !== f.size) throw new Error(`${f.path}: read ${b.length} bytes, expected ${f.size}`);
      });
    case 'rename':
      return timed(set.files, (f) => fs.rename(f.path, renamed(f)));
    case 'delete': {
      const r = await timed(set.files, (f) => fs.unlink(renamed(f)));
      for (const d of set.dirs.reverse()) await fs.rmdir(d);
      return r;
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const [phase, dir, filesText] = argv;
  if (!PHASES.includes(phase as Phase) || !dir) {
    process.stderr.write(`usage: worker.js ${PHASES.join('|')} DIR [FILES]\n`);
    process.exitCode = 2;
    return;
  }
  try {
    const r = await runPhase(phase as Phase, dir, Number(filesText ?? 0));
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } catch (e) {
    process.stderr.write(`${phase}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

// Only when run as a script: the bench imports PHASES and the types from here.
const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  void main(process.argv.slice(2));
}
