// Volume operations of the management daemon: create/start/stop/delete/set and the views
// info/status/volfile. HTTP-free: daemon.ts maps requests here and MgmtErrors to replies.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import type {
  BrickStatus, CreateReply, CreateRequest, StartStopReply, VolumeInfo, VolumeStatusInfo,
} from '../../lib/mgmt/api.js';
import { formatBrick, parseBrickSpec, parseCreateArgs, validateVolumeName, validateVolumeOption } from '../../lib/mgmt/args.js';
import {
  allocatePorts, BRICK_MAIN, brickState, BrickStartError, ensureBrick, portFree, stopBrick, type BrickProcess,
} from './bricks.js';
import { MgmtError, noSuchVolume } from './errors.js';
import { isThisHost } from './hosts.js';
import { toVolumeInfo, writeFileAtomic, type BrickDef, type VolumeDef, type VolumeStore } from './store.js';
import { brickVolfile, clientVolfile, listenHostFor, volumeType } from './volgen.js';

const log = new Logger('mgmt');

/** Settings of a VolumeManager. */
export interface VolumeManagerOptions {
  /** First port tried for new bricks. */
  brickPortBase: number;
  /** The brick program (dist/brick/main.js); tests may substitute one. */
  brickMain?: string;
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

  constructor(readonly store: VolumeStore, private readonly opts: VolumeManagerOptions) {
    this.brickMain = opts.brickMain ?? BRICK_MAIN;
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

  /** Status of every volume. */
  async statusAll(): Promise<VolumeStatusInfo[]> {
    return Promise.all(this.store.list().map((v) => this.status(v.name)));
  }

  /** Validates and records a new volume; makes missing brick directories. */
  create(req: CreateRequest): Promise<CreateReply> {
    return this.lock.run(() => this.doCreate(req));
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
    const force = parsed.force === true;
    if (this.store.get(req.name)) {
      throw new MgmtError(409, `volume ${req.name} already exists; choose another name, or delete it first with \`brickfs volume delete ${req.name}\``);
    }
    const specs = parsed.bricks.map(parseBrickSpec);
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
    const ids = new Set<string>();
    const bricks: BrickDef[] = specs.map((s) => {
      const id = this.store.uniqueBrickId(s.host, s.path, ids);
      ids.add(id);
      return { host: s.host, path: s.path, port: s.port ?? auto.shift()!, id };
    });
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
    return { volume: toVolumeInfo(vol), warnings };
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
      vol.version += 1;
      await this.writeVolfiles(vol);
      await this.store.put(vol);
      log.info(`volume ${name}: ${key} = ${vol.options[key]} (version ${vol.version})`);
      this.events.emit('changed', name);
      return toVolumeInfo(vol);
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
    });
  }
}
