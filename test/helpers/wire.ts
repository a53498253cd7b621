import fs from 'node:fs';
import WebSocket from 'ws';
import { ROOT_FRAME, type Frame } from '../../lib/frame.js';
import { clientTlsOptions, loadTls } from '../../lib/tls.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { decodeHelloReply, decodeServerFrame, encodeFrame, WIRE_VERSION, type Hello, type HelloReplyFrame, type PushFrame, type ReplyFrame } from '../../lib/rpc/frame.js';
import { useTestTls } from './tls.js';

/** Who a client says it is in its hello: credentials, volume id, whether it wants pushes (none unless given). */
export type HelloCredentials = Pick<Hello, 'username' | 'password' | 'volumeId' | 'pushes'>;

/** Where a volfile's first protocol/client connects, and what it says in its hello. */
export interface VolfileHello {
  port: number;
  subvolume: string;
  credentials: HelloCredentials;
}

/** What a volfile's first protocol/client says in its hello (a daemon's client.vol or service.vol), and where its brick is. */
export function helloOf(volfile: string): VolfileHello {
  const decl = parseVolfile(fs.readFileSync(volfile, 'utf8'), volfile).find((d) => d.type === 'protocol/client');
  if (!decl) throw new Error(`${volfile} has no protocol/client`);
  const o = decl.options;
  return {
    port: Number(o['remote-port']),
    subvolume: o['remote-subvolume']!,
    credentials: { username: o.username, password: o.password, volumeId: o['volume-id'] },
  };
}

export interface RawConnectOptions {
  /** Say no hello (a test that fops before it are refused, or that sends its own). */
  skipHello?: boolean;
  /** Address to connect to (127.0.0.1 unless given). */
  host?: string;
  /** Extra headers of the WebSocket handshake (an Origin, as a browser sends). */
  headers?: Record<string, string>;
  /** What the hello says of who the client is. */
  credentials?: HelloCredentials;
  /** Local address to connect from (another address of the host: 127.0.0.2). */
  localAddress?: string;
  /**
   * How to speak to the brick. Unset: as the bricks the helpers make speak in this run —
   * under BRICKFS_TEST_TLS=1 over TLS as a real client does (this host's certificate, the
   * brick's checked against the CA), plain WebSocket otherwise. false: plain WebSocket.
   * A certificate and key (or neither): over TLS presenting them, the brick's own certificate
   * not checked, as the tests that give them are about what the brick lets in.
   */
  tls?: { cert?: Buffer; key?: Buffer } | false;
}

/** The TLS options of a connection as opts.tls asks (see RawConnectOptions), or undefined for plain WebSocket. */
function tlsOf(tls: RawConnectOptions['tls']): object | undefined {
  if (tls === false) return undefined;
  if (tls) return { ...tls, rejectUnauthorized: false };
  // The same certificate directory and options the bricks' real clients use (client.ssl).
  return Object.keys(useTestTls()).length > 0 ? clientTlsOptions(loadTls()) : undefined;
}

/**
 * A raw protocol client for poking a brick with well- and ill-formed frames. It says its
 * hello on connect (unless told not to); the brick's answer is `helloReply`.
 */
export class RawBrickClient {
  private readonly replies: ReplyFrame[] = [];
  private readonly waiters: Array<(r: ReplyFrame) => void> = [];
  /** Push frames the brick sent (cache invalidations), kept apart from the replies. */
  readonly pushes: PushFrame[] = [];
  private nextId = 1;
  closeCode?: number;
  /** The close reason the brick gave, once closed. */
  closeReason?: string;
  /** The close code, once the brick (or this client) closed the connection. */
  readonly closed: Promise<number>;
  /** The brick's answer to the hello, once it came. */
  helloReply?: HelloReplyFrame;
  private helloWaiter?: (r: HelloReplyFrame) => void;

  private constructor(readonly ws: WebSocket, private readonly credentials: HelloCredentials) {
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      resolve(code);
    }));
    ws.on('message', (d: Buffer) => {
      if (this.helloWaiter) {
        this.helloReply = decodeHelloReply(d);
        this.helloWaiter(this.helloReply);
        this.helloWaiter = undefined;
        return;
      }
      const r = decodeServerFrame(d);
      if (r === undefined) return;
      if ('push' in r) {
        this.pushes.push(r);
        return;
      }
      const w = this.waiters.shift();
      if (w) w(r);
      else this.replies.push(r);
    });
  }

  /**
   * Connects and says the hello (as `version`, WIRE_VERSION unless given): resolves once the
   * brick answered it, or closed the connection (closeCode says why).
   */
  static async connect(port: number, subvolume: string, opts: RawConnectOptions = {}): Promise<RawBrickClient> {
    const tls = tlsOf(opts.tls);
    const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://${opts.host ?? '127.0.0.1'}:${port}/?subvolume=${encodeURIComponent(subvolume)}`, {
      ...tls,
      maxPayload: 128 << 20, ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const c = new RawBrickClient(ws, opts.credentials ?? {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (!opts.skipHello) await c.hello();
    return c;
  }

  /** Says the hello and waits for its answer (or the connection's end: undefined). */
  async hello(version = WIRE_VERSION, name = 'rawtest'): Promise<HelloReplyFrame | undefined> {
    const answered = new Promise<HelloReplyFrame>((resolve) => { this.helloWaiter = resolve; });
    this.ws.send(encodeFrame({ v: WIRE_VERSION, hello: { version, name, ...this.credentials } }));
    const r = await Promise.race([answered, this.closed.then(() => undefined)]);
    this.helloWaiter = undefined;
    return r;
  }

  /** The next reply to arrive. */
  next(timeoutMs = 5000): Promise<ReplyFrame> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply')), timeoutMs);
      this.waiters.push((x) => { clearTimeout(timer); resolve(x); });
    });
  }

  sendRaw(data: Buffer | string): void {
    this.ws.send(data);
  }

  /** Sends one well-formed request, as root unless another caller (or none: null) is given, and returns its reply. */
  async call(fop: string, args: Record<string, unknown>, cred: Frame | null = ROOT_FRAME): Promise<ReplyFrame> {
    const id = this.nextId++;
    this.ws.send(encodeFrame({ v: WIRE_VERSION, id, fop, args, ...(cred ? { cred } : {}) }));
    const r = await this.next();
    if (r.id !== id) throw new Error(`reply for ${r.id}, expected ${id}`);
    return r;
  }

  close(): void {
    this.ws.terminate();
  }
}
