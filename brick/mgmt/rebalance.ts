// Rebalance (glusterd-rebalance): the operations start/status/stop, and supervision of the
// rebalance process, spawned detached, one per volume, so it outlives a daemon restart as
// bricks do; found again through its pidfile and command line; stopped with SIGTERM. What
// it does and the status file it writes are the contract in lib/mgmt/rebalance.ts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDataPath } from '../../lib/data-path-process.js';
import { Logger } from '../../lib/log.js';
import type { RebalancePurpose, RebalanceStartRequest, RebalanceStatusReply } from '../../lib/mgmt/api.js';
import { formatBrick, parseThrottle } from '../../lib/mgmt/args.js';
import type { RebalanceStatus, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import { logTail, pidAlive, readPidfile, sleep } from './bricks.js';
import { removingBricks, removingWords, type MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { writeFileAtomic, type VolumeDef } from './store.js';
import { distributeUnits } from './volgen.js';

const log = new Logger('mgmt');

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
    ...(args.fixLayout ? ['--fix-layout'] : []), ...(args.resume ? ['--resume'] : []),
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

/** The rebalance operations of the daemon, and the busy checks other operations make. */
export class RebalanceOps {
  private readonly main: string;

  constructor(private readonly ctx: MgmtContext) {
    this.main = ctx.opts.rebalanceMain ?? REBALANCE_MAIN;
  }

  /** How to run, find and stop the rebalance process of a volume. */
  proc(vol: VolumeDef): RebalanceProcess {
    const p = this.ctx.store.paths;
    return {
      volume: vol.name,
      // The service credential: a client's may not move files (migrate).
      volfile: p.serviceVolfile(vol.name),
      status: p.rebalanceStatus(vol.name),
      checkpoint: p.rebalanceCheckpoint(vol.name),
      pidfile: p.rebalancePidfile(vol.name),
      log: p.rebalanceLog(vol.name),
    };
  }

  /** Whether a rebalance process of this volume is alive. */
  alive(vol: VolumeDef): boolean {
    return rebalancePid(this.proc(vol)) !== null;
  }

  /** Stops the volume's rebalance process if one runs; false if it still runs after REBALANCE_STOP_MS. */
  stopProcess(vol: VolumeDef): Promise<boolean> {
    return stopRebalance(this.proc(vol), REBALANCE_STOP_MS);
  }

  /** Refuses `what` while a remove-brick or a rebalance of the volume is in progress. */
  refuseWhileBusy(vol: VolumeDef, what: string): void {
    if (vol.removing) {
      const bricks = removingBricks(vol).map((b) => formatBrick(b, false)).join(' ');
      throw new MgmtError(409,
        `a remove-brick of volume ${vol.name} is in progress (${bricks}); finish it first with ` +
        `\`brickfs volume remove-brick ${vol.name} ${bricks} commit\` (or cancel it with \`... stop\`), then ${what}`);
    }
    if (this.alive(vol)) {
      throw new MgmtError(409,
        `a rebalance of volume ${vol.name} is running; wait until \`brickfs volume rebalance ${vol.name} status\` says completed, ` +
        `or stop it with \`brickfs volume rebalance ${vol.name} stop\`, then ${what}`);
    }
  }

  /** Starts (or resumes) a rebalance run and records it; the reply is its first status. */
  async launch(vol: VolumeDef, purpose: RebalancePurpose, fixLayout: boolean, throttle: RebalanceThrottle): Promise<RebalanceStatusReply> {
    const rp = this.proc(vol);
    const prev = readRebalanceStatus(rp.status);
    const mode = fixLayout ? 'fix-layout' : 'migrate';
    const epoch = vol.layoutEpoch ?? 0;
    // Resume only what was cut short (stopped, or died) over the same bricks, in the same mode.
    const resume = !!prev && !!vol.rebalance && vol.rebalance.layoutEpoch === epoch && vol.rebalance.mode === mode &&
      (prev.state === 'stopped' || prev.state === 'running');
    vol.rebalance = { purpose, mode, throttle, layoutEpoch: epoch, startedAt: new Date().toISOString() };
    await this.ctx.store.put(vol);
    await startRebalance(rp, this.main, { throttle, fixLayout, resume });
    log.info(`volume ${vol.name}: ${purpose === 'rebalance' ? 'rebalance' : 'remove-brick drain'} started (${mode}, ${throttle}${resume ? ', resumed' : ''})`);
    return this.view(vol)!;
  }

  /** The status file of the last run with the daemon's view added, or null when no run was started. */
  view(vol: VolumeDef): RebalanceStatusReply | null {
    const run = vol.rebalance;
    const rp = this.proc(vol);
    const st = run && readRebalanceStatus(rp.status);
    if (!run || !st) return null;
    const pid = rebalancePid(rp);
    const view: RebalanceStatusReply = {
      volume: vol.name, purpose: run.purpose, throttle: run.throttle, layoutEpoch: run.layoutEpoch, ...st, pid, alive: pid !== null,
    };
    if (st.state === 'running' && pid === null) {
      const again = run.purpose === 'remove-brick' && vol.removing
        ? `brickfs volume remove-brick ${vol.name} ${removingWords(vol)} start`
        : `brickfs volume rebalance ${vol.name} start${run.mode === 'fix-layout' ? ' --fix-layout' : ''}`;
      view.state = 'failed';
      view.error = `the rebalance process died; start it again to resume (\`${again}\`); its log: ${rp.log}`;
    }
    return view;
  }

  private needView(vol: VolumeDef): RebalanceStatusReply {
    const v = this.view(vol);
    if (!v) throw new MgmtError(409, `no rebalance has been started on volume ${vol.name}; start one with \`brickfs volume rebalance ${vol.name} start\``);
    return v;
  }

  /** Starts a rebalance (fix-layout only, or moving files) of a started volume with more than one distribute subvolume. */
  start(name: string, req: RebalanceStartRequest): Promise<RebalanceStatusReply> {
    return this.ctx.lock.run(async () => {
      const fixLayout = req?.fixLayout === true;
      const throttle = req?.throttle === undefined ? 'normal' : parseThrottle(String(req.throttle));
      const vol = this.ctx.need(name);
      if (vol.status !== 'started') {
        throw new MgmtError(409, `volume ${name} is not started; start it with \`brickfs volume start ${name}\`, then start the rebalance`);
      }
      if (vol.removing) this.refuseWhileBusy(vol, 'start a rebalance');
      if (this.alive(vol)) {
        throw new MgmtError(409, `a rebalance of volume ${name} is already running; \`brickfs volume rebalance ${name} status\` shows its progress, \`... stop\` stops it`);
      }
      if (distributeUnits(vol).length < 2) {
        throw new MgmtError(409, `volume ${name} has a single distribute subvolume: there is nothing to rebalance; add bricks first with \`brickfs volume add-brick ${name} BRICK...\``);
      }
      try {
        return await this.launch(vol, 'rebalance', fixLayout, throttle);
      } catch (e) {
        if (e instanceof RebalanceStartError) throw new MgmtError(500, `volume ${name}: ${e.message}`);
        throw e;
      }
    });
  }

  /** The last rebalance run of a volume (also the drain of a remove-brick). */
  status(name: string): RebalanceStatusReply {
    return this.needView(this.ctx.need(name));
  }

  /** Stops the running rebalance (SIGTERM; it stops after the file in hand) and waits up to 30 s. */
  stop(name: string): Promise<RebalanceStatusReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      const rp = this.proc(vol);
      const pid = rebalancePid(rp);
      if (pid === null) {
        const last = this.view(vol);
        throw new MgmtError(409, `no rebalance is running on volume ${name}${last ? ` (the last one is ${last.state})` : ''}`);
      }
      if (!(await stopRebalance(rp, REBALANCE_STOP_MS))) {
        throw new MgmtError(500, `the rebalance of volume ${name} (pid ${pid}) did not stop within ${REBALANCE_STOP_MS / 1000} s; ` +
          `it stops after the file in hand: check \`brickfs volume rebalance ${name} status\` again`);
      }
      log.info(`volume ${name}: rebalance stopped`);
      return this.needView(vol);
    });
  }

  /** After a daemon (re)start, under the lock: adopts live rebalance processes and forgets dead pidfiles. */
  adoptAll(): void {
    for (const vol of this.ctx.store.list()) {
      const rp = this.proc(vol);
      const pid = rebalancePid(rp);
      if (pid !== null) log.info(`volume ${vol.name}: rebalance process adopted (pid ${pid})`);
      else if (fs.existsSync(rp.pidfile)) {
        fs.rmSync(rp.pidfile, { force: true });
        if (readRebalanceStatus(rp.status)?.state === 'running') {
          log.warn(`volume ${vol.name}: the rebalance process died while the daemon was away; \`brickfs volume rebalance ${vol.name} status\` shows where it was`);
        }
      }
    }
  }
}
