import { frameFromWire, ROOT_FRAME, type Frame } from '../../../lib/frame.js';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { FsError } from '../../../lib/errors.js';
import { FOPS, isFopName, type FopArgs, type FopName } from '../../../lib/fops.js';
import { profileRecord, profileStart } from '../../../lib/profile.js';
import { registerXlator } from '../../../lib/registry.js';
import { argsProblem, TOO_LONG } from '../../../lib/rpc/args.js';
import {
  decodeClientFrame, encodeFrame, encodeFramePooled, HARD_MAX_FRAME_BYTES, MalformedFrameError, MAX_FRAME_BYTES, WIRE_VERSION,
  type HelloFrame, type ReplyFrame,
} from '../../../lib/rpc/frame.js';
import { CoalescingSender } from '../../../lib/rpc/coalescing-sender.js';
import { Xlator, type XlatorInit } from '../../../lib/xlator.js';

/** Per-connection state: fds to release and the lock-owner prefix when the client goes. */
interface Conn {
  /** What this brick calls the connection (its locks' owner prefix); empty until the hello. */
  id: string;
  /** What the client calls itself (its hello), for logs and statedump. */
  name: string;
  /** Closes a connection that says no hello in time. */
  helloTimer?: NodeJS.Timeout;
  ws: WebSocket;
  /** Replies of one event-loop turn go out in one socket write. */
  sender: CoalescingSender;
  subvol: Xlator;
  /** Open fds and the volume path each was opened at (what an upcall names for an fd fop). */
  fds: Map<number, string>;
  /** Paths other clients changed this event-loop turn, pushed to this client at its end. */
  changed?: Set<string>;
}

/**
 * Internal traffic that changes nothing a client caches: replicate's changelog around every
 * write burst (xattrop) and rebalance's migration handshake (migrate).
 */
const NOT_PUSHED: ReadonlySet<FopName> = new Set(['xattrop', 'migrate']);

/** Paths in one push at most: a bigger burst goes out in several frames. */
const MAX_PUSH_PATHS = 1024;

/** How long a new connection may take to say its hello before it is closed. */
const HELLO_TIMEOUT_MS = 30_000;

/** WebSocket close codes: the subvolume is not exported here; the client speaks another version; no hello in time. */
const CLOSE_NO_SUBVOLUME = 4004;
const CLOSE_VERSION = 4005;
const CLOSE_NO_HELLO = 4008;

/**
 * protocol/server: serves its subvolumes over WebSocket. A client names the subvolume it
 * wants in the URL (?subvolume=NAME, GlusterFS's remote-subvolume), then says its hello: the
 * wire version it speaks, answered with this brick's and the id the brick gives the
 * connection (lib/rpc/frame.ts); another version is refused there, once, instead of in every
 * fop. Every request's args are checked against the fop table's spec before dispatch (EINVAL
 * naming the field). Requests are handled concurrently in arrival order (pipelined); every
 * failure, malformed frames included, becomes an error reply and the connection keeps serving.
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
    'listen-host': { type: 'string', default: '0.0.0.0', description: 'Address to listen on' },
    'cache-invalidation': {
      type: 'bool', default: true,
      description: 'Tell the other clients which paths a client changed, so their caches drop them (on/off)',
      volume: { key: 'features.cache-invalidation', description: 'Bricks tell every other client which paths a client changed, so their caches (and the kernel\'s) drop them at once instead of after their timeouts; running bricks apply it at once (on/off, default on)' },
    },
  } as const;

  private wss?: WebSocketServer;
  private readonly conns = new Set<Conn>();
  /** Connections with paths to push at the end of this turn. */
  private readonly pushing = new Set<Conn>();
  private pushScheduled = false;
  private pushes = 0;
  private boundPort = 0;

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length === 0) throw new Error('protocol/server needs at least one subvolume');
  }

  get port(): number {
    return this.boundPort;
  }

  override async init(): Promise<void> {
    const wss = new WebSocketServer({
      port: this.optNumber('listen-port'),
      host: this.optString('listen-host'),
      maxPayload: HARD_MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const addr = wss.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : 0;
    wss.on('error', (e) => this.log.error(`listener: ${e.message}`));
    wss.on('connection', (ws, req) => this.accept(ws, req));
  }

  override async fini(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
  }

  /** cache-invalidation applies at once; the listener stays where it is until a restart. */
  override reconfigure(options: Record<string, string>): void {
    const before = [this.optNumber('listen-port'), this.optString('listen-host')];
    super.reconfigure(options);
    if (before[0] !== this.optNumber('listen-port') || before[1] !== this.optString('listen-host')) {
      this.log.warn(`listen-port/listen-host changed in the volfile; the brick keeps listening on ${before[1]}:${this.boundPort} until it restarts`);
    }
  }

  override statedump(): Record<string, unknown> {
    return {
      port: this.boundPort, cacheInvalidation: this.optBool('cache-invalidation'), pushes: this.pushes,
      connections: [...this.conns].map((c) => ({ id: c.id, name: c.name, subvolume: c.subvol.name, fds: c.fds.size })),
    };
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'ws://brick');
    const want = url.searchParams.get('subvolume');
    const subvol = this.children.find((c) => c.name === want);
    if (!subvol) {
      ws.close(CLOSE_NO_SUBVOLUME, `no subvolume ${JSON.stringify(want)} here; exported: ${this.children.map((c) => c.name).join(' ')}`);
      return;
    }
    const conn: Conn = { id: '', name: '', ws, sender: new CoalescingSender(ws), subvol, fds: new Map() };
    conn.helloTimer = setTimeout(() => ws.close(CLOSE_NO_HELLO, `no hello within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    conn.helloTimer.unref();
    this.conns.add(conn);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data as Buffer, isBinary));
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
    conn.id = randomUUID();
    conn.name = h.hello.name;
    this.log.debug(`client ${JSON.stringify(conn.name)} is connection ${conn.id} on ${conn.subvol.name}`);
    conn.ws.send(encodeFrame({ v: WIRE_VERSION, hello: { version: WIRE_VERSION, clientId: conn.id } }));
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
    const frame = frameFromWire(req.cred);
    if (!frame) {
      this.sendError(conn, id, FsError.of('EINVAL', 'request carries no valid credentials'));
      return;
    }
    const bad = argsProblem(FOPS[fop].args, args);
    if (bad) {
      this.sendError(conn, id, FsError.of(bad.includes(TOO_LONG) ? 'ENAMETOOLONG' : 'EINVAL', `${fop}: ${bad}`));
      return;
    }
    if (fop === 'entrylk' || fop === 'migrate') args.owner = `${conn.id}:${args.owner as string}`;
    // Locks taken along with a changelog update or a create belong to the connection too (clientGone).
    const specs = fop === 'xattrop' ? [(args as FopArgs<'xattrop'>).lock, (args as FopArgs<'xattrop'>).unlock] : fop === 'create' ? [(args as FopArgs<'create'>).burst?.lock] : [];
    for (const spec of specs) {
      if (spec) spec.owner = `${conn.id}:${spec.owner}`;
    }
    this.dispatch(conn, id, fop, args, frame);
  }

  private dispatch(conn: Conn, id: number, fop: FopName, args: Record<string, unknown>, frame: Frame): void {
    const start = profileStart();
    let p: Promise<unknown>;
    try {
      p = conn.subvol.call(fop, args as never, frame);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (ok) => {
        if (fop === 'open' || fop === 'create') conn.fds.set((ok as { fd: number }).fd, args.path as string);
        else if (fop === 'release') conn.fds.delete(args.fd as number);
        else if (fop === 'rename') this.renamed(args.from as string, args.to as string);
        this.send(conn, { v: WIRE_VERSION, id, ok });
        if (FOPS[fop].modifies && this.conns.size > 1 && this.optBool('cache-invalidation')) this.changed(conn, fop, args);
        profileRecord('brick', fop, start);
      },
      (e) => {
        const err = e instanceof TypeError ? FsError.of('EINVAL', e.message) : FsError.from(e);
        if (!(e instanceof FsError)) this.log.debug(`${fop} failed: ${(e as Error)?.stack ?? String(e)}`);
        this.sendError(conn, id, err);
      },
    );
  }

  /** Open fds follow a rename of their name (or of a directory above it), whoever renamed it. */
  private renamed(from: string, to: string): void {
    const under = from + '/';
    for (const c of this.conns) {
      for (const [fd, p] of c.fds) {
        if (p === from) c.fds.set(fd, to);
        else if (p.startsWith(under)) c.fds.set(fd, to + p.slice(from.length));
      }
    }
  }

  /** The volume paths a successful modifying fop changed; none for internal traffic or an fd we do not know. */
  private static changedPaths(conn: Conn, fop: FopName, args: Record<string, unknown>): string[] {
    if (NOT_PUSHED.has(fop)) return [];
    if (fop === 'rename') return [args.from, args.to].filter((p): p is string => typeof p === 'string');
    if (fop === 'link') return [args.path, args.target].filter((p): p is string => typeof p === 'string');
    if (FOPS[fop].byFd) {
      const p = conn.fds.get(args.fd as number);
      return p === undefined ? [] : [p];
    }
    return typeof args.path === 'string' ? [args.path] : [];
  }

  /** Queues the paths fop changed for every other connection to the same subvolume. */
  private changed(from: Conn, fop: FopName, args: Record<string, unknown>): void {
    const paths = Server.changedPaths(from, fop, args);
    if (paths.length === 0) return;
    for (const c of this.conns) {
      // A connection before its hello gets nothing it did not ask for.
      if (c === from || c.subvol !== from.subvol || !c.id) continue;
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
    clearTimeout(conn.helloTimer);
    this.pushing.delete(conn);
    for (const fd of conn.fds.keys()) {
      conn.subvol.call('release', { fd }, ROOT_FRAME).catch(() => undefined);
    }
    conn.fds.clear();
    if (conn.id) conn.subvol.clientGone(conn.id);
  }
}

registerXlator('protocol/server', Server);
