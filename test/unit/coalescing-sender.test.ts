// CoalescingSender over a real WebSocket pair in this process: how many socket writes its
// frames take, and when frames sent behind go.
import test, { type ExecutionContext } from 'ava';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { CoalescingSender } from '../../lib/rpc/coalescing-sender.js';
import type { EncodedFrame } from '../../lib/rpc/frame.js';

interface Pair {
  sender: CoalescingSender;
  /** Messages the far end received, in order. */
  received: string[];
  /** Writes the sending socket made (one writev counts once). */
  writes: () => number;
}

async function pair(t: ExecutionContext, behindMs: number): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => wss.close());
  await new Promise((r) => wss.once('listening', r));
  const received: string[] = [];
  wss.on('connection', (ws) => ws.on('message', (m: Buffer) => received.push(m.toString())));
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  t.teardown(() => ws.terminate());
  await new Promise((r) => ws.once('open', r));
  const socket = (ws as unknown as { _socket: Socket & { _write: Function; _writev: Function } })._socket;
  let writes = 0;
  for (const k of ['_write', '_writev'] as const) {
    const orig = socket[k].bind(socket);
    socket[k] = (...args: unknown[]) => {
      writes++;
      return orig(...args);
    };
  }
  return { sender: new CoalescingSender(ws, () => behindMs), received, writes: () => writes };
}

function frame(text: string, released?: string[]): EncodedFrame {
  return { bytes: Buffer.from(text), release: () => released?.push(text) };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('frames sent in one tick take one socket write, in order', async (t) => {
  const p = await pair(t, 0);
  p.sender.send(frame('a'));
  p.sender.send(frame('b'));
  p.sender.send(frame('c'));
  await until(() => p.received.length === 3);
  t.deepEqual(p.received, ['a', 'b', 'c']);
  t.is(p.writes(), 1);
  p.sender.send(frame('d'));
  await until(() => p.received.length === 4);
  t.is(p.writes(), 2, 'a later tick writes again');
});

test('a frame sent behind waits for the next frame and goes ahead of it in the same write', async (t) => {
  const p = await pair(t, 1000);
  p.sender.send(frame('post-op'), true);
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(p.received, [], 'held');
  t.is(p.writes(), 0);
  p.sender.send(frame('lookup'));
  await until(() => p.received.length === 2);
  t.deepEqual(p.received, ['post-op', 'lookup']);
  t.is(p.writes(), 1);
  t.is(p.sender.stats.sentByTimer, 0);
});

test('a frame sent behind goes by itself after behindMs; with 0 it goes at once', async (t) => {
  const p = await pair(t, 20);
  p.sender.send(frame('release'), true);
  await until(() => p.received.length === 1);
  t.deepEqual(p.received, ['release']);
  t.is(p.sender.stats.sentByTimer, 1);
  const q = await pair(t, 0);
  q.sender.send(frame('release'), true);
  await until(() => q.received.length === 1);
  t.deepEqual(q.received, ['release']);
  t.is(q.sender.stats.heldBehind, 0);
});

test('flush sends what is held; drop returns held buffers and sends nothing', async (t) => {
  const p = await pair(t, 1000);
  p.sender.send(frame('x'), true);
  p.sender.flush();
  await until(() => p.received.length === 1);
  t.deepEqual(p.received, ['x']);
  const released: string[] = [];
  p.sender.send(frame('y', released), true);
  p.sender.drop();
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(released, ['y']);
  t.deepEqual(p.received, ['x']);
});
