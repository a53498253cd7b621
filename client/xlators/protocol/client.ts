import { ROOT_FRAME, type Frame } from '../../../lib/frame.js';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { BrickDisconnectedError, FsError, RpcTimeoutError } from '../../../lib/errors.js';
import { FOPS, reopenFlags, type FopArgs, type FopName, type FopReply, type WireArgs, type WireReply } from '../../../lib/fops.js';
import { CtxKey, type Fd } from '../../../lib/inode.js';
import { registerXlator } from '../../../lib/registry.js';
import { profileRecord, profileStart } from '../../../lib/profile.js';
import { CoalescingSender } from '../../../lib/rpc/coalescing-sender.js';
import { decodeHelloReply, decodeServerFrame, encodeFrame, encodeFramePooled, HARD_MAX_FRAME_BYTES, WIRE_VERSION, type Hello } from '../../../lib/rpc/frame.js';
import { traceFop, traceToWire, untraced } from '../../../lib/trace.js';
import { clientTlsOptions, loadTls, TlsConfigError, tlsReason } from '../../../lib/tls.js';
import { Xlator, type XlatorInit } from '../../../lib/xlator.js';
import { applyVolumeLogLevel, LOG_LEVEL_PATTERN } from '../../../lib/log.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  sentAt: number;
  fop: string;
  start: bigint;
}

/** This client's slot on an Fd: the brick's number for it; reopened by the fd's path after a reconnect. */
interface RemoteFd {
  remote: number;
  /** Connection epoch the remote number belongs to. */
  epoch: number;
  /** The reopen on the current connection, while it runs (fd fops sent meanwhile share it). */
  reopening?: Promise<number>;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 3000;

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** One name per client process, so a brick's logs tell connections of different mounts apart. */
const PROCESS_ID = randomUUID().slice(0, 8);

/**
 * protocol/client: one WebSocket to one brick subvolume. The connection is up once the
 * hello is answered (lib/rpc/frame.ts): a brick speaking another wire version is never
 * used (its fops fail with ENOTCONN; the log names both versions), and the brick names the
 * connection. Requests are pipelined (many in flight, matched by id). A request with no
 * answer within ping-timeout fails with ENOTCONN and the connection is dropped; while
 * disconnected, fops fail at once with ENOTCONN (never a hang) and the connection is
 * retried with backoff. fds survive a reconnect: they are reopened by path on next use.
 * With ssl the connection is TLS with this host's certificate (lib/tls.ts), both ways checked
 * against the CA.
 */
export class ProtocolClient extends Xlator {
  static override readonly description = 'Talks to one brick over WebSocket';
  static override readonly options = {
    'log-level': {
      type: 'string', default: '', pattern: LOG_LEVEL_PATTERN,
      description: 'The log level of the whole client process (mount, self-heal daemon, rebalance); empty: the process\'s own (--log-level, -o log-level=)',
      volume: { key: 'diagnostics.client-log-level', description: 'Log level of the volume\'s clients (mounts, self-heal daemons, rebalance): DEBUG, INFO, WARNING or ERROR (GlusterFS\'s TRACE, CRITICAL, NONE too); empty (the default): each process\'s own level. Mounts apply it at once' },
    },
    'remote-host': { type: 'string', required: true, description: 'Brick host' },
    'remote-port': { type: 'int', required: true, min: 1, max: 65535, description: 'Brick port' },
    'remote-subvolume': { type: 'string', required: true, description: 'Name of the subvolume the brick exports' },
    'ping-timeout': {
      type: 'int', default: 42, min: 1, max: 1800, description: 'Seconds without an answer before the brick is declared down',
      volume: { key: 'network.ping-timeout', description: 'Seconds without an answer before a client declares a brick down' },
    },
    username: { type: 'string', description: 'The credential this client says in its hello (volgen writes the volume\'s); a brick with credentials refuses a client without them' },
    password: { type: 'string', description: 'The password of username' },
    'volume-id': { type: 'string', description: 'The id of the volume this client means to reach, said in its hello: a brick of another volume refuses it' },
    ssl: {
      type: 'bool', default: false,
      description: 'Connect over TLS (wss), presenting this host\'s certificate from the certificate directory ($BRICKFS_TLS_DIR, else /etc/ssl/brickfs) and accepting only a brick whose certificate its CA signed',
      volume: { key: 'client.ssl', description: 'Clients (mounts, and the pool\'s heal and rebalance processes) reach the bricks over TLS, presenting their host\'s certificate (/etc/ssl/brickfs/brickfs.pem, .key, .ca; docs/security.md) and trusting only bricks whose certificate the CA signed; set server.ssl too. Mounts switch at once (on/off, default off)' },
    },
    invalidations: {
      type: 'bool', default: true,
      description: 'Asks the bricks for invalidation pushes (paths other clients changed) in the hello; off for processes that cache nothing (self-heal, rebalance): each push costs the brick a socket write',
    },
    'coalesce-ms': { type: 'int', default: 1, min: 0, max: 50, description: 'Milliseconds a request nobody waits for (release, a post-op sent behind) waits to share the next request\'s socket write (0: sent at once)' },
  } as const;

  private ws?: WebSocket;
  private sender?: CoalescingSender;
  private connected = false;
  private stopped = false;
  private epoch = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Each open Fd's brick number lives in its ctx under this key (one per instance: a graph switch's new client has its own). */
  private readonly fdKey: CtxKey<RemoteFd>;
  /** Fds open through this client (for the statedump). */
  private openFds = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private reconnectTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private firstAttempt?: () => void;
  /** Invalidation pushes received from the brick. */
  private invalidations = 0;
  /** The brick's name for the connection (its hello reply). */
  private clientId?: string;
  /** Closes a connection whose hello is not answered within ping-timeout. */
  private helloTimer?: NodeJS.Timeout;
  /** The last refusal logged as an error: a brick refusing every retry the same way is logged once. */
  private lastRefusal?: string;

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length) throw new Error('protocol/client takes no subvolumes');
    this.fdKey = new CtxKey<RemoteFd>(this.name);
  }

  get isUp(): boolean {
    return this.connected;
  }

  /** The brick as users name it: HOST:/path. */
  get brick(): string {
    return `${this.optString('remote-host')}:${this.optString('remote-subvolume')}`;
  }

  private get pingTimeoutMs(): number {
    return this.optNumber('ping-timeout') * 1000;
  }

  private get target(): string {
    return `${this.optString('remote-host')}:${this.optNumber('remote-port')}:${this.optString('remote-subvolume')}`;
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    applyVolumeLogLevel(this.optString('log-level'));
  }

  /** Connects once; resolves when the first attempt succeeded or failed (the mount goes on). */
  override async init(): Promise<void> {
    applyVolumeLogLevel(this.optString('log-level'));
    this.watchdog = setInterval(() => this.checkTimeouts(), Math.min(1000, this.pingTimeoutMs / 4));
    this.watchdog.unref();
    await new Promise<void>((resolve) => {
      this.firstAttempt = resolve;
      this.connect();
    });
  }

  override async fini(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.helloTimer);
    this.failAll(new BrickDisconnectedError(this.target));
    this.sender?.drop();
    this.ws?.terminate();
  }

  override statedump(): Record<string, unknown> {
    return { target: this.target, connected: this.connected, clientId: this.clientId, wireVersion: WIRE_VERSION, epoch: this.epoch, inFlight: this.pending.size, fds: this.openFds, invalidations: this.invalidations, sends: this.sender?.stats };
  }

  private connect(): void {
    const host = this.optString('remote-host');
    const ssl = this.optBool('ssl');
    let tls = {};
    if (ssl) {
      try {
        tls = clientTlsOptions(loadTls());
      } catch (e) {
        // The certificate may be put in place later: retried as a brick that does not answer.
        const why = `${this.target}: ${e instanceof TlsConfigError ? e.message : (e as Error).message}`;
        if (why !== this.lastRefusal) this.log.error(why);
        this.lastRefusal = why;
        this.backoffMs = BACKOFF_MAX_MS;
        this.firstAttempt?.();
        this.firstAttempt = undefined;
        this.scheduleReconnect();
        return;
      }
    }
    const url = `${ssl ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${this.optNumber('remote-port')}/?subvolume=${encodeURIComponent(this.optString('remote-subvolume'))}`;
    const ws = new WebSocket(url, {
      ...tls,
      maxPayload: HARD_MAX_FRAME_BYTES, perMessageDeflate: false, handshakeTimeout: this.pingTimeoutMs,
      // RFC 6455 masking protects browsers' HTTP proxies, not us; ws skips the XOR pass over
      // every payload byte when the mask is zero (5x on 128 KiB writes, measured).
      generateMask: zeroMask,
    });
    this.ws = ws;
    const sender = new CoalescingSender(ws, () => this.optNumber('coalesce-ms'));
    this.sender = sender;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      ws.send(encodeFrame({ v: WIRE_VERSION, hello: { version: WIRE_VERSION, name: `${PROCESS_ID}-${this.name}`, ...this.helloFields() } }));
      this.helloTimer = setTimeout(() => {
        this.log.error(`${this.target} did not answer the hello within ${this.pingTimeoutMs} ms`);
        ws.terminate();
      }, this.pingTimeoutMs);
      this.helloTimer.unref();
    });
    ws.on('message', (data: Buffer) => (this.connected ? this.onReply(data) : this.onHello(ws, data)));
    ws.on('error', (e) => {
      // A TLS refusal (our certificate not accepted, theirs not of our CA, a brick not speaking
      // TLS, or TLS where it speaks plain) is logged once: retrying will not change it alone.
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (/SSL|TLS|CERT/i.test(code) || /certificate|ssl|tls/i.test(e.message)) {
        const why = `${this.target}: TLS connection failed (${tlsReason(e)}): check client.ssl and server.ssl are both on, and that both hosts' certificates come from one CA`;
        if (why !== this.lastRefusal) this.log.error(why);
        this.lastRefusal = why;
        return;
      }
      this.log.debug(`${this.target}: ${e.message}`);
    });
    ws.on('close', (code, reason) => {
      sender.drop();
      if (this.ws !== ws) return;
      clearTimeout(this.helloTimer);
      const wasUp = this.connected;
      this.connected = false;
      this.ws = undefined;
      this.failAll(new BrickDisconnectedError(this.target));
      // The brick says no more than "refused" (its log says why): a wrong remote-subvolume,
      // credentials or volume id, or an address not allowed. Retried slowly: a volume set may allow it.
      if (code === 4003) {
        const why = `${this.target}: the brick refused this client (${reason.toString()}): check remote-subvolume, the volfile's credentials, auth.allow/auth.reject, and the brick's log`;
        if (why !== this.lastRefusal) this.log.error(why);
        this.lastRefusal = why;
        this.backoffMs = BACKOFF_MAX_MS;
      }
      if (wasUp) {
        this.log.warn(`disconnected from ${this.target}`);
        for (const p of this.parents) p.notify('CHILD_DOWN', this);
      }
      this.firstAttempt?.();
      this.firstAttempt = undefined;
      this.scheduleReconnect();
    });
  }

  /**
   * What the hello says of who this client is: the volfile's credentials and volume id, those
   * it has, and whether it wants invalidation pushes.
   */
  private helloFields(): Omit<Hello, 'version' | 'name'> {
    const opt = (k: string): string | undefined => (this.opts[k] === undefined ? undefined : String(this.opts[k]));
    const out: Omit<Hello, 'version' | 'name'> = this.optBool('invalidations') ? {} : { pushes: false };
    const [username, password, volumeId] = [opt('username'), opt('password'), opt('volume-id')];
    if (username !== undefined) out.username = username;
    if (password !== undefined) out.password = password;
    if (volumeId !== undefined) out.volumeId = volumeId;
    return out;
  }

  /** The brick's answer to the hello: up if it speaks our version, else closed (and retried slowly: it may be upgraded). */
  private onHello(ws: WebSocket, data: Buffer): void {
    if (this.ws !== ws) return;
    clearTimeout(this.helloTimer);
    let reply;
    try {
      reply = decodeHelloReply(data);
    } catch (e) {
      this.refused(ws, `${this.target} answered the hello with a bad frame: ${(e as Error).message}`);
      return;
    }
    const theirs = reply.hello.version;
    if (theirs !== WIRE_VERSION) {
      this.refused(ws, `${this.target} speaks wire version ${theirs}, this client ${WIRE_VERSION}: not using it until they agree`);
      return;
    }
    if (reply.err || reply.hello.clientId === undefined) {
      this.refused(ws, `${this.target} refused the hello: ${reply.err?.code ?? 'no client id'} ${reply.err?.message ?? ''}`);
      return;
    }
    this.clientId = reply.hello.clientId;
    this.connected = true;
    this.epoch++;
    this.backoffMs = BACKOFF_MIN_MS;
    this.lastRefusal = undefined;
    this.log.info(`connected to ${this.target} (wire version ${WIRE_VERSION}, connection ${this.clientId})`);
    this.firstAttempt?.();
    this.firstAttempt = undefined;
    for (const p of this.parents) p.notify('CHILD_UP', this);
  }

  private refused(ws: WebSocket, why: string): void {
    if (why !== this.lastRefusal) this.log.error(why);
    else this.log.debug(why);
    this.lastRefusal = why;
    this.backoffMs = BACKOFF_MAX_MS;
    ws.terminate();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.backoffMs * (0.75 + Math.random() / 2);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref();
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** The oldest request is first in the map: if it is overdue the brick is not answering. */
  private checkTimeouts(): void {
    const first = this.pending.values().next();
    if (first.done) return;
    if (Date.now() - first.value.sentAt < this.pingTimeoutMs) return;
    this.log.error(`${this.target} has not answered for ${this.pingTimeoutMs} ms; disconnecting`);
    this.failAll(new RpcTimeoutError(this.target, this.pingTimeoutMs));
    this.ws?.terminate();
  }

  private onReply(data: Buffer): void {
    let frame;
    try {
      frame = decodeServerFrame(data);
    } catch (e) {
      this.log.error(`${this.target}: bad reply frame: ${(e as Error).message}`);
      return;
    }
    if (frame === undefined) return;
    if ('push' in frame) {
      if (frame.push === 'contended') {
        this.lockContended(frame.path, frame.name, frame.owner);
        return;
      }
      // Another client changed these paths on this brick: the caches above drop them.
      this.invalidations++;
      this.invalidate(frame.paths, this);
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) {
      if (frame.err) this.log.warn(`${this.target}: ${frame.err.code} ${frame.err.message}`);
      return;
    }
    this.pending.delete(frame.id);
    profileRecord('rpc', p.fop, p.start);
    if (frame.err) p.reject(FsError.fromWire(frame.err));
    else p.resolve(frame.ok ?? {});
  }

  /**
   * Sends one request to the brick as is (fds already the brick's numbers, no inode).
   * `behind`: nobody waits for its answer soon, so it may wait a moment to share the next
   * request's write.
   */
  private send(fop: string, args: object, cred: Frame, behind = false): Promise<unknown> {
    const sender = this.sender;
    if (!this.connected || !sender) return Promise.reject(new BrickDisconnectedError(this.target));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sentAt: Date.now(), fop, start: profileStart() });
      const frame = encodeFramePooled(cred.trace === undefined
        ? { v: WIRE_VERSION, id, fop, cred, args: args as Record<string, unknown> }
        : { v: WIRE_VERSION, id, fop, cred: untraced(cred), trace: traceToWire(cred.trace), args: args as Record<string, unknown> });
      sender.send(frame, behind);
    });
  }

  /** One fop in its wire form. */
  private rpc<F extends FopName>(fop: F, args: WireArgs<F>, cred: Frame, behind = false): Promise<WireReply<F>> {
    return this.send(fop, args, cred, behind) as Promise<WireReply<F>>;
  }

  override flushBehind(): void {
    this.sender?.flush();
  }

  /** The brick's number for fd, reopening it by its path if the connection changed since it was opened. */
  private remoteFd(fd: Fd): Promise<number> | number {
    const f = fd.ctx.get(this.fdKey);
    if (!f) throw FsError.of('EBADF', `${this.name}: fd on ${fd.path} is not open here`);
    if (f.epoch === this.epoch) return f.remote;
    if (!f.reopening) {
      const epoch = this.epoch;
      // The open was allowed when it was made: the reopen is the client's own work.
      f.reopening = this.rpc('open', { path: fd.path, flags: reopenFlags(fd.flags) }, ROOT_FRAME).then(
        ({ fd: remote }) => {
          f.reopening = undefined;
          // Released meanwhile: the brick's new fd is nobody's.
          if (fd.ctx.get(this.fdKey) !== f) {
            if (epoch === this.epoch) this.rpc('release', { fd: remote }, ROOT_FRAME, true).catch(() => undefined);
            throw FsError.of('EBADF', `${this.name}: fd on ${fd.path} was released`);
          }
          f.remote = remote;
          f.epoch = epoch;
          return remote;
        },
        (e: unknown) => {
          f.reopening = undefined;
          throw e;
        },
      );
    }
    return f.reopening;
  }

  override call<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    return frame.trace === undefined ? this.wind(fop, args, frame) : this.traced(fop, args, frame);
  }

  /**
   * A traced fop: its span is the wire's client end, continued by the brick's protocol/server.
   * Its own method: a closure in call() would cost every fop a context, traced or not.
   */
  private traced<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    return traceFop(`${this.name} ${fop}`, frame, (f) => this.wind(fop, args, f), 'client');
  }

  private wind<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    switch (fop) {
      case 'open':
      case 'create':
        return this.opener(fop, args as FopArgs<'open' | 'create'>, frame) as Promise<FopReply<F>>;
      case 'release':
        return this.releaser((args as FopArgs<'release'>).fd, frame) as Promise<FopReply<F>>;
      case 'flush':
        // close(2) waits for flush; the brick has nothing to do for it (no posix locks or
        // buffered writes there), so answer here and save a round trip per close.
        return (args as FopArgs<'flush'>).fd.ctx.has(this.fdKey)
          ? Promise.resolve({} as FopReply<F>)
          : Promise.reject(FsError.of('EBADF'));
      case 'xattrop': {
        const { behind, ...rest } = args as FopArgs<'xattrop'>;
        return this.rpc('xattrop', rest, frame, behind) as Promise<FopReply<F>>;
      }
      default:
        if (FOPS[fop].byFd) return this.byFd(fop, args, frame);
        return this.send(fop, withoutInode(args), frame) as Promise<FopReply<F>>;
    }
  }

  /** open and create: the brick makes the fd and answers its number, kept in fd's slot; the reply above carries none. */
  private async opener(fop: 'open' | 'create', args: FopArgs<'open' | 'create'>, frame: Frame): Promise<FopReply<'open' | 'create'>> {
    const { fd, ...wire } = withoutInode(args);
    const epoch = this.epoch;
    const { fd: remote, ...reply } = (await this.send(fop, wire, frame)) as WireReply<'open' | 'create'>;
    const old = fd.ctx.get(this.fdKey);
    if (old) {
      // Opened again through this client: the brick's older fd for it is nobody's now.
      if (old.epoch === this.epoch && this.connected) this.rpc('release', { fd: old.remote }, ROOT_FRAME, true).catch(() => undefined);
    } else {
      this.openFds++;
    }
    fd.ctx.set(this.fdKey, { remote, epoch });
    return reply;
  }

  private async releaser(fd: Fd, frame: Frame): Promise<FopReply<'release'>> {
    const f = fd.ctx.take(this.fdKey);
    if (!f) throw FsError.of('EBADF');
    this.openFds--;
    // A brick fd of an older connection was already released by the brick.
    if (f.epoch === this.epoch && this.connected) await this.rpc('release', { fd: f.remote }, frame, true);
    return {};
  }

  private async byFd<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const remote = await this.remoteFd((args as { fd: Fd }).fd);
    return this.send(fop, { ...args, fd: remote }, frame) as Promise<FopReply<F>>;
  }

  /** Round trip to the brick, for health checks. */
  ping(): Promise<unknown> {
    return this.send('ping', {}, ROOT_FRAME);
  }
}

/** The args as sent: the caller's inode stays in this process (the path names the file on the brick). */
function withoutInode<T extends object>(args: T): Omit<T, 'inode'> {
  if (!('inode' in args)) return args;
  const { inode: _, ...rest } = args as T & { inode?: unknown };
  return rest;
}

registerXlator('protocol/client', ProtocolClient);
