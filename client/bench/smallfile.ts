// The small-file part of `brickfs bench`: a real source tree (npm's own, tarred once per
// run) untarred, listed, renamed, read and removed, then a synthetic set of small files
// created, stat'ed, read, renamed and deleted by the worker child process.
import fs from 'node:fs';
import path from 'node:path';
import { OperationError } from '../../lib/errors.js';
import type { BenchOptions } from './options.js';
import { secondsSince, siblingModule, type CacheDropper, type Procs } from './system.js';
import type { Phase, PhaseResult } from './worker.js';
import type { Measure, WorkloadKey } from './workloads.js';

/** npm's installed sources, next to the node binary running this (PREFIX/bin/node → PREFIX/lib/node_modules/npm). */
export function npmSourceDir(): string {
  const dir = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm');
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    throw new OperationError(`npm's sources are not at ${dir} (the untar workload tars them up); install Node with npm, or run with --skip smallfile`);
  }
  return dir;
}

/** The tarball every directory untars, and how many non-directory entries it holds. */
export interface Tarball {
  path: string;
  files: number;
}

/** Tars npm's sources into the run's scratch directory (outside every directory under test). */
export async function makeTarball(procs: Procs, scratch: string): Promise<Tarball> {
  const src = npmSourceDir();
  const file = path.join(scratch, 'npm.tar');
  await procs.run('tar', ['-C', src, '-cf', file, '.']);
  const listing = await procs.run('tar', ['-tf', file], { captureStdout: true });
  const files = listing.split('\n').filter((l) => l !== '' && !l.endsWith('/')).length;
  return { path: file, files };
}

export interface SmallfileContext {
  procs: Procs;
  dropper: CacheDropper;
  tarball: Tarball;
  measured: (key: WorkloadKey, m: Measure) => void;
}

/** Runs one worker phase in a child process and returns what it measured. */
async function worker(ctx: SmallfileContext, phase: Phase, dir: string, files: number): Promise<PhaseResult> {
  const out = await ctx.procs.run(process.execPath, [siblingModule('worker.js'), phase, dir, String(files)], { captureStdout: true });
  try {
    return JSON.parse(out) as PhaseResult;
  } catch {
    throw new OperationError(`the small-file worker (${phase}) printed no result: ${out.slice(0, 200)}`);
  }
}

/** Times a command (tar, find, rm) from spawn to exit. */
async function timedRun(ctx: SmallfileContext, cmd: string, args: string[]): Promise<Measure> {
  const start = process.hrtime.bigint();
  await ctx.procs.run(cmd, args);
  return { value: secondsSince(start), unit: 's' };
}

const opsPerSecond = (r: PhaseResult): Measure => ({ value: r.seconds > 0 ? r.ops / r.seconds : 0, unit: 'ops/s' });

/** Runs the source-tree and small-file workloads in scratch (a fresh directory on the filesystem under test). */
export async function runSmallfile(ctx: SmallfileContext, o: BenchOptions, scratch: string): Promise<void> {
  const tree = path.join(scratch, 'tree');
  await fs.promises.mkdir(tree);
  await ctx.dropper.drop();
  ctx.measured('untar', await timedRun(ctx, 'tar', ['-C', tree, '-xf', ctx.tarball.path]));
  await ctx.dropper.drop();
  // find -exec stat, as scripts/bench-table.sh and DESIGN.md's figures do it.
  ctx.measured('find-stat', await timedRun(ctx, 'find', [tree, '-exec', 'stat', '-c', '%s', '{}', '+']));
  const renamed = await worker(ctx, 'tree-rename', tree, 0);
  ctx.measured('rename', { value: renamed.seconds, unit: 's' });
  await ctx.dropper.drop();
  const read = await worker(ctx, 'tree-read', tree, 0);
  ctx.measured('read-all', { value: read.seconds, unit: 's' });
  await ctx.dropper.drop();
  // A copy within the directory under test: every file read and written again, as a
  // backup or a build's staging does. The copy goes (untimed) so rm -rf removes one tree.
  const copy = path.join(scratch, 'copy');
  ctx.measured('cp-r', await timedRun(ctx, 'cp', ['-r', tree, copy]));
  await ctx.procs.run('rm', ['-rf', copy]);
  ctx.measured('rm-rf', await timedRun(ctx, 'rm', ['-rf', tree]));

  ctx.measured('small-create', opsPerSecond(await worker(ctx, 'create', scratch, o.files)));
  await ctx.dropper.drop();
  ctx.measured('small-stat', opsPerSecond(await worker(ctx, 'stat', scratch, o.files)));
  await ctx.dropper.drop();
  ctx.measured('small-read', opsPerSecond(await worker(ctx, 'read', scratch, o.files)));
  ctx.measured('small-rename', opsPerSecond(await worker(ctx, 'rename', scratch, o.files)));
  ctx.measured('small-delete', opsPerSecond(await worker(ctx, 'delete', scratch, o.files)));
}
