// The volume store: every volume definition as one key /brickfs/volumes/NAME of the
// configuration store (config-store.ts), each change conditional on the revision read, so
// a definition changed meanwhile by someone else is refused instead of overwritten. The
// definitions are also kept in memory: reads do not wait, and the daemon's checks see one
// consistent set. A state directory from before the configuration store has its
// volumes.json moved into it once, then renamed volumes.json.migrated.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { BrickInfo, RebalancePurpose, VolumeInfo } from '../../lib/mgmt/api.js';
import type { RebalanceMode, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import type { ConfigStore, StoreWatch } from './config-store.js';
import type { VolumeCredentials } from './volgen.js';
import { MgmtError } from './errors.js';

/** A brick as stored: BrickInfo plus the file-name-safe id of its volfile, pidfile and log. */
export interface BrickDef extends BrickInfo {
  id: string;
  /**
   * Stable number in the translator names (VOL-client-SLOT); absent on volumes stored
   * before add-brick existed, where it is the brick's index (volgen's slotOf).
   */
  slot?: number;
  /**
   * The peer UUID of the daemon that owns the brick: it alone checks, starts, stops and
   * adopts it. Absent on volumes stored before pools, where the brick is this host's when
   * its host names this machine.
   */
  peer?: string;
  /**
   * The volume id the directory carried when it was made a brick with --force (a brick of
   * another volume, likely deleted): the owner replaces that id, and only that one, with
   * this volume's at the brick's first start.
   */
  replaces?: string;
}

/** A host that runs its share of a rebalance: the daemon owning bricks of the volume. */
export interface RebalanceNodeDef {
  /** Its peer UUID (for bricks stored without an owner, "host:HOST"). */
  peer: string;
  /** The host as the volume's bricks name it. */
  host: string;
}

/**
 * The last rebalance run of a volume, as desired state: every node in `nodes` runs its
 * share while the volume is started, the run is not stopped and its layout is current.
 */
export interface RebalanceRun {
  /** Made at start; each node runs a run id once (absent on runs stored before runs had ids). */
  id?: string;
  purpose: RebalancePurpose;
  mode: RebalanceMode;
  throttle: RebalanceThrottle;
  /** The volume's layoutEpoch when the run started: a stopped run resumes only over the same layout. */
  layoutEpoch: number;
  startedAt: string;
  /** The hosts that run it, in brick order (absent on older runs: the daemon's own host alone). */
  nodes?: RebalanceNodeDef[];
  /** Set by `rebalance stop` (and what stops a run): every node stops its process. */
  stopped?: boolean;
}

/** A volume as stored. */
export interface VolumeDef extends Omit<VolumeInfo, 'bricks' | 'removing' | 'layoutEpoch'> {
  bricks: BrickDef[];
  /** Bumped by add-brick and remove-brick start; 0 when absent. */
  layoutEpoch?: number;
  /** One weight per distribute subvolume when their free space differs (volgen's layout-weights). */
  layoutWeights?: number[];
  /** A remove-brick in progress: ids of the bricks being drained. */
  removing?: { bricks: string[]; startedAt: string };
  /** Lowest slot a new brick may take: slots of removed bricks are never given again. */
  nextSlot?: number;
  rebalance?: RebalanceRun;
  /**
   * The volume's client and service credentials (made at create; at the first start of a
   * volume stored without them). Never part of VolumeInfo: only volfiles carry them.
   */
  auth?: VolumeCredentials;
  /**
   * Bumped by `volume start force`: a change every owner sees, so each one restarts its
   * bricks that are down (the store holds desired state, and "running" did not change).
   */
  startSeq?: number;
}

/** The volumes.json of state directories from before the configuration store. */
interface StoreFile {
  format: 1;
  volumes: VolumeDef[];
}

/** The key prefix of volume definitions in the configuration store. */
export const VOLUMES_PREFIX = '/brickfs/volumes/';

/** The configuration store's lock every volume change holds (glusterd's cluster-wide operation lock). */
export const OPERATION_LOCK = 'volume-ops';

/**
 * Writes a file so that readers see the old content or the new, never a mix (tmp + fsync +
 * rename), with the given mode (0600 for what holds credentials).
 */
export async function writeFileAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fsp.rm(tmp, { force: true });
  const fh = await fsp.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const dir = await fsp.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Where everything of one daemon lives under its state directory. */
export class StatePaths {
  constructor(readonly root: string) {}

  get volumesFile(): string { return path.join(this.root, 'volumes.json'); }
  get daemonPidfile(): string { return path.join(this.root, 'daemon.pid'); }
  /** This daemon's peer UUID (`UUID=...`, as glusterd.info). */
  get daemonInfo(): string { return path.join(this.root, 'daemon.info'); }
  /** Every log of the daemon and of the processes it starts is under here (logrotate's globs: docs/operations.md). */
  get logDir(): string { return path.join(this.root, 'logs'); }
  get brickLogDir(): string { return path.join(this.logDir, 'bricks'); }
  get daemonLog(): string { return path.join(this.logDir, 'daemon.log'); }
  volDir(vol: string): string { return path.join(this.root, 'vols', vol); }
  clientVolfile(vol: string): string { return path.join(this.volDir(vol), 'client.vol'); }
  /** The volfile of the daemon's own services (rebalance, heal), with the service credential. */
  serviceVolfile(vol: string): string { return path.join(this.volDir(vol), 'service.vol'); }
  brickVolfile(vol: string, b: BrickDef): string { return path.join(this.volDir(vol), 'bricks', `${b.id}.vol`); }
  brickPidfile(vol: string, b: BrickDef): string { return path.join(this.volDir(vol), 'run', `${b.id}.pid`); }
  brickLog(b: BrickDef): string { return path.join(this.brickLogDir, `${b.id}.log`); }
  rebalanceStatus(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'status.json'); }
  rebalanceCheckpoint(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'checkpoint'); }
  rebalancePidfile(vol: string): string { return path.join(this.volDir(vol), 'run', 'rebalance.pid'); }
  /** Which run this host's process was last started for (its id, mode and layout epoch). */
  rebalanceRun(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'run.json'); }
  /** The pass that marks directories settled after a run of several nodes: its status and pidfile. */
  rebalanceSettleStatus(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'settle-status.json'); }
  rebalanceSettlePidfile(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'settle.pid'); }
  rebalanceSettleCheckpoint(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'settle-checkpoint'); }
  rebalanceLog(vol: string): string { return path.join(this.root, 'logs', `rebalance-${vol}.log`); }
  /** The self-heal daemon of this host: what it heals, its pidfile, its log. */
  get shdConfig(): string { return path.join(this.root, 'shd', 'config.json'); }
  get shdPidfile(): string { return path.join(this.root, 'run', 'shd.pid'); }
  get shdLog(): string { return path.join(this.root, 'logs', 'shd.log'); }
}

/** A brick id as GlusterFS names brick pidfiles: host plus path with '/' as '-' (localhost-srv-b1). */
export function brickBaseId(host: string, brickPath: string): string {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe(host)}${brickPath.split('/').map(safe).join('-')}`;
}

/** Throws through bad() unless vol has the fields every stored volume has. */
function checkVolume(vol: VolumeDef, bad: (why: string) => never): void {
  if (typeof vol?.name !== 'string' || !Array.isArray(vol.bricks) || typeof vol.version !== 'number') bad(`bad volume entry ${JSON.stringify(vol?.name)}`);
  for (const b of vol.bricks) {
    if (typeof b?.host !== 'string' || typeof b.path !== 'string' || typeof b.port !== 'number' || typeof b.id !== 'string') bad(`bad brick in volume ${vol.name}`);
  }
}

function checkShape(v: unknown, file: string): StoreFile {
  const bad = (why: string): never => {
    throw new Error(`${file} is damaged (${why}); restore it from a backup or move it away to start with no volumes`);
  };
  const f = v as Partial<StoreFile> | null;
  if (!f || typeof f !== 'object' || f.format !== 1 || !Array.isArray(f.volumes)) bad('expected {"format": 1, "volumes": [...]}');
  for (const vol of f!.volumes!) checkVolume(vol, bad);
  return f as StoreFile;
}

/** Reads volumes.json, or undefined when there is none; a damaged one is an error saying what to do. */
async function readLegacyFile(file: string): Promise<VolumeDef[] | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); restore it from a backup or move it away to start with no volumes`);
  }
  return checkShape(parsed, file).volumes;
}

/** A stored definition; the revision is what the next change must still find. */
interface Held {
  def: VolumeDef;
  revision: number;
}

/** The persisted set of volume definitions. Callers serialise mutations (the daemon holds exclusive()). */
export class VolumeStore {
  private volumes = new Map<string, Held>();
  private watch?: StoreWatch;
  /** Told the name of each volume changed through the store (by any daemon, this one included). */
  private readonly listeners = new Set<(name: string) => void>();

  private constructor(readonly paths: StatePaths, private readonly config: ConfigStore) {}

  /**
   * Opens the volume store of a state directory over a configuration store (the caller's:
   * it closes it after close()). Moves the state directory's old volumes.json in first.
   */
  static async open(stateDir: string, config: ConfigStore): Promise<VolumeStore> {
    const paths = new StatePaths(path.resolve(stateDir));
    await fsp.mkdir(paths.root, { recursive: true });
    const store = new VolumeStore(paths, config);
    try {
      await store.migrate();
      // Another daemon sharing the store (etcd) may change a volume: keep the copy current.
      // Watching before listing: a change between the two is not missed.
      store.watch = await store.config.watch(VOLUMES_PREFIX, (e) => {
        const name = e.key.slice(VOLUMES_PREFIX.length);
        const held = store.volumes.get(name)?.revision ?? 0;
        if (held < e.revision) {
          if (e.value === undefined) store.volumes.delete(name);
          else {
            try {
              store.take(e.key, e.value, e.revision);
            } catch { /* not a definition: the copy held stays; put() will find the revision changed */ }
          }
        }
        // Told even when a reread got there first: owners of bricks act on what the store says.
        store.changed(name);
      }, () => {
        // Changes were lost (the watch started again from now): whatever differs is told.
        void store.resync().catch(() => undefined);
      });
      for (const kv of await store.config.list(VOLUMES_PREFIX)) {
        if ((store.volumes.get(kv.key.slice(VOLUMES_PREFIX.length))?.revision ?? 0) < kv.revision) store.take(kv.key, kv.value, kv.revision);
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** Calls fn with a volume's name whenever its definition changes in the store (created, changed, removed). */
  onChange(fn: (name: string) => void): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  private changed(name: string): void {
    for (const fn of [...this.listeners]) {
      try {
        fn(name);
      } catch { /* a listener's failure is its own */ }
    }
  }

  /** The store revision of the definition held (0 when there is none). */
  revisionOf(name: string): number {
    return this.volumes.get(name)?.revision ?? 0;
  }

  /** Moves the volumes of volumes.json into the configuration store (those it does not have yet), then renames the file. */
  private async migrate(): Promise<void> {
    const file = this.paths.volumesFile;
    const legacy = await readLegacyFile(file);
    if (legacy === undefined) return;
    for (const v of legacy) await this.config.putIf(VOLUMES_PREFIX + v.name, JSON.stringify(v), 0);
    // Kept, renamed: the old file is the backup of what was moved.
    await fsp.rename(file, `${file}.migrated`);
  }

  /** Takes a stored value into memory; a value that is not a volume definition is an error saying where. */
  private take(key: string, value: string, revision: number): void {
    const where = `volume definition ${key} in the configuration store`;
    const bad = (why: string): never => {
      throw new Error(`${where} is damaged (${why}); restore it from a backup or remove the key`);
    };
    let def: VolumeDef;
    try {
      def = JSON.parse(value) as VolumeDef;
    } catch (e) {
      return bad(`not JSON: ${(e as Error).message}`);
    }
    checkVolume(def, bad);
    if (VOLUMES_PREFIX + def.name !== key) bad(`it names volume ${JSON.stringify(def.name)}`);
    this.volumes.set(def.name, { def, revision });
  }

  /** All volumes, by name. */
  list(): VolumeDef[] {
    return [...this.volumes.values()].map((v) => structuredClone(v.def)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A copy of one volume: change it, then put() it back. */
  get(name: string): VolumeDef | undefined {
    const v = this.volumes.get(name);
    return v && structuredClone(v.def);
  }

  /**
   * Adds or replaces a volume; refused (409) when it was changed elsewhere since this daemon
   * read it. A new volume is put only if its key is absent (revision 0), so of two daemons
   * creating one name, one wins and the other is told the volume exists.
   */
  async put(vol: VolumeDef): Promise<void> {
    const key = VOLUMES_PREFIX + vol.name;
    const value = JSON.stringify(vol);
    const expected = this.volumes.get(vol.name)?.revision ?? 0;
    if (!(await this.config.putIf(key, value, expected))) {
      if (expected === 0) {
        void this.reread(vol.name).catch(() => undefined);
        throw new MgmtError(409, `volume ${vol.name} already exists (created through another management daemon meanwhile); choose another name, or look at \`brickfs volume info ${vol.name}\``);
      }
      throw this.changedElsewhere(vol.name);
    }
    await this.reread(vol.name);
  }

  /**
   * Runs fn holding the configuration store's cluster-wide operation lock (one volume change
   * at a time across every daemon sharing the store), after reading every definition again:
   * fn's checks see what the last holder wrote even when the watch has not told us yet.
   */
  async exclusive<T>(fn: () => Promise<T>, waitMs: number): Promise<T> {
    const lock = await this.config.lock(OPERATION_LOCK, waitMs);
    try {
      await this.sync();
      return await fn();
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  /** Reads every definition from the configuration store into memory (the store's word wins). */
  async sync(): Promise<void> {
    const stored = await this.config.list(VOLUMES_PREFIX);
    const names = new Set<string>();
    for (const kv of stored) {
      const name = kv.key.slice(VOLUMES_PREFIX.length);
      names.add(name);
      if ((this.volumes.get(name)?.revision ?? 0) < kv.revision) this.take(kv.key, kv.value, kv.revision);
    }
    for (const name of [...this.volumes.keys()]) if (!names.has(name)) this.volumes.delete(name);
  }

  /**
   * Reads every definition again and tells onChange listeners of each one that differs from
   * the copy held (created, changed or removed meanwhile): how a daemon catches up with
   * changes its watch may not have delivered, after being cut off from the store.
   */
  async resync(): Promise<void> {
    const before = new Map([...this.volumes].map(([name, h]) => [name, h.revision]));
    await this.sync();
    const names = new Set([...before.keys(), ...this.volumes.keys()]);
    for (const name of names) if (before.get(name) !== this.volumes.get(name)?.revision) this.changed(name);
  }

  /** Removes a volume; refused (409) when it was changed elsewhere since this daemon read it. */
  async remove(name: string): Promise<void> {
    const cur = this.volumes.get(name);
    if (!cur) return;
    if (!(await this.config.removeIf(VOLUMES_PREFIX + name, cur.revision))) throw this.changedElsewhere(name);
    this.volumes.delete(name);
  }

  /** After a change of ours: the stored value and its revision (the watch may not have said yet). */
  private async reread(name: string): Promise<void> {
    const kv = await this.config.get(VOLUMES_PREFIX + name);
    if (!kv) this.volumes.delete(name);
    else if ((this.volumes.get(name)?.revision ?? 0) < kv.revision) this.take(kv.key, kv.value, kv.revision);
  }

  private changedElsewhere(name: string): MgmtError {
    void this.reread(name).catch(() => undefined);
    return new MgmtError(409, `volume ${name} was changed by another management daemon meanwhile; nothing was changed here: look at \`brickfs volume info ${name}\` and try again`);
  }

  /** Returns a brick id not used by any volume, derived from host and path. */
  uniqueBrickId(host: string, brickPath: string, alsoTaken: ReadonlySet<string> = new Set()): string {
    const taken = new Set(alsoTaken);
    for (const v of this.volumes.values()) for (const b of v.def.bricks) taken.add(b.id);
    const base = brickBaseId(host, brickPath);
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
    return id;
  }

  /** Stops following changes made elsewhere. */
  async close(): Promise<void> {
    await this.watch?.close();
    this.watch = undefined;
  }
}

/** The public view of a stored volume: brick ids, slots and the daemon's bookkeeping stay inside. */
export function toVolumeInfo(v: VolumeDef): VolumeInfo {
  const brick = ({ host, path: p, port }: BrickDef): BrickInfo => ({ host, path: p, port });
  const byId = new Map(v.bricks.map((b) => [b.id, b]));
  return {
    name: v.name,
    id: v.id,
    type: v.type,
    status: v.status,
    version: v.version,
    bricks: v.bricks.map(brick),
    ...(v.stripeCount === undefined ? {} : { stripeCount: v.stripeCount }),
    ...(v.replicaCount === undefined ? {} : { replicaCount: v.replicaCount }),
    ...((v.layoutEpoch ?? 0) > 0 ? { layoutEpoch: v.layoutEpoch } : {}),
    ...(v.layoutWeights === undefined ? {} : { layoutWeights: [...v.layoutWeights] }),
    ...(v.removing === undefined ? {} : {
      removing: {
        bricks: v.removing.bricks.flatMap((id) => { const b = byId.get(id); return b ? [brick(b)] : []; }),
        startedAt: v.removing.startedAt,
      },
    }),
    options: { ...v.options },
    createdAt: v.createdAt,
  };
}
