import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { FsError } from '../../../lib/errors.js';
import { isFopName, type FopName } from '../../../lib/fops.js';
import { profileRecord, profileStart } from '../../../lib/profile.js';
import { registerXlator } from '../../../lib/registry.js';
import {
  decodeRequest, encodeFrame, encodeFramePooled, HARD_MAX_FRAME_BYTES, MalformedFrameError, MAX_FRAME_BYTES, WIRE_VERSION,
} from '../../../lib/rpc/frame.js';
import { Xlator, type XlatorInit } from '../../../lib/xlator.js';

/** Per-connection state: fds to release and the lock-owner prefix when the client goes. */
interface Conn {
  id: string;
  ws: WebSocket;
  subvol: Xlator;
  fds: Set<number>;
}

/**
 * protocol/server: serves its subvolumes over WebSocket. A client names the subvolume it
 * wants in the URL (?subvolume=NAME, GlusterFS's remote-subvolume). Requests are handled
 * concurrently in arrival order (pipelined); every failure, malformed frames included,
 * becomes an error reply and the connection keeps serving.
 */
export class Server extends Xlator {
  static override readonly description = 'Serves subvolumes to clients over WebSocket';
  static override readonly options = {
    'listen-port': { type: 'int', required: true, min: 0, max: 65535, description: 'TCP port to listen on' },
    'listen-host': { type: 'string', default: '0.0.0.0', description: 'Address to listen on' },
  } as const;

  private wss?: WebSocketServer;
  private readonly conns = new Set<Conn>();
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

  override statedump(): Record<string, unknown> {
    return { port: this.boundPort, connections: [...this.conns].map((c) => ({ id: c.id, subvolume: c.subvol.name, fds: c.fds.size })) };
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'ws://brick');
    const want = url.searchParams.get('subvolume');
    const subvol = this.children.find((c) => c.name === want);
    if (!subvol) {
      ws.close(4004, `no subvolume ${JSON.stringify(want)} here; exported: ${this.children.map((c) => c.name).join(' ')}`);
      return;
    }
    const conn: Conn = { id: url.searchParams.get('client') || randomUUID(), ws, subvol, fds: new Set() };
    this.conns.add(conn);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data as Buffer, isBinary));
    ws.on('close', () => this.drop(conn));
    ws.on('error', (e) => this.log.warn(`connection ${conn.id}: ${e.message}`));
  }

  private send(conn: Conn, frame: Parameters<typeof encodeFrame>[0]): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const encoded = encodeFramePooled(frame);
    conn.ws.send(encoded.bytes, encoded.release);
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
      req = decodeRequest(data);
    } catch (e) {
      const id = e instanceof MalformedFrameError ? e.id : 0;
      this.sendError(conn, id, FsError.of('EPROTO', (e as Error).message));
      return;
    }
    const { id, fop, args } = req;
    if (fop === 'ping') {
      this.send(conn, { v: WIRE_VERSION, id, ok: {} });
      return;
    }
    if (!isFopName(fop)) {
      this.sendError(conn, id, FsError.of('ENOSYS', `unknown fop ${JSON.stringify(fop)}`));
      return;
    }
    if (fop === 'entrylk' || fop === 'migrate') args.owner = `${conn.id}:${String(args.owner)}`;
    if (fop === 'xattrop') {
      // Locks taken along with a changelog update belong to the connection too (clientGone).
      for (const k of ['lock', 'unlock'] as const) {
        const spec = args[k] as { owner?: unknown } | undefined;
        if (spec && typeof spec === 'object') spec.owner = `${conn.id}:${String(spec.owner)}`;
      }
    }
    this.dispatch(conn, id, fop, args);
  }

  private dispatch(conn: Conn, id: number, fop: FopName, args: Record<string, unknown>): void {
    const start = profileStart();
    let p: Promise<unknown>;
    try {
      p = conn.subvol.call(fop, args as never);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (ok) => {
        if (fop === 'open' || fop === 'create') conn.fds.add((ok as { fd: number }).fd);
        else if (fop === 'release') conn.fds.delete(args.fd as number);
        this.send(conn, { v: WIRE_VERSION, id, ok });
        profileRecord('brick', fop, start);
      },
      (e) => {
        const err = e instanceof TypeError ? FsError.of('EINVAL', e.message) : FsError.from(e);
        if (!(e instanceof FsError)) this.log.debug(`${fop} failed: ${(e as Error)?.stack ?? String(e)}`);
        this.sendError(conn, id, err);
      },
    );
  }

  private drop(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    for (const fd of conn.fds) {
      conn.subvol.call('release', { fd }).catch(() => undefined);
    }
    conn.fds.clear();
    conn.subvol.clientGone(conn.id);
  }
}

registerXlator('protocol/server', Server);
