import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/** The repository root (tests run from dist/test/...). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.BRICKFS_BIN ?? path.join(REPO, 'bin', 'brickfs.js');
export const BRICK_MAIN = path.join(REPO, 'dist', 'brick', 'main.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a shell command (never blocking this process's event loop) with a time limit. */
export function sh(cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('bash', ['-o', 'pipefail', '-c', cmd], { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like sh, but fails the test with the command's output when it exits non-zero. */
export async function shOk(t: Pick<ExecutionContext, 'fail'>, cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await sh(cmd, opts);
  if (r.code !== 0) t.fail(`command failed (${r.code}): ${cmd}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Runs the brickfs CLI. */
export function cli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, ...opts.env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Anything that runs cleanups when it ends: a test's t, or a CleanupScope for hooks. */
export interface Owner {
  teardown(fn: () => unknown): void;
}

/** Cleanups for resources made in before hooks (ava forbids t.teardown there); run in after.always. */
export class CleanupScope implements Owner {
  private readonly fns: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }

  /** Runs every cleanup, last registered first, even when some throw. */
  async runAll(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch { /* keep cleaning */ }
    }
  }
}

/** A temporary directory removed when the test ends. */
export function tmpDir(t: Owner, prefix = 'brickfs-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // BRICKFS_KEEP_TMP=1 keeps brick directories and logs for a post-mortem.
  if (!process.env.BRICKFS_KEEP_TMP) t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A TCP port free right now on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on the port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, host);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns a truthy value (or stops throwing); fails after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

/** Spawns a process that is killed (SIGKILL) when the test ends, whatever happened. */
export function spawnOwned(t: Owner, cmd: string, args: string[], logFile: string): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  t.teardown(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  return p;
}
