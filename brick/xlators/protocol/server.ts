import { fromBrowser } from '../../../lib/browser.js';
import { frameFromWire, ROOT_FRAME, type Frame } from '../../../lib/frame.js';
import { setTracing, traceFop, withTrace } from '../../../lib/trace.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { FsError } from '../../../lib/errors.js';
import { FOPS, isFopName, XATTR_LAYOUT, type FopArgs, type FopName, type WireArgs } from '../../../lib/fops.js';
import { elapsedNs, FopStats, startMark } from '../../../lib/fop-stats.js';
import { CtxKey, Fd } from '../../../lib/inode.js';
import { TOP_LISTS, type TopList } from '../../../lib/mgmt/profile.js';
import { profileRecord, profileStart } from '../../../lib/profile.js';
import { registerXlator } from '../../../lib/registry.js';
import { argsProblem } from '../../../lib/rpc/args.js';
import {
  decodeClientFrame, encodeFrame, encodeFramePooled, HARD_MAX_FRAME_BYTES, MalformedFrameError, MAX_FRAME_BYTES, WIRE_VERSION,
  type HelloFrame, type ReplyFrame,
} from '../../../lib/rpc/frame.js';
import { CoalescingSender, socketOf } from '../../../lib/rpc/coalescing-sender.js';
import { loadCrls, loadTls, NAME_LIST_PATTERN, NameList, peerCommonName, serverTlsOptions, tlsReason, type ServerTlsExtras, type TlsMaterial } from '../../../lib/tls.js';
import { Xlator, type XlatorInit } from '../../../lib/xlator.js';
import { ADDRESS_LIST_PATTERN, AddressList, addressAllowed, plainAddress, sameSecret, type ConnKind } from './auth.js';
import { BrickProfile } from './profile.js';
import { applyVolumeLogLevel, LOG_LEVEL_PATTERN } from '../../../lib/log.js';

/** A checked request of one connection, waiting for its turn or running. */
interface Request {
  id: number;
  fop: FopName;
  args: Record<string, unknown>;
  frame: Frame;
  /** Bytes of its frame, held while it waits. */
  bytes: number;
  /** What it holds while it runs: its frame and the reply it asks for (a read's size). */
  cost: number;
}

/** Per-connection state: fds to release and the lock-owner prefix when the client goes; its bounds. */
interface Conn {
  /** What this brick calls the connection (its locks' owner prefix); empty until the hello. */
  id: string;
  /** What the client calls itself (its hello), for logs and statedump. */
  name: string;
  /** Its remote address, as auth.allow / auth.reject see it. */
  addr: string;
  /** What it authenticated as in its hello (client until then: nothing more). */
  kind: ConnKind;
  /** The common name of its certificate, on a TLS listener (verified against the CA in the handshake). */
  cn?: string;
  /** Closes a connection that says no hello in time. */
  helloTimer?: NodeJS.Timeout;
  /** It asked for no invalidation pushes in its hello (it keeps no cache). */
  noPushes?: boolean;
  ws: WebSocket;
  /** Replies of one event-loop turn go out in one socket write. */
  sender: CoalescingSender;
  subvol: Xlator;
  /** Open fds by the number this brick gave the client for each. */
  fds: Map<number, Fd>;
  /** Paths other clients changed this event-loop turn, pushed to this client at its end. */
  changed?: Set<string>;
  /** Requests read and checked, waiting for their turn (outstanding-rpc-limit, outstanding-bytes-limit). */
  queue: Request[];
  queuedBytes: number;
  /** Requests running, and the bytes they hold (Request.cost). */
  inflight: number;
  inflightBytes: number;
  /** opens and creates running: fds this connection may hold soon (open-fd-limit). */
  opening: number;
  /** The brick is not reading this connection's socket (too much queued, or replies unread). */
  paused: boolean;
  /** Set when the connection is gone: an fd opened for it after that is released at once. */
  gone: boolean;
}

/** The server's slot on a brick-side Fd: the volume path of its file now (an upcall names it for an fd fop). */
interface ServedFd {
  path: string;
}

/**
 * Internal traffic that changes nothing a client caches: replicate's changelog around every
 * write burst (xattrop) and rebalance's migration handshake (migrate).
 */
const NOT_PUSHED: ReadonlySet<FopName> = new Set(['xattrop', 'migrate']);

/** Paths in one push at most: a bigger burst goes out in several frames. */
const MAX_PUSH_PATHS = 1024;

/** A connection's queue holds at most this many times outstanding-rpc-limit requests before the brick stops reading it. */
const QUEUE_PER_OUTSTANDING = 4;

/** Largest reply a read asks for (storage/posix reads at most this much at once). */
const MAX_READ_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * The brick's soft limit on open files (/proc/self/limits; Node raised it to the hard limit
 * at start). One connection may hold at most half of it, whatever open-fd-limit says.
 */
function processFdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Number(m[1]);
  } catch { /* no /proc: open-fd-limit alone */ }
  return Infinity;
}

/**
 * Requests that only let go of something (an fd, a lock, a freeze): never held behind the
 * connection's other requests, which may be waiting for exactly that.
 */
function releasesOnly(fop: FopName, args: Record<string, unknown>): boolean {
  switch (fop) {
    case 'release': return true;
    case 'entrylk': return args.cmd === 'unlock';
    case 'xattrop': return args.unlock !== undefined && args.lock === undefined;
    case 'migrate': return args.op === 'thaw';
    default: return false;
  }
}

/**
 * Fops only the pool's own services send: rebalance's migration handshake, and the heal
 * index (heal info, index heal). A mount never sends them; a client credential is refused them.
 */
const SERVICE_FOPS: ReadonlySet<FopName> = new Set(['migrate', 'indexlist']);

/**
 * Why a client connection may not send this fop, or undefined when it may. Besides the
 * service fops, trusted.* xattrs are the pool's (changelogs, gfids, link files, the
 * volume id): a mount writes only distribute's layout of a directory, through setxattr;
 * the rest it sets through xattrop (changelogs) and the xattrs of a create (gfids, link files).
 */
function serviceOnly(fop: FopName, args: Record<string, unknown>): string | undefined {
  if (SERVICE_FOPS.has(fop)) return `${fop} is for the pool's own services only`;
  if ((fop === 'setxattr' || fop === 'removexattr') && typeof args.name === 'string' && args.name.startsWith('trusted.')) {
    if (fop === 'setxattr' && args.name === XATTR_LAYOUT) return undefined;
    return `${fop} of ${args.name}: trusted.* attributes are the pool's own`;
  }
  return undefined;
}

/** How long a new connection may take to say its hello before it is closed. */
const HELLO_TIMEOUT_MS = 30_000;

/**
 * WebSocket close codes: the connection is refused (whatever the reason: the same code and
 * text, so a stranger learns nothing of what is exported); the client speaks another
 * version; no hello in time.
 */
const CLOSE_REFUSED = 4003;
/** The only words a refused client gets; the brick's log says why. */
export const REFUSED_TEXT = 'refused';
const CLOSE_VERSION = 4005;
const CLOSE_NO_HELLO = 4008;

/**
 * protocol/server: serves its subvolumes over WebSocket. A client names the subvolume it
 * wants in the URL (?subvolume=NAME, GlusterFS's remote-subvolume), then says its hello: the
 * wire version it speaks, answered with this brick's and the id the brick gives the
 * connection (lib/rpc/frame.ts); another version is refused there, once, instead of in every
 * fop. The hello also carries the client's credentials and volume id, checked with its
 * address and, under ssl, its certificate's name (admit(): docs/security.md); under ssl a
 * client without a certificate of the CA does not get past the TLS handshake. A connection
 * that fails any check is closed with the same 4003 "refused". A client credential may not send what only the pool's services do
 * (serviceOnly()). Every request's args are checked against the fop table's spec before dispatch (EINVAL
 * naming the field). Requests are handled concurrently in arrival order (pipelined); every
 * failure, malformed frames included, becomes an error reply and the connection keeps serving.
 *
 * Bounds per connection, so that one client cannot starve the brick (docs/ARCHITECTURE.md,
 * "Bounds"): at most outstanding-rpc-limit requests run at once, and they, with the replies
 * written and not yet read by the client, hold at most outstanding-bytes-limit bytes (a read
 * counts the size it asks for; one request always runs); the others wait in arrival order,
 * except a request that only lets go of something (release, unlock, thaw). When the queue
 * holds more than QUEUE_PER_OUTSTANDING × outstanding-rpc-limit requests or
 * outstanding-bytes-limit bytes, or the replies written exceed outstanding-bytes-limit, the
 * brick stops reading the connection's socket until they drain (TCP backpressure, not
 * memory). A connection holding open-fd-limit fds gets EMFILE for its opens and creates;
 * other connections are not affected.
 *
 * Cache invalidation (GlusterFS's features/upcall, docs/cache-invalidation.md): when a
 * modifying fop from one connection succeeds, every other connection to the same subvolume
 * is told which volume paths changed, in one push frame per connection per event-loop turn.
 * With one connection there is nobody to tell and nothing is done.
 */
export class Server extends Xlator {
  static override readonly description = 'Serves subvolumes to clients over WebSocket';
  static override readonly options = {
    'listen-port': { type: 'int', required: true, min: 0, max: 65535, description: 'TCP port to listen on' },
    'listen-host': {
      type: 'string', default: '127.0.0.1',
      description: 'Address to listen on: the brick host\'s own (volgen writes it from the brick spec), never every address unless given 0.0.0.0 or ::',
    },
    'cache-invalidation': {
      type: 'bool', default: true,
      description: 'Tell the other clients which paths a client changed, so their caches drop them (on/off)',
      volume: { key: 'features.cache-invalidation', description: 'Bricks tell every other client which paths a client changed, so their caches (and the kernel\'s) drop them at once instead of after their timeouts; running bricks apply it at once (on/off, default on)' },
    },
    trace: {
      type: 'bool', default: false,
      description: 'Continue the traces requests carry (a span per fop here and in the translators below) and export them (volgen writes it while diagnostics.trace is on; client/xlators/debug/trace.ts)',
    },
    'trace-endpoint': {
      type: 'string', default: '',
      description: 'Zipkin v2 URL for this brick\'s spans; empty: NAME.spans.jsonl beside its log NAME.log',
    },
    'outstanding-rpc-limit': {
      type: 'int', default: 256, min: 1, max: 65536,
      description: 'Requests of one connection the brick runs at once; more wait in a queue, and beyond 4 times this many the brick stops reading the connection',
      volume: { key: 'server.outstanding-rpc-limit', description: 'Requests of one client a brick runs at once; more wait their turn, and a client that sends 4 times as many more is not read from until they drain (default 256); running bricks apply it at once' },
    },
    'outstanding-bytes-limit': {
      type: 'size', default: 64 * 1024 * 1024, min: 1024 * 1024, max: 4 * 1024 ** 3,
      description: 'Bytes one connection may hold in the brick: requests running (with the replies they ask for) plus replies written and not yet read by the client; above it the brick runs nothing more for it, and stops reading it',
      volume: { key: 'server.outstanding-bytes-limit', description: 'Bytes of requests and unread replies one client may hold in a brick\'s memory; above it the brick waits for the client to read before it runs or reads more of its requests (bytes, or with K/M/G; default 64M); running bricks apply it at once' },
    },
    'open-fd-limit': {
      type: 'int', default: 4096, min: 1, max: 1048576,
      description: 'Open fds one connection may hold (at most half of the brick process\'s limit); beyond it its opens and creates fail with EMFILE',
      volume: { key: 'server.open-fd-limit', description: 'Files one client may hold open on a brick (at most half of the brick process\'s fd limit); beyond it that client\'s opens and creates fail with EMFILE, and other clients are not affected (default 4096); running bricks apply it at once' },
    },
    'root-squash': {
      type: 'bool', default: false,
      description: 'Serve requests from uid 0 as anonuid (gid 0 and group 0 as anongid); the pool\'s own services (negative pids) are not squashed',
      volume: { key: 'server.root-squash', description: 'Bricks serve root of every client as an unprivileged user (server.anonuid/anongid, default 65534 nobody/nogroup): root on a client cannot read, change or chown what others own; running bricks apply it at once (on/off, default off)' },
    },
    anonuid: {
      type: 'int', default: 65534, min: 0, max: 4294967294,
      description: 'The uid root is served as under root-squash',
      volume: { key: 'server.anonuid', description: 'The uid a squashed root is served as (server.root-squash; default 65534, nobody)' },
    },
    anongid: {
      type: 'int', default: 65534, min: 0, max: 4294967294,
      description: 'The gid root\'s group 0 is served as under root-squash',
      volume: { key: 'server.anongid', description: 'The gid a squashed root\'s group 0 is served as (server.root-squash; default 65534, nogroup)' },
    },
    'log-level': {
      type: 'string', default: '', pattern: LOG_LEVEL_PATTERN,
      description: 'The brick process\'s log level; empty: its own (--log-level)',
      volume: { key: 'diagnostics.brick-log-level', description: 'Log level of the volume\'s bricks: DEBUG, INFO, WARNING or ERROR (GlusterFS\'s TRACE, CRITICAL, NONE too); empty (the default): each brick\'s own level. Running bricks apply it at once' },
    },
    'ssl-crl-path': {
      type: 'string', default: '',
      description: 'Under ssl: a PEM certificate revocation list, or a directory of them; a client certificate it revokes is refused in the handshake',
      volume: { key: 'ssl.crl-path', description: 'Under server.ssl: a PEM certificate revocation list on every brick host (or a directory of them, read as a whole); bricks refuse a client certificate it revokes, in the handshake. Running bricks apply it to new connections at once (default: none)' },
    },
    'ssl-cipher-list': {
      type: 'string', default: '', pattern: { regex: '^[A-Za-z0-9_:+!@=.,-]*$', what: 'an OpenSSL cipher list (ECDHE+AESGCM:!aNULL)' },
      description: 'Under ssl: the TLS 1.2 ciphers the brick accepts (an OpenSSL cipher list; TLS 1.3 suites are unaffected); empty: Node\'s default',
      volume: { key: 'ssl.cipher-list', description: 'Under server.ssl: the TLS 1.2 ciphers bricks accept, as an OpenSSL cipher list (ECDHE+AESGCM); TLS 1.3 is unaffected. Running bricks apply it to new connections at once (default: Node\'s list)' },
    },
    'volume-id': {
      type: 'string',
      description: 'The id of the volume this brick belongs to (volgen writes it): a client whose hello names another volume is refused, and with credentials set, one that names none',
    },
    'auth-username': {
      type: 'string',
      description: 'The volume\'s client credential (with auth-password; volgen makes them at volume create): with credentials set, a client must say one of them in its hello or is refused',
    },
    'auth-password': { type: 'string', description: 'The password of auth-username' },
    'service-username': {
      type: 'string',
      description: 'The credential of the pool\'s own services (rebalance, self-heal): only their connections may send migrate, indexlist, trusted.* xattrs, and have negative pids honoured',
    },
    'service-password': { type: 'string', description: 'The password of service-username' },
    'auth-allow': {
      type: 'string', default: '*', pattern: ADDRESS_LIST_PATTERN,
      description: 'Addresses clients may connect from (comma-separated, * and ? wildcards, or ADDRESS/PREFIX); the pool\'s services are not subject to it',
      volume: { key: 'auth.allow', description: 'Addresses clients may connect to the bricks from: a comma-separated list with * and ? wildcards (192.168.1.*) or networks (10.0.0.0/8); default * (any). Running bricks apply it to new connections at once' },
    },
    'count-fop-hits': {
      type: 'bool', default: false,
      description: 'Count each fop\'s calls, and reads and writes by block size, for `volume profile` (./profile.ts)',
      volume: { key: 'diagnostics.count-fop-hits', description: 'Bricks count calls per fop and reads and writes by block size for `brickfs volume profile VOL info` (`profile start` sets it and diagnostics.latency-measurement; default off); running bricks apply it at once' },
    },
    'latency-measurement': {
      type: 'bool', default: false,
      description: 'Measure each fop\'s min/avg/max latency for `volume profile` (./profile.ts)',
      volume: { key: 'diagnostics.latency-measurement', description: 'Bricks measure min/avg/max latency per fop for `brickfs volume profile VOL info` (`profile start` sets it; default off); running bricks apply it at once' },
    },
    'auth-reject': {
      type: 'string', default: '', pattern: ADDRESS_LIST_PATTERN,
      description: 'Addresses clients may not connect from, read before auth-allow (same form)',
      volume: { key: 'auth.reject', description: 'Addresses clients may not connect to the bricks from, whatever auth.allow says (same form as auth.allow; default none). Running bricks apply it to new connections at once' },
    },
    ssl: {
      type: 'bool', default: false,
      description: 'Serve over TLS only (wss), with this host\'s certificate from the certificate directory ($BRICKFS_TLS_DIR, else /etc/ssl/brickfs), and accept only clients presenting a certificate signed by its CA',
      volume: { key: 'server.ssl', description: 'Bricks speak only TLS, with their host\'s certificate (/etc/ssl/brickfs/brickfs.pem, .key, .ca; docs/security.md), and refuse in the handshake any client without a certificate signed by that CA; set client.ssl too. Running bricks switch at once and drop the connections they had (on/off, default off)' },
    },
    'ssl-allow': {
      type: 'string', default: '*', pattern: NAME_LIST_PATTERN,
      description: 'Certificate common names clients may connect with under ssl (comma-separated, * and ? wildcards); the pool\'s services are not subject to it',
      volume: { key: 'auth.ssl-allow', description: 'Common names of the client certificates the bricks accept under server.ssl: a comma-separated list with * and ? wildcards (client*.example.com); default * (every certificate of the CA). Running bricks apply it to new connections at once' },
    },
  } as const;

  private wss?: WebSocketServer;
  private httpServer?: http.Server;
  /** Whether the listener speaks TLS (ssl, as it was when it started listening). */
  private tls = false;
  /** A switch of the listener between plain and TLS (reconfigure), while it runs. */
  private relistening: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly conns = new Set<Conn>();
  /** Connections with paths to push at the end of this turn. */
  private readonly pushing = new Set<Conn>();
  private pushScheduled = false;
  private pushes = 0;
  private boundPort = 0;
  /** Times a connection was not read from (queue full, replies unread), and opens refused at open-fd-limit. */
  private readonly bounded = { pauses: 0, emfile: 0 };
  private readonly fdLimit = processFdLimit();
  /** The number the next fd opened for any connection gets (one sequence, so one connection's numbers mean nothing on another). */
  private nextFd = 1;
  private readonly fdKey: CtxKey<ServedFd>;
  /** Lifetime counters per fop, for the daemon's /metrics (brick/main.ts serves them). */
  readonly fopStats = new FopStats();
  /** `volume profile` and `volume top`. */
  readonly profile = new BrickProfile();

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length === 0) throw new Error('protocol/server needs at least one subvolume');
    this.fdKey = new CtxKey<ServedFd>(this.name);
  }

  get port(): number {
    return this.boundPort;
  }

  override async init(): Promise<void> {
    applyVolumeLogLevel(this.optString('log-level'));
    this.profile.configure(this.optBool('count-fop-hits'), this.optBool('latency-measurement'));
    await this.listen(this.optBool('ssl') ? loadTls() : undefined);
    await this.applyTracing();
  }

  /**
   * Listens on listen-host:listen-port: plain WebSocket, or under ssl a TLS server that asks
   * every client for its certificate and refuses in the handshake one the CA did not sign.
   */
  private async listen(material: TlsMaterial | undefined): Promise<void> {
    const tls = material !== undefined;
    const server = material ? https.createServer(serverTlsOptions(material, this.tlsExtras())) : http.createServer();
    if (tls) {
      server.on('tlsClientError', (e, socket) => {
        const msg = `refused a TLS connection from ${plainAddress(socket.remoteAddress) || 'a client that closed'}: ${tlsReason(e)}`;
        // A reset before any handshake is a port probe (the daemon's, a monitor's), not a client.
        if ((e as NodeJS.ErrnoException).code === 'ECONNRESET') this.log.debug(msg);
        else this.log.warn(msg);
      });
    }
    server.on('request', (_req, res) => res.writeHead(426).end());
    const wss = new WebSocketServer({
      server,
      maxPayload: HARD_MAX_FRAME_BYTES,
      perMessageDeflate: false,
      // A web page must not reach the brick (it trusts every request's word on who asks): refused before the upgrade.
      verifyClient: (info, cb) => {
        if (!fromBrowser(info.req.headers)) return cb(true);
        this.log.warn(`refused a browser's connection from ${info.req.socket.remoteAddress} (Origin ${JSON.stringify(info.req.headers.origin ?? '')})`);
        cb(false, 403, 'Forbidden');
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort || this.optNumber('listen-port'), this.optString('listen-host'), () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.wss = wss;
    this.httpServer = server;
    this.tls = tls;
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : 0;
    server.on('error', (e) => this.log.error(`listener: ${e.message}`));
    wss.on('error', (e) => this.log.error(`listener: ${e.message}`));
    wss.on('connection', (ws, req) => this.accept(ws, req));
    if (material) this.log.info(`serving TLS only, certificates from ${material.dir}`);
  }

  /** ssl-crl-path and ssl-cipher-list as the TLS context takes them; throws TlsConfigError for a CRL path that holds none. */
  private tlsExtras(): ServerTlsExtras {
    const crlPath = this.optString('ssl-crl-path');
    const ciphers = this.optString('ssl-cipher-list');
    return { ...(crlPath ? { crl: loadCrls(crlPath) } : {}), ...(ciphers ? { ciphers } : {}) };
  }

  /** Stops listening; the connections it accepted are closed too. */
  private async unlisten(): Promise<void> {
    const { wss, httpServer } = this;
    this.wss = undefined;
    this.httpServer = undefined;
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => {
      if (!httpServer) return resolve();
      httpServer.close(() => resolve());
      httpServer.closeAllConnections();
    });
  }

  override async fini(): Promise<void> {
    await setTracing(this, undefined);
    this.stopping = true;
    await this.relistening;
    await this.unlisten();
  }

  /**
   * cache-invalidation, credentials, address and name lists apply at once (to new
   * connections). ssl switches the listener at once, on the same port: every connection it
   * had is dropped, so none goes on in clear (or, switched off, over a TLS the volume no longer
   * asks for); clients reconnect as their new volfile says. The address stays until a restart.
   */
  override reconfigure(options: Record<string, string>): void {
    const before = [this.optNumber('listen-port'), this.optString('listen-host')];
    const tlsBefore = [this.optString('ssl-crl-path'), this.optString('ssl-cipher-list')].join('\n');
    super.reconfigure(options);
    applyVolumeLogLevel(this.optString('log-level'));
    this.profile.configure(this.optBool('count-fop-hits'), this.optBool('latency-measurement'));
    void this.applyTracing();
    if (before[0] !== this.optNumber('listen-port') || before[1] !== this.optString('listen-host')) {
      this.log.warn(`listen-port/listen-host changed in the volfile; the brick keeps listening on ${before[1]}:${this.boundPort} until it restarts`);
    }
    const tlsNow = [this.optString('ssl-crl-path'), this.optString('ssl-cipher-list')].join('\n');
    if (this.tls && this.optBool('ssl') && tlsNow !== tlsBefore && this.httpServer instanceof https.Server) {
      // New connections only; those the old lists let in stay (GlusterFS reads them at connect too).
      try {
        this.httpServer.setSecureContext(serverTlsOptions(loadTls(), this.tlsExtras()));
        this.log.info('ssl.crl-path / ssl.cipher-list applied to new connections');
      } catch (e) {
        this.log.error(`cannot apply ssl.crl-path / ssl.cipher-list: ${(e as Error).message}; new connections are served as before`);
      }
    }
    if (this.optBool('ssl') !== this.tls && !this.stopping) {
      this.relistening = this.relistening.then(async () => {
        if (this.optBool('ssl') === this.tls || this.stopping) return;
        // The certificates first: without them the brick keeps serving as it did.
        const material = this.optBool('ssl') ? loadTls() : undefined;
        this.log.info(`ssl ${material ? 'on' : 'off'}: listening again on port ${this.boundPort}, dropping every connection`);
        await this.unlisten();
        await this.listen(material);
      }).catch((e: Error) => this.log.error(`cannot switch ssl ${this.optBool('ssl') ? 'on' : 'off'}: ${e.message}${this.wss ? '; still serving as before' : '; the brick serves nobody until it restarts'}`));
    }
  }

  /** The brick's spans: named after the brick (its locks' name is the brick path). */
  private applyTracing(): Promise<void> {
    const on = this.optBool('trace');
    return setTracing(this, on ? { service: `brickfs-brick ${this.children[0]?.name ?? this.name}`, endpoint: this.optString('trace-endpoint') } : undefined);
  }

  override statedump(): Record<string, unknown> {
    return {
      port: this.boundPort, tls: this.tls, cacheInvalidation: this.optBool('cache-invalidation'), pushes: this.pushes,
      limits: { outstandingRpcs: this.optNumber('outstanding-rpc-limit'), outstandingBytes: this.optNumber('outstanding-bytes-limit'), openFds: this.openFdLimit() },
      pauses: this.bounded.pauses, emfile: this.bounded.emfile,
      connections: [...this.conns].map((c) => ({
        id: c.id, name: c.name, kind: c.kind, address: c.addr, ...(c.cn === undefined ? {} : { cn: c.cn }), subvolume: c.subvol.name, fds: c.fds.size,
        pushes: !c.noPushes, inflight: c.inflight, inflightBytes: c.inflightBytes, queued: c.queue.length, queuedBytes: c.queuedBytes,
        unreadBytes: c.ws.bufferedAmount, paused: c.paused,
      })),
    };
  }

  /** The answers of the brick's stats socket (lib/stats-socket.ts): /stats, /profile, /top?list=read&count=N. */
  statsRequest(pathname: string, query: URLSearchParams): unknown {
    if (pathname === '/stats') return this.fopStats.snapshot();
    if (pathname === '/profile') return this.profile.profile();
    if (pathname === '/top') {
      const list = query.get('list') as TopList;
      if (!TOP_LISTS.includes(list)) throw new Error(`list must be one of ${TOP_LISTS.join(', ')}`);
      return this.profile.topList(list, Math.max(1, Number(query.get('count') ?? 100) || 100), this.openFds());
    }
    return undefined;
  }

  private openFds(): number {
    let n = 0;
    for (const c of this.conns) n += c.fds.size;
    return n;
  }

  /** Feeds the lifetime counters and the profile with one answered fop. */
  private observe(fop: FopName, wire: Record<string, unknown>, reply: Record<string, unknown> | undefined, fd: Fd | undefined, ns: number): void {
    this.fopStats.record(fop, ns, reply !== undefined);
    if (!reply) {
      this.profile.record(fop, ns);
      return;
    }
    const fdPath = fd ? fd.ctx.get(this.fdKey)?.path : undefined;
    let io: { read?: number; written?: number; path?: string } | undefined;
    if (fop === 'read' || fop === 'readfile' || (fop === 'lookup' && reply.data)) {
      const n = (reply.data as Buffer | undefined)?.length ?? 0;
      this.fopStats.bytes('read', n);
      io = { read: n, path: fop === 'read' ? fdPath : wire.path as string };
    } else if (fop === 'write' || fop === 'writev') {
      const n = fop === 'write' ? (wire.data as Buffer).length : (wire.extents as { data: Buffer }[]).reduce((a, e) => a + e.data.length, 0);
      this.fopStats.bytes('write', n);
      io = { written: n, path: fdPath };
    } else if (fop === 'open' || fop === 'create' || fop === 'readdir') {
      io = { path: wire.path as string };
    }
    this.profile.record(fop, ns, io);
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'ws://brick');
    const want = url.searchParams.get('subvolume');
    const subvol = this.children.find((c) => c.name === want);
    if (!subvol) {
      this.log.warn(`refused a client from ${req.socket.remoteAddress}: it asked for subvolume ${JSON.stringify(want)}, not exported here`);
      ws.close(CLOSE_REFUSED, REFUSED_TEXT);
      return;
    }
    const conn: Conn = {
      id: '', name: '', addr: plainAddress(req.socket.remoteAddress), kind: 'client', ws,
      ...(this.tls ? { cn: peerCommonName(req.socket as TLSSocket) ?? '' } : {}), sender: new CoalescingSender(ws), subvol, fds: new Map(),
      queue: [], queuedBytes: 0, inflight: 0, inflightBytes: 0, opening: 0, paused: false, gone: false,
    };
    conn.helloTimer = setTimeout(() => ws.close(CLOSE_NO_HELLO, `no hello within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    conn.helloTimer.unref();
    this.conns.add(conn);
    ws.on('message', (data, isBinary) => {
      this.onMessage(conn, data as Buffer, isBinary);
      this.throttle(conn);
    });
    // Replies the client read: what waited for room runs, and the socket is read again.
    socketOf(ws)?.on('drain', () => {
      this.pump(conn);
      this.throttle(conn);
    });
    ws.on('close', () => this.drop(conn));
    ws.on('error', (e) => this.log.warn(`connection ${conn.id || conn.name}: ${e.message}`));
  }

  /** The hello: the same version is served under an id of the brick's choosing; another is told this brick's and closed. */
  private hello(conn: Conn, h: HelloFrame): void {
    if (conn.id) {
      this.sendError(conn, 0, FsError.of('EPROTO', 'a second hello on one connection'));
      return;
    }
    clearTimeout(conn.helloTimer);
    const theirs = h.hello.version;
    if (theirs !== WIRE_VERSION) {
      const msg = `this brick speaks wire version ${WIRE_VERSION}, the client ${JSON.stringify(h.hello.name)} version ${theirs}`;
      this.log.warn(msg);
      conn.ws.send(encodeFrame({ v: WIRE_VERSION, hello: { version: WIRE_VERSION }, err: FsError.of('EPROTO', msg).toWire() }));
      conn.ws.close(CLOSE_VERSION, `wire version ${WIRE_VERSION} here, ${theirs} there`);
      return;
    }
    const refusal = this.admit(conn, h);
    if (refusal) {
      // The same close as every refusal: the client learns nothing of what was wrong.
      this.log.warn(`refused client ${JSON.stringify(h.hello.name)} from ${conn.addr}: ${refusal}`);
      conn.ws.close(CLOSE_REFUSED, REFUSED_TEXT);
      return;
    }
    conn.id = randomUUID();
    conn.name = h.hello.name;
    conn.noPushes = h.hello.pushes === false;
    this.log.debug(`client ${JSON.stringify(conn.name)} (${conn.kind}, ${conn.addr}) is connection ${conn.id} on ${conn.subvol.name}`);
    conn.ws.send(encodeFrame({ v: WIRE_VERSION, hello: { version: WIRE_VERSION, clientId: conn.id } }));
  }

  /** An option without a default, or undefined when the volfile does not set it. */
  private optional(key: string): string | undefined {
    const v = this.opts[key];
    return v === undefined ? undefined : String(v);
  }

  /**
   * Decides what a hello may be (GlusterFS's SETVOLUME through auth/login and auth/addr):
   * sets conn.kind and returns undefined, or says why the connection is refused. A volfile
   * without credentials trusts every client (hand-written volfiles, tests); with them, a
   * client must name this volume and say the client or the service credential. Address lists
   * and, under ssl, the certificate name list apply to every connection but the services'
   * (which run on the pool's own hosts, with the host's certificate).
   */
  private admit(conn: Conn, h: HelloFrame): string | undefined {
    const { username, password, volumeId } = h.hello;
    const volume = this.optional('volume-id');
    const logins: Array<[ConnKind, string | undefined, string | undefined]> = [
      ['client', this.optional('auth-username'), this.optional('auth-password')],
      ['service', this.optional('service-username'), this.optional('service-password')],
    ];
    const required = logins.some(([, u]) => u !== undefined);
    if (volume !== undefined && (volumeId ?? (required ? '' : volume)) !== volume) {
      return `it names volume ${JSON.stringify(volumeId ?? null)}, this brick is of volume ${volume}`;
    }
    if (!required) conn.kind = 'open';
    else {
      const login = logins.find(([, u]) => u !== undefined && u === username);
      if (!login || password === undefined || !sameSecret(password, login[2] ?? '')) {
        return username === undefined ? 'it has no credentials' : `wrong credentials (user ${JSON.stringify(username)})`;
      }
      conn.kind = login[0];
    }
    if (conn.kind !== 'service') {
      let allowed: boolean;
      try {
        allowed = addressAllowed(conn.addr, new AddressList(this.optString('auth-allow')), new AddressList(this.optString('auth-reject')));
      } catch (e) {
        return `auth-allow/auth-reject cannot be read (${(e as Error).message})`;
      }
      if (!allowed) return `address ${conn.addr} is not allowed (auth-allow ${this.optString('auth-allow')}; auth-reject ${this.optString('auth-reject') || 'none'})`;
      if (conn.cn !== undefined && !new NameList(this.optString('ssl-allow')).matches(conn.cn)) {
        return `certificate name ${JSON.stringify(conn.cn)} is not allowed (ssl-allow ${this.optString('ssl-allow')})`;
      }
    }
    return undefined;
  }

  private send(conn: Conn, frame: ReplyFrame): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.sender.send(encodeFramePooled(frame));
  }

  private sendError(conn: Conn, id: number, err: FsError): void {
    this.send(conn, { v: WIRE_VERSION, id, err: err.toWire() });
  }

  private onMessage(conn: Conn, data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.sendError(conn, 0, FsError.of('EPROTO', 'text frames are not part of the protocol'));
      return;
    }
    if (data.length > MAX_FRAME_BYTES) {
      this.sendError(conn, 0, FsError.of('EMSGSIZE', `frame of ${data.length} bytes exceeds ${MAX_FRAME_BYTES}`));
      return;
    }
    let req;
    try {
      req = decodeClientFrame(data);
    } catch (e) {
      const id = e instanceof MalformedFrameError ? e.id : 0;
      this.sendError(conn, id, FsError.of('EPROTO', (e as Error).message));
      return;
    }
    if ('hello' in req) {
      this.hello(conn, req);
      return;
    }
    const { id, fop, args } = req;
    if (!conn.id) {
      this.sendError(conn, id, FsError.of('EPROTO', 'the first message on a connection must be the hello'));
      return;
    }
    if (fop === 'ping') {
      this.send(conn, { v: WIRE_VERSION, id, ok: {} });
      return;
    }
    if (!isFopName(fop)) {
      this.sendError(conn, id, FsError.of('ENOSYS', `unknown fop ${JSON.stringify(fop)}`));
      return;
    }
    // A request without valid credentials is refused, never run as someone by default.
    const frame = this.squash(conn, frameFromWire(req.cred));
    if (!frame) {
      this.sendError(conn, id, FsError.of('EINVAL', 'request carries no valid credentials'));
      return;
    }
    const bad = argsProblem(FOPS[fop].args, args);
    if (bad) {
      this.sendError(conn, id, FsError.of(bad.code, `${fop}: ${bad.message}`));
      return;
    }
    const forbidden = conn.kind === 'client' ? serviceOnly(fop, args) : undefined;
    if (forbidden) {
      this.sendError(conn, id, FsError.of('EPERM', forbidden));
      return;
    }
    if (fop === 'entrylk' || fop === 'migrate') args.owner = `${conn.id}:${args.owner as string}`;
    // Locks taken along with a changelog update or a create belong to the connection too (clientGone).
    const specs = fop === 'xattrop' ? [(args as FopArgs<'xattrop'>).lock, (args as FopArgs<'xattrop'>).unlock] : fop === 'create' ? [(args as FopArgs<'create'>).burst?.lock] : [];
    for (const spec of specs) {
      if (spec) spec.owner = `${conn.id}:${spec.owner}`;
    }
    const asked = fop === 'read' || fop === 'readfile' ? Math.min(Number(args.size), MAX_READ_REPLY_BYTES) : 0;
    const r: Request = { id, fop, args, frame: req.trace === undefined ? frame : withTrace(frame, req.trace), bytes: data.length, cost: data.length + asked };
    // In arrival order, unless it only lets go of something others may wait for.
    // (Those bypass outstanding-rpc-limit up to twice it: they end quickly, and a flood of them is still bounded.)
    if ((conn.queue.length === 0 && this.mayRun(conn, r)) || (releasesOnly(fop, args) && conn.inflight < 2 * this.optNumber('outstanding-rpc-limit'))) {
      this.run(conn, r);
      return;
    }
    conn.queue.push(r);
    conn.queuedBytes += r.bytes;
  }

  /**
   * root-squash (GlusterFS's, as NFS's root_squash): uid 0 becomes anonuid, gid 0 and group 0
   * anongid. Frames of the pool's own services (negative pids: self-heal, rebalance) are not
   * squashed, as GlusterFS spares its trusted internal clients, but only on a connection that
   * authenticated as a service (or on a brick without credentials): on a client's, a negative
   * pid is a number like any other.
   */
  private squash(conn: Conn, f: Frame | undefined): Frame | undefined {
    if (!f || (f.pid < 0 && conn.kind !== 'client') || !this.optBool('root-squash')) return f;
    if (f.uid !== 0 && f.gid !== 0 && !f.groups.includes(0)) return f;
    const anongid = this.optNumber('anongid');
    return {
      uid: f.uid === 0 ? this.optNumber('anonuid') : f.uid,
      gid: f.gid === 0 ? anongid : f.gid,
      groups: f.groups.map((g) => (g === 0 ? anongid : g)),
      pid: f.pid,
    };
  }

  /** open-fd-limit, and never more than half of what the brick process may open. */
  private openFdLimit(): number {
    return Math.min(this.optNumber('open-fd-limit'), Math.floor(this.fdLimit / 2));
  }

  /** Whether req may run now: under outstanding-rpc-limit, and within outstanding-bytes-limit (one request always may). */
  private mayRun(conn: Conn, req: Request): boolean {
    if (conn.inflight >= this.optNumber('outstanding-rpc-limit')) return false;
    const limit = this.optNumber('outstanding-bytes-limit');
    const unread = conn.ws.bufferedAmount;
    if (unread >= limit) return false;
    return conn.inflight === 0 || conn.inflightBytes + unread + req.cost <= limit;
  }

  /** Runs the requests waiting for their turn, while there is room. */
  private pump(conn: Conn): void {
    let n = 0;
    while (n < conn.queue.length && !conn.gone && this.mayRun(conn, conn.queue[n]!)) {
      const req = conn.queue[n++]!;
      conn.queuedBytes -= req.bytes;
      this.run(conn, req);
    }
    if (n > 0) conn.queue.splice(0, n);
  }

  /**
   * Stops reading a connection that holds too much (its queue, or replies it does not read),
   * and reads it again once it holds little enough: the client's requests wait in its own
   * socket buffers, not in the brick's memory.
   */
  private throttle(conn: Conn): void {
    if (conn.gone) return;
    const bytes = this.optNumber('outstanding-bytes-limit');
    const over = conn.queue.length > QUEUE_PER_OUTSTANDING * this.optNumber('outstanding-rpc-limit')
      || conn.queuedBytes > bytes || conn.ws.bufferedAmount > bytes;
    if (over === conn.paused) return;
    conn.paused = over;
    if (over) {
      this.bounded.pauses++;
      this.log.debug(`connection ${conn.id} (${conn.name}): not read while it holds ${conn.queue.length} requests (${conn.queuedBytes} bytes) and ${conn.ws.bufferedAmount} bytes of unread replies`);
      conn.ws.pause();
    } else {
      conn.ws.resume();
    }
  }

  /** Runs one request, counted against its connection's bounds until its reply is written. */
  private run(conn: Conn, req: Request): void {
    if ((req.fop === 'open' || req.fop === 'create') && conn.fds.size + conn.opening >= this.openFdLimit()) {
      this.bounded.emfile++;
      this.sendError(conn, req.id, FsError.of('EMFILE', `this client holds ${conn.fds.size + conn.opening} open files on this brick, its limit (server.open-fd-limit)`));
      return;
    }
    conn.inflight++;
    conn.inflightBytes += req.cost;
    const opens = req.fop === 'open' || req.fop === 'create';
    if (opens) conn.opening++;
    this.dispatch(conn, req.id, req.fop, req.args, req.frame, () => {
      conn.inflight--;
      conn.inflightBytes -= req.cost;
      if (opens) conn.opening--;
      this.pump(conn);
      this.throttle(conn);
    });
  }

  /**
   * The fop's args as the brick's translators take them: an fd fop's number becomes the Fd
   * it stands for on this connection (EBADF if none; a release takes it from the connection),
   * and open and create get a new Fd, numbered when they succeed.
   */
  private local(conn: Conn, fop: FopName, args: Record<string, unknown>): { args: Record<string, unknown>; fd?: Fd } {
    if (fop === 'open' || fop === 'create') {
      const a = args as WireArgs<'open' | 'create'>;
      const fd = Fd.forPath(a.path, a.flags);
      fd.ctx.set(this.fdKey, { path: a.path });
      return { args: { ...args, fd }, fd };
    }
    if (!FOPS[fop].byFd) return { args };
    const n = args.fd as number;
    const fd = conn.fds.get(n);
    if (!fd) throw FsError.of('EBADF', `fd ${n} is not open on this connection`);
    if (fop === 'release') conn.fds.delete(n);
    return { args: { ...args, fd }, fd };
  }

  private dispatch(conn: Conn, id: number, fop: FopName, wire: Record<string, unknown>, frame: Frame, done: () => void): void {
    const start = profileStart();
    const began = startMark();
    let p: Promise<unknown>;
    let args = wire;
    let fd: Fd | undefined;
    try {
      ({ args, fd } = this.local(conn, fop, wire));
      p = frame.trace === undefined ? conn.subvol.call(fop, args as never, frame) : this.traced(conn.subvol, fop, args, frame);
    } catch (e) {
      p = Promise.reject(e);
    }
    // done() right after the reply is written, in the same callback: the connection's counts
    // (fds open and opening, bytes held) never see one request twice.
    p.then(
      (reply) => {
        try {
          let ok = reply as Record<string, unknown>;
          if ((fop === 'open' || fop === 'create') && fd) {
            // The connection went while this open ran: nobody will release the fd but us.
            if (conn.gone) conn.subvol.call('release', { fd }, ROOT_FRAME).catch(() => undefined);
            else {
              const n = this.nextFd++;
              conn.fds.set(n, fd);
              ok = { ...ok, fd: n };
              this.profile.opened(this.openFds());
            }
          } else if (fop === 'rename') this.renamed(conn.subvol, wire.from as string, wire.to as string);
          this.send(conn, { v: WIRE_VERSION, id, ok });
          if (FOPS[fop].modifies && this.conns.size > 1 && this.optBool('cache-invalidation')) this.changed(conn, fop, wire, fd);
          profileRecord('brick', fop, start);
          this.observe(fop, wire, reply as Record<string, unknown>, fd, elapsedNs(began));
        } finally {
          done();
        }
      },
      (e) => {
        try {
          const err = e instanceof TypeError ? FsError.of('EINVAL', e.message) : FsError.from(e);
          if (!(e instanceof FsError)) this.log.debug(`${fop} failed: ${(e as Error)?.stack ?? String(e)}`);
          this.sendError(conn, id, err);
          this.observe(fop, wire, undefined, fd, elapsedNs(began));
        } finally {
          done();
        }
      },
    );
  }

  /** A request carrying a trace: the server span the brick's translators' spans hang from. */
  private traced(subvol: Xlator, fop: FopName, args: Record<string, unknown>, frame: Frame): Promise<unknown> {
    return traceFop(`${this.name} ${fop}`, frame, (f) => subvol.call(fop, args as never, f), 'server');
  }

  /**
   * Open fds follow a rename of their name (or of a directory above it), whoever renamed it,
   * so that an upcall for an fd fop names the file as the other clients know it now.
   */
  private renamed(subvol: Xlator, from: string, to: string): void {
    const under = from + '/';
    for (const c of this.conns) {
      if (c.subvol !== subvol) continue;
      for (const fd of c.fds.values()) {
        const served = fd.ctx.get(this.fdKey)!;
        if (served.path === from) served.path = to;
        else if (served.path.startsWith(under)) served.path = to + served.path.slice(from.length);
      }
    }
  }

  /** The volume paths a successful modifying fop changed; none for internal traffic. */
  private changedPaths(fop: FopName, args: Record<string, unknown>, fd: Fd | undefined): string[] {
    if (NOT_PUSHED.has(fop)) return [];
    if (fop === 'rename') return [args.from, args.to].filter((p): p is string => typeof p === 'string');
    if (fop === 'link') return [args.path, args.target].filter((p): p is string => typeof p === 'string');
    if (FOPS[fop].byFd) return fd ? [fd.ctx.get(this.fdKey)!.path] : [];
    return typeof args.path === 'string' ? [args.path] : [];
  }

  /** Queues the paths fop changed for every other connection to the same subvolume. */
  private changed(from: Conn, fop: FopName, args: Record<string, unknown>, fd: Fd | undefined): void {
    const paths = this.changedPaths(fop, args, fd);
    if (paths.length === 0) return;
    for (const c of this.conns) {
      // A connection before its hello gets nothing it did not ask for.
      if (c === from || c.subvol !== from.subvol || !c.id || c.noPushes) continue;
      const set = (c.changed ??= new Set());
      for (const p of paths) set.add(p);
      if (set.size >= MAX_PUSH_PATHS) {
        this.push(c);
        continue;
      }
      this.pushing.add(c);
    }
    if (this.pushing.size > 0 && !this.pushScheduled) {
      this.pushScheduled = true;
      // After this turn's replies: a burst of writes costs each other client one frame.
      setImmediate(() => {
        this.pushScheduled = false;
        for (const c of this.pushing) this.push(c);
        this.pushing.clear();
      });
    }
  }

  private push(conn: Conn): void {
    const paths = conn.changed;
    conn.changed = undefined;
    if (!paths || paths.size === 0 || conn.ws.readyState !== conn.ws.OPEN) return;
    this.pushes++;
    conn.ws.send(encodeFrame({ v: WIRE_VERSION, push: 'invalidate', paths: [...paths] }));
  }

  /** features/locks: tell the holder's client that its lock is wanted (owners are "clientId:owner"). */
  override lockContended(path: string, name: string, owner: string): void {
    for (const c of this.conns) {
      if (!owner.startsWith(c.id + ':') || c.ws.readyState !== c.ws.OPEN) continue;
      c.ws.send(encodeFrame({ v: WIRE_VERSION, push: 'contended', path, name, owner: owner.slice(c.id.length + 1) }));
      return;
    }
  }

  private drop(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    conn.gone = true;
    conn.queue = [];
    conn.queuedBytes = 0;
    clearTimeout(conn.helloTimer);
    this.pushing.delete(conn);
    for (const fd of conn.fds.values()) {
      conn.subvol.call('release', { fd }, ROOT_FRAME).catch(() => undefined);
    }
    conn.fds.clear();
    if (conn.id) conn.subvol.clientGone(conn.id);
  }
}

registerXlator('protocol/server', Server);
