// The hello that opens every connection: the brick serves nothing before it, names the
// connection itself, and tells a client of another wire version its own before closing;
// protocol/client never uses a brick that speaks another version (ENOTCONN, and a log line
// naming both versions).
import { ROOT_FRAME } from '../../lib/frame.js';
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { ProtocolClient } from '../../client/xlators/protocol/client.js';
import { decodeClientFrame, encodeFrame, WIRE_VERSION } from '../../lib/rpc/frame.js';
import { startDistribute } from '../helpers/cluster.js';
import { eventually } from '../helpers/proc.js';
import { testTlsClientOptions } from '../helpers/tls.js';
import { RawBrickClient } from '../helpers/wire.js';

test('fops before the hello are refused (EPROTO) and the connection lives on to say it', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  const c = await RawBrickClient.connect(brick.port, brick.dir, { skipHello: true });
  t.teardown(() => c.close());
  const before = await c.call('lookup', { path: '/hello' }, ROOT_FRAME);
  t.is(before.err?.code, 'EPROTO');
  t.regex(before.err!.message, /hello/);
  t.is((await c.call('ping', {}, ROOT_FRAME)).err?.code, 'EPROTO');
  t.is((await c.call('create', { path: '/early', mode: 0o644, flags: 1 }, ROOT_FRAME)).err?.code, 'EPROTO');
  t.false(fs.existsSync(path.join(brick.dir, 'early')));
  const h = await c.hello();
  t.is(h?.hello.version, WIRE_VERSION);
  t.is(h?.err, undefined);
  const after = await c.call('lookup', { path: '/hello' }, ROOT_FRAME);
  t.is(after.err, undefined);
  // One hello per connection: a second gets an error reply, and no new id.
  const again = await c.hello();
  t.is(again?.err?.code, 'EPROTO');
  t.is(again?.hello.clientId, undefined);
  t.is((await c.call('lookup', { path: '/hello' }, ROOT_FRAME)).err, undefined);
});

test('the brick names each connection, whatever the client asks to be called', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const a = await RawBrickClient.connect(brick.port, brick.dir, { skipHello: true });
  const b = await RawBrickClient.connect(brick.port, brick.dir, { skipHello: true });
  t.teardown(() => { a.close(); b.close(); });
  const ha = await a.hello(WIRE_VERSION, 'same-name');
  const hb = await b.hello(WIRE_VERSION, 'same-name');
  t.truthy(ha?.hello.clientId);
  t.truthy(hb?.hello.clientId);
  t.not(ha?.hello.clientId, hb?.hello.clientId);
  // The id names the lock owner: a holder's contended push goes to its own connection only.
  t.is((await a.call('entrylk', { path: '/', name: 'f', owner: 'same-owner', cmd: 'lock' })).err, undefined);
  const waiting = b.call('entrylk', { path: '/', name: 'f', owner: 'same-owner', cmd: 'lock' });
  await eventually(() => a.pushes.length === 1, 5000, 'contended push to the holder');
  t.deepEqual(b.pushes, []);
  t.is((await a.call('entrylk', { path: '/', name: 'f', owner: 'same-owner', cmd: 'unlock' })).err, undefined);
  t.is((await waiting).err, undefined);
});

test('a client of another version is told the brick\'s and closed; the brick serves others on', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const old = await RawBrickClient.connect(brick.port, brick.dir, { skipHello: true });
  t.teardown(() => old.close());
  const h = await old.hello(WIRE_VERSION + 1, 'from-the-future');
  t.is(h?.hello.version, WIRE_VERSION);
  t.is(h?.hello.clientId, undefined);
  t.is(h?.err?.code, 'EPROTO');
  t.regex(h!.err!.message, new RegExp(`version ${WIRE_VERSION}.*version ${WIRE_VERSION + 1}`));
  t.is(await old.closed, 4005);
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  t.is((await c.call('lookup', { path: '/' })).err, undefined);
});

/** A stand-in brick that answers every hello with `answer` and nothing else. */
async function fakeBrick(t: ExecutionContext, answer: (hello: unknown) => Buffer): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(() => resolve()); }));
  wss.on('connection', (ws: WebSocket) => ws.on('message', (d: Buffer) => ws.send(answer(decodeClientFrame(d)))));
  return (wss.address() as { port: number }).port;
}

/** A protocol/client to 127.0.0.1:port, its error log lines collected. */
async function client(t: ExecutionContext, port: number): Promise<{ c: ProtocolClient; errors: string[] }> {
  const c = new ProtocolClient({
    name: 'hs-client', type: 'protocol/client', children: [],
    options: { 'remote-host': '127.0.0.1', 'remote-port': String(port), 'remote-subvolume': '/b', 'ping-timeout': '5' },
  });
  const errors: string[] = [];
  const quiet = (): void => {};
  Object.defineProperty(c, 'log', { value: { error: (m: string) => errors.push(m), warn: quiet, info: quiet, debug: quiet } });
  t.teardown(() => c.fini());
  await c.init();
  return { c, errors };
}

test('protocol/client refuses a brick of another version: ENOTCONN, one log line naming both', async (t) => {
  const port = await fakeBrick(t, () => encodeFrame({ v: WIRE_VERSION + 1, hello: { version: WIRE_VERSION + 1, clientId: 'future-id' } }));
  const { c, errors } = await client(t, port);
  t.false(c.isUp);
  const e = await t.throwsAsync(c.call('lookup', { path: '/' }, ROOT_FRAME));
  t.is((e as { code?: string }).code, 'ENOTCONN');
  t.is(errors.length, 1);
  t.regex(errors[0]!, new RegExp(`speaks wire version ${WIRE_VERSION + 1}, this client ${WIRE_VERSION}`));
});

test('protocol/client refuses a brick from before the hello (its error reply names its version)', async (t) => {
  const port = await fakeBrick(t, () => encodeFrame({ v: 2, id: 0, err: { errno: 71, code: 'EPROTO', message: 'unsupported wire version 3' } }));
  const { c, errors } = await client(t, port);
  t.false(c.isUp);
  t.is((await t.throwsAsync(c.call('statfs', { path: '/' }, ROOT_FRAME)) as { code?: string }).code, 'ENOTCONN');
  t.regex(errors[0]!, new RegExp(`speaks wire version 2, this client ${WIRE_VERSION}`));
});

test('protocol/client uses a brick that agrees, under the id the brick gave it', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = new ProtocolClient({
    name: 'hs-client', type: 'protocol/client', children: [],
    options: { 'remote-host': '127.0.0.1', 'remote-port': String(brick.port), 'remote-subvolume': brick.dir, ...testTlsClientOptions() },
  });
  t.teardown(() => c.fini());
  await c.init();
  t.true(c.isUp);
  const dump = c.statedump();
  t.is(dump.wireVersion, WIRE_VERSION);
  t.regex(String(dump.clientId), /^[0-9a-f-]{36}$/);
  t.truthy((await c.call('lookup', { path: '/' }, ROOT_FRAME)).iatt);
});
