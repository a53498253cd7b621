import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { pidAlive } from '../../brick/mgmt/bricks.js';

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
export async function freePort(): Promise<number> {
  for (;;) {
    if (!ports || ports.next >= ports.end) {
      const base = reservePortBlock((release) => process.once('exit', release));
      ports = { next: base, end: base + PORT_BLOCK };
    }
    const port = ports.next++;
    if (await canListen(port)) return port;
  }
}

/** This test process's block of ports (freePort), taken one after the other. */
let ports: { next: number; end: number } | undefined;
const PORT_BLOCK = 100;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Reserves a block of 100 ports below Linux's ephemeral range (32768 and up, where any
 * outgoing connection may take a port between a test picking it and a brick binding it),
 * with a lock file in the temp directory, so tests running in parallel (in this process or
 * another) never hand out the same ports. Two bricks given one port made one of them fail
 * to start while the port answered, and a mount then met the other volume's brick.
 */
export function reservePortBlock(onRelease: (release: () => void) => void): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const base = 10_000 + PORT_BLOCK * crypto.randomInt(0, 220);
    const lock = path.join(os.tmpdir(), `brickfs-test-ports-${base}.lock`);
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      onRelease(() => fs.rmSync(lock, { force: true }));
      return base;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock left by a test process that died is free again.
      if (!pidAlive(Number(fs.readFileSync(lock, 'utf8').trim()))) fs.rmSync(lock, { force: true });
    }
  }
  throw new Error('no free block of test ports');
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
