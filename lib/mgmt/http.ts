// Requests to a management daemon, over TLS with this host's certificate when the host has
// secure-access on (lib/tls.ts; GlusterFS's /var/lib/glusterd/secure-access), plain HTTP
// otherwise. Used by every caller of the API but the CLI's own helper: mounts (volfile
// fetches, long polls, health checks) and daemons asking their peers.
import http from 'node:http';
import https from 'node:https';
import { clientTlsOptions, loadTls, secureAccess } from '../tls.js';

/** The scheme of this host's management path. */
export function mgmtScheme(): 'http' | 'https' {
  return secureAccess() ? 'https' : 'http';
}

/** The URL of pathname on the daemon at hostPort ("HOST:PORT", IPv6 in brackets), in this host's scheme. */
export function mgmtUrl(hostPort: string, pathname: string): string {
  return `${mgmtScheme()}://${hostPort}${pathname}`;
}

/** The http(s).request options of this host's management path: this host's certificate and CA under secure-access. */
export function mgmtTransport(): { mod: typeof http | typeof https; tls: object } {
  return secureAccess() ? { mod: https, tls: clientTlsOptions(loadTls()) } : { mod: http, tls: {} };
}

export interface MgmtFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/**
 * fetch() for management URLs (http: or https:), with this host's certificate on https.
 * Node's fetch cannot present a client certificate without undici's Agent, which is not a
 * dependency. Fails as fetch does: the signal's reason on abort (a TimeoutError for
 * AbortSignal.timeout), else a TypeError whose cause is the socket's error.
 */
export function mgmtFetch(url: string, init: MgmtFetchInit = {}): Promise<Response> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const mod = secure ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const { signal } = init;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let tls = {};
    if (secure) {
      try {
        tls = clientTlsOptions(loadTls());
      } catch (e) {
        reject(Object.assign(new TypeError('fetch failed'), { cause: e }));
        return;
      }
    }
    const req = mod.request(u, { method: init.method ?? 'GET', headers: init.headers, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => reject(Object.assign(new TypeError('fetch failed'), { cause: e })));
      res.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        const status = res.statusCode ?? 502;
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
        }
        const noBody = status === 204 || status === 304 || status < 200;
        resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers }));
      });
    });
    const onAbort = (): void => {
      req.destroy();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(signal?.aborted ? signal.reason : Object.assign(new TypeError('fetch failed'), { cause: e }));
    });
    req.end(init.body);
  });
}
