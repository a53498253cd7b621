/**
 * Where the management daemon's configuration store is, as one string:
 *
 *   /var/lib/brickfs, ./state, file:/var/lib/brickfs, file:///var/lib/brickfs
 *       the embedded store: files under that directory on this host (the default)
 *   etcd://H1:2379,H2:2379            etcd, at any of these client endpoints
 *   etcd://H1,[::1]:2379/pools/blue   the same with a key prefix (default 'brickfs/'); a host
 *                                     without a port is on etcd's client port 2379
 *
 * parseStoreUrl only reads the string; opening the store is the caller's business.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** etcd's IANA client port. */
export const ETCD_DEFAULT_PORT = 2379;

/** The key prefix used when an etcd URL names none: every key of the pool lives under it. */
export const ETCD_DEFAULT_PREFIX = 'brickfs/';

export type StoreLocation =
  | { kind: 'file'; dir: string }
  | {
      kind: 'etcd';
      /** host:port, one per etcd member the client may talk to (IPv6 hosts in brackets). */
      endpoints: string[];
      /** Key prefix, ending in '/'. */
      prefix: string;
    };

function usage(url: string, why: string): Error {
  return new Error(
    `bad configuration store ${JSON.stringify(url)}: ${why} ` +
      '(a directory such as /var/lib/brickfs or file:/var/lib/brickfs, or etcd://HOST:PORT[,HOST:PORT...][/PREFIX])',
  );
}

/** One endpoint "host[:port]" of an etcd URL, checked and given the default port. */
function parseEndpoint(url: string, s: string): string {
  let host: string;
  let port: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = `[${v6[1]}]`;
    port = v6[2];
  } else {
    const m = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(s);
    if (!m) throw usage(url, `${JSON.stringify(s)} is not HOST or HOST:PORT`);
    host = m[1];
    port = m[2];
  }
  const n = port === undefined ? ETCD_DEFAULT_PORT : Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw usage(url, `port ${port} is out of range`);
  return `${host}:${n}`;
}

/** Reads a store location: a file store directory, or etcd endpoints and a key prefix. */
export function parseStoreUrl(url: string): StoreLocation {
  const s = url.trim();
  if (s === '') throw usage(url, 'it is empty');

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase();
  if (scheme === 'etcd') {
    if (!s.slice(0, 7).toLowerCase().startsWith('etcd://')) throw usage(url, 'etcd needs etcd://HOST:PORT');
    const rest = s.slice('etcd://'.length);
    const slash = rest.indexOf('/');
    const hosts = slash < 0 ? rest : rest.slice(0, slash);
    const tail = slash < 0 ? '' : rest.slice(slash + 1);
    if (/[?#]/.test(rest)) throw usage(url, 'query strings and fragments mean nothing here');
    const endpoints = hosts.split(',').map((h) => h.trim());
    if (endpoints.some((h) => h === '')) throw usage(url, 'an endpoint is empty');
    const parsed = endpoints.map((h) => parseEndpoint(url, h));
    const parts = tail.split('/').filter((p) => p !== '');
    if (parts.some((p) => p === '.' || p === '..')) throw usage(url, 'the key prefix may not hold . or ..');
    const prefix = parts.length ? `${parts.map((p) => decodeURIComponent(p)).join('/')}/` : ETCD_DEFAULT_PREFIX;
    return { kind: 'etcd', endpoints: [...new Set(parsed)], prefix };
  }
  if (scheme === 'file') {
    let dir: string;
    if (s.startsWith('file://')) {
      try {
        dir = fileURLToPath(s);
      } catch (e) {
        throw usage(url, (e as Error).message);
      }
    } else {
      dir = decodeURIComponent(s.slice('file:'.length));
    }
    if (dir === '') throw usage(url, 'the directory is empty');
    return { kind: 'file', dir: path.resolve(dir) };
  }
  // One letter before the colon could be a Windows drive; anything else is a scheme we lack.
  if (scheme !== undefined && scheme.length > 1) throw usage(url, `unknown scheme ${scheme}:`);
  return { kind: 'file', dir: path.resolve(s) };
}
