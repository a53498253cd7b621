// The volume store: every volume definition in STATE/volumes.json, rewritten whole and
// atomically on each change (a crash leaves the old file or the new one, never half).
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { BrickInfo, RebalancePurpose, VolumeInfo } from '../../lib/mgmt/api.js';
import type { RebalanceMode, RebalanceThrottle } from '../../lib/mgmt/rebalance.js';

/** A brick as stored: BrickInfo plus the file-name-safe id of its volfile, pidfile and log. */
export interface BrickDef extends BrickInfo {
  id: string;
  /**
   * Stable number in the translator names (VOL-client-SLOT); absent on volumes stored
   * before add-brick existed, where it is the brick's index (volgen's slotOf).
   */
  slot?: number;
}

/** The last rebalance run the daemon started on a volume (to decide whether a new one resumes it). */
export interface RebalanceRun {
  purpose: RebalancePurpose;
  mode: RebalanceMode;
  throttle: RebalanceThrottle;
  /** The volume's layoutEpoch when the run started: a stopped run resumes only over the same layout. */
  layoutEpoch: number;
  startedAt: string;
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
}

interface StoreFile {
  format: 1;
  volumes: VolumeDef[];
}

/** Writes a file so that readers see the old content or the new, never a mix (tmp + fsync + rename). */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fsp.open(tmp, 'w', 0o644);
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
  get daemonLog(): string { return path.join(this.root, 'logs', 'daemon.log'); }
  volDir(vol: string): string { return path.join(this.root, 'vols', vol); }
  clientVolfile(vol: string): string { return path.join(this.volDir(vol), 'client.vol'); }
  brickVolfile(vol: string, b: BrickDef): string { return path.join(this.volDir(vol), 'bricks', `${b.id}.vol`); }
  brickPidfile(vol: string, b: BrickDef): string { return path.join(this.volDir(vol), 'run', `${b.id}.pid`); }
  brickLog(b: BrickDef): string { return path.join(this.root, 'logs', 'bricks', `${b.id}.log`); }
  rebalanceStatus(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'status.json'); }
  rebalanceCheckpoint(vol: string): string { return path.join(this.volDir(vol), 'rebalance', 'checkpoint'); }
  rebalancePidfile(vol: string): string { return path.join(this.volDir(vol), 'run', 'rebalance.pid'); }
  rebalanceLog(vol: string): string { return path.join(this.root, 'logs', `rebalance-${vol}.log`); }
}

/** A brick id as GlusterFS names brick pidfiles: host plus path with '/' as '-' (localhost-srv-b1). */
export function brickBaseId(host: string, brickPath: string): string {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe(host)}${brickPath.split('/').map(safe).join('-')}`;
}

function checkShape(v: unknown, file: string): StoreFile {
  const bad = (why: string): never => {
    throw new Error(`${file} is damaged (${why}); restore it from a backup or move it away to start with no volumes`);
  };
  const f = v as Partial<StoreFile> | null;
  if (!f || typeof f !== 'object' || f.format !== 1 || !Array.isArray(f.volumes)) bad('expected {"format": 1, "volumes": [...]}');
  for (const vol of f!.volumes!) {
    if (typeof vol?.name !== 'string' || !Array.isArray(vol.bricks) || typeof vol.version !== 'number') bad(`bad volume entry ${JSON.stringify(vol?.name)}`);
    for (const b of vol.bricks) {
      if (typeof b?.host !== 'string' || typeof b.path !== 'string' || typeof b.port !== 'number' || typeof b.id !== 'string') bad(`bad brick in volume ${vol.name}`);
    }
  }
  return f as StoreFile;
}

/** The persisted set of volume definitions. Callers serialise mutations (the daemon holds a lock). */
export class VolumeStore {
  private volumes = new Map<string, VolumeDef>();

  private constructor(readonly paths: StatePaths) {}

  /** Opens (creating if needed) the state directory and loads volumes.json. */
  static async open(stateDir: string): Promise<VolumeStore> {
    const store = new VolumeStore(new StatePaths(path.resolve(stateDir)));
    await fsp.mkdir(store.paths.root, { recursive: true });
    let text: string | undefined;
    try {
      text = await fsp.readFile(store.paths.volumesFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new Error(`${store.paths.volumesFile} is not valid JSON (${(e as Error).message}); restore it from a backup or move it away to start with no volumes`);
      }
      for (const v of checkShape(parsed, store.paths.volumesFile).volumes) store.volumes.set(v.name, v);
    }
    return store;
  }

  /** All volumes, by name. */
  list(): VolumeDef[] {
    return [...this.volumes.values()].map((v) => structuredClone(v)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A copy of one volume: change it, then put() it back. */
  get(name: string): VolumeDef | undefined {
    const v = this.volumes.get(name);
    return v && structuredClone(v);
  }

  /** Adds or replaces a volume and persists the store. */
  async put(vol: VolumeDef): Promise<void> {
    const next = new Map(this.volumes);
    next.set(vol.name, structuredClone(vol));
    await this.persist(next);
  }

  /** Removes a volume and persists the store. */
  async remove(name: string): Promise<void> {
    const next = new Map(this.volumes);
    next.delete(name);
    await this.persist(next);
  }

  /** Returns a brick id not used by any volume, derived from host and path. */
  uniqueBrickId(host: string, brickPath: string, alsoTaken: ReadonlySet<string> = new Set()): string {
    const taken = new Set(alsoTaken);
    for (const v of this.volumes.values()) for (const b of v.bricks) taken.add(b.id);
    const base = brickBaseId(host, brickPath);
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
    return id;
  }

  private async persist(next: Map<string, VolumeDef>): Promise<void> {
    const file: StoreFile = { format: 1, volumes: [...next.values()].sort((a, b) => a.name.localeCompare(b.name)) };
    await writeFileAtomic(this.paths.volumesFile, `${JSON.stringify(file, null, 2)}\n`);
    // Only once it is on disk: memory never runs ahead of what a restart would see.
    this.volumes = next;
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
