// Supervision of one host's rebalance process of a volume: spawned detached, so it outlives
// a daemon restart as bricks do; found again through its pidfile and command line; stopped
// with SIGTERM. What it does and the status file it writes are the contract in
// lib/mgmt/rebalance.ts; which runs each host starts is rebalance-node.ts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDataPath } from '../../lib/data-path-process.js';
import type { RebalanceStatus, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import { logTail, pidAlive, readPidfile, sleep } from './bricks.js';
import { writeFileAtomic } from './store.js';

/** How long `rebalance stop` (and what stops a drain) waits for the process to say it stopped. */
export const REBALANCE_STOP_MS = 30_000;

/** dist/client/rebalance/main.js, resolved from this module's place in the build (as BRICK_MAIN). */
export const REBALANCE_MAIN = fileURLToPath(new URL('../../client/rebalance/main.js', import.meta.url));

/** Everything needed to run, find and stop the rebalance process of one volume. */
export interface RebalanceProcess {
  volume: string;
  volfile: string;
  status: string;
  checkpoint: string;
  pidfile: string;
  log: string;
}

/** How to run it. */
export interface RebalanceArgs {
  throttle: RebalanceThrottle;
  fixLayout: boolean;
  /** Continue a stopped run: skip the directories its checkpoint lists. */
  resume: boolean;
  /** This node's share when the run has several (--subvols, --node, --no-settle). */
  extraArgs?: readonly string[];
}

/** A rebalance process that could not be started; the message says why (and carries its log's end). */
export class RebalanceStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RebalanceStartError';
  }
}

/** The status file, or null when there is none (or it cannot be read as JSON). */
export function readRebalanceStatus(file: string): RebalanceStatus | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as RebalanceStatus;
    return v && typeof v === 'object' && typeof v.state === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** Whether pid runs with this status file on its command line (a reused pid is not our rebalance). */
function runsStatusFile(pid: number, statusFile: string): boolean {
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return pidAlive(pid); // no /proc: the pidfile is all we have
  }
  return cmdline.split('\0').includes(statusFile);
}

/** The pid of the live rebalance process of a volume, or null. */
export function rebalancePid(p: RebalanceProcess): number | null {
  const pid = readPidfile(p.pidfile);
  return pid !== null && pidAlive(pid) && runsStatusFile(pid, p.status) ? pid : null;
}

/** A status file for a run that has not reported yet (the process overwrites it within a second). */
export function initialStatus(mode: RebalanceStatus['mode'], resumed: boolean, now = new Date()): RebalanceStatus {
  const t = now.toISOString();
  return {
    mode, state: 'running', startedAt: t, updatedAt: t, elapsedS: 0,
    dirsScanned: 0, dirsFixed: 0, filesScanned: 0, filesMoved: 0, filesFailed: 0, filesSkipped: 0, bytesMoved: 0,
    filesTotal: null, rateFilesPerS: 0, rateBytesPerS: 0, etaS: null, resumed,
  };
}

/**
 * Spawns the rebalance process detached (own session, output appended to its log), writes
 * its pidfile, and watches it briefly: a process that fails at once is reported with the
 * end of its log, and its status file then says failed.
 */
export async function startRebalance(p: RebalanceProcess, main: string, args: RebalanceArgs, watchMs = 1500): Promise<number> {
  const initial = initialStatus(args.fixLayout ? 'fix-layout' : 'migrate', args.resume);
  const fail = async (why: string): Promise<never> => {
    await writeFileAtomic(p.status, `${JSON.stringify({ ...initial, state: 'failed', finishedAt: new Date().toISOString(), error: why })}\n`);
    throw new RebalanceStartError(why);
  };
  if (!fs.existsSync(main)) await fail(`${main} does not exist; build brickfs first (npm run build)`);
  fs.mkdirSync(path.dirname(p.log), { recursive: true });
  fs.mkdirSync(path.dirname(p.pidfile), { recursive: true });
  // A fresh run must not skip what a finished or abandoned one listed.
  if (!args.resume) fs.rmSync(p.checkpoint, { force: true });
  await writeFileAtomic(p.status, `${JSON.stringify(initial)}\n`);
  const argv = [
    main, '--volfile', p.volfile, '--status', p.status, '--checkpoint', p.checkpoint, '--throttle', args.throttle,
    ...(args.fixLayout ? ['--fix-layout'] : []), ...(args.resume ? ['--resume'] : []), ...(args.extraArgs ?? []),
  ];
  fs.appendFileSync(p.log, `=== ${new Date().toISOString()} brickfs daemon: starting rebalance of volume ${p.volume}: ${argv.slice(1).join(' ')}\n`);
  const offset = fs.statSync(p.log).size;
  const fd = fs.openSync(p.log, 'a');
  const child = spawnDataPath(argv, { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  child.once('exit', (code, signal) => { exit = { code, signal }; });
  child.once('error', (e) => { spawnError = e; });
  try {
    if (child.pid === undefined) {
      await sleep(0);
      return await fail(`cannot run ${process.execPath} ${main}: ${spawnError?.message ?? 'spawn failed'}`);
    }
    fs.writeFileSync(p.pidfile, `${child.pid}\n`);
    const end = Date.now() + watchMs;
    while (Date.now() < end && !exit && !spawnError) await sleep(50);
    if (spawnError) return await fail(`cannot run the rebalance process: ${spawnError.message}`);
    if (exit && exit.code !== 0) {
      const st = readRebalanceStatus(p.status);
      const why = st?.state === 'failed' && st.error ? st.error : (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`);
      const tail = `its log (${p.log}) ends with:\n${logTail(p.log, offset)}`;
      if (st?.state !== 'failed') await writeFileAtomic(p.status, `${JSON.stringify({ ...(st ?? initial), state: 'failed', error: why })}\n`);
      throw new RebalanceStartError(`the rebalance process failed at once (${why}); ${tail}`);
    }
    return child.pid;
  } finally {
    child.unref();
  }
}

/**
 * Asks a running rebalance to stop (SIGTERM: it finishes the file in hand) and waits until
 * its status file says stopped or it exits. Resolves false if it still runs after timeoutMs.
 */
export async function stopRebalance(p: RebalanceProcess, timeoutMs = 30_000): Promise<boolean> {
  const pid = rebalancePid(p);
  if (pid === null) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch { /* already gone */ }
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(100)) {
    if (!pidAlive(pid)) break;
    const st = readRebalanceStatus(p.status);
    if (st && st.state !== 'running') break;
  }
  if (pidAlive(pid) && readRebalanceStatus(p.status)?.state === 'running') return false;
  return true;
}

