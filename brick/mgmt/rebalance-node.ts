// This host's share of every volume's rebalance: gluster runs a rebalance process on every
// node of a volume, each moving the files of its own bricks, and so does brickfs. A run is
// desired state in the volume's definition (VolumeDef.rebalance: an id, the nodes, whether
// it is stopped). Each daemon listed among the nodes starts its own process once per run
// id, stops it when the run is stopped or no longer applies (volume stopped, layout changed,
// removal ended), and publishes its row of `rebalance status`:
//
//   /brickfs/rebalance/<volume>/<peer uuid>   RebalanceNodeStatus & {runId}
//
// without a lease, so a finished node's counts outlive its daemon (readers mark the rows of
// a daemon that is not connected). On the file store nothing is published: one host, one node.
import fs from 'node:fs';
import { Logger } from '../../lib/log.js';
import type { RebalanceNodeStatus } from '../../lib/mgmt/api.js';
import { formatSubvolShares, type RebalanceMode, type RebalanceSubvolShare } from '../../lib/mgmt/rebalance.js';
import type { ConfigStore } from './config-store.js';
import { removingWords, StoreFollower, type MgmtContext } from './context.js';
import type { PeerOps } from './peers.js';
import {
  readRebalanceStatus, REBALANCE_MAIN, REBALANCE_STOP_MS, rebalancePid, startRebalance, stopRebalance, type RebalanceProcess,
} from './rebalance-process.js';
import { writeFileAtomic, type BrickDef, type RebalanceNodeDef, type RebalanceRun, type VolumeDef } from './store.js';
import { distributeUnits } from './volgen.js';

const log = new Logger('mgmt:rebalance');

export const REBALANCE_PREFIX = '/brickfs/rebalance/';
/** How often this host's rows are read again, published when changed, and missed runs acted on. */
export const REBALANCE_REFRESH_MS = 1000;

/** Which run this host's process was last started for (STATE/vols/VOL/rebalance/run.json). */
interface LocalRun {
  id: string;
  mode: RebalanceMode;
  layoutEpoch: number;
  /** Set when this host started the run's settle pass (it is the run's first node). */
  settling?: true;
}

/** A node's row as its daemon publishes it. */
interface PublishedRow extends RebalanceNodeStatus {
  runId: string;
}

function readLocalRun(file: string): LocalRun | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LocalRun;
    return typeof v?.id === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The command that starts a run of this volume again (it resumes what was cut short). */
export function startAgainCommand(vol: VolumeDef, run: RebalanceRun): string {
  return run.purpose === 'remove-brick' && vol.removing
    ? `brickfs volume remove-brick ${vol.name} ${removingWords(vol)} start`
    : `brickfs volume rebalance ${vol.name} start${run.mode === 'fix-layout' ? ' --fix-layout' : ''}`;
}

/** This host's rebalance processes, kept in line with the runs in the store, and every node's rows. */
export class RebalanceNode {
  private readonly follow = new StoreFollower();
  private readonly main: string;
  private readonly published = new Map<string, string>();

  constructor(private readonly ctx: MgmtContext, private readonly config: ConfigStore, private readonly peers: PeerOps) {
    this.main = ctx.opts.rebalanceMain ?? REBALANCE_MAIN;
  }

  private get self(): string {
    return this.ctx.opts.selfUuid;
  }

  /** How to run, find and stop this host's rebalance process of a volume. */
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

  /** Adopts the processes left running, acts on every run, then follows the store. */
  async start(): Promise<void> {
    this.follow.watching(this.ctx.store.onChange((name) => this.schedule(name)));
    this.peers.onLease(() => this.published.clear());
    await this.follow.queue.run(async () => {
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
      await this.reconcileAll();
    });
    this.follow.every(REBALANCE_REFRESH_MS, () => this.reconcileAll(), (e) => log.warn(`rebalance: ${e.message}`));
  }

  /** Stops following the store (the processes keep running, as bricks do). */
  close(): void {
    this.follow.close();
  }

  private schedule(name: string): void {
    if (this.follow.closed) return;
    void this.follow.queue.run(() => this.reconcile(name)).catch((e: Error) => log.error(`volume ${name}: rebalance: ${e.message}`));
  }

  private async reconcileAll(): Promise<void> {
    for (const vol of this.ctx.store.list()) await this.reconcile(vol.name);
  }

  /** Who owns a brick: its daemon's UUID ("host:HOST" for a brick stored without one that is not this host's). */
  private async ownerOf(b: BrickDef): Promise<string> {
    if (b.peer !== undefined) return b.peer;
    return (await this.ctx.isMine(b)) ? this.self : `host:${b.host}`;
  }

  /** The nodes of a new run: one per host with bricks of the volume, in brick order. */
  async nodesFor(vol: VolumeDef): Promise<RebalanceNodeDef[]> {
    const out: RebalanceNodeDef[] = [];
    for (const b of vol.bricks) {
      const peer = await this.ownerOf(b);
      if (!out.some((n) => n.peer === peer)) out.push({ peer, host: b.host });
    }
    return out;
  }

  /** The nodes of a run (a run stored before runs had nodes was this host's alone). */
  nodesOf(run: RebalanceRun): RebalanceNodeDef[] {
    return run.nodes ?? [{ peer: this.self, host: 'localhost' }];
  }

  /**
   * This host's part of the distribute subvolumes: each one with a brick here, with this
   * host's place among the hosts holding its bricks (they share its files by gfid hash).
   */
  private async shares(vol: VolumeDef): Promise<RebalanceSubvolShare[]> {
    const out: RebalanceSubvolShare[] = [];
    for (const u of distributeUnits(vol)) {
      const owners: string[] = [];
      for (const i of u.bricks) {
        const o = await this.ownerOf(vol.bricks[i]!);
        if (!owners.includes(o)) owners.push(o);
      }
      const index = owners.indexOf(this.self);
      if (index >= 0) out.push({ name: u.name, index, of: owners.length });
    }
    return out;
  }

  /** Whether this host's process should run for the volume's run now. */
  private wanted(vol: VolumeDef): boolean {
    const run = vol.rebalance;
    return !!run && run.id !== undefined && !run.stopped && vol.status === 'started' &&
      run.layoutEpoch === (vol.layoutEpoch ?? 0) && (run.purpose !== 'remove-brick' || vol.removing !== undefined) &&
      this.nodesOf(run).some((n) => n.peer === this.self);
  }

  /**
   * Records a new run (vol.rebalance, set by the caller) and starts this host's share of it;
   * the other nodes start theirs when they see it. Rejects with RebalanceStartError when this
   * host's process fails at once (the run stays recorded: the others run theirs).
   */
  launch(vol: VolumeDef): Promise<void> {
    return this.follow.queue.run(async () => {
      await this.ctx.store.put(vol);
      const stored = this.ctx.store.get(vol.name) ?? vol;
      try {
        if (this.wanted(stored)) await this.startLocal(stored);
      } finally {
        await this.publish(stored);
      }
    });
  }

  /** Starts this host's process for the volume's run, resuming its own last run when that was cut short over the same layout. */
  private async startLocal(vol: VolumeDef): Promise<void> {
    const run = vol.rebalance!;
    const rp = this.proc(vol);
    const runFile = this.ctx.store.paths.rebalanceRun(vol.name);
    const before = readLocalRun(runFile);
    const prev = readRebalanceStatus(rp.status);
    const resume = !!before && !!prev && before.layoutEpoch === run.layoutEpoch && before.mode === run.mode &&
      (prev.state === 'stopped' || prev.state === 'running');
    // Recorded first: a process that fails at once is not started again for the same run.
    const mine: LocalRun = { id: run.id!, mode: run.mode, layoutEpoch: run.layoutEpoch };
    await writeFileAtomic(runFile, `${JSON.stringify(mine)}\n`);
    const nodes = this.nodesOf(run);
    const extraArgs = nodes.length > 1
      ? ['--subvols', formatSubvolShares(await this.shares(vol)), '--node', this.self.replace(/[^A-Za-z0-9]/g, '').slice(0, 12), '--no-settle']
      : [];
    const pid = await startRebalance(rp, this.main, { throttle: run.throttle, fixLayout: run.mode === 'fix-layout', resume, extraArgs });
    log.info(`volume ${vol.name}: ${run.purpose === 'rebalance' ? 'rebalance' : 'remove-brick drain'} started on this host ` +
      `(pid ${pid}, ${run.mode}, ${run.throttle}${resume ? ', resumed' : ''}${nodes.length > 1 ? `, one of ${nodes.length} nodes` : ''})`);
  }

  /** Stops this host's process of the volume if one runs; false if it still runs after REBALANCE_STOP_MS. */
  stopLocal(vol: VolumeDef): Promise<boolean> {
    return this.follow.queue.run(async () => {
      const ok = await stopRebalance(this.proc(vol), REBALANCE_STOP_MS);
      await this.publish(this.ctx.store.get(vol.name) ?? vol);
      return ok;
    });
  }

  /** Makes this host's process what the volume's run says, and publishes its row (inside the queue). */
  private async reconcile(name: string): Promise<void> {
    const vol = this.ctx.store.get(name);
    if (!vol) {
      await this.unpublish(name);
      return;
    }
    const run = vol.rebalance;
    // A run stored before runs had ids is left to the operations that stop it.
    if (!run || run.id === undefined) return;
    const rp = this.proc(vol);
    const pid = rebalancePid(rp);
    const current = readLocalRun(this.ctx.store.paths.rebalanceRun(name))?.id === run.id;
    if (pid !== null && (!this.wanted(vol) || !current)) {
      log.info(`volume ${name}: stopping this host's rebalance process (pid ${pid}): ${current ? 'the run was stopped or no longer applies' : 'a newer run replaces it'}`);
      if (!(await stopRebalance(rp, REBALANCE_STOP_MS))) log.warn(`volume ${name}: the rebalance process (pid ${pid}) did not stop within ${REBALANCE_STOP_MS / 1000} s`);
    }
    if (this.wanted(vol) && !current) {
      try {
        await this.startLocal(vol);
      } catch (e) {
        log.error(`volume ${name}: ${(e as Error).message}`);
      }
    }
    await this.publish(vol);
    await this.settleWhenDone(vol);
  }

  /**
   * The last step of a migrate run of several nodes, which leave directories unsettled (a
   * node cannot know that the others are done with a directory): once every node completed
   * with no failed file, the run's first node marks every directory settled, once.
   */
  private async settleWhenDone(vol: VolumeDef): Promise<void> {
    const run = vol.rebalance;
    if (!run?.id || run.mode !== 'migrate' || run.stopped || vol.status !== 'started' || run.layoutEpoch !== (vol.layoutEpoch ?? 0)) return;
    const nodes = this.nodesOf(run);
    if (nodes.length < 2 || nodes[0]!.peer !== this.self) return;
    const runFile = this.ctx.store.paths.rebalanceRun(vol.name);
    const local = readLocalRun(runFile);
    if (local?.id !== run.id || local.settling) return;
    const own = this.localRow(vol);
    if (own?.state !== 'completed' || own.filesFailed > 0) return;
    const rows = await this.rows(vol);
    if (!rows.every((r) => r.state === 'completed' && r.filesFailed === 0)) return;
    await writeFileAtomic(runFile, `${JSON.stringify({ ...local, settling: true })}\n`);
    const p = this.ctx.store.paths;
    const settle: RebalanceProcess = {
      ...this.proc(vol),
      status: p.rebalanceSettleStatus(vol.name), checkpoint: p.rebalanceSettleCheckpoint(vol.name), pidfile: p.rebalanceSettlePidfile(vol.name),
    };
    try {
      const pid = await startRebalance(settle, this.main, { throttle: run.throttle, fixLayout: false, resume: false, extraArgs: ['--settle'] });
      log.info(`volume ${vol.name}: every node of the rebalance completed; marking directories settled (pid ${pid})`);
    } catch (e) {
      log.error(`volume ${vol.name}: directories stay unsettled (lookups of missing names ask every brick): ${(e as Error).message}`);
    }
  }

  /** This host's row of the volume's last run, or null when it has none (not a node, or not started here yet). */
  localRow(vol: VolumeDef): RebalanceNodeStatus | null {
    const run = vol.rebalance;
    if (!run) return null;
    const node = this.nodesOf(run).find((n) => n.peer === this.self);
    if (!node) return null;
    const rp = this.proc(vol);
    if (run.id !== undefined && readLocalRun(this.ctx.store.paths.rebalanceRun(vol.name))?.id !== run.id) return null;
    const st = readRebalanceStatus(rp.status);
    if (!st) return null;
    const pid = rebalancePid(rp);
    const row: RebalanceNodeStatus = { ...st, peer: this.self, host: node.host, self: true, pid, alive: pid !== null, connected: true };
    if (st.state === 'running' && pid === null) {
      row.state = 'failed';
      row.error = `the rebalance process died; start it again to resume (\`${startAgainCommand(vol, run)}\`); its log: ${rp.log}`;
    }
    return row;
  }

  /** Puts this host's row of the volume's run when it changed (in a pool only). */
  private async publish(vol: VolumeDef): Promise<void> {
    if (!this.peers.lease || vol.rebalance?.id === undefined) return;
    const row = this.localRow(vol);
    if (!row) return;
    const { self: _self, ...rest } = row;
    const rec: PublishedRow = { ...rest, runId: vol.rebalance.id };
    const key = `${REBALANCE_PREFIX}${vol.name}/${this.self}`;
    const value = JSON.stringify(rec);
    if (this.published.get(key) === value) return;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const cur = await this.config.get(key);
        if (await this.config.putIf(key, value, cur?.revision ?? 0)) {
          this.published.set(key, value);
          return;
        }
      }
    } catch (e) {
      log.warn(`publishing the rebalance status of volume ${vol.name}: ${(e as Error).message}`);
    }
  }

  /** A volume gone: this host's row of it goes too. */
  private async unpublish(name: string): Promise<void> {
    const key = `${REBALANCE_PREFIX}${name}/${this.self}`;
    if (!this.published.has(key) && !this.peers.lease) return;
    this.published.delete(key);
    try {
      const cur = await this.config.get(key);
      if (cur) await this.config.removeIf(key, cur.revision);
    } catch (e) {
      log.warn(`withdrawing ${key}: ${(e as Error).message}`);
    }
  }

  /** Every node's row of the volume's last run, in brick order; a node without a report for it reads "not started". */
  async rows(vol: VolumeDef): Promise<RebalanceNodeStatus[]> {
    const run = vol.rebalance;
    if (!run) return [];
    const nodes = this.nodesOf(run);
    let published = new Map<string, PublishedRow>();
    let alive = new Set<string>();
    if (nodes.some((n) => n.peer !== this.self)) {
      try {
        [published, alive] = await Promise.all([this.publishedRows(vol.name), this.peers.aliveUuids()]);
      } catch (e) {
        log.warn(`reading the rebalance status of volume ${vol.name}: ${(e as Error).message}`);
      }
    }
    return nodes.map((n): RebalanceNodeStatus => {
      if (n.peer === this.self) return this.localRow(vol) ?? { ...notStarted(run, n, true), self: true };
      const connected = alive.has(n.peer);
      const p = published.get(n.peer);
      if (!p || p.runId !== run.id) {
        const row = notStarted(run, n, connected);
        if (!connected) row.error = `the management daemon of host ${n.host} is not connected; it runs its share when it is back`;
        return row;
      }
      const { runId: _runId, ...row } = p;
      return { ...row, host: n.host, connected };
    });
  }

  private async publishedRows(name: string): Promise<Map<string, PublishedRow>> {
    const out = new Map<string, PublishedRow>();
    const prefix = `${REBALANCE_PREFIX}${name}/`;
    for (const kv of await this.config.list(prefix)) {
      try {
        out.set(kv.key.slice(prefix.length), JSON.parse(kv.value) as PublishedRow);
      } catch { /* not a row: read as not started */ }
    }
    return out;
  }
}

/** The row of a node that has not reported on the run. */
function notStarted(run: RebalanceRun, n: RebalanceNodeDef, connected: boolean): RebalanceNodeStatus {
  return {
    mode: run.mode, state: 'not started', startedAt: run.startedAt, updatedAt: run.startedAt, elapsedS: 0,
    dirsScanned: 0, dirsFixed: 0, filesScanned: 0, filesMoved: 0, filesFailed: 0, filesSkipped: 0, bytesMoved: 0,
    filesTotal: null, rateFilesPerS: 0, rateBytesPerS: 0, etaS: null, resumed: false,
    peer: n.peer, host: n.host, pid: null, alive: false, connected,
  };
}
