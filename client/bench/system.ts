// What the bench needs from the host: running tools as child processes (so that an
// interrupted run can stop them), dropping the page cache, and naming a directory's filesystem.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OperationError } from '../../lib/errors.js';
import { unescapeMountField } from '../mount-table.js';

export interface RunOptions {
  cwd?: string;
  /** Keep stdout (default: discard it; find's listing, for one, is not wanted). */
  captureStdout?: boolean;
}

/** Seconds elapsed since `start` (a process.hrtime.bigint() reading). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Child processes of one bench run: each awaited, all killable at once when the run is interrupted. */
export class Procs {
  private readonly live = new Set<ChildProcess>();

  /** Runs a command to completion; a non-zero exit becomes an OperationError with the tail of its stderr. */
  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      // detached: each tool leads its own process group, so killAll reaches fio's forked job processes too.
      const child = spawn(cmd, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'] });
      this.live.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => {
        // Only the tail is ever shown; keep memory bounded if a tool is chatty.
        err.push(d);
        if (err.length > 64) err.shift();
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        this.live.delete(child);
        reject(new OperationError(e.code === 'ENOENT' ? `${cmd} is not installed or not on the PATH` : `cannot run ${cmd}: ${e.message}`));
      });
      child.once('close', (code, signal) => {
        this.live.delete(child);
        if (code === 0) {
          resolve(Buffer.concat(out).toString('utf8'));
          return;
        }
        const tail = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-5).join('\n');
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new OperationError(`${cmd} ${args.join(' ')} ${how}${tail ? `:\n${tail}` : ''}`));
      });
    });
  }

  /**
   * Stops every command still running (an interrupted run must not leave fio writing) and
   * waits, synchronously and up to timeoutMs, until they are gone: what a killed tool had in
   * flight must not land after its files are removed.
   */
  killAll(timeoutMs = 5000): void {
    for (const c of this.live) {
      try {
        if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
    const end = Date.now() + timeoutMs;
    for (const c of this.live) {
      while (c.pid !== undefined && !exited(c.pid) && Date.now() < end) sleepSync(10);
    }
  }
}

/** Blocks the thread for ms (for the cleanup of an interrupted run, which must finish before the process exits). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether a child has exited: gone, or a zombie (nobody reaps it while the thread is blocked). */
function exited(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

/**
 * Drops the page cache so a read phase reads from the filesystem, not from memory.
 * Needs root; without it the run goes on and says once that reads may be cached.
 */
export class CacheDropper {
  private warned = false;

  /** enabled: false for --no-drop-caches, when drop() does nothing. */
  constructor(private readonly procs: Pick<Procs, 'run'>, private readonly warn: (msg: string) => void, readonly enabled = true) {}

  /** `sync; echo 3 > /proc/sys/vm/drop_caches`; failure is reported once, never thrown. */
  async drop(): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.procs.run('sync', []);
      await fs.promises.writeFile('/proc/sys/vm/drop_caches', '3');
    } catch (e) {
      if (this.warned) return;
      this.warned = true;
      const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      this.warn(`cannot drop the page cache (${why}${process.getuid?.() === 0 ? '' : '; not root'}): read figures may come from memory`);
    }
  }
}

/** The filesystem type of the mount holding `realDir` (an absolute, resolved path), from /proc/mounts text. */
export function fstypeFromMounts(mounts: string, realDir: string): string {
  let best = { point: '', type: 'unknown' };
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    const point = unescapeMountField(f[1]!);
    const inside = point === '/' || realDir === point || realDir.startsWith(`${point}/`);
    // The longest matching mount point wins; a later line of the same point is a mount on top.
    if (inside && point.length >= best.point.length) best = { point, type: f[2]! };
  }
  return best.type;
}

/** The filesystem type of the directory, as /proc/mounts names it ("ext4", "fuse.brickfs", "fuse.glusterfs"...). */
export function fstypeOf(dir: string): string {
  try {
    return fstypeFromMounts(fs.readFileSync('/proc/mounts', 'utf8'), fs.realpathSync(dir));
  } catch {
    return 'unknown';
  }
}

export interface HostInfo {
  cpus: number;
  kernel: string;
}

/** What the JSON report records about the machine. */
export function hostInfo(): HostInfo {
  return { cpus: os.availableParallelism(), kernel: os.release() };
}

/** Free bytes for an unprivileged writer in dir, or undefined when the filesystem does not say. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await fs.promises.statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Absolute path of a module next to this one in dist/ (the worker script). */
export function siblingModule(name: string): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), name);
}
