// The management daemon's HTTP client as the CLI and the mount runtime both use it: where a
// daemon is, and fetching (or waiting for) a volume's client volfile. Here in lib/, not in
// client/cli/, so a mount process needs nothing of the CLI.
import { OperationError, UsageError } from '../errors.js';
import { VERSION_HEADER } from './api.js';
import { authHeaders } from './token.js';

/** Default address of the management daemon (not GlusterFS's 24007, so both can run). */
export const DEFAULT_MGMT_PORT = 7007;

export interface ServerAddr {
  host: string;
  port: number;
}

/** Parses "HOST[:PORT]" (IPv6 in brackets) into an address. */
export function parseServer(s: string, defaultPort = DEFAULT_MGMT_PORT): ServerAddr {
  const m = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(s.trim());
  if (!m) throw new UsageError(`"${s}" is not HOST[:PORT] (for example: localhost:7007)`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (port < 1 || port > 65535) throw new UsageError(`port ${port} in "${s}" is out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** "HOST[:PORT]:/VOL" as typed to `brickfs mount`. */
export function parseVolumeSource(s: string): { server: ServerAddr; volume: string } {
  const i = s.lastIndexOf(':/');
  if (i <= 0) throw new UsageError(`"${s}" is not HOST[:PORT]:/VOLUME (for example: localhost:/demo)`);
  const volume = s.slice(i + 2);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(volume)) throw new UsageError(`"${volume}" is not a volume name (in "${s}")`);
  return { server: parseServer(s.slice(0, i)), volume };
}

/** A client volfile and the volume version it belongs to (absent from daemons that do not send it). */
export interface FetchedVolfile {
  text: string;
  version?: number;
}

function volfileUrl(server: ServerAddr, volume: string): string {
  const host = server.host.includes(':') ? `[${server.host}]` : server.host;
  return `http://${host}:${server.port}/v1/volumes/${encodeURIComponent(volume)}/volfile`;
}

function versionOf(res: Response): number | undefined {
  const v = Number(res.headers.get(VERSION_HEADER) ?? NaN);
  return Number.isFinite(v) ? v : undefined;
}

/** Fetches a volume's client volfile from a management daemon, with messages a user can act on. */
export async function fetchVolfile(server: ServerAddr, volume: string): Promise<FetchedVolfile> {
  let res: Response;
  try {
    // The volfile is root's (it holds the volume's credentials): the mount runs as root and sends the host's token.
    res = await fetch(volfileUrl(server, volume), { headers: authHeaders(), signal: AbortSignal.timeout(10_000) });
  } catch {
    throw new OperationError(`cannot reach the management daemon at ${server.host}:${server.port}; start it with \`brickfs daemon\``);
  }
  const text = await res.text();
  if (res.ok) return { text, version: versionOf(res) };
  let msg = text;
  try {
    msg = (JSON.parse(text) as { error?: string }).error ?? text;
  } catch { /* plain text */ }
  if (res.status === 404) throw new OperationError(msg || `volume ${volume} does not exist; \`brickfs volume info\` lists volumes`);
  if (res.status === 409) throw new OperationError(msg || `volume ${volume} is not started; start it with \`brickfs volume start ${volume}\``);
  if (res.status === 401) throw new OperationError(`cannot read the volfile of ${volume}: ${msg}`);
  throw new OperationError(`the management daemon answered ${res.status}: ${msg}`);
}

/** One answer of the volfile long poll: a newer volfile, nothing new within the wait, or an error status. */
export type VolfilePoll =
  | { kind: 'new'; text: string; version: number }
  | { kind: 'same' }
  | { kind: 'error'; status: number; text: string };

/**
 * Waits up to waitS seconds for a volfile newer than `since` (the daemon answers late).
 * Throws when the daemon cannot be reached or the wait is aborted.
 */
export async function pollVolfile(server: ServerAddr, volume: string, since: number, waitS: number, signal: AbortSignal): Promise<VolfilePoll> {
  const url = `${volfileUrl(server, volume)}?newer-than=${since}&wait=${waitS}`;
  // A daemon that vanishes without closing the socket must not hang the poll forever.
  const res = await fetch(url, { headers: authHeaders(), signal: AbortSignal.any([signal, AbortSignal.timeout((waitS + 15) * 1000)]) });
  const text = await res.text();
  if (res.status === 304) return { kind: 'same' };
  if (res.status !== 200) return { kind: 'error', status: res.status, text };
  const version = versionOf(res);
  if (version === undefined) return { kind: 'error', status: 502, text: `volfile reply without ${VERSION_HEADER}` };
  return { kind: 'new', text, version };
}
