// Volume operations of the management daemon: create/start/stop/delete/set/reset and the views
// info/status/volfile. HTTP-free: daemon.ts maps requests here and MgmtErrors to replies.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import type {
  AddBrickReply, AddBrickRequest, BrickInfo, BrickStatus, CreateReply, CreateRequest, RebalancePurpose, RebalanceStartRequest,
  RebalanceStatusReply, RemoveBrickEndReply, RemoveBrickRequest, RemoveBrickStartReply, RemoveBrickStatusReply, RemovingInfo,
  StartStopReply, StatedumpReply, VolumeInfo, VolumeStatusInfo,
} from '../../lib/mgmt/api.js';
import {
  formatBrick, parseAddBrickArgs, parseBrickList, parseBrickSpec, parseCreateArgs, parseThrottle, validateVolumeName,
  validateVolumeOption, validateVolumeOptionKey, type BrickSpec,
} from '../../lib/mgmt/args.js';
import type { RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import { requestStatedump } from '../../lib/statedump.js';
import {
  allocatePorts, BRICK_MAIN, brickPid, brickState, BrickStartError, ensureBrick, portFree, stopBrick, type BrickProcess,
} from './bricks.js';
import { MgmtError, noSuchVolume } from './errors.js';
import { isThisHost } from './hosts.js';
import {
  readRebalanceStatus, REBALANCE_MAIN, rebalancePid, RebalanceStartError, startRebalance, stopRebalance, type RebalanceProcess,
} from './rebalance.js';
import { toVolumeInfo, writeFileAtomic, type BrickDef, type VolumeDef, type VolumeStore } from './store.js';
import {
  brickVolfile, clientVolfile, distributeUnits, listenHostFor, setWidth, slotOf, volumeType, type DistributeUnit,
} from './volgen.js';

const log = new Logger('mgmt');

/** Settings of a VolumeManager. */
export interface VolumeManagerOptions {
  /** First port tried for new bricks. */
  brickPortBase: number;
  /** The brick program (dist/brick/main.js); tests may substitute one. */
  brickMain?: string;
  /** The rebalance program (dist/client/rebalance/main.js); tests may substitute one. */
  rebalanceMain?: string;
}

const GIB = 1024 ** 3;
/** How long `rebalance stop` (and what stops a drain) waits for the process to say it stopped. */
const REBALANCE_STOP_MS = 30_000;

/**
 * Layout weights from the free bytes of each distribute subvolume: free GiB rounded (at
 * least 1) when the largest free space among the subvolumes that keep a range is more than
 * 10% above the smallest; undefined (equal ranges) otherwise. Drained subvolumes (a
 * remove-brick) get a weight too, one per subvolume, but do not take part in the decision.
 */
export function weightsFromFree(freeBytes: readonly number[], drained: readonly boolean[] = []): number[] | undefined {
  const kept = freeBytes.filter((_, i) => !drained[i]);
  if (kept.length < 2) return undefined;
  if (Math.max(...kept) <= 1.1 * Math.min(...kept)) return undefined;
  const w = freeBytes.map((f) => Math.max(1, Math.round(f / GIB)));
  const keptW = w.filter((_, i) => !drained[i]);
  return keptW.every((x) => x === keptW[0]) ? undefined : w;
}

/** "replica 2", "stripe 2", "stripe 2 replica 2" or "distribute": the shape words of a volume. */
function shapeWords(vol: VolumeDef): string {
  const w = [
    ...(vol.stripeCount ? [`stripe ${vol.stripeCount}`] : []),
    ...(vol.replicaCount ? [`replica ${vol.replicaCount}`] : []),
  ];
  return w.length > 0 ? w.join(' ') : 'distribute';
}

/** The canonical form of a path that may not exist yet: realpath of its deepest existing ancestor. */
function canonical(p: string): string {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail);
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return p;
      tail.unshift(path.basename(head));
      head = parent;
    }
  }
}

/** True when inner is outer or lies below it. */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

/** Runs async tasks one at a time (volume changes must not interleave). */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** Owns the volume store and the brick processes of this host. */
export class VolumeManager {
  private readonly lock = new Mutex();
  /** Emits 'changed' (name) when a volume's volfile or state changes; long-polls listen. */
  readonly events = new EventEmitter();
  private readonly brickMain: string;
  private readonly rebalanceMain: string;

  constructor(readonly store: VolumeStore, private readonly opts: VolumeManagerOptions) {
    this.brickMain = opts.brickMain ?? BRICK_MAIN;
    this.rebalanceMain = opts.rebalanceMain ?? REBALANCE_MAIN;
    this.events.setMaxListeners(0);
  }

  private need(name: string): VolumeDef {
    const v = this.store.get(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  private proc(vol: VolumeDef, b: BrickDef): BrickProcess {
    const p = this.store.paths;
    return {
      label: formatBrick(b, false),
      volfile: p.brickVolfile(vol.name, b),
      pidfile: p.brickPidfile(vol.name, b),
      log: p.brickLog(b),
      port: b.port,
      listenHost: listenHostFor(b.host),
    };
  }

  private rebalanceProc(vol: VolumeDef): RebalanceProcess {
    const p = this.store.paths;
    return {
      volume: vol.name,
      volfile: p.clientVolfile(vol.name),
      status: p.rebalanceStatus(vol.name),
      checkpoint: p.rebalanceCheckpoint(vol.name),
      pidfile: p.rebalancePidfile(vol.name),
      log: p.rebalanceLog(vol.name),
    };
  }

  private async writeVolfiles(vol: VolumeDef): Promise<void> {
    const p = this.store.paths;
    await writeFileAtomic(p.clientVolfile(vol.name), clientVolfile(vol));
    for (const b of vol.bricks) await writeFileAtomic(p.brickVolfile(vol.name, b), brickVolfile(vol, b));
  }

  /** Every volume's definition. */
  list(): VolumeInfo[] {
    return this.store.list().map(toVolumeInfo);
  }

  /** One volume's definition. */
  info(name: string): VolumeInfo {
    return toVolumeInfo(this.need(name));
  }

  /** The client volfile and its version; 409 unless the volume is started or anyState (mounts rely on it). */
  volfile(name: string, anyState = false): { text: string; version: number } {
    const v = this.need(name);
    if (v.status !== 'started' && !anyState) {
      throw new MgmtError(409, `volume ${name} is not started; start it with \`brickfs volume start ${name}\``);
    }
    return { text: clientVolfile(v), version: v.version };
  }

  /** Per-brick pid and online state of one volume. */
  async status(name: string): Promise<VolumeStatusInfo> {
    const v = this.need(name);
    const bricks: BrickStatus[] = await Promise.all(v.bricks.map(async (b) => {
      const st = await brickState(this.proc(v, b));
      return { host: b.host, path: b.path, port: b.port, ...st };
    }));
    return { name: v.name, status: v.status, bricks };
  }

  /**
   * Each running brick's statedump (GlusterFS's `volume statedump`): SIGUSR1, then the
   * line the brick writes to its log. A brick that is not running, or does not answer
   * within requestStatedump's wait, gets an error instead.
   */
  async statedump(name: string): Promise<StatedumpReply> {
    const v = this.need(name);
    const bricks = await Promise.all(v.bricks.map(async (b) => {
      const where = { host: b.host, path: b.path };
      const proc = this.proc(v, b);
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

  /** Status of every volume. */
  async statusAll(): Promise<VolumeStatusInfo[]> {
    return Promise.all(this.store.list().map((v) => this.status(v.name)));
  }

  /** Validates and records a new volume; makes missing brick directories. */
  create(req: CreateRequest): Promise<CreateReply> {
    return this.lock.run(() => this.doCreate(req));
  }

  /**
   * The checks every new brick passes, at create and at add-brick: this host, not twice,
   * not nested in another brick or in/around a brick of any volume (unless force), a
   * directory, empty (unless force), a free port. Then assigns ports and makes the
   * directories. Returns the bricks with their ports, and warnings. For add-brick, `into`
   * is the volume that grows: a directory that is already one of its bricks is refused
   * even with force (one directory cannot be two bricks of a volume).
   */
  private async prepareBricks(specs: readonly BrickSpec[], force: boolean, into?: VolumeDef): Promise<{ bricks: BrickInfo[]; warnings: string[] }> {
    for (const s of specs) {
      if (!(await isThisHost(s.host))) {
        throw new MgmtError(501,
          `brick ${formatBrick(s, false)}: host "${s.host}" is not this host (or does not resolve to one of its addresses); ` +
          'multi-host volumes are not yet supported: use localhost or an address of this host');
      }
    }
    // All bricks are on this host, so two bricks are the same when their paths are.
    const canon = specs.map((s) => canonical(s.path));
    for (let i = 0; i < specs.length; i++) {
      for (let j = 0; j < specs.length; j++) {
        if (i === j) continue;
        if (canon[i] === canon[j]) {
          throw new UsageError(`bricks ${formatBrick(specs[i]!, false)} and ${formatBrick(specs[j]!, false)} are the same directory`);
        }
        if (!force && within(canon[i]!, canon[j]!)) {
          throw new MgmtError(409, `brick ${formatBrick(specs[i]!, false)} is inside brick ${formatBrick(specs[j]!, false)}; use separate directories, or add --force to use it anyway`);
        }
      }
    }
    const usedPorts = new Set<number>();
    for (const v of this.store.list()) {
      for (const b of v.bricks) {
        usedPorts.add(b.port);
        if (v.name === into?.name) {
          const i = canon.indexOf(canonical(b.path));
          if (i >= 0) throw new MgmtError(409, `brick ${formatBrick(specs[i]!, false)} is already a brick of volume ${v.name}; give another directory`);
        }
        if (force) continue;
        const other = canonical(b.path);
        const label = formatBrick(b, false);
        for (let i = 0; i < specs.length; i++) {
          const mine = formatBrick(specs[i]!, false);
          if (canon[i] === other) throw new MgmtError(409, `brick ${mine} is already a brick of volume ${v.name}; use another directory, or add --force to use it anyway`);
          if (within(canon[i]!, other)) throw new MgmtError(409, `brick ${mine} is inside brick ${label} of volume ${v.name}; use another directory, or add --force to use it anyway`);
          if (within(other, canon[i]!)) throw new MgmtError(409, `brick ${mine} contains brick ${label} of volume ${v.name}; use another directory, or add --force to use it anyway`);
        }
      }
    }
    const warnings: string[] = [];
    const rootDev = fs.statSync('/').dev;
    for (const s of specs) {
      const label = formatBrick(s, false);
      const st = fs.statSync(s.path, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) throw new MgmtError(409, `brick ${label}: ${s.path} exists and is not a directory; give a directory`);
      if (st && !force && fs.readdirSync(s.path).length > 0) {
        throw new MgmtError(409, `brick ${label}: directory ${s.path} is not empty; use an empty directory, or add --force to use it with its content`);
      }
    }
    // Explicit ports first (they must be free), then assign the rest from the base upward.
    for (const s of specs) {
      if (s.port === undefined) continue;
      if (usedPorts.has(s.port)) throw new MgmtError(409, `brick ${formatBrick(s)}: port ${s.port} is already used by another brick; choose another port or leave it out`);
      if (!(await portFree(s.port))) throw new MgmtError(409, `brick ${formatBrick(s)}: port ${s.port} is in use by another process; choose another port or leave it out`);
      usedPorts.add(s.port);
    }
    let auto: number[];
    try {
      auto = await allocatePorts(specs.filter((s) => s.port === undefined).length, this.opts.brickPortBase, usedPorts);
    } catch (e) {
      throw new MgmtError(409, (e as Error).message);
    }
    for (const s of specs) {
      try {
        await fsp.mkdir(s.path, { recursive: true });
      } catch (e) {
        throw new MgmtError(409, `brick ${formatBrick(s, false)}: cannot create directory ${s.path}: ${(e as Error).message}`);
      }
      if (fs.statSync(s.path).dev === rootDev) {
        warnings.push(`brick ${formatBrick(s, false)} is on the root filesystem; a full brick will fill the root filesystem too`);
      }
    }
    return { bricks: specs.map((s) => ({ host: s.host, path: s.path, port: s.port ?? auto.shift()! })), warnings };
  }

  /** Gives the bricks ids unique across every volume. */
  private withIds(bricks: readonly BrickInfo[]): Array<BrickInfo & { id: string }> {
    const ids = new Set<string>();
    return bricks.map((b) => {
      const id = this.store.uniqueBrickId(b.host, b.path, ids);
      ids.add(id);
      return { ...b, id };
    });
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
    if (this.store.get(req.name)) {
      throw new MgmtError(409, `volume ${req.name} already exists; choose another name, or delete it first with \`brickfs volume delete ${req.name}\``);
    }
    const prepared = await this.prepareBricks(parsed.bricks.map(parseBrickSpec), parsed.force === true);
    const bricks: BrickDef[] = this.withIds(prepared.bricks);
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
    };
    await this.writeVolfiles(vol);
    await this.store.put(vol);
    log.info(`created volume ${vol.name} with ${bricks.length} brick(s)`);
    this.events.emit('changed', vol.name);
    return { volume: toVolumeInfo(vol), warnings: prepared.warnings };
  }

  /** Starts every brick of a volume; with force, also restarts dead bricks of a started volume. */
  start(name: string, force = false): Promise<StartStopReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      const wasStarted = vol.status === 'started';
      if (wasStarted && !force) {
        throw new MgmtError(409, `volume ${name} is already started; \`brickfs volume start ${name} force\` restarts bricks that are down`);
      }
      await this.writeVolfiles(vol);
      const results = await Promise.allSettled(vol.bricks.map((b) => ensureBrick(this.proc(vol, b), this.brickMain)));
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      if (failed.length > 0) {
        // A half-started volume is worse than a clear failure: undo, unless it was started before.
        if (!wasStarted) await Promise.allSettled(vol.bricks.map((b) => stopBrick(this.proc(vol, b))));
        const msgs = failed.map((e) => (e instanceof BrickStartError ? e.message : `unexpected error: ${e.message}`));
        throw new MgmtError(500, `volume ${name}: ${failed.length} of ${vol.bricks.length} brick(s) failed to start${wasStarted ? '' : ' (the volume stays stopped)'}:\n${msgs.join('\n')}`);
      }
      if (!wasStarted) {
        vol.status = 'started';
        await this.store.put(vol);
      }
      log.info(`started volume ${name}`);
      this.events.emit('changed', name);
      return { volume: toVolumeInfo(vol), bricks: (await this.status(name)).bricks };
    });
  }

  /** Stops every brick process of a started volume. */
  stop(name: string): Promise<StartStopReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      if (vol.status !== 'started') throw new MgmtError(409, `volume ${name} is not started`);
      // A rebalance without bricks would only fail; stopped, it resumes after the next start.
      if (!(await stopRebalance(this.rebalanceProc(vol), REBALANCE_STOP_MS))) {
        throw new MgmtError(500, `volume ${name}: the rebalance process did not stop within ${REBALANCE_STOP_MS / 1000} s; try again, or kill it (pid in ${this.store.paths.rebalancePidfile(name)})`);
      }
      const results = await Promise.allSettled(vol.bricks.map((b) => stopBrick(this.proc(vol, b))));
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      if (failed.length > 0) throw new MgmtError(500, `volume ${name}: could not stop every brick:\n${failed.join('\n')}`);
      vol.status = 'stopped';
      await this.store.put(vol);
      log.info(`stopped volume ${name}`);
      this.events.emit('changed', name);
      return { volume: toVolumeInfo(vol), bricks: (await this.status(name)).bricks };
    });
  }

  /** Forgets a volume that is not started; brick directories and their data stay. */
  delete(name: string): Promise<VolumeInfo> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      if (vol.status === 'started') {
        throw new MgmtError(409, `volume ${name} is started; stop it first with \`brickfs volume stop ${name}\``);
      }
      await this.store.remove(name);
      await fsp.rm(this.store.paths.volDir(name), { recursive: true, force: true });
      log.info(`deleted volume ${name}`);
      this.events.emit('changed', name);
      return toVolumeInfo(vol);
    });
  }

  /** Sets a volume option, bumps the version and regenerates the volfiles. */
  set(name: string, key: string, value: string): Promise<VolumeInfo> {
    return this.lock.run(async () => {
      const vol = this.need(name);
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
    return this.lock.run(async () => {
      const vol = this.need(name);
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
    await this.writeVolfiles(vol);
    await this.store.put(vol);
    // Running bricks re-read their volfile (brick-side options such as features.cache-invalidation).
    if (vol.status === 'started') {
      for (const b of vol.bricks) {
        const pid = brickPid(this.proc(vol, b));
        try {
          if (pid !== null) process.kill(pid, 'SIGHUP');
        } catch { /* gone since: it reads the new volfile when it starts again */ }
      }
    }
    log.info(`volume ${vol.name}: ${what} (version ${vol.version})`);
    this.events.emit('changed', vol.name);
  }

  // ---- Growing and shrinking a volume: add-brick, remove-brick, rebalance ----

  /** Free bytes per distribute subvolume (a set has the free space of its fullest brick); undefined if a brick cannot be measured. */
  private async freePerUnit(vol: VolumeDef, units: readonly DistributeUnit[]): Promise<number[] | undefined> {
    try {
      return await Promise.all(units.map(async (u) => {
        const free = await Promise.all(u.bricks.map(async (i) => {
          const st = await fsp.statfs(vol.bricks[i]!.path);
          return Number(st.bavail) * Number(st.bsize);
        }));
        return Math.min(...free);
      }));
    } catch (e) {
      log.warn(`volume ${vol.name}: cannot measure free space of its bricks (${(e as Error).message}); layouts stay equal`);
      return undefined;
    }
  }

  /** Measures free space and sets (or clears) vol.layoutWeights; drained units do not count. */
  private async measureWeights(vol: VolumeDef): Promise<void> {
    const units = distributeUnits(vol);
    const gone = new Set(vol.removing?.bricks ?? []);
    const drained = units.map((u) => u.bricks.every((i) => gone.has(vol.bricks[i]!.id)));
    const free = units.length > 1 ? await this.freePerUnit(vol, units) : undefined;
    const w = free && weightsFromFree(free, drained);
    if (w) vol.layoutWeights = w;
    else delete vol.layoutWeights;
  }

  /** Gives every brick its slot explicitly (volumes stored before slots use the index). */
  private static pinSlots(vol: VolumeDef): void {
    vol.bricks.forEach((b, i) => { b.slot = slotOf(b, i); });
  }

  /** Whether a rebalance process of this volume is alive. */
  private rebalanceAlive(vol: VolumeDef): boolean {
    return rebalancePid(this.rebalanceProc(vol)) !== null;
  }

  private refuseWhileBusy(vol: VolumeDef, what: string): void {
    if (vol.removing) {
      const bricks = this.removingBricks(vol).map((b) => formatBrick(b, false)).join(' ');
      throw new MgmtError(409,
        `a remove-brick of volume ${vol.name} is in progress (${bricks}); finish it first with ` +
        `\`brickfs volume remove-brick ${vol.name} ${bricks} commit\` (or cancel it with \`... stop\`), then ${what}`);
    }
    if (this.rebalanceAlive(vol)) {
      throw new MgmtError(409,
        `a rebalance of volume ${vol.name} is running; wait until \`brickfs volume rebalance ${vol.name} status\` says completed, ` +
        `or stop it with \`brickfs volume rebalance ${vol.name} stop\`, then ${what}`);
    }
  }

  private removingBricks(vol: VolumeDef): BrickDef[] {
    const ids = new Set(vol.removing?.bricks ?? []);
    return vol.bricks.filter((b) => ids.has(b.id));
  }

  private removingInfo(vol: VolumeDef): RemovingInfo {
    return toVolumeInfo(vol).removing ?? { bricks: [], startedAt: '' };
  }

  /** Adds bricks (whole replica/stripe sets) to a volume; starts them first when the volume is started. */
  addBrick(name: string, req: AddBrickRequest): Promise<AddBrickReply> {
    return this.lock.run(async () => {
      if (!Array.isArray(req?.bricks) || !req.bricks.every((b) => typeof b === 'string')) {
        throw new UsageError('expected {"bricks": ["HOST:/abs/path", ...], "replica"?: N, "force"?: bool}');
      }
      const vol = this.need(name);
      const parsed = parseAddBrickArgs(name, [...(req.replica !== undefined ? ['replica', String(req.replica)] : []), ...req.bricks], req.force === true);
      const width = setWidth(vol);
      const r = vol.replicaCount ?? 1;
      if (parsed.replica !== undefined && parsed.replica !== r) {
        throw new MgmtError(501,
          `changing the replica count with add-brick is not supported yet; volume ${name} has ${r === 1 ? 'no replicas' : `replica ${r}`}: ` +
          `add bricks in multiples of ${width}${r > 1 ? ` (say "replica ${r}" or nothing)` : ' (without "replica N")'}`);
      }
      if (parsed.bricks.length % width !== 0) {
        throw new UsageError(
          `volume ${name} (${shapeWords(vol)}) grows by whole sets of ${width} bricks: give a multiple of ${width}, got ${parsed.bricks.length}; ` +
          `each ${width} consecutive new bricks form one set; for example: brickfs volume add-brick ${name} ` +
          Array.from({ length: width }, (_, i) => `localhost:/srv/new${i + 1}`).join(' '));
      }
      this.refuseWhileBusy(vol, 'add bricks');
      const prepared = await this.prepareBricks(parsed.bricks.map(parseBrickSpec), parsed.force === true, vol);
      const next = structuredClone(vol);
      VolumeManager.pinSlots(next);
      let slot = Math.max(next.nextSlot ?? 0, ...next.bricks.map((b) => b.slot! + 1));
      const added: BrickDef[] = this.withIds(prepared.bricks).map((b) => ({ ...b, slot: slot++ }));
      next.bricks.push(...added);
      next.type = volumeType(next);
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      const p = this.store.paths;
      for (const b of added) await writeFileAtomic(p.brickVolfile(name, b), brickVolfile(next, b));
      const started = next.status === 'started';
      const undo = async (): Promise<void> => {
        if (started) await Promise.allSettled(added.map((b) => stopBrick(this.proc(next, b))));
        for (const b of added) await fsp.rm(p.brickVolfile(name, b), { force: true });
      };
      if (started) {
        const results = await Promise.allSettled(added.map((b) => ensureBrick(this.proc(next, b), this.brickMain)));
        const failed = results.flatMap((res) => (res.status === 'rejected' ? [res.reason as Error] : []));
        if (failed.length > 0) {
          await undo();
          const msgs = failed.map((e) => (e instanceof BrickStartError ? e.message : `unexpected error: ${e.message}`));
          throw new MgmtError(500, `volume ${name}: ${failed.length} of ${added.length} new brick(s) failed to start; the volume is unchanged:\n${msgs.join('\n')}`);
        }
      }
      try {
        await this.writeVolfiles(next);
        await this.store.put(next);
      } catch (e) {
        await undo();
        await this.writeVolfiles(vol).catch(() => undefined);
        throw e;
      }
      log.info(`volume ${name}: added ${added.length} brick(s) (version ${next.version}, layout epoch ${next.layoutEpoch})`);
      this.events.emit('changed', name);
      return { volume: toVolumeInfo(next), added: added.map(({ host, path: bp, port }) => ({ host, path: bp, port })), warnings: prepared.warnings };
    });
  }

  /** Indices of the named bricks in the volume; a brick not in it is a usage error. */
  private async findBricks(vol: VolumeDef, words: unknown): Promise<number[]> {
    if (!Array.isArray(words) || !words.every((b) => typeof b === 'string')) {
      throw new UsageError('expected {"bricks": ["HOST:/abs/path", ...]}');
    }
    if (words.length === 0) throw new UsageError('no bricks given; name the bricks to remove as `brickfs volume info` lists them');
    const specs = parseBrickList(words as string[]).map(parseBrickSpec);
    const out: number[] = [];
    for (const s of specs) {
      const byPath = (b: BrickDef): boolean => b.path === s.path || canonical(b.path) === canonical(s.path);
      let i = -1;
      for (let k = 0; k < vol.bricks.length && i < 0; k++) {
        const b = vol.bricks[k]!;
        if (byPath(b) && (b.host === s.host || ((await isThisHost(s.host)) && (await isThisHost(b.host))))) i = k;
      }
      if (i < 0) {
        throw new UsageError(`${formatBrick(s, false)} is not a brick of volume ${vol.name}; \`brickfs volume info ${vol.name}\` lists its bricks`);
      }
      if (s.port !== undefined && s.port !== vol.bricks[i]!.port) {
        throw new UsageError(`brick ${formatBrick(s, false)} of volume ${vol.name} listens on port ${vol.bricks[i]!.port}, not ${s.port}; leave the port out`);
      }
      out.push(i);
    }
    return out;
  }

  /** The distribute subvolumes the bricks make up; bricks that are part of a set only are a usage error. */
  private wholeUnits(vol: VolumeDef, indices: readonly number[]): DistributeUnit[] {
    const chosen = new Set(indices);
    const units = distributeUnits(vol).filter((u) => u.bricks.some((i) => chosen.has(i)));
    for (const u of units) {
      const missing = u.bricks.filter((i) => !chosen.has(i));
      if (missing.length > 0) {
        const kind = vol.replicaCount && vol.stripeCount ? 'striped replica set' : vol.replicaCount ? 'replica set' : 'stripe set';
        throw new UsageError(
          `remove whole ${kind}s (${shapeWords(vol)}): ${u.bricks.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ')} ` +
          `form one; add ${missing.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ')} to the bricks to remove, or leave the set in`);
      }
    }
    return units;
  }

  private sameBricks(vol: VolumeDef, indices: readonly number[]): boolean {
    const ids = new Set(indices.map((i) => vol.bricks[i]!.id));
    const removing = vol.removing?.bricks ?? [];
    return ids.size === removing.length && removing.every((id) => ids.has(id));
  }

  /** The brick words of the removal in progress, for messages. */
  private removingWords(vol: VolumeDef): string {
    return this.removingBricks(vol).map((b) => formatBrick(b, false)).join(' ');
  }

  /** Starts (or resumes) a rebalance run and records it; the reply is its first status. */
  private async launch(vol: VolumeDef, purpose: RebalancePurpose, fixLayout: boolean, throttle: RebalanceThrottle): Promise<RebalanceStatusReply> {
    const rp = this.rebalanceProc(vol);
    const prev = readRebalanceStatus(rp.status);
    const mode = fixLayout ? 'fix-layout' : 'migrate';
    const epoch = vol.layoutEpoch ?? 0;
    // Resume only what was cut short (stopped, or died) over the same bricks, in the same mode.
    const resume = !!prev && !!vol.rebalance && vol.rebalance.layoutEpoch === epoch && vol.rebalance.mode === mode &&
      (prev.state === 'stopped' || prev.state === 'running');
    vol.rebalance = { purpose, mode, throttle, layoutEpoch: epoch, startedAt: new Date().toISOString() };
    await this.store.put(vol);
    await startRebalance(rp, this.rebalanceMain, { throttle, fixLayout, resume });
    log.info(`volume ${vol.name}: ${purpose === 'rebalance' ? 'rebalance' : 'remove-brick drain'} started (${mode}, ${throttle}${resume ? ', resumed' : ''})`);
    return this.rebalanceView(vol)!;
  }

  /** The status file of the last run with the daemon's view added, or null when no run was started. */
  private rebalanceView(vol: VolumeDef): RebalanceStatusReply | null {
    const run = vol.rebalance;
    const rp = this.rebalanceProc(vol);
    const st = run && readRebalanceStatus(rp.status);
    if (!run || !st) return null;
    const pid = rebalancePid(rp);
    const view: RebalanceStatusReply = {
      volume: vol.name, purpose: run.purpose, throttle: run.throttle, layoutEpoch: run.layoutEpoch, ...st, pid, alive: pid !== null,
    };
    if (st.state === 'running' && pid === null) {
      const again = run.purpose === 'remove-brick' && vol.removing
        ? `brickfs volume remove-brick ${vol.name} ${this.removingWords(vol)} start`
        : `brickfs volume rebalance ${vol.name} start${run.mode === 'fix-layout' ? ' --fix-layout' : ''}`;
      view.state = 'failed';
      view.error = `the rebalance process died; start it again to resume (\`${again}\`); its log: ${rp.log}`;
    }
    return view;
  }

  private needRebalanceView(vol: VolumeDef): RebalanceStatusReply {
    const v = this.rebalanceView(vol);
    if (!v) throw new MgmtError(409, `no rebalance has been started on volume ${vol.name}; start one with \`brickfs volume rebalance ${vol.name} start\``);
    return v;
  }

  /** Starts a rebalance (fix-layout only, or moving files) of a started volume with more than one distribute subvolume. */
  rebalanceStart(name: string, req: RebalanceStartRequest): Promise<RebalanceStatusReply> {
    return this.lock.run(async () => {
      const fixLayout = req?.fixLayout === true;
      const throttle = req?.throttle === undefined ? 'normal' : parseThrottle(String(req.throttle));
      const vol = this.need(name);
      if (vol.status !== 'started') {
        throw new MgmtError(409, `volume ${name} is not started; start it with \`brickfs volume start ${name}\`, then start the rebalance`);
      }
      if (vol.removing) this.refuseWhileBusy(vol, 'start a rebalance');
      if (this.rebalanceAlive(vol)) {
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
  rebalanceStatus(name: string): RebalanceStatusReply {
    return this.needRebalanceView(this.need(name));
  }

  /** Stops the running rebalance (SIGTERM; it stops after the file in hand) and waits up to 30 s. */
  rebalanceStop(name: string): Promise<RebalanceStatusReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      const rp = this.rebalanceProc(vol);
      const pid = rebalancePid(rp);
      if (pid === null) {
        const last = this.rebalanceView(vol);
        throw new MgmtError(409, `no rebalance is running on volume ${name}${last ? ` (the last one is ${last.state})` : ''}`);
      }
      if (!(await stopRebalance(rp, REBALANCE_STOP_MS))) {
        throw new MgmtError(500, `the rebalance of volume ${name} (pid ${pid}) did not stop within ${REBALANCE_STOP_MS / 1000} s; ` +
          `it stops after the file in hand: check \`brickfs volume rebalance ${name} status\` again`);
      }
      log.info(`volume ${name}: rebalance stopped`);
      return this.needRebalanceView(vol);
    });
  }

  /** Marks whole distribute subvolumes for removal and starts draining them (files move to the others). */
  removeBrickStart(name: string, req: RemoveBrickRequest): Promise<RemoveBrickStartReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      const throttle = req?.throttle === undefined ? 'normal' : parseThrottle(String(req.throttle));
      const indices = await this.findBricks(vol, req?.bricks);
      const units = this.wholeUnits(vol, indices);
      const words = indices.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ');
      if (units.length >= distributeUnits(vol).length) {
        throw new MgmtError(409, `removing ${words} would leave volume ${name} without bricks: at least one ${setWidth(vol) > 1 ? 'set' : 'brick'} must stay; ` +
          `to get rid of the whole volume, \`brickfs volume stop ${name}\` and \`brickfs volume delete ${name}\``);
      }
      if (vol.status !== 'started') {
        throw new MgmtError(409, `volume ${name} is not started; the drain moves files through the bricks: start it with \`brickfs volume start ${name}\` first`);
      }
      const drainFailed = (e: unknown): never => {
        if (e instanceof RebalanceStartError) {
          throw new MgmtError(500, `volume ${name}: ${words} are marked for removal, but the drain did not start: ${e.message}\n` +
            `run \`brickfs volume remove-brick ${name} ${words} start\` again once fixed, or \`... stop\` to keep the bricks`);
        }
        throw e;
      };
      if (vol.removing) {
        if (!this.sameBricks(vol, indices)) this.refuseWhileBusy(vol, 'remove other bricks');
        if (this.rebalanceAlive(vol)) {
          throw new MgmtError(409, `the drain of ${words} is already running; \`brickfs volume remove-brick ${name} ${words} status\` shows its progress`);
        }
        // The same removal again: start (resume) its drain.
        const rebalance = await this.launch(vol, 'remove-brick', false, throttle).catch(drainFailed);
        return { volume: toVolumeInfo(vol), removing: this.removingInfo(vol), rebalance };
      }
      this.refuseWhileBusy(vol, 'remove bricks');
      const next = structuredClone(vol);
      next.removing = { bricks: indices.map((i) => vol.bricks[i]!.id), startedAt: new Date().toISOString() };
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      await this.writeVolfiles(next);
      await this.store.put(next);
      log.info(`volume ${name}: draining ${words} (version ${next.version}, layout epoch ${next.layoutEpoch})`);
      this.events.emit('changed', name);
      const rebalance = await this.launch(next, 'remove-brick', false, throttle).catch(drainFailed);
      return { volume: toVolumeInfo(next), removing: this.removingInfo(next), rebalance };
    });
  }

  /** The remove-brick in progress and its drain; bricks, when given, must be the ones being removed. */
  async removeBrickStatus(name: string, bricks?: string[]): Promise<RemoveBrickStatusReply> {
    const vol = this.need(name);
    if (!vol.removing) throw new MgmtError(409, `no remove-brick is in progress on volume ${name}; start one with \`brickfs volume remove-brick ${name} BRICK... start\``);
    if (bricks !== undefined && bricks.length > 0 && !this.sameBricks(vol, await this.findBricks(vol, bricks))) {
      throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${this.removingWords(vol)}; ask about those bricks`);
    }
    const rebalance = this.rebalanceView(vol);
    const drain = rebalance?.purpose === 'remove-brick' ? rebalance : null;
    return { volume: name, removing: this.removingInfo(vol), rebalance: drain, complete: VolumeManager.drained(drain) };
  }

  /** True when a drain completed with every file moved. */
  private static drained(v: RebalanceStatusReply | null): boolean {
    return !!v && v.state === 'completed' && v.filesFailed === 0 && !v.alive;
  }

  /**
   * Takes drained bricks out of the volume: their processes stop, the definition forgets
   * them; their directories and whatever is left in them stay. With force, also when the
   * drain has not completed, or without a remove-brick start (files on them become unreachable).
   */
  removeBrickCommit(name: string, req: RemoveBrickRequest): Promise<RemoveBrickEndReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      const force = req?.force === true;
      const indices = await this.findBricks(vol, req?.bricks);
      const units = this.wholeUnits(vol, indices);
      const words = indices.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ');
      const next = structuredClone(vol);
      if (!vol.removing) {
        if (!force) {
          throw new MgmtError(409, `no remove-brick of ${words} was started on volume ${name}; drain them first with ` +
            `\`brickfs volume remove-brick ${name} ${words} start\`, or \`... commit force\` to take them out now, leaving their files on them, out of the volume`);
        }
        if (units.length >= distributeUnits(vol).length) {
          throw new MgmtError(409, `removing ${words} would leave volume ${name} without bricks: at least one must stay`);
        }
        if (this.rebalanceAlive(vol)) this.refuseWhileBusy(vol, 'remove bricks');
        // Without a drain the remaining bricks take over the removed ones' hash ranges.
        next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      } else {
        if (!this.sameBricks(vol, indices)) {
          throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${this.removingWords(vol)}; commit those bricks (or \`... stop\` it first)`);
        }
        const drain = this.rebalanceView(vol);
        if (!force && !VolumeManager.drained(drain)) {
          const how = drain ? `${drain.filesMoved} files moved, ${drain.filesFailed} failed, state ${drain.state}` : 'the drain never started';
          throw new MgmtError(409, `the drain is not complete: ${how}; wait (\`brickfs volume remove-brick ${name} ${words} status\`), ` +
            `or \`brickfs volume remove-brick ${name} ${words} commit force\` to remove the bricks with the files still on them`);
        }
        if (drain?.alive && !(await stopRebalance(this.rebalanceProc(vol), REBALANCE_STOP_MS))) {
          throw new MgmtError(500, `the drain of volume ${name} did not stop within ${REBALANCE_STOP_MS / 1000} s; try the commit again`);
        }
      }
      VolumeManager.pinSlots(next);
      next.nextSlot = Math.max(next.nextSlot ?? 0, ...next.bricks.map((b) => b.slot! + 1));
      const gone = new Set(indices);
      const goneUnits = new Set(units.map((u) => u.name));
      const allUnits = distributeUnits(next);
      const removed = next.bricks.filter((_, i) => gone.has(i));
      if (next.layoutWeights) {
        const kept = next.layoutWeights.filter((_, k) => !goneUnits.has(allUnits[k]!.name));
        if (kept.length > 1 && kept.some((w) => w !== kept[0])) next.layoutWeights = kept;
        else delete next.layoutWeights;
      }
      next.bricks = next.bricks.filter((_, i) => !gone.has(i));
      delete next.removing;
      next.type = volumeType(next);
      next.version += 1;
      await this.writeVolfiles(next);
      await this.store.put(next);
      log.info(`volume ${name}: removed ${words} (version ${next.version})`);
      // Mounts switch to the new volfile; then the removed bricks stop.
      this.events.emit('changed', name);
      const warnings: string[] = [];
      const results = await Promise.allSettled(removed.map((b) => stopBrick(this.proc(vol, b))));
      results.forEach((res, k) => {
        if (res.status === 'rejected') warnings.push(`brick ${formatBrick(removed[k]!, false)}: ${(res.reason as Error).message}`);
      });
      for (const b of removed) await fsp.rm(this.store.paths.brickVolfile(name, b), { force: true });
      return { volume: toVolumeInfo(next), bricks: removed.map(({ host, path: bp, port }) => ({ host, path: bp, port })), warnings };
    });
  }

  /** Cancels a remove-brick: stops its drain and gives the bricks their hash ranges back (moved files stay where they went). */
  removeBrickStop(name: string, req: RemoveBrickRequest): Promise<RemoveBrickEndReply> {
    return this.lock.run(async () => {
      const vol = this.need(name);
      const indices = await this.findBricks(vol, req?.bricks);
      if (!vol.removing) throw new MgmtError(409, `no remove-brick is in progress on volume ${name}`);
      if (!this.sameBricks(vol, indices)) {
        throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${this.removingWords(vol)}; stop it with those bricks`);
      }
      if (!(await stopRebalance(this.rebalanceProc(vol), REBALANCE_STOP_MS))) {
        throw new MgmtError(500, `the drain of volume ${name} did not stop within ${REBALANCE_STOP_MS / 1000} s; try again`);
      }
      const kept = this.removingBricks(vol);
      const next = structuredClone(vol);
      delete next.removing;
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      await this.writeVolfiles(next);
      await this.store.put(next);
      log.info(`volume ${name}: remove-brick stopped; ${kept.length} brick(s) keep their place (version ${next.version})`);
      this.events.emit('changed', name);
      return {
        volume: toVolumeInfo(next),
        bricks: kept.map(({ host, path: bp, port }) => ({ host, path: bp, port })),
        warnings: [`files already moved off these bricks stay where they went; \`brickfs volume rebalance ${name} start\` spreads files over every brick again`],
      };
    });
  }

  /** After a daemon (re)start: adopts or respawns the bricks of every started volume. */
  reconcile(): Promise<void> {
    return this.lock.run(async () => {
      for (const vol of this.store.list()) {
        if (vol.status !== 'started') continue;
        await this.writeVolfiles(vol);
        await Promise.all(vol.bricks.map(async (b) => {
          const p = this.proc(vol, b);
          try {
            const r = await ensureBrick(p, this.brickMain);
            log.info(`volume ${vol.name}: brick ${p.label} ${r.adopted ? 'adopted' : 'restarted'} (pid ${r.pid})`);
          } catch (e) {
            log.error(`volume ${vol.name}: ${(e as Error).message}`);
          }
        }));
      }
      // Rebalance processes run detached too: adopt the live ones, forget dead pidfiles.
      for (const vol of this.store.list()) {
        const rp = this.rebalanceProc(vol);
        const pid = rebalancePid(rp);
        if (pid !== null) log.info(`volume ${vol.name}: rebalance process adopted (pid ${pid})`);
        else if (fs.existsSync(rp.pidfile)) {
          fs.rmSync(rp.pidfile, { force: true });
          if (readRebalanceStatus(rp.status)?.state === 'running') {
            log.warn(`volume ${vol.name}: the rebalance process died while the daemon was away; \`brickfs volume rebalance ${vol.name} status\` shows where it was`);
          }
        }
      }
    });
  }
}
