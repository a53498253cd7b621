import WebSocket from 'ws';
import { ROOT_FRAME, type Frame } from '../../lib/frame.js';
import { decodeServerFrame, encodeFrame, WIRE_VERSION, type PushFrame, type ReplyFrame } from '../../lib/rpc/frame.js';

/** A raw protocol client for poking a brick with well- and ill-formed frames. */
export class RawBrickClient {
  private readonly replies: ReplyFrame[] = [];
  private readonly waiters: Array<(r: ReplyFrame) => void> = [];
  /** Push frames the brick sent (cache invalidations), kept apart from the replies. */
  readonly pushes: PushFrame[] = [];
  private nextId = 1;
  closeCode?: number;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
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
    ws.on('close', (code) => { this.closeCode = code; });
  }

  static connect(port: number, subvolume: string): Promise<RawBrickClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?subvolume=${encodeURIComponent(subvolume)}&client=rawtest`, { maxPayload: 128 << 20 });
    return new Promise((resolve, reject) => {
      const c = new RawBrickClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
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
