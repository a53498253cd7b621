// Volume operations (glusterd-volume-ops): create/start/stop/delete/set/reset, the views
// info/status/volfile/statedump, and bringing back the bricks of started volumes after a
// daemon restart. HTTP-free: routes.ts maps requests here and MgmtErrors to replies.
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import type {
  CreateReply, CreateRequest, StartStopReply, StatedumpReply, VolumeInfo, VolumeStatusInfo,
} from '../../lib/mgmt/api.js';
import {
  parseBrickSpec, parseCreateArgs, validateVolumeName, validateVolumeOption, validateVolumeOptionKey,
} from '../../lib/mgmt/args.js';
import { requestStatedump } from '../../lib/statedump.js';
import type { BrickOps } from './brick-ops.js';
import { brickPid, BrickStartError, stopBrick } from './bricks.js';
import { newCredentials, type MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import type { OwnBricks } from './own-bricks.js';
import { hostPort, type PeerOps } from './peers.js';
import { REBALANCE_STOP_MS, type RebalanceOps } from './rebalance.js';
import type { SelfHealDaemon } from './self-heal-daemon.js';
import { toVolumeInfo, type BrickDef, type VolumeDef } from './store.js';
import { clientVolfile, volumeType } from './volgen.js';

const log = new Logger('mgmt');

/** How long a statedump waits for another host's daemon to dump its bricks. */
const STATEDUMP_ASK_MS = 30_000;

/** The lifecycle, options and views of whole volumes. */
export class VolumeOps {
  constructor(
    private readonly ctx: MgmtContext,
    private readonly brickOps: BrickOps,
    private readonly rebalance: RebalanceOps,
    private readonly own: OwnBricks,
    private readonly shd: SelfHealDaemon,
    private readonly peers: PeerOps,
  ) {}

  /** Every volume's definition. */
  list(): VolumeInfo[] {
    return this.ctx.store.list().map(toVolumeInfo);
  }

  /** One volume's definition. */
  info(name: string): VolumeInfo {
    return toVolumeInfo(this.ctx.need(name));
  }

  /** The client volfile and its version; 409 unless the volume is started or anyState (mounts rely on it). */
  volfile(name: string, anyState = false): { text: string; version: number } {
    const v = this.ctx.need(name);
    if (v.status !== 'started' && !anyState) {
      throw new MgmtError(409, `volume ${name} is not started; start it with \`brickfs volume start ${name}\``);
    }
    return { text: clientVolfile(v), version: v.version };
  }

  /**
   * Per-brick pid and online state of one volume, and each host's self-heal daemon: this
   * host's as they are, the others' as their owners publish them.
   */
  async status(name: string): Promise<VolumeStatusInfo> {
    const v = this.ctx.need(name);
    const [bricks, selfHeal] = await Promise.all([this.own.status(v), this.shd.status(v)]);
    return { name: v.name, status: v.status, bricks, ...(selfHeal ? { selfHeal } : {}) };
  }

  /**
   * Each running brick's statedump (GlusterFS's `volume statedump`): SIGUSR1, then the
   * line the brick writes to its log. This host dumps its own bricks and asks each other
   * host's daemon for its own (unless onlyHere: the question of another daemon). A brick
   * that is not running, or does not answer within requestStatedump's wait, or whose
   * daemon cannot be reached, gets an error instead.
   */
  async statedump(name: string, onlyHere = false): Promise<StatedumpReply> {
    const v = this.ctx.need(name);
    const asked = new Map<string, Promise<StatedumpReply | Error>>();
    const bricks = await Promise.all(v.bricks.map(async (b) => {
      const where = { host: b.host, path: b.path };
      if (!(await this.ctx.isMine(b))) {
        if (onlyHere) return { ...where, error: 'on another host' };
        if (b.peer === undefined) return { ...where, error: `on another host: ask its daemon (\`brickfs --server ${b.host} volume statedump ${name}\`)` };
        let reply = asked.get(b.peer);
        if (!reply) {
          reply = this.askStatedump(b.peer, name);
          asked.set(b.peer, reply);
        }
        const r = await reply;
        if (r instanceof Error) return { ...where, error: r.message };
        return r.bricks.find((x) => x.host === b.host && x.path === b.path) ?? { ...where, error: `the daemon of host ${b.host} did not dump it` };
      }
      const proc = this.ctx.brickProc(v, b);
      const pid = brickPid(proc);
      if (pid === null) return { ...where, error: 'not running' };
      try {
        return { ...where, dump: await requestStatedump(pid, proc.log) };
      } catch (e) {
        return { ...where, error: (e as Error).message };
      }
    }));
    return { name: v.name, bricks };
  }

  /** Another host's daemon's statedump of its own bricks of the volume, or why there is none. */
  private async askStatedump(peer: string, name: string): Promise<StatedumpReply | Error> {
    let m;
    try {
      m = await this.peers.member(peer);
    } catch (e) {
      return new Error(`cannot find its host in the pool (${(e as Error).message})`);
    }
    if (!m) return new Error('its host is no longer a member of the pool');
    if (!m.connected) return new Error(`the management daemon of host ${m.owner.hostname} is not connected (\`brickfs pool list\`)`);
    const where = hostPort(m.owner.hostname, m.owner.port);
    try {
      const res = await this.peers.askPeer(where, `/v1/volumes/${encodeURIComponent(name)}/statedump?local=true`, { method: 'POST', body: {}, timeoutMs: STATEDUMP_ASK_MS });
      const body = await res.json().catch(() => undefined) as (StatedumpReply & { error?: string }) | undefined;
      if (!res.ok || !Array.isArray(body?.bricks)) return new Error(`the daemon at ${where} answered ${res.status}: ${body?.error ?? 'no statedump'}`);
      return body;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      return new Error(`cannot reach the management daemon at ${where} (${err.name === 'TimeoutError' ? `no answer within ${STATEDUMP_ASK_MS / 1000} s` : (err.cause?.code ?? err.message)})`);
    }
  }

  /** Status of every volume. */
  async statusAll(): Promise<VolumeStatusInfo[]> {
    return Promise.all(this.ctx.store.list().map((v) => this.status(v.name)));
  }

  /** Validates and records a new volume; makes missing brick directories. */
  create(req: CreateRequest): Promise<CreateReply> {
    return this.ctx.lock.run(() => this.doCreate(req));
  }

  private async doCreate(req: CreateRequest): Promise<CreateReply> {
    if (typeof req?.name !== 'string' || !Array.isArray(req.bricks) || !req.bricks.every((b) => typeof b === 'string')) {
      throw new UsageError('expected {"name": VOL, "bricks": ["HOST:/abs/path", ...], "force"?: bool, "replica"?: N, "stripe"?: N}');
    }
    // The same checks as the CLI: the daemon trusts no client.
    validateVolumeName(req.name);
    const words = [
      ...(req.replica !== undefined ? ['replica', String(req.replica)] : []),
      ...(req.stripe !== undefined ? ['stripe', String(req.stripe)] : []),
      ...req.bricks,
    ];
    const parsed = parseCreateArgs(req.name, words, req.force === true);
    if (this.ctx.store.get(req.name)) {
      throw new MgmtError(409, `volume ${req.name} already exists; choose another name, or delete it first with \`brickfs volume delete ${req.name}\``);
    }
    const prepared = await this.brickOps.prepareBricks(parsed.bricks.map(parseBrickSpec), parsed.force === true);
    const bricks: BrickDef[] = this.brickOps.withIds(prepared.bricks);
    const stripe = {
      ...(parsed.stripe === undefined ? {} : { stripeCount: parsed.stripe }),
      ...(parsed.replica === undefined ? {} : { replicaCount: parsed.replica }),
    };
    const vol: VolumeDef = {
      name: req.name,
      id: randomUUID(),
      type: volumeType({ bricks, ...stripe }),
      status: 'created',
      version: 1,
      bricks,
      ...stripe,
      options: {},
      createdAt: new Date().toISOString(),
      auth: newCredentials(),
    };
    await this.ctx.writeVolfiles(vol);
    await this.ctx.store.put(vol);
    log.info(`created volume ${vol.name} with ${bricks.length} brick(s)`);
    this.ctx.events.emit('changed', vol.name);
    return { volume: toVolumeInfo(vol), warnings: prepared.warnings };
  }

  /**
   * Starts every brick of a volume; with force, also restarts dead bricks of a started
   * volume. This host's bricks start first, here; then the volume is started in the store
   * and the other hosts' daemons start theirs when they see it. A brick that fails anywhere
   * stops the volume again (unless it was started before) and the reply says why.
   */
  start(name: string, force = false): Promise<StartStopReply> {
    return this.ctx.lock.run(async () => {
      let vol = this.ctx.need(name);
      const wasStarted = vol.status === 'started';
      if (wasStarted && !force) {
        throw new MgmtError(409, `volume ${name} is already started; \`brickfs volume start ${name} force\` restarts bricks that are down`);
      }
      if (!vol.auth && !wasStarted) {
        // Stored before credentials: given them now, with a new version so mounts fetch the volfile that carries them.
        vol.auth = newCredentials();
        vol.version += 1;
        await this.ctx.store.put(vol);
        vol = this.ctx.need(name);
      }
      const mine = await this.ctx.myBricks(vol);
      const theirs = vol.bricks.filter((b) => !mine.includes(b));
      await this.ctx.writeVolfiles(vol);
      const results = await this.own.exclusive(() => Promise.allSettled(mine.map((b) => this.own.ensure(vol, b))));
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      const stopMine = (): Promise<unknown> => this.own.exclusive(() => Promise.allSettled(mine.map((b) => stopBrick(this.ctx.brickProc(vol, b)))));
      if (failed.length > 0) {
        // A half-started volume is worse than a clear failure: undo, unless it was started before.
        if (!wasStarted) await stopMine();
        const msgs = failed.map((e) => (e instanceof BrickStartError ? e.message : `unexpected error: ${e.message}`));
        throw new MgmtError(500, `volume ${name}: ${failed.length} of ${vol.bricks.length} brick(s) failed to start${wasStarted ? '' : ' (the volume stays stopped)'}:\n${msgs.join('\n')}`);
      }
      const next = structuredClone(vol);
      next.status = 'started';
      // start force on a started volume: a change every owner sees, so each restarts its dead bricks.
      if (wasStarted && theirs.length > 0) next.startSeq = (vol.startSeq ?? 0) + 1;
      if (!wasStarted || theirs.length > 0) await this.ctx.store.put(next);
      if (theirs.length > 0) {
        const lost = await this.own.waitForOwners(next, theirs, this.ctx.store.revisionOf(name), true);
        if (lost.length > 0) {
          if (!wasStarted) {
            const back = this.ctx.need(name);
            back.status = vol.status;
            await this.ctx.store.put(back).catch((e: Error) => lost.push(`and the volume could not be stopped again: ${e.message}`));
            await stopMine();
          }
          throw new MgmtError(500, `volume ${name}: ${lost.length} of ${vol.bricks.length} brick(s) failed to start${wasStarted ? '' : ' (the volume stays stopped)'}:\n${lost.join('\n')}`);
        }
      }
      log.info(`started volume ${name}`);
      this.ctx.events.emit('changed', name);
      return { volume: toVolumeInfo(this.ctx.need(name)), bricks: (await this.status(name)).bricks };
    });
  }

  /** Stops every brick process of a started volume: this host's here, the others' by their daemons. */
  stop(name: string): Promise<StartStopReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      if (vol.status !== 'started') throw new MgmtError(409, `volume ${name} is not started`);
      // A rebalance without bricks would only fail; stopped, it resumes after the next start.
      if (!(await this.rebalance.stopAll(vol))) {
        throw new MgmtError(500, `volume ${name}: the rebalance process did not stop within ${REBALANCE_STOP_MS / 1000} s; try again, or kill it (pid in ${this.ctx.store.paths.rebalancePidfile(name)})`);
      }
      const mine = await this.ctx.myBricks(vol);
      const theirs = vol.bricks.filter((b) => !mine.includes(b));
      const results = await this.own.exclusive(() => Promise.allSettled(mine.map((b) => stopBrick(this.ctx.brickProc(vol, b)))));
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      if (failed.length > 0) throw new MgmtError(500, `volume ${name}: could not stop every brick:\n${failed.join('\n')}`);
      vol.status = 'stopped';
      await this.ctx.store.put(vol);
      log.info(`stopped volume ${name}`);
      this.ctx.events.emit('changed', name);
      if (theirs.length > 0) {
        const lost = await this.own.waitForOwners(vol, theirs, this.ctx.store.revisionOf(name), false);
        if (lost.length > 0) {
          throw new MgmtError(500, `volume ${name} is stopped, but not every brick confirmed it stopped; each stops when its daemon sees the change:\n${lost.join('\n')}`);
        }
      }
      return { volume: toVolumeInfo(vol), bricks: (await this.status(name)).bricks };
    });
  }

  /** Forgets a volume that is not started; brick directories and their data stay. */
  delete(name: string): Promise<VolumeInfo> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      if (vol.status === 'started') {
        throw new MgmtError(409, `volume ${name} is started; stop it first with \`brickfs volume stop ${name}\``);
      }
      await this.ctx.store.remove(name);
      await fsp.rm(this.ctx.store.paths.volDir(name), { recursive: true, force: true });
      log.info(`deleted volume ${name}`);
      this.ctx.events.emit('changed', name);
      return toVolumeInfo(vol);
    });
  }

  /** Sets a volume option, bumps the version and regenerates the volfiles. */
  set(name: string, key: string, value: string): Promise<VolumeInfo> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      if (typeof key !== 'string' || typeof value !== 'string') throw new UsageError('expected {"value": STRING}');
      vol.options[key] = validateVolumeOption(key, value);
      await this.optionsChanged(vol, `${key} = ${vol.options[key]}`);
      return toVolumeInfo(vol);
    });
  }

  /**
   * Puts one option (or, without a key, every option) back to its default (GlusterFS's
   * `volume reset`). Resetting an option that is not set changes nothing and succeeds.
   */
  reset(name: string, key?: string): Promise<VolumeInfo> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      if (key !== undefined) validateVolumeOptionKey(key);
      const keys = key === undefined ? Object.keys(vol.options) : [key].filter((k) => k in vol.options);
      if (keys.length === 0) return toVolumeInfo(vol);
      for (const k of keys) delete vol.options[k];
      await this.optionsChanged(vol, `${keys.join(', ')} reset`);
      return toVolumeInfo(vol);
    });
  }

  /** After a change of vol.options: a new version, its volfiles, and running bricks told to re-read theirs. */
  private async optionsChanged(vol: VolumeDef, what: string): Promise<void> {
    vol.version += 1;
    await this.ctx.writeVolfiles(vol);
    await this.ctx.store.put(vol);
    // Running bricks re-read their volfile (brick-side options such as features.cache-invalidation).
    if (vol.status === 'started') {
      for (const b of await this.ctx.myBricks(vol)) {
        const pid = brickPid(this.ctx.brickProc(vol, b));
        try {
          if (pid !== null) process.kill(pid, 'SIGHUP');
        } catch { /* gone since: it reads the new volfile when it starts again */ }
      }
    }
    log.info(`volume ${vol.name}: ${what} (version ${vol.version})`);
    this.ctx.events.emit('changed', vol.name);
  }
}
