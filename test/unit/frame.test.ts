import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { bulkPool } from '../../lib/buffer-pool.js';
import {
  decodeClientFrame, decodeHelloReply, decodeReply, decodeRequest, decodeServerFrame, encodeFrame, encodeFramePooled, MalformedFrameError, WIRE_VERSION,
} from '../../lib/rpc/frame.js';
import { REPO } from '../helpers/proc.js';

const fixture = (name: string): Buffer => fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'wire', name));

test('frozen wire samples: the encoding of a request and an error reply does not drift', (t) => {
  const write = { v: WIRE_VERSION, id: 7, fop: 'write', cred: { uid: 1000, gid: 1000, groups: [10, 4343], pid: 4242 }, args: { fd: 3, offset: 4096, data: Buffer.from('brickfs') } };
  t.deepEqual(encodeFrame(write), fixture('write-request.msgpack'));
  const decoded = decodeRequest(fixture('write-request.msgpack'));
  t.deepEqual(decoded, write);
  t.true(Buffer.isBuffer(decoded.args.data), 'binary payloads stay binary (never base64)');
  const err = { v: WIRE_VERSION, id: 7, err: { errno: 2, code: 'ENOENT', message: 'no such file' } };
  t.deepEqual(encodeFrame(err), fixture('error-reply.msgpack'));
  t.deepEqual(decodeReply(fixture('error-reply.msgpack')), { ...err, ok: undefined });
});

test('payload bytes appear raw inside the frame', (t) => {
  const data = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  t.not(encodeFrame({ v: WIRE_VERSION, id: 1, fop: 'write', args: { fd: 1, offset: 0, data } }).indexOf(data), -1);
});

test('malformed requests are rejected with the id when one can be read', (t) => {
  const e = t.throws(() => decodeRequest(encodeFrame({ v: WIRE_VERSION, id: 9, fop: 5 } as never)), { instanceOf: MalformedFrameError });
  t.is(e?.id, 9);
  t.throws(() => decodeRequest(Buffer.from([0xc1])), { instanceOf: MalformedFrameError });
  t.throws(() => decodeRequest(encodeFrame({ v: WIRE_VERSION + 1, id: 1, fop: 'lookup', args: {} })), { instanceOf: MalformedFrameError });
});

test.serial('a pooled bulk frame is the same msgpack as encodeFrame, and its slab goes back on release', (t) => {
  const before = bulkPool.outstanding;
  const data = Buffer.alloc(128 * 1024, 7);
  data[0] = 1;
  data[data.length - 1] = 255;
  // data placed last, as the pooled encoder places it
  const write = { v: WIRE_VERSION, id: 42, fop: 'write', args: { fd: 3, offset: 1 << 40, data } };
  const pooled = encodeFramePooled(write);
  t.deepEqual(pooled.bytes, encodeFrame(write));
  t.is(bulkPool.outstanding, before + 1);
  pooled.release();
  t.is(bulkPool.outstanding, before);
  // data first: the pooled frame moves it last, and it decodes to the same request
  const reordered = encodeFramePooled({ v: WIRE_VERSION, id: 43, fop: 'write', args: { data, fd: 4, offset: 0 } });
  t.deepEqual(decodeRequest(reordered.bytes), { v: WIRE_VERSION, id: 43, fop: 'write', args: { data, fd: 4, offset: 0 } });
  reordered.release();
  const reply = encodeFramePooled({ v: WIRE_VERSION, id: 44, ok: { data, eof: false } });
  t.deepEqual(decodeReply(reply.bytes), { v: WIRE_VERSION, id: 44, ok: { data, eof: false }, err: undefined });
  reply.release();
  // small payloads are plain frames
  const small = encodeFramePooled({ v: WIRE_VERSION, id: 45, fop: 'write', args: { fd: 1, offset: 0, data: Buffer.from('x') } });
  t.deepEqual(small.bytes, encodeFrame({ v: WIRE_VERSION, id: 45, fop: 'write', args: { fd: 1, offset: 0, data: Buffer.from('x') } }));
  small.release();
  // with the caller's credentials, which go before the args
  const cred = { uid: 4242, gid: 4343, groups: [4343], pid: 7 };
  const withCred = encodeFramePooled({ v: WIRE_VERSION, id: 46, fop: 'write', cred, args: { fd: 3, offset: 0, data } });
  t.deepEqual(withCred.bytes, encodeFrame({ v: WIRE_VERSION, id: 46, fop: 'write', cred, args: { fd: 3, offset: 0, data } }));
  t.deepEqual(decodeRequest(withCred.bytes), { v: WIRE_VERSION, id: 46, fop: 'write', cred, args: { fd: 3, offset: 0, data } });
  withCred.release();
  t.is(bulkPool.outstanding, before);
});

test('frozen wire sample: an invalidate push, which a client without pushes reads as a reply to no request', (t) => {
  const push = { v: WIRE_VERSION, push: 'invalidate' as const, paths: ['/d/f', '/d'] };
  t.deepEqual(encodeFrame(push), fixture('invalidate-push.msgpack'));
  t.deepEqual(decodeServerFrame(fixture('invalidate-push.msgpack')), push);
  // What protocol/client did before pushes: decodeReply, then look the id up among the
  // requests in flight. Id 0 is never one (ids start at 1), and there is no err to log:
  // the frame is dropped and the connection lives on.
  const old = decodeReply(fixture('invalidate-push.msgpack'));
  t.is(old.id, 0);
  t.is(old.err, undefined);
  t.is(old.ok, undefined);
});

test('decodeServerFrame: replies as decodeReply reads them, unknown push kinds ignored, bad pushes rejected', (t) => {
  const err = { v: WIRE_VERSION, id: 7, err: { errno: 2, code: 'ENOENT', message: 'no such file' } };
  t.deepEqual(decodeServerFrame(encodeFrame(err)), { ...err, ok: undefined });
  t.is(decodeServerFrame(encodeFrame({ v: WIRE_VERSION, push: 'lease-recall', paths: ['/x'] } as never)), undefined);
  t.throws(() => decodeServerFrame(encodeFrame({ v: WIRE_VERSION, push: 'invalidate', paths: [3] } as never)), { instanceOf: MalformedFrameError });
  t.throws(() => decodeServerFrame(encodeFrame({ v: WIRE_VERSION + 1, push: 'invalidate', paths: [] } as never)), { instanceOf: MalformedFrameError });
});

test('frozen wire samples: the hello each way, which every version must read whatever its own', (t) => {
  const hello = { v: WIRE_VERSION, hello: { version: WIRE_VERSION, name: '1a2b3c4d-vol-client-0' } };
  t.deepEqual(encodeFrame(hello), fixture('hello-request.msgpack'));
  t.deepEqual(decodeClientFrame(fixture('hello-request.msgpack')), hello);
  const reply = { v: WIRE_VERSION, hello: { version: WIRE_VERSION, clientId: '5f0c6a52-1f7e-4bf4-a4b9-2c2c1c1d0e0f' } };
  t.deepEqual(encodeFrame(reply), fixture('hello-reply.msgpack'));
  t.deepEqual(decodeHelloReply(fixture('hello-reply.msgpack')), reply);
  // Another version's hello is read (to be answered with ours), not refused as a frame.
  t.deepEqual(decodeClientFrame(encodeFrame({ v: 99, hello: { version: 99, name: 'future' } })), { v: 99, hello: { version: 99, name: 'future' } });
  t.deepEqual(decodeHelloReply(encodeFrame({ v: 99, hello: { version: 99 } })), { v: 99, hello: { version: 99 } });
});

test('frozen wire sample: the hello with credentials and the volume id (issue 24)', (t) => {
  const hello = {
    v: WIRE_VERSION,
    hello: { version: WIRE_VERSION, name: '1a2b3c4d-vol-client-0', username: '0b7c3f0e-9a52-4e55-9d43-6f1e5a0c2b11', password: 'c2VjcmV0LXBhc3N3b3JkLW9mLTMyLWJ5dGVzLi4uLi4', volumeId: '7d1e1a3c-2f44-4b0e-8f5a-0c9b8e7d6a51' },
  };
  t.deepEqual(encodeFrame(hello), fixture('hello-request-credentials.msgpack'));
  t.deepEqual(decodeClientFrame(fixture('hello-request-credentials.msgpack')), hello);
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: 3, name: 'x', password: 7 } } as never)), { instanceOf: MalformedFrameError });
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: 3, name: 'x', username: 'u'.repeat(300) } })), { instanceOf: MalformedFrameError });
});

test('a hello reply from a brick before the hello (an error in its own envelope) names its version', (t) => {
  const older = decodeHelloReply(encodeFrame({ v: 2, id: 0, err: { errno: 71, code: 'EPROTO', message: 'unsupported wire version 3' } }));
  t.is(older.hello.version, 2);
  t.is(older.hello.clientId, undefined);
  t.is(older.err?.code, 'EPROTO');
});

test('malformed hellos are rejected; a request is still a request', (t) => {
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { name: 'x' } } as never)), { instanceOf: MalformedFrameError });
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: '3' } } as never)), { instanceOf: MalformedFrameError });
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: 3, name: 'x'.repeat(300) } })), { instanceOf: MalformedFrameError });
  t.throws(() => decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: 3, name: 'x', pushes: 'no' } } as never)), { instanceOf: MalformedFrameError });
  t.deepEqual(decodeClientFrame(encodeFrame({ v: WIRE_VERSION, hello: { version: 3, name: 'x', pushes: false } })), { v: WIRE_VERSION, hello: { version: 3, name: 'x', pushes: false } });
  t.throws(() => decodeHelloReply(encodeFrame({ v: WIRE_VERSION, hello: { version: WIRE_VERSION, clientId: 7 } } as never)), { instanceOf: MalformedFrameError });
  const req = { v: WIRE_VERSION, id: 3, fop: 'lookup', args: { path: '/' } };
  t.deepEqual(decodeClientFrame(encodeFrame(req)), req);
});
