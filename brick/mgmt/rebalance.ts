// Rebalance (glusterd-rebalance): the operations start/status/stop and the busy checks other
// operations make. A run is recorded in the volume's definition and runs on every host with
// bricks of the volume (rebalance-node.ts); its status is every node's row and their sum.
import { randomUUID } from 'node:crypto';
import { Logger } from '../../lib/log.js';
import type { RebalanceNodeStatus, RebalancePurpose, RebalanceStartRequest, RebalanceStatusReply } from '../../lib/mgmt/api.js';
import { formatBrick, parseThrottle } from '../../lib/mgmt/args.js';
import type { RebalanceState, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import { sleep } from './bricks.js';
import { removingBricks, type MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { RebalanceStartError, REBALANCE_STOP_MS } from './rebalance-process.js';
import type { RebalanceNode } from './rebalance-node.js';
import type { RebalanceRun, VolumeDef } from './store.js';
import { distributeUnits } from './volgen.js';

export { REBALANCE_STOP_MS, RebalanceStartError } from './rebalance-process.js';

const log = new Logger('mgmt');

/** How long `rebalance start` waits for the other nodes to report on the new run before it answers. */
const NODES_REPORT_WAIT_MS = 5000;

/** Whether a node's process is at work, or about to be (its daemon has yet to start it). */
function busyRow(r: RebalanceNodeStatus, run: RebalanceRun): boolean {
  return r.alive || (r.connected && (r.state === 'running' || (r.state === 'not started' && !run.stopped)));
}

/** The run's state from its nodes': running while any runs or has yet to start, then failed, stopped, completed. */
function overallState(rows: readonly RebalanceNodeStatus[], run: RebalanceRun): RebalanceState {
  const states = rows.map((r): RebalanceState => (r.state === 'not started' ? (run.stopped ? 'stopped' : 'running') : r.state));
  for (const s of ['running', 'failed', 'stopped'] as const) if (states.includes(s)) return s;
  return 'completed';
}

/** The sum of the nodes' rows: counts and rates added up, from the first start to the last update. */
export function aggregate(vol: VolumeDef, run: RebalanceRun, rows: RebalanceNodeStatus[]): RebalanceStatusReply {
  const sum = (k: 'dirsFixed' | 'filesScanned' | 'filesMoved' | 'filesFailed' | 'filesSkipped' | 'bytesMoved' | 'rateFilesPerS' | 'rateBytesPerS'): number =>
    rows.reduce((a, r) => a + r[k], 0);
  const state = overallState(rows, run);
  const self = rows.find((r) => r.self);
  const finished = rows.map((r) => r.finishedAt).filter((x): x is string => x !== undefined).sort();
  const running = rows.filter((r) => r.state === 'running');
  const errors = rows.filter((r) => r.error !== undefined);
  const reply: RebalanceStatusReply = {
    volume: vol.name,
    runId: run.id ?? '',
    purpose: run.purpose,
    throttle: run.throttle,
    layoutEpoch: run.layoutEpoch,
    mode: run.mode,
    state,
    startedAt: rows.map((r) => r.startedAt).sort()[0] ?? run.startedAt,
    updatedAt: rows.map((r) => r.updatedAt).sort().at(-1) ?? run.startedAt,
    ...(state !== 'running' && finished.length > 0 ? { finishedAt: finished.at(-1)! } : {}),
    elapsedS: Math.max(0, ...rows.map((r) => r.elapsedS)),
    // Every node walks every directory: the directories are counted once.
    dirsScanned: Math.max(0, ...rows.map((r) => r.dirsScanned)),
    dirsFixed: sum('dirsFixed'),
    filesScanned: sum('filesScanned'),
    filesMoved: sum('filesMoved'),
    filesFailed: sum('filesFailed'),
    filesSkipped: sum('filesSkipped'),
    bytesMoved: sum('bytesMoved'),
    filesTotal: rows.every((r) => r.filesTotal !== null) ? rows.reduce((a, r) => a + r.filesTotal!, 0) : null,
    rateFilesPerS: Math.round(sum('rateFilesPerS') * 10) / 10,
    rateBytesPerS: sum('rateBytesPerS'),
    etaS: state === 'completed' ? 0 : state === 'running' && running.length > 0 && running.every((r) => r.etaS !== null)
      ? Math.max(...running.map((r) => r.etaS!)) : null,
    resumed: rows.some((r) => r.resumed),
    pid: self?.pid ?? null,
    alive: rows.some((r) => r.alive),
    nodes: rows,
  };
  if (errors.length === 1 && rows.length === 1) reply.error = errors[0]!.error;
  else if (errors.length > 0) reply.error = errors.map((r) => `${r.self ? 'localhost' : r.host}: ${r.error}`).join('; ');
  return reply;
}

/** The rebalance operations of the daemon, and the busy checks other operations make. */
export class RebalanceOps {
  constructor(private readonly ctx: MgmtContext, readonly node: RebalanceNode) {}

  /** Whether a rebalance process of this volume runs (or is about to) on any node. */
  async busy(vol: VolumeDef): Promise<boolean> {
    const run = vol.rebalance;
    if (!run) return false;
    return (await this.node.rows(vol)).some((r) => busyRow(r, run));
  }

  /**
   * Stops the volume's run on every node: records it as stopped (each node stops its
   * process), stops this host's, and waits for the other connected nodes to report it
   * stopped. Sets vol.rebalance.stopped on the caller's copy, which it may put again.
   * False if a process still runs after REBALANCE_STOP_MS.
   */
  async stopAll(vol: VolumeDef): Promise<boolean> {
    const run = vol.rebalance;
    if (!run) return true;
    if (run.id !== undefined && !run.stopped) {
      run.stopped = true;
      await this.ctx.store.put(vol);
    }
    if (!(await this.node.stopLocal(vol))) return false;
    const stored = this.ctx.store.get(vol.name) ?? vol;
    for (const end = Date.now() + REBALANCE_STOP_MS; ; await sleep(200)) {
      const rows = await this.node.rows(stored);
      // Until each process has exited, not only said it stopped: a reply naming none running.
      if (!rows.some((r) => !r.self && r.connected && (r.state === 'running' || r.alive))) return true;
      if (Date.now() > end) return false;
    }
  }

  /** Refuses `what` while a remove-brick or a rebalance of the volume is in progress. */
  async refuseWhileBusy(vol: VolumeDef, what: string): Promise<void> {
    if (vol.removing) {
      const bricks = removingBricks(vol).map((b) => formatBrick(b, false)).join(' ');
      throw new MgmtError(409,
        `a remove-brick of volume ${vol.name} is in progress (${bricks}); finish it first with ` +
        `\`brickfs volume remove-brick ${vol.name} ${bricks} commit\` (or cancel it with \`... stop\`), then ${what}`);
    }
    if (await this.busy(vol)) {
      throw new MgmtError(409,
        `a rebalance of volume ${vol.name} is running; wait until \`brickfs volume rebalance ${vol.name} status\` says completed, ` +
        `or stop it with \`brickfs volume rebalance ${vol.name} stop\`, then ${what}`);
    }
  }

  /**
   * Starts a run on every node (each resumes its own share when it was cut short over the
   * same layout) and records it; the reply is its first status.
   */
  async launch(vol: VolumeDef, purpose: RebalancePurpose, fixLayout: boolean, throttle: RebalanceThrottle): Promise<RebalanceStatusReply> {
    const mode = fixLayout ? 'fix-layout' : 'migrate';
    const nodes = await this.node.nodesFor(vol);
    vol.rebalance = { id: randomUUID(), purpose, mode, throttle, layoutEpoch: vol.layoutEpoch ?? 0, startedAt: new Date().toISOString(), nodes };
    await this.node.launch(vol);
    const stored = this.ctx.store.get(vol.name) ?? vol;
    // A first answer with every connected node's own word, not "not started".
    for (const end = Date.now() + NODES_REPORT_WAIT_MS; Date.now() < end; await sleep(150)) {
      const rows = await this.node.rows(stored);
      if (!rows.some((r) => r.connected && r.state === 'not started')) break;
    }
    log.info(`volume ${vol.name}: ${purpose === 'rebalance' ? 'rebalance' : 'remove-brick drain'} started (${mode}, ${throttle}) on ${nodes.map((n) => n.host).join(', ')}`);
    return (await this.view(stored))!;
  }

  /** The last run of the volume: every node's row and their sum; null when no run was started. */
  async view(vol: VolumeDef): Promise<RebalanceStatusReply | null> {
    const run = vol.rebalance;
    if (!run) return null;
    const rows = await this.node.rows(vol);
    // A run stored before runs had ids is known only from this host's status file.
    if (run.id === undefined && rows.every((r) => r.state === 'not started')) return null;
    return aggregate(vol, run, rows);
  }

  private async needView(vol: VolumeDef): Promise<RebalanceStatusReply> {
    const v = await this.view(vol);
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
      if (vol.removing) await this.refuseWhileBusy(vol, 'start a rebalance');
      if (await this.busy(vol)) {
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
  async status(name: string): Promise<RebalanceStatusReply> {
    return this.needView(this.ctx.need(name));
  }

  /** Stops the running rebalance on every node (SIGTERM; each stops after the files in hand) and waits up to 30 s. */
  stop(name: string): Promise<RebalanceStatusReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      if (!(await this.busy(vol))) {
        const last = await this.view(vol);
        throw new MgmtError(409, `no rebalance is running on volume ${name}${last ? ` (the last one is ${last.state})` : ''}`);
      }
      if (!(await this.stopAll(vol))) {
        throw new MgmtError(500, `the rebalance of volume ${name} did not stop everywhere within ${REBALANCE_STOP_MS / 1000} s; ` +
          `it stops after the files in hand: check \`brickfs volume rebalance ${name} status\` again`);
      }
      log.info(`volume ${name}: rebalance stopped`);
      return this.needView(this.ctx.store.get(name) ?? vol);
    });
  }
}
