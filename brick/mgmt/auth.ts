// Who may use the management API (docs/security.md): root on this host, proven by the host's
// token (lib/mgmt/token.ts), and the daemons of its pool, proven by the pool's secret kept in
// the configuration store. Only the health check is open to anyone: a probe reads it before
// the prober is a member. Requests naming another host in Host are refused before anything
// else, so a name rebound to this host's address (DNS rebinding) reaches nothing.
import { timingSafeEqual, createHash } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { tokenFile } from '../../lib/mgmt/token.js';
import { isLocalAddress } from './hosts.js';

/** Who a request comes from. */
export type Caller = 'root' | 'peer';

/** An answer that refuses a request. */
export interface Refusal {
  status: number;
  error: string;
  headers?: Record<string, string>;
}

/** Requests anyone may make: what they read says nothing secret. */
const OPEN: ReadonlyArray<readonly [string, RegExp]> = [['GET', /^\/v1\/health$/], ['GET', /^\/metrics$/]];

/** How long names read from the store count as this daemon's. */
const STORE_NAMES_TTL_MS = 5000;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The host part of a Host header, lowercased, without port, brackets or a trailing dot; null if malformed. */
export function hostOfHeader(value: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::\d{1,5})?$/.exec(value.trim());
  return m ? m[1]!.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase() : null;
}

/** What the guard needs to know of the daemon. */
export interface GuardSources {
  rootToken: string;
  /** The pool's secret (null with the file store, which has no pool). */
  poolSecret: string | null;
  /** Names this daemon is known by without asking anyone: its --listen and advertised address. */
  ownNames: readonly string[];
  /** Names the pool's store gives this daemon (what peers were told to probe). */
  storeNames(): Promise<string[]>;
}

/** Checks Host and credentials of every request to the management API. */
export class MgmtGuard {
  private readonly root: Buffer;
  private readonly peer: Buffer | null;
  private cached: { names: Set<string>; until: number } | undefined;

  constructor(private readonly src: GuardSources) {
    this.root = digest(src.rootToken);
    this.peer = src.poolSecret === null ? null : digest(src.poolSecret);
  }

  /** Whether a Host header value names this daemon: a loopback or local address, localhost, this host's name, or a name of it in the pool. */
  async hostAllowed(value: string | undefined): Promise<boolean> {
    if (value === undefined) return false;
    const h = hostOfHeader(value);
    if (h === null) return false;
    // Its own --listen address counts even while no interface holds it (a link taken down).
    if (this.src.ownNames.some((n) => n.toLowerCase() === h)) return true;
    if (net.isIP(h)) return isLocalAddress(h);
    if (h === 'localhost' || h.endsWith('.localhost') || h === os.hostname().toLowerCase()) return true;
    const now = Date.now();
    if (!this.cached || this.cached.until < now) {
      const names = await this.src.storeNames().catch(() => []);
      this.cached = { names: new Set(names.map((n) => n.toLowerCase())), until: now + STORE_NAMES_TTL_MS };
    }
    return this.cached.names.has(h);
  }

  /** Who sent the request, by its bearer token; null for no or an unknown token. */
  caller(req: http.IncomingMessage): Caller | null {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) return null;
    const d = digest(m[1]!);
    if (timingSafeEqual(d, this.root)) return 'root';
    if (this.peer && timingSafeEqual(d, this.peer)) return 'peer';
    return null;
  }

  /** The refusal for a request, or null when it may go on to its route. */
  async check(req: http.IncomingMessage, method: string, pathname: string): Promise<Refusal | null> {
    if (!(await this.hostAllowed(req.headers.host))) {
      return {
        status: 421,
        error: `the Host header ${JSON.stringify(req.headers.host ?? '')} names no address or name of this daemon's host; ` +
          'reach it by one of its addresses (for example --server 127.0.0.1:PORT)',
      };
    }
    if (OPEN.some(([m, re]) => m === method && re.test(pathname))) return null;
    if (this.caller(req) !== null) return null;
    const sent = req.headers.authorization !== undefined;
    return {
      status: 401,
      headers: { 'www-authenticate': 'Bearer realm="brickfs"' },
      error: (sent ? 'the token sent is not this daemon\'s; ' : '') +
        'the management API takes requests only from root on this host and from the daemons of its pool: ' +
        `run brickfs as root (for example with sudo), which sends the token kept in ${tokenFile()}`,
    };
  }
}
