// Volfile generation (GlusterFS's glusterd-volgen): a volume definition in, volfile text
// out. Pure functions: no I/O, so the output is easy to test and to diff.
import type { BrickInfo, VolumeType } from '../../lib/mgmt/api.js';
import { VOLUME_OPTIONS } from '../../lib/mgmt/volume-options.js';
import { formatVolfile, type VolumeDecl } from '../../lib/volfile/parse.js';

/** One `volume ... end-volume` block to generate. */
export type Decl = Pick<VolumeDecl, 'name' | 'type' | 'options' | 'subvolumes'>;

/** What volgen needs of a volume. */
export interface VolgenInput {
  name: string;
  version?: number;
  bricks: readonly BrickInfo[];
  /** `volume set` options (keys of VOLUME_OPTIONS). */
  options: Readonly<Record<string, string>>;
  /** Bricks per stripe set; absent for a plain distribute volume. */
  stripeCount?: number;
  /** Bricks per replica set; absent for an unreplicated volume. */
  replicaCount?: number;
}

/** The volume type a brick list and stripe count make (GlusterFS's names). */
export function volumeType(vol: Pick<VolgenInput, 'bricks' | 'stripeCount' | 'replicaCount'>): VolumeType {
  const r = vol.replicaCount ?? 1;
  const s = vol.stripeCount ?? 1;
  const distributed = vol.bricks.length > r * s;
  if (r === 1 && s === 1) return 'distribute';
  const shape = s > 1 && r > 1 ? 'striped-replicate' : s > 1 ? 'stripe' : 'replicate';
  return (distributed ? `distributed-${shape}` : shape) as VolumeType;
}

/** The volume options that land on translators of the given type, under their translator names. */
function optionsFor(vol: VolgenInput, xlatorType: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(vol.options)) {
    const def = VOLUME_OPTIONS[key];
    if (def && def.xlator === xlatorType) out[def.key] = value;
  }
  return out;
}

/** The address a brick listens on: every IPv4 address, or every address for an IPv6 brick host. */
export function listenHostFor(host: string): string {
  return host.includes(':') ? '::' : '0.0.0.0';
}

/** Groups consecutive subvolumes n by n under one translator each (replica or stripe sets). */
function sets(vol: VolgenInput, under: Decl[], n: number, kind: 'replicate' | 'stripe', type: string): Decl[] {
  if (!Number.isInteger(n) || n < 2 || under.length % n !== 0) {
    throw new RangeError(`volume ${vol.name}: ${under.length} subvolumes do not make ${kind} sets of ${n}`);
  }
  const opts = optionsFor(vol, type);
  const out: Decl[] = [];
  for (let k = 0; k * n < under.length; k++) {
    out.push({ name: `${vol.name}-${kind}-${k}`, type, options: { ...opts }, subvolumes: under.slice(k * n, (k + 1) * n).map((d) => d.name) });
  }
  return out;
}

/**
 * The client graph, bottom up: one protocol/client per brick; with a replica count, one
 * cluster/replicate per N consecutive bricks (VOL-replicate-K); with a stripe count, one
 * cluster/stripe per N consecutive units below (bricks, or replica sets: "stripe 2 replica
 * 2 b1 b2 b3 b4" stripes over the pairs b1+b2 and b3+b4); cluster/distribute over what is
 * left when that is more than one unit; performance/md-cache on top.
 */
export function clientGraph(vol: VolgenInput): Decl[] {
  const clientOpts = optionsFor(vol, 'protocol/client');
  const clients: Decl[] = vol.bricks.map((b, i) => ({
    name: `${vol.name}-client-${i}`,
    type: 'protocol/client',
    options: {
      'remote-host': b.host,
      'remote-port': String(b.port),
      'remote-subvolume': b.path,
      ...clientOpts,
    },
    subvolumes: [],
  }));
  const out: Decl[] = [...clients];
  let units = clients;
  if (vol.replicaCount !== undefined) {
    units = sets(vol, units, vol.replicaCount, 'replicate', 'cluster/replicate');
    out.push(...units);
  }
  if (vol.stripeCount !== undefined) {
    units = sets(vol, units, vol.stripeCount, 'stripe', 'cluster/stripe');
    out.push(...units);
  }
  // Plain distribute keeps its DHT even over one brick (a volume grows by add-brick).
  if (units.length > 1 || (vol.replicaCount === undefined && vol.stripeCount === undefined)) {
    out.push({ name: `${vol.name}-dht`, type: 'cluster/distribute', options: optionsFor(vol, 'cluster/distribute'), subvolumes: units.map((u) => u.name) });
  }
  out.push({ name: `${vol.name}-md-cache`, type: 'performance/md-cache', options: optionsFor(vol, 'performance/md-cache'), subvolumes: [out.at(-1)!.name] });
  return out;
}

/** The brick graph: storage/posix → features/locks (named by the brick path) → protocol/server. */
export function brickGraph(vol: VolgenInput, brick: BrickInfo): Decl[] {
  const posix = `${vol.name}-posix`;
  return [
    { name: posix, type: 'storage/posix', options: { directory: brick.path }, subvolumes: [] },
    // Clients ask for this name (remote-subvolume), so it is the brick path, as in GlusterFS.
    { name: brick.path, type: 'features/locks', options: {}, subvolumes: [posix] },
    {
      name: `${vol.name}-server`,
      type: 'protocol/server',
      options: { 'listen-port': String(brick.port), 'listen-host': listenHostFor(brick.host) },
      subvolumes: [brick.path],
    },
  ];
}

function header(vol: VolgenInput, what: string): string {
  const version = vol.version === undefined ? '' : `, version ${vol.version}`;
  return `# ${what} of volume ${vol.name}${version}, generated by the brickfs management daemon.\n` +
    '# Change the volume with `brickfs volume set`: edits here are overwritten.\n';
}

/** The client volfile text (what `brickfs volume volfile` prints and mounts load). */
export function clientVolfile(vol: VolgenInput): string {
  return header(vol, 'Client volfile') + formatVolfile(clientGraph(vol));
}

/** The volfile text of one brick process. */
export function brickVolfile(vol: VolgenInput, brick: BrickInfo): string {
  return header(vol, `Brick ${brick.host}:${brick.path}`) + formatVolfile(brickGraph(vol, brick));
}
