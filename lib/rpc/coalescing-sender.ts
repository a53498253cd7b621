import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import type { EncodedFrame } from './frame.js';

/** The TCP socket under a ws connection (ws keeps it as `_socket`). */
export function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/**
 * Writes frames to one WebSocket with as few socket writes as it can. Every frame sent in
 * one tick goes out in one writev: the socket is corked from the first frame of the tick
 * until the tick ends. A frame sent `behind` (one nobody waits for soon: a release, a
 * post-op after its answer was given) waits up to behindMs for the next frame and goes
 * out in the same write, ahead of it. On this VM each write to a loopback socket costs a
 * syscall and a wake-up of the peer, ~100 µs of CPU (docs/performance.md).
 */
export class CoalescingSender {
  /** frames sent; socket writes they took (corked turns); frames held behind; held frames a timer sent. */
  readonly stats = { frames: 0, writes: 0, heldBehind: 0, sentByTimer: 0 };
  private corked: Socket | undefined;
  private behind: EncodedFrame[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ws: WebSocket, private readonly behindMs: () => number = () => 0) {}

  send(frame: EncodedFrame, behind = false): void {
    const wait = behind ? this.behindMs() : 0;
    if (wait > 0) {
      this.behind.push(frame);
      this.stats.heldBehind++;
      this.timer ??= setTimeout(() => {
        this.stats.sentByTimer += this.behind.length;
        this.flush();
      }, wait);
      return;
    }
    this.cork();
    this.drainBehind();
    this.stats.frames++;
    this.ws.send(frame.bytes, frame.release);
  }

  /** Sends the frames held behind now. */
  flush(): void {
    if (this.behind.length === 0) return;
    this.cork();
    this.drainBehind();
  }

  /** The connection is gone: frames held behind are dropped (their buffers returned). */
  drop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const f of this.behind) f.release();
    this.behind = [];
  }

  private drainBehind(): void {
    if (this.behind.length === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const frames = this.behind;
    this.behind = [];
    this.stats.frames += frames.length;
    for (const f of frames) this.ws.send(f.bytes, f.release);
  }

  private cork(): void {
    if (this.corked) return;
    const s = socketOf(this.ws);
    if (!s || s.destroyed) return;
    s.cork();
    this.corked = s;
    this.stats.writes++;
    process.nextTick(() => {
      this.corked = undefined;
      s.uncork();
    });
  }
}
