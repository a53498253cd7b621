// The management daemon's HTTP client as the CLI and the mount runtime both use it: where a
// daemon is, and fetching (or waiting for) a volume's client volfile. Here in lib/, not in
// client/cli/, so a mount process needs nothing of the CLI.
import { OperationError, UsageError } from '../errors.js';
import { VERSION_HEADER } from './api.js';
import { secureAccess } from '../tls.js';
import { mgmtFetch, mgmtUrl } from './http.js';
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

/** "HOST:PORT", IPv6 in brackets, as messages name a daemon. */
export function formatServer(s: ServerAddr): string {
  return `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
}

/**
 * Parses the value of mount option backup-volfile-servers: hosts separated by ':' as in
 * GlusterFS, each HOST or HOST/PORT (':' already separates hosts, so a port follows a '/');
 * IPv6 in brackets. A host without a port gets defaultPort (the main server's).
 */
export function parseVolfileServers(value: string, defaultPort = DEFAULT_MGMT_PORT): ServerAddr[] {
  const usage = 'backup-volfile-servers takes hosts separated by \':\', each HOST or HOST/PORT (for example: backup-volfile-servers=10.0.0.2:10.0.0.3/7008)';
  const out: ServerAddr[] = [];
  const re = /(\[[^\]]+\]|[^:/[\]\s]+)(?:\/(\d+))?(?::|$)/y;
  let at = 0;
  while (at < value.length) {
    re.lastIndex = at;
    const m = re.exec(value);
    if (!m) throw new UsageError(`"${value}": ${usage}`);
    const port = m[2] ? Number(m[2]) : defaultPort;
    if (port < 1 || port > 65535) throw new UsageError(`port ${port} in backup-volfile-servers "${value}" is out of range`);
    out.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    at = re.lastIndex;
    if (at === value.length && value.endsWith(':')) throw new UsageError(`"${value}": ${usage}`);
  }
  if (out.length === 0) throw new UsageError(`backup-volfile-servers is empty; ${usage}`);
  return out;
}

/**
 * "HOST[:PORT]:/VOL" as typed to `brickfs mount`, or gluster's "HOST[:PORT]:VOL" (no slash):
 * without ":/" the last ':' starts the volume name (IPv6 hosts in brackets either way).
 */
export function parseVolumeSource(s: string): { server: ServerAddr; volume: string } {
  const usage = 'HOST[:PORT]:/VOLUME or HOST[:PORT]:VOLUME (for example: localhost:/demo)';
  const slash = s.lastIndexOf(':/');
  const i = slash > 0 ? slash : s.lastIndexOf(':');
  if (i <= 0 || (slash <= 0 && s.endsWith(']'))) throw new UsageError(`"${s}" is not ${usage}`);
  const volume = s.slice(i + (slash > 0 ? 2 : 1));
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(volume)) throw new UsageError(`"${volume}" is not a volume name (in "${s}"); give ${usage}`);
  return { server: parseServer(s.slice(0, i)), volume };
}

/** A client volfile and the volume version it belongs to (absent from daemons that do not send it). */
export interface FetchedVolfile {
  text: string;
  version?: number;
}

function volfileUrl(server: ServerAddr, volume: string): string {
  return mgmtUrl(formatServer(server), `/v1/volumes/${encodeURIComponent(volume)}/volfile`);
}

function versionOf(res: Response): number | undefined {
  const v = Number(res.headers.get(VERSION_HEADER) ?? NaN);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * A volfile server that could not serve at all: not reachable, or failing (5xx). Another
 * daemon of the pool may serve the same volfile; a refusal (404, 409) would be the same there.
 */
export class VolfileServerDownError extends OperationError {
  /** hint: what to do about it, when this was the only server asked. */
  constructor(readonly reason: string, hint = '') {
    super(hint ? `${reason}; ${hint}` : reason);
    this.name = 'VolfileServerDownError';
  }
}

/** getaddrinfo's answers for a name it could not turn into an address. */
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL']);

/**
 * Why the daemon at `server` could not be reached, from the connection error's code, and what
 * to do: a name that does not resolve is a typo or a DNS matter, not a daemon to start.
 */
export function unreachable(server: ServerAddr, code: string | undefined): { reason: string; hint: string } {
  if (code && UNRESOLVED.has(code)) {
    return {
      reason: `host name ${server.host} does not resolve (${code})`,
      hint: `${code === 'EAI_AGAIN' ? 'the resolver did not answer: try again, or' : 'check the name, or'} give the daemon's address (for example 127.0.0.1:${server.port})`,
    };
  }
  return { reason: `cannot reach the management daemon at ${formatServer(server)}${code ? ` (${code})` : ''}`, hint: 'start it with `brickfs daemon`' };
}

/** Fetches a volume's client volfile from a management daemon, with messages a user can act on. */
export async function fetchVolfile(server: ServerAddr, volume: string): Promise<FetchedVolfile> {
  let res: Response;
  try {
    // The volfile is root's (it holds the volume's credentials): the mount runs as root and sends the host's token.
    res = await mgmtFetch(volfileUrl(server, volume), { headers: authHeaders(), signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const cause = (e as { cause?: Error & { code?: string } }).cause;
    if (cause && /SSL|TLS|CERT|EPROTO/i.test(`${cause.code ?? ''} ${cause.message}`)) {
      throw new VolfileServerDownError(`the management daemon at ${formatServer(server)} refused TLS (${cause.code ?? cause.message})`,
        'this host and the daemon\'s must both have secure-access on, with certificates of one CA (docs/security.md, "TLS")');
    }
    if (cause?.code === 'ECONNRESET' && !secureAccess()) {
      // A TLS listener hangs up on a plain request.
      throw new VolfileServerDownError(`the management daemon at ${formatServer(server)} hung up (ECONNRESET)`,
        'if it has secure-access on, turn it on on this host too, with this host\'s certificate (docs/security.md, "TLS")');
    }
    const { reason, hint } = unreachable(server, cause?.code);
    throw new VolfileServerDownError(reason, hint);
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
  const error = `the management daemon at ${formatServer(server)} answered ${res.status}: ${msg}`;
  throw res.status >= 500 ? new VolfileServerDownError(error) : new OperationError(error);
}

/**
 * Fetches the volfile from the first of servers that serves it (the mount's volfile server,
 * then its backups in order); `index` is the one that did. A daemon that answers with a
 * refusal ends the search: the pool shares one store, so every member would say the same.
 */
export async function fetchVolfileFromAny(servers: readonly ServerAddr[], volume: string): Promise<FetchedVolfile & { index: number }> {
  const failures: string[] = [];
  for (const [index, server] of servers.entries()) {
    try {
      return { ...(await fetchVolfile(server, volume)), index };
    } catch (e) {
      if (!(e instanceof VolfileServerDownError) || servers.length === 1) throw e;
      failures.push(e.reason);
    }
  }
  throw new OperationError(`no volfile server of volume ${volume} could serve it (${failures.join('; ')}); start a daemon of the pool with \`brickfs daemon\``);
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
  const res = await mgmtFetch(url, { headers: authHeaders(), signal: AbortSignal.any([signal, AbortSignal.timeout((waitS + 15) * 1000)]) });
  const text = await res.text();
  if (res.status === 304) return { kind: 'same' };
  if (res.status !== 200) return { kind: 'error', status: res.status, text };
  const version = versionOf(res);
  if (version === undefined) return { kind: 'error', status: 502, text: `volfile reply without ${VERSION_HEADER}` };
  return { kind: 'new', text, version };
}
