// The CLI's side of the management API (docs/mgmt-api.md): one request helper that turns
// every failure into the error class that decides the exit code.
import http from 'node:http';
import { OperationError, UsageError } from '../../lib/errors.js';
import type { ErrorReply } from '../../lib/mgmt/api.js';
import { parseServer, unreachable, type ServerAddr } from '../../lib/mgmt/client.js';
import { mgmtTransport } from '../../lib/mgmt/http.js';
import { tlsDir } from '../../lib/tls.js';
import { readRootToken, tokenFile, type TokenLookup } from '../../lib/mgmt/token.js';

/** Options every command has (declared global in index.ts). */
export interface GlobalArgs {
  server: string;
}

interface RawReply {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

export interface TextReply {
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** A TLS handshake that failed: one side without secure-access, or certificates of different CAs. */
function tlsFailure(e: NodeJS.ErrnoException): boolean {
  return /SSL|TLS|CERT|EPROTO/i.test(`${e.code ?? ''} ${e.message}`);
}

/** Error codes that mean "nobody answers there". */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** What to tell a user the daemon refused for want of credentials. */
function unauthorized(msg: string, token: TokenLookup): string {
  if (token.token !== undefined) {
    return `${msg} (a daemon takes the token of its own host only: run brickfs on the daemon's host)`;
  }
  if ((process.geteuid?.() ?? 0) !== 0) {
    return 'permission denied: the management daemon takes requests only from root on its host; run this command as root, for example: sudo brickfs ...';
  }
  return `${msg} (${tokenFile()}: ${token.why}; is the daemon running on this host with the same BRICKFS_RUN_DIR?)`;
}

/** A client of one management daemon. */
export class MgmtApi {
  constructor(readonly server: ServerAddr) {}

  /** The daemon named by --server HOST[:PORT] (a bad address is a usage error). */
  static fromArgs(args: GlobalArgs): MgmtApi {
    return new MgmtApi(parseServer(args.server));
  }

  get where(): string {
    return `${this.server.host.includes(':') ? `[${this.server.host}]` : this.server.host}:${this.server.port}`;
  }

  /** Sends a request; 2xx resolves with the body, 400 throws UsageError, anything else OperationError. */
  private async request(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<RawReply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // Root reads the host's token and sends it; anyone else is refused by the daemon (401).
    const token = readRootToken();
    // Under secure-access, TLS with this host's certificate (throws TlsConfigError, exit 1, when it is missing).
    let transport: ReturnType<typeof mgmtTransport>;
    try {
      transport = mgmtTransport();
    } catch (e) {
      throw new OperationError((e as Error).message);
    }
    const res = await new Promise<RawReply>((resolve, reject) => {
      const req = transport.mod.request({
        ...transport.tls,
        host: this.server.host,
        port: this.server.port,
        method,
        path,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...(token.token === undefined ? {} : { authorization: `Bearer ${token.token}` }),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      });
      // Starting bricks can take a while; only a daemon silent for this long is given up on (0: a heal, as long as it takes).
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (tlsFailure(e)) {
          reject(new OperationError(
            `the management daemon at ${this.where} refused TLS (${e.code ?? e.message}): this host and the daemon's must both have ` +
            'secure-access on (or both off), with certificates of one CA; docs/security.md, "TLS"'));
        } else if (e.code === 'ECONNRESET' && transport.mod === http) {
          // A TLS listener hangs up on a plain request.
          reject(new OperationError(
            `the management daemon at ${this.where} hung up (ECONNRESET): if it has secure-access on, turn it on on this host too ` +
            `(${tlsDir()}/secure-access, with this host's certificate); docs/security.md, "TLS"`));
        } else if (e.code && UNREACHABLE.has(e.code)) {
          const { reason, hint } = unreachable(this.server, e.code);
          reject(new OperationError(`${reason}; ${hint}`));
        } else {
          reject(new OperationError(`request to the management daemon at ${this.where} failed: ${e.message}`));
        }
      });
      req.end(payload);
    });
    if (res.status >= 200 && res.status < 300) return res;
    let msg = res.text.trim();
    try {
      msg = (JSON.parse(res.text) as ErrorReply).error ?? msg;
    } catch { /* not JSON: keep the text */ }
    if (!msg) msg = `the management daemon answered HTTP ${res.status}`;
    if (res.status === 401) msg = unauthorized(msg, token);
    throw res.status === 400 ? new UsageError(msg) : new OperationError(msg);
  }

  /** A JSON request; resolves with the parsed reply. timeoutMs: how long the daemon may stay silent (0: no limit). */
  async json<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const r = await this.request(method, path, body, timeoutMs);
    try {
      return JSON.parse(r.text) as T;
    } catch {
      throw new OperationError(`the management daemon at ${this.where} sent a reply that is not JSON; is it a brickfs daemon?`);
    }
  }

  /** A GET whose reply is text (volfiles). */
  async text(path: string): Promise<TextReply> {
    const r = await this.request('GET', path);
    return { text: r.text, headers: r.headers };
  }
}

/** "/v1/volumes/NAME" with the name escaped. */
export function volumePath(name: string, rest = ''): string {
  return `/v1/volumes/${encodeURIComponent(name)}${rest}`;
}

/** Runs fn; a failure keeps its class (so its exit code) but reads "LABEL: failed: why", as gluster's. */
export async function labelled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${label}: failed: ${e.message}`);
    if (e instanceof OperationError) throw new OperationError(`${label}: failed: ${e.message}`);
    throw e;
  }
}
