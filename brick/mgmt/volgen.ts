// Volfile generation (GlusterFS's glusterd-volgen): a volume definition in, volfile text
// out. Pure functions: no I/O, so the output is easy to test and to diff.
import type { BrickInfo, VolumeType } from '../../lib/mgmt/api.js';
import { TRANSLATOR_SWITCH, VOLUME_OPTIONS } from '../../lib/mgmt/volume-options.js';
import { parseOptions, type OptionValue } from '../../lib/options.js';
import { formatVolfile, type VolumeDecl } from '../../lib/volfile/parse.js';

/** One `volume ... end-volume` block to generate. */
export type Decl = Pick<VolumeDecl, 'name' | 'type' | 'options' | 'subvolumes'>;

/** A brick as volgen sees it: where it listens, plus its stable slot number. */
export interface VolgenBrick extends BrickInfo {
  /**
   * Stable number naming the brick's translators (VOL-client-SLOT); absent on volumes
   * stored before slots existed, where it is the brick's index. Slots survive a
   * remove-brick, because DHT link files name the subvolume that holds the data.
   */
  slot?: number;
  /** The daemon's id of the brick (what `removing` lists). */
  id?: string;
}

/**
 * A volume's credentials, made by the daemon at create (GlusterFS's auth.login username and
 * password): the client one goes into the client volfile every mount gets, the service one
 * only into the volfiles of the daemon's own processes (rebalance, heal), and both into the
 * brick volfiles. docs/security.md says what each allows.
 */
export interface VolumeCredentials {
  username: string;
  password: string;
  serviceUsername: string;
  servicePassword: string;
}

/** Whose volfile a client graph is: a mount's (the client credential) or the daemon's own services' (the service credential). */
export type ClientRole = 'client' | 'service';

/** What volgen needs of a volume. */
export interface VolgenInput {
  name: string;
  /** The volume's UUID: bricks carry it on their root (storage/posix volume-id), clients name it in their hello. */
  id?: string;
  /** Absent on volumes made before credentials (their bricks trust every client until they are given some). */
  auth?: VolumeCredentials;
  version?: number;
  bricks: readonly VolgenBrick[];
  /** `volume set` options (keys of VOLUME_OPTIONS). */
  options: Readonly<Record<string, string>>;
  /** Bricks per stripe set; absent for a plain distribute volume. */
  stripeCount?: number;
  /** Bricks per replica set; absent for an unreplicated volume. */
  replicaCount?: number;
  /** Bumped whenever the set of distribute subvolumes or their weights change (add-brick, remove-brick start). */
  layoutEpoch?: number;
  /** One weight per distribute subvolume (free GiB) when their free space differs; absent otherwise. */
  layoutWeights?: readonly number[];
  /** A remove-brick in progress: the ids of the bricks being drained. */
  removing?: { readonly bricks: readonly string[] };
}

/** The slot of the brick at index i (its index on volumes stored before slots). */
export function slotOf(b: VolgenBrick, i: number): number {
  return b.slot ?? i;
}

/** Bricks per distribute subvolume: replica count x stripe count (1 for plain distribute). */
export function setWidth(vol: Pick<VolgenInput, 'stripeCount' | 'replicaCount'>): number {
  return (vol.replicaCount ?? 1) * (vol.stripeCount ?? 1);
}

/** One child of cluster/distribute: its translator name and the indices of its bricks. */
export interface DistributeUnit {
  name: string;
  bricks: number[];
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

/**
 * The volume options that land on translators of the given type, under their translator
 * names: those set, then the context-dependent defaults (a schema's `defaultWhen`) of those not
 * set whose condition holds. md-cache, nl-cache and readdir-ahead declare longer defaults
 * while features.cache-invalidation is on (their schemas say why); without it the
 * translators' own defaults apply, so volgen writes nothing.
 */
function optionsFor(vol: VolgenInput, xlatorType: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(vol.options)) {
    const def = VOLUME_OPTIONS[key];
    // An empty value (`volume set VOL performance.cache-priority ""`) is the default: a volfile line cannot carry it.
    if (def && def.xlator === xlatorType && def.key !== TRANSLATOR_SWITCH && value !== '') out[def.key] = value;
  }
  for (const def of Object.values(VOLUME_OPTIONS)) {
    const when = def.defaultWhen;
    if (def.xlator !== xlatorType || !when || def.key in out) continue;
    if (valueInEffect(vol, when.key) === when.is) out[def.key] = String(when.default);
  }
  return out;
}

/** A volume option's value as the translators get it: the value set, else the schema's default. */
export function valueInEffect(vol: VolgenInput, key: string): OptionValue | undefined {
  const spec = VOLUME_OPTIONS[key]?.spec;
  if (!spec) return undefined;
  const raw = vol.options[key];
  if (raw !== undefined && raw !== '') {
    try {
      return parseOptions({ [key]: spec }, { [key]: raw })[key];
    } catch {
      // Stored before the key's bounds changed: the translator's default, as for a volfile.
    }
  }
  return spec.default;
}

/** Whether a performance translator is in the client graph: its on/off volume option, else its schema's default. */
function translatorOn(vol: VolgenInput, xlatorType: string): boolean {
  const sw = Object.entries(VOLUME_OPTIONS).find(([, def]) => def.xlator === xlatorType && def.key === TRANSLATOR_SWITCH);
  return sw !== undefined && valueInEffect(vol, sw[0]) === true;
}

/**
 * The address a brick listens on: its host's, as the brick spec names it, never every
 * address (a brick on localhost is not reachable from the network). An address is used as
 * it is, localhost is 127.0.0.1 (the address clients of a localhost brick reach), and a
 * host name is resolved by the brick process when it listens (its first address).
 */
export function listenHostFor(host: string): string {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return '127.0.0.1';
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** A translator of the client graph with the bricks below it. */
interface Unit {
  decl: Decl;
  bricks: number[];
}

/**
 * Groups consecutive units n by n under one translator each (replica or stripe sets). A set
 * is named after the slot of its first brick divided by the bricks per set, so a fresh
 * volume has VOL-replicate-0, -1... and the names of the sets that stay do not change when
 * a remove-brick takes sets out.
 */
function sets(vol: VolgenInput, under: Unit[], n: number, kind: 'replicate' | 'stripe', type: string): Unit[] {
  if (!Number.isInteger(n) || n < 2 || under.length % n !== 0) {
    throw new RangeError(`volume ${vol.name}: ${under.length} subvolumes do not make ${kind} sets of ${n}`);
  }
  const opts = optionsFor(vol, type);
  const out: Unit[] = [];
  for (let k = 0; k * n < under.length; k++) {
    const members = under.slice(k * n, (k + 1) * n);
    const bricks = members.flatMap((m) => m.bricks);
    const first = bricks[0]!;
    const name = `${vol.name}-${kind}-${Math.floor(slotOf(vol.bricks[first]!, first) / bricks.length)}`;
    out.push({ decl: { name, type, options: { ...opts }, subvolumes: members.map((m) => m.decl.name) }, bricks });
  }
  return out;
}

/**
 * What protocol/client says in its hello: the volume id and the role's credential. The
 * services (self-heal, rebalance, heal) work below the caches, so they ask for no pushes.
 */
function helloOptions(vol: VolgenInput, role: ClientRole): Record<string, string> {
  const out: Record<string, string> = vol.id ? { 'volume-id': vol.id } : {};
  if (role === 'service') out.invalidations = 'off';
  if (vol.auth) {
    out.username = role === 'service' ? vol.auth.serviceUsername : vol.auth.username;
    out.password = role === 'service' ? vol.auth.servicePassword : vol.auth.password;
  }
  return out;
}

/** The protocol/client translators and the units cluster/distribute (if any) spreads files over. */
function build(vol: VolgenInput, role: ClientRole = 'client'): { decls: Decl[]; units: Unit[]; distribute: boolean } {
  const clientOpts = { ...optionsFor(vol, 'protocol/client'), ...helloOptions(vol, role) };
  const clients: Unit[] = vol.bricks.map((b, i) => ({
    decl: {
      name: `${vol.name}-client-${slotOf(b, i)}`,
      type: 'protocol/client',
      options: {
        'remote-host': b.host,
        'remote-port': String(b.port),
        'remote-subvolume': b.path,
        ...clientOpts,
      },
      subvolumes: [],
    },
    bricks: [i],
  }));
  const decls = clients.map((c) => c.decl);
  let units = clients;
  if (vol.replicaCount !== undefined) {
    units = sets(vol, units, vol.replicaCount, 'replicate', 'cluster/replicate');
    decls.push(...units.map((u) => u.decl));
  }
  if (vol.stripeCount !== undefined) {
    units = sets(vol, units, vol.stripeCount, 'stripe', 'cluster/stripe');
    decls.push(...units.map((u) => u.decl));
  }
  const names = new Set<string>();
  for (const d of decls) {
    if (names.has(d.name)) throw new RangeError(`volume ${vol.name}: two translators would be named ${d.name} (brick slots overlap)`);
    names.add(d.name);
  }
  // Plain distribute keeps its DHT even over one brick (a volume grows by add-brick); a
  // volume whose layout ever changed keeps it too, so link files stay hidden and followed.
  const distribute = units.length > 1 || (vol.replicaCount === undefined && vol.stripeCount === undefined) || (vol.layoutEpoch ?? 0) > 0;
  return { decls, units, distribute };
}

/** The children of cluster/distribute in order, with their bricks (one unit when there is no distribute). */
export function distributeUnits(vol: VolgenInput): DistributeUnit[] {
  return build(vol).units.map((u) => ({ name: u.decl.name, bricks: u.bricks }));
}

/** The layout options of cluster/distribute; each only when it differs from the translator's default. */
function layoutOptions(vol: VolgenInput, units: readonly Unit[]): Record<string, string> {
  const out: Record<string, string> = {};
  if ((vol.layoutEpoch ?? 0) > 0) out['layout-epoch'] = String(vol.layoutEpoch);
  if (vol.layoutWeights !== undefined) {
    const w = vol.layoutWeights;
    if (w.length !== units.length || !w.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw new RangeError(`volume ${vol.name}: ${w.length} layout weights (${w.join(',')}) for ${units.length} distribute subvolumes`);
    }
    out['layout-weights'] = w.join(',');
  }
  if (vol.removing && vol.removing.bricks.length > 0) {
    const gone = new Set(vol.removing.bricks);
    const names = units.filter((u) => u.bricks.every((i) => gone.has(vol.bricks[i]!.id ?? ''))).map((u) => u.decl.name);
    if (names.length > 0) out['decommissioned-bricks'] = names.join(',');
  }
  return out;
}

/**
 * The client graph, bottom up: one protocol/client per brick (VOL-client-SLOT); with a
 * replica count, one cluster/replicate per N consecutive bricks (VOL-replicate-K); with a
 * stripe count, one cluster/stripe per N consecutive units below (bricks, or replica sets:
 * "stripe 2 replica 2 b1 b2 b3 b4" stripes over the pairs b1+b2 and b3+b4); cluster/distribute
 * over what is left when that is more than one unit, with the layout options (epoch, weights,
 * bricks being drained); then the performance translators that are on (quick-read, open-behind,
 * write-behind, io-cache, read-ahead, nl-cache, readdir-ahead, md-cache: `volume set performance.X on|off`).
 */
export function clientGraph(vol: VolgenInput, role: ClientRole = 'client'): Decl[] {
  const { decls, units, distribute } = build(vol, role);
  const out: Decl[] = [...decls];
  if (distribute) {
    out.push({
      name: `${vol.name}-dht`,
      type: 'cluster/distribute',
      options: { ...optionsFor(vol, 'cluster/distribute'), ...layoutOptions(vol, units) },
      subvolumes: units.map((u) => u.decl.name),
    });
  }
  // Performance translators, bottom up, each when switched on (GlusterFS's order: quick-read
  // and open-behind just above the cluster translators, write-behind above them, then
  // read-ahead, md-cache on top). quick-read is below open-behind: it answers open-behind's
  // reads by path from the content its lookups fetched.
  // io-cache goes below read-ahead, not above it as in GlusterFS: what it keeps must come
  // from the bricks, never from a read-ahead page that may predate the attributes it is
  // validated by (docs/performance.md, "io-cache").
  // readdir-ahead sits above nl-cache, so its prefetches teach nl-cache a directory's names at
  // the time they were read, and below md-cache, which keeps the attributes of what it serves.
  const performance = [
    ['performance/quick-read', 'quick-read'], ['performance/open-behind', 'open-behind'], ['performance/write-behind', 'write-behind'],
    ['performance/io-cache', 'io-cache'], ['performance/read-ahead', 'read-ahead'],
    ['performance/nl-cache', 'nl-cache'], ['performance/readdir-ahead', 'readdir-ahead'], ['performance/md-cache', 'md-cache'],
  ] as const;
  for (const [type, suffix] of performance) {
    if (!translatorOn(vol, type)) continue;
    out.push({ name: `${vol.name}-${suffix}`, type, options: optionsFor(vol, type), subvolumes: [out.at(-1)!.name] });
  }
  // On top, so that it sees the graph's every fop (it turns the process's tracing on; docs/operations.md).
  if (translatorOn(vol, 'debug/trace')) out.push({ name: `${vol.name}-trace`, type: 'debug/trace', options: optionsFor(vol, 'debug/trace'), subvolumes: [out.at(-1)!.name] });
  return out;
}

/** Whether the bricks push invalidations (features.cache-invalidation, on unless set off). */
function invalidationOn(vol: VolgenInput): boolean {
  return valueInEffect(vol, 'features.cache-invalidation') !== false;
}

/**
 * The brick graph: storage/posix (with the volume id and the storage.* options) → features/locks (named by the
 * brick path) → protocol/server (with the volume id and credentials clients must say in their hello).
 * cache-invalidation is written out either way, so a brick volfile shows whether the brick
 * pushes invalidations (on unless `volume set VOL features.cache-invalidation off`).
 */
export function brickGraph(vol: VolgenInput, brick: BrickInfo): Decl[] {
  const posix = `${vol.name}-posix`;
  const serverOpts = optionsFor(vol, 'protocol/server');
  const invalidation = invalidationOn(vol) ? 'on' : 'off';
  return [
    { name: posix, type: 'storage/posix', options: { directory: brick.path, ...(vol.id ? { 'volume-id': vol.id } : {}), ...optionsFor(vol, 'storage/posix') }, subvolumes: [] },
    // Clients ask for this name (remote-subvolume), so it is the brick path, as in GlusterFS.
    { name: brick.path, type: 'features/locks', options: {}, subvolumes: [posix] },
    {
      name: `${vol.name}-server`,
      type: 'protocol/server',
      options: { 'listen-port': String(brick.port), 'listen-host': listenHostFor(brick.host), ...serverOpts, 'cache-invalidation': invalidation, ...loginOptions(vol), ...traceOptions(vol) },
      subvolumes: [brick.path],
    },
  ];
}

/**
 * diagnostics.trace on the bricks: debug/trace's keys written into protocol/server, which
 * continues the traces requests carry. Not a translator of its own there: a brick applies
 * options without a restart, not a change of its graph.
 */
function traceOptions(vol: VolgenInput): Record<string, string> {
  if (!translatorOn(vol, 'debug/trace')) return {};
  const endpoint = optionsFor(vol, 'debug/trace')['endpoint'];
  return { trace: 'on', ...(endpoint ? { 'trace-endpoint': endpoint } : {}) };
}

/** protocol/server's side of the hello: the volume id clients must name, and the two credentials. */
function loginOptions(vol: VolgenInput): Record<string, string> {
  const out: Record<string, string> = vol.id ? { 'volume-id': vol.id } : {};
  if (vol.auth) {
    out['auth-username'] = vol.auth.username;
    out['auth-password'] = vol.auth.password;
    out['service-username'] = vol.auth.serviceUsername;
    out['service-password'] = vol.auth.servicePassword;
  }
  return out;
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

/** The volfile of the daemon's own services (rebalance, heal): the client graph with the service credential. Never served. */
export function serviceVolfile(vol: VolgenInput): string {
  return header(vol, 'Service volfile') + formatVolfile(clientGraph(vol, 'service'));
}

/** The volfile text of one brick process. */
export function brickVolfile(vol: VolgenInput, brick: BrickInfo): string {
  return header(vol, `Brick ${brick.host}:${brick.path}`) + formatVolfile(brickGraph(vol, brick));
}
