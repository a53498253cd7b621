// Brick process supervision (glusterd's brick ops): port allocation, spawning detached
// brick processes that outlive the daemon (as glusterfsd does), adopting them after a
// daemon restart through their pidfiles, and stopping them.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDataPath } from '../../lib/data-path-process.js';
import { formatLogText } from '../../lib/log.js';

/** dist/brick/main.js, next to this module's own directory in the build. */
export const BRICK_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** Everything needed to run, find and stop one brick process. */
export interface BrickProcess {
  /** host:/path, for messages. */
  label: string;
  volfile: string;
  pidfile: string;
  log: string;
  port: number;
  /** The address the brick listens on (from its volfile). */
  listenHost: string;
}

/** A brick that could not be started; the message carries the end of its log. */
export class BrickStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrickStartError';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where to probe a brick listening on listenHost from this host. */
function probeHost(listenHost: string): string {
  if (listenHost === '0.0.0.0') return '127.0.0.1';
  if (listenHost === '::') return '::1';
  return listenHost;
}

/** True when something on this host accepts a TCP connection on host:port within timeoutMs. */
export function portAccepts(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** True when nothing listens on port (tried by listening on it, as the brick will). */
export function portFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Picks count ports from base upward, skipping ports in used and ports something listens on. */
export async function allocatePorts(count: number, base: number, used: ReadonlySet<number>): Promise<number[]> {
  const out: number[] = [];
  for (let p = base; out.length < count; p++) {
    if (p > 65535) throw new BrickStartError(`no free TCP port left at or above ${base} for ${count} brick(s)`);
    if (used.has(p)) continue;
    if (await portFree(p)) out.push(p);
  }
  return out;
}

/** The pid in a pidfile, or null when the file is missing or garbled. */
export function readPidfile(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** True when pid is a live process (a zombie counts as dead). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** Whether pid runs with this volfile on its command line (so a reused pid is not taken for our brick). */
function runsVolfile(pid: number, volfile: string): boolean {
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return pidAlive(pid); // no /proc here: the pidfile is all we have
  }
  return cmdline.split('\0').includes(volfile);
}

/** The pid of the live brick process of b, or null. */
export function brickPid(b: BrickProcess): number | null {
  const pid = readPidfile(b.pidfile);
  return pid !== null && pidAlive(pid) && runsVolfile(pid, b.volfile) ? pid : null;
}

/** Pid and online state (process alive and port accepting) of a brick. */
export async function brickState(b: BrickProcess): Promise<{ pid: number | null; online: boolean }> {
  const pid = brickPid(b);
  return { pid, online: pid !== null && (await portAccepts(b.port, probeHost(b.listenHost))) };
}

/** The last lines a process wrote to its log since offset. */
export function logTail(file: string, offset: number, lines = 15): string {
  try {
    const text = fs.readFileSync(file).subarray(offset).toString('utf8');
    return formatLogText(text).split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
  } catch {
    return '    (no log)';
  }
}

/**
 * Spawns the brick detached (its own session, output appended to its log) and waits until
 * its port accepts connections; fails with the log's last lines if it exits or hangs.
 */
export async function startBrick(b: BrickProcess, brickMain = BRICK_MAIN, timeoutMs = 10_000): Promise<number> {
  if (!fs.existsSync(brickMain)) {
    throw new BrickStartError(`cannot start brick ${b.label}: ${brickMain} does not exist; build brickfs first (npm run build)`);
  }
  if (!(await portFree(b.port, b.listenHost))) {
    throw new BrickStartError(
      `cannot start brick ${b.label}: port ${b.port} is in use by another process; ` +
      `stop that process (\`ss -ltnp 'sport = :${b.port}'\` shows it), then start the volume again`,
    );
  }
  fs.mkdirSync(path.dirname(b.log), { recursive: true });
  fs.mkdirSync(path.dirname(b.pidfile), { recursive: true });
  fs.rmSync(b.pidfile, { force: true });
  fs.appendFileSync(b.log, `=== ${new Date().toISOString()} brickfs daemon: starting brick ${b.label} on port ${b.port}\n`);
  const offset = fs.statSync(b.log).size;
  const fd = fs.openSync(b.log, 'a');
  const child = spawnDataPath([brickMain, '--volfile', b.volfile, '--pidfile', b.pidfile], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  let exited: string | undefined;
  child.once('exit', (code, signal) => { exited = signal ? `killed by ${signal}` : `exit code ${code}`; });
  child.once('error', (e) => { exited = e.message; });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new BrickStartError(`brick ${b.label} failed to start (${exited}); its log (${b.log}) ends with:\n${logTail(b.log, offset)}`);
      if (await portAccepts(b.port, probeHost(b.listenHost), 500)) {
        // The port may have been taken by someone else between our check and now.
        if (!exited && child.exitCode === null) break;
        continue;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new BrickStartError(`brick ${b.label} did not listen on port ${b.port} within ${timeoutMs / 1000} s; its log (${b.log}) ends with:\n${logTail(b.log, offset)}`);
      }
      await sleep(100);
    }
  } finally {
    child.unref();
  }
  const pid = child.pid!;
  // The brick writes its own pidfile once it listens; make sure status finds it either way.
  if (readPidfile(b.pidfile) !== pid) fs.writeFileSync(b.pidfile, `${pid}\n`);
  return pid;
}

/** Stops a brick: SIGTERM, SIGKILL after graceMs; removes its pidfile. Resolves once it is gone. */
export async function stopBrick(b: BrickProcess, graceMs = 5000): Promise<void> {
  const pid = brickPid(b);
  if (pid !== null) {
    const waitGone = async (ms: number): Promise<boolean> => {
      const end = Date.now() + ms;
      while (pidAlive(pid)) {
        if (Date.now() > end) return false;
        await sleep(50);
      }
      return true;
    };
    try {
      process.kill(pid, 'SIGTERM');
    } catch { /* already gone */ }
    if (!(await waitGone(graceMs))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
      if (!(await waitGone(2000))) throw new BrickStartError(`brick ${b.label} (pid ${pid}) did not exit after SIGKILL`);
    }
  }
  fs.rmSync(b.pidfile, { force: true });
}

/** Makes sure the brick runs: adopts a live one (pidfile + port answers), else starts it. */
export async function ensureBrick(b: BrickProcess, brickMain = BRICK_MAIN): Promise<{ pid: number; adopted: boolean }> {
  const pid = brickPid(b);
  if (pid !== null) {
    if (await portAccepts(b.port, probeHost(b.listenHost))) return { pid, adopted: true };
    // Alive but not serving: wedged, or still starting from someone else's attempt. Replace it.
    await stopBrick(b);
  }
  return { pid: await startBrick(b, brickMain), adopted: false };
}
