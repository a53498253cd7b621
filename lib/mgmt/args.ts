// Validation of what users type for volumes, shared by the CLI (to answer exit 2 before
// calling the daemon) and the daemon (which trusts no client).
import path from 'node:path';
import { UsageError } from '../errors.js';
import { nearest } from '../nearest.js';
import { OptionError, parseOptions } from '../options.js';
import { REBALANCE_THROTTLES, type RebalanceThrottle } from './rebalance.js';
import { VOLUME_OPTIONS } from './volume-options.js';

/** A brick as typed: HOST[:PORT]:/abs/path. */
export interface BrickSpec {
  host: string;
  /** Only when the user chose it; otherwise the daemon assigns one. */
  port?: number;
  path: string;
}

/** A parsed `volume create` request (what the CLI sends to the daemon). */
export interface CreateRequest {
  name: string;
  /** Bricks in the user's order, normalised to HOST[:PORT]:/abs/path. */
  bricks: string[];
  replica?: number;
  stripe?: number;
  force?: boolean;
}

/** A parsed `volume add-brick` request (POST /v1/volumes/:name/add-brick). */
export interface AddBrickRequest {
  /** New bricks in the user's order, normalised to HOST[:PORT]:/abs/path. */
  bricks: string[];
  /** Only the volume's current replica count is accepted (changing it is not supported yet). */
  replica?: number;
  force?: boolean;
}

/** A `volume remove-brick` request (POST /v1/volumes/:name/remove-brick/{start,commit,stop}). */
export interface RemoveBrickRequest {
  /** Bricks of the volume, HOST[:PORT]:/abs/path. */
  bricks: string[];
  /** commit only: commit although the drain has not completed. */
  force?: boolean;
  /** start only: how hard the drain pushes (default normal). */
  throttle?: RebalanceThrottle;
}

export type RemoveBrickAction = 'start' | 'status' | 'commit' | 'stop';
export type RebalanceAction = 'start' | 'status' | 'stop';

export const VOLUME_NAME_MAX = 64;
const CREATE_EXAMPLE = 'brickfs volume create demo localhost:/srv/brick1 localhost:/srv/brick2';

/** Throws a UsageError unless name is a valid volume name ([A-Za-z0-9_-]+, not starting with '-'). */
export function validateVolumeName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(name) || name.length > VOLUME_NAME_MAX) {
    throw new UsageError(
      `"${name}" is not a valid volume name: use letters, digits, '_' and '-' (not first), ` +
      `at most ${VOLUME_NAME_MAX} characters; for example: ${CREATE_EXAMPLE}`,
    );
  }
}

/** Parses the host part of a brick: "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address. */
function parseHostPart(hostPart: string, whole: string): { host: string; port?: number } {
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPart);
  const colons = hostPart.split(':').length - 1;
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2];
  } else if (colons === 1) {
    [host, port] = hostPart.split(':') as [string, string];
    if (!/^\d+$/.test(port)) throw new UsageError(`brick "${whole}": "${port}" is not a port number (HOST[:PORT]:/abs/path)`);
  } else {
    // No colon, or several: a bare IPv6 address cannot carry a port (use [addr]:port).
    host = hostPart;
  }
  if (!host || !/^[A-Za-z0-9.:%_-]+$/.test(host)) {
    throw new UsageError(`brick "${whole}": "${host}" is not a host name or address; for example: localhost:/srv/brick1`);
  }
  if (port === undefined) return { host };
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`brick "${whole}": port ${port} is out of range (1-65535)`);
  return { host, port: n };
}

/** Parses HOST[:PORT]:/abs/path; a relative or missing path is a UsageError with an example. */
export function parseBrickSpec(s: string): BrickSpec {
  const i = s.indexOf(':/');
  if (i < 0) {
    if (s.startsWith('/')) throw new UsageError(`brick "${s}" has no host; write HOST:/abs/path, for example: localhost:${s}`);
    const j = s.lastIndexOf(':');
    if (j > 0 && j < s.length - 1) {
      throw new UsageError(
        `brick "${s}": the brick path "${s.slice(j + 1)}" is not absolute; write HOST:/abs/path, ` +
        `for example: ${s.slice(0, j)}:${path.resolve(s.slice(j + 1))}`,
      );
    }
    throw new UsageError(`"${s}" is not a brick; write HOST:/abs/path, for example: localhost:/srv/brick1`);
  }
  if (i === 0) throw new UsageError(`brick "${s}" has no host; write HOST:/abs/path, for example: localhost${s}`);
  const { host, port } = parseHostPart(s.slice(0, i), s);
  const raw = s.slice(i + 1);
  // Volfile syntax splits on whitespace and '#' starts a comment; the path is a volume name there.
  if (/[\s#]/.test(raw)) throw new UsageError(`brick "${s}": brick paths cannot contain whitespace or '#'`);
  const abs = path.posix.resolve(raw);
  if (abs === '/') throw new UsageError(`brick "${s}": the root directory cannot be a brick; use a directory such as /srv/brick1`);
  return port === undefined ? { host, path: abs } : { host, port, path: abs };
}

/** Formats a brick back as HOST[:PORT]:/path (IPv6 hosts in brackets when a port follows). */
export function formatBrick(b: { host: string; port?: number; path: string }, withPort = b.port !== undefined): string {
  const host = b.host.includes(':') && withPort ? `[${b.host}]` : b.host;
  return withPort && b.port !== undefined ? `${host}:${b.port}:${b.path}` : `${host}:${b.path}`;
}

/** Parses `VOL [replica N] [stripe N] BRICK...` as typed after `volume create`. */
export function parseCreateArgs(name: string, words: readonly string[], force = false): CreateRequest {
  validateVolumeName(name);
  const req: CreateRequest = { name, bricks: [], force };
  let i = 0;
  for (; i < words.length; i += 2) {
    const kw = words[i];
    if (kw !== 'replica' && kw !== 'stripe') break;
    if (req[kw] !== undefined) throw new UsageError(`"${kw}" is given twice`);
    const n = words[i + 1];
    if (n === undefined || !/^\d+$/.test(n) || Number(n) < 2) {
      throw new UsageError(`"${kw}" needs a count of at least 2, for example: brickfs volume create ${name} ${kw} 2 localhost:/srv/b1 localhost:/srv/b2`);
    }
    req[kw] = Number(n);
  }
  const rest = words.slice(i);
  if (rest.length === 0) throw new UsageError(`no bricks given; for example: ${CREATE_EXAMPLE}`);
  for (const w of rest) {
    if (w === 'replica' || w === 'stripe') throw new UsageError(`"${w} N" must come before the bricks; for example: brickfs volume create ${name} ${w} 2 localhost:/srv/b1 localhost:/srv/b2`);
  }
  req.bricks = parseBrickList(rest);
  if (req.replica !== undefined && req.bricks.length % (req.replica * (req.stripe ?? 1)) !== 0) {
    const unit = req.replica * (req.stripe ?? 1);
    throw new UsageError(
      `replica ${req.replica}${req.stripe ? ` stripe ${req.stripe}` : ''} needs a multiple of ${unit} bricks, got ${req.bricks.length}: ` +
      `each ${req.replica} consecutive bricks form one replica set; for example: ` +
      `brickfs volume create ${name} replica 2 localhost:/srv/b1 localhost:/srv/b2 localhost:/srv/b3 localhost:/srv/b4`,
    );
  }
  if (req.stripe !== undefined && req.bricks.length % req.stripe !== 0) {
    throw new UsageError(
      `stripe ${req.stripe} needs a multiple of ${req.stripe} bricks, got ${req.bricks.length}: ` +
      `each ${req.stripe} consecutive bricks form one stripe set; for example: ` +
      `brickfs volume create ${name} stripe 2 localhost:/srv/b1 localhost:/srv/b2 localhost:/srv/b3 localhost:/srv/b4`,
    );
  }
  return req;
}

/** Parses brick words, normalised to HOST[:PORT]:/abs/path; a brick given twice is a UsageError. */
export function parseBrickList(words: readonly string[]): string[] {
  const seen = new Set<string>();
  return words.map((w) => {
    const spec = parseBrickSpec(w);
    const key = formatBrick(spec, false);
    if (seen.has(key)) throw new UsageError(`brick ${key} is listed twice`);
    seen.add(key);
    return formatBrick(spec);
  });
}

/** Parses `[replica N] BRICK... [force]` as typed after `volume add-brick VOL`. */
export function parseAddBrickArgs(name: string, words: readonly string[], force = false): AddBrickRequest {
  validateVolumeName(name);
  const example = `brickfs volume add-brick ${name} localhost:/srv/b3 localhost:/srv/b4`;
  let rest = [...words];
  if (rest.at(-1) === 'force') {
    force = true;
    rest = rest.slice(0, -1);
  }
  const req: AddBrickRequest = { bricks: [], force };
  if (rest[0] === 'replica') {
    const n = rest[1];
    if (n === undefined || !/^\d+$/.test(n) || Number(n) < 1) {
      throw new UsageError(`"replica" needs the volume's replica count, for example: brickfs volume add-brick ${name} replica 2 localhost:/srv/b5 localhost:/srv/b6`);
    }
    req.replica = Number(n);
    rest = rest.slice(2);
  }
  for (const w of rest) {
    if (w === 'replica') throw new UsageError(`"replica N" must come before the bricks; for example: brickfs volume add-brick ${name} replica 2 localhost:/srv/b5 localhost:/srv/b6`);
    if (w === 'stripe') {
      throw new UsageError('add-brick takes no "stripe N": a striped volume grows by whole stripe sets, so give the bricks in multiples of its stripe count');
    }
  }
  if (rest.length === 0) throw new UsageError(`no bricks given; for example: ${example}`);
  req.bricks = parseBrickList(rest);
  return req;
}

/** Parses `BRICK... start|status|commit|stop [force]` as typed after `volume remove-brick VOL`. */
export function parseRemoveBrickArgs(name: string, words: readonly string[]): RemoveBrickRequest & { action: RemoveBrickAction } {
  validateVolumeName(name);
  const usage = `brickfs volume remove-brick ${name} BRICK... start|status|commit|stop; for example: brickfs volume remove-brick ${name} localhost:/srv/b3 start`;
  let rest = [...words];
  let force = false;
  if (rest.at(-1) === 'force') {
    force = true;
    rest = rest.slice(0, -1);
  }
  const action = rest.at(-1);
  if (action !== 'start' && action !== 'status' && action !== 'commit' && action !== 'stop') {
    throw new UsageError(action === undefined || action.includes(':/')
      ? `say what to do after the bricks: start, status, commit or stop; ${usage}`
      : `"${action}" is not a remove-brick command (start, status, commit or stop); ${usage}`);
  }
  if (force && action !== 'commit') {
    throw new UsageError(`"force" goes with commit only (commit force: take the bricks out without waiting for the drain); ${usage}`);
  }
  const bricks = rest.slice(0, -1);
  if (bricks.length === 0) throw new UsageError(`no bricks given; ${usage}`);
  for (const w of bricks) {
    if (['start', 'status', 'commit', 'stop', 'force'].includes(w)) throw new UsageError(`"${w}" must come after the bricks; ${usage}`);
  }
  return { bricks: parseBrickList(bricks), action, force };
}

/** Parses the throttle word of `rebalance VOL start --throttle T`. */
export function parseThrottle(s: string): RebalanceThrottle {
  if (!(REBALANCE_THROTTLES as readonly string[]).includes(s)) {
    throw new UsageError(`"${s}" is not a throttle: use ${REBALANCE_THROTTLES.join(', ')} (default normal)`);
  }
  return s as RebalanceThrottle;
}

/** Parses `[fix-layout] start|status|stop` as typed after `volume rebalance VOL`, with its options. */
export function parseRebalanceArgs(
  name: string, words: readonly string[], opts: { fixLayout?: boolean; throttle?: string } = {},
): { action: RebalanceAction; fixLayout: boolean; throttle?: RebalanceThrottle } {
  validateVolumeName(name);
  const usage = `brickfs volume rebalance ${name} start|status|stop [--fix-layout] [--throttle lazy|normal|aggressive]`;
  let rest = [...words];
  let fixLayout = opts.fixLayout === true;
  // gluster's word order: `rebalance VOL fix-layout start`.
  if (rest[0] === 'fix-layout') {
    fixLayout = true;
    rest = rest.slice(1);
  }
  if (rest.length !== 1 || !['start', 'status', 'stop'].includes(rest[0]!)) {
    const got = rest.length === 0 ? 'nothing' : `"${rest.join(' ')}"`;
    throw new UsageError(`expected start, status or stop after the volume name, got ${got}; usage: ${usage}`);
  }
  const action = rest[0] as RebalanceAction;
  if (action !== 'start' && (fixLayout || opts.throttle !== undefined)) {
    throw new UsageError(`--fix-layout and --throttle go with start only; usage: ${usage}`);
  }
  return { action, fixLayout, ...(opts.throttle === undefined ? {} : { throttle: parseThrottle(opts.throttle) }) };
}

/** Where a user reads every volume option with its description (gluster's words). */
export const VOLUME_SET_HELP = 'brickfs volume set help';

/** Validates a `volume set` or `volume reset` key; throws a UsageError with the nearest known key. */
export function validateVolumeOptionKey(key: string): void {
  if (VOLUME_OPTIONS[key]) return;
  const near = nearest(key, Object.keys(VOLUME_OPTIONS));
  throw new UsageError(`unknown volume option "${key}"${near ? `; did you mean ${near}?` : ''} (every option: ${VOLUME_SET_HELP})`);
}

/** A volume option's value as it is stored and shown everywhere: booleans as on/off, as gluster prints them. */
export function volumeOptionText(key: string, value: string): string {
  const spec = VOLUME_OPTIONS[key]?.spec;
  if (spec?.type !== 'bool') return value;
  try {
    return parseOptions({ [key]: spec }, { [key]: value })[key] ? 'on' : 'off';
  } catch {
    return value;
  }
}

/** Validates `volume set KEY VALUE`; returns the normalised value or throws a UsageError naming the known keys. */
export function validateVolumeOption(key: string, value: string): string {
  validateVolumeOptionKey(key);
  const def = VOLUME_OPTIONS[key]!;
  try {
    return volumeOptionText(key, String(parseOptions({ [key]: def.spec }, { [key]: value })[key]));
  } catch (e) {
    if (e instanceof OptionError) {
      const bounds = def.spec.min !== undefined && def.spec.max !== undefined ? ` (${def.spec.type} ${def.spec.min}..${def.spec.max})` : '';
      throw new UsageError(`${e.message}${bounds}`);
    }
    throw e;
  }
}
