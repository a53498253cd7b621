import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { bulkPool } from '../../lib/buffer-pool.js';
import { decodeReply, decodeRequest, decodeServerFrame, encodeFrame, encodeFramePooled, MalformedFrameError } from '../../lib/rpc/frame.js';
import { REPO } from '../helpers/proc.js';

const fixture = (name: string): Buffer => fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'wire', name));

test('frozen wire samples: the encoding of a request and an error reply does not drift', (t) => {
  const write = { v: 1, id: 7, fop: 'write', args: { fd: 3, offset: 4096, data: Buffer.from('brickfs') } };
  t.deepEqual(encodeFrame(write), fixture('write-request.msgpack'));
  const decoded = decodeRequest(fixture('write-request.msgpack'));
  t.deepEqual(decoded, write);
  t.true(Buffer.isBuffer(decoded.args.data), 'binary payloads stay binary (never base64)');
  const err = { v: 1, id: 7, err: { errno: 2, code: 'ENOENT', message: 'no such file' } };
  t.deepEqual(encodeFrame(err), fixture('error-reply.msgpack'));
  t.deepEqual(decodeReply(fixture('error-reply.msgpack')), { ...err, ok: undefined });
});

test('payload bytes appear raw inside the frame', (t) => {
  const data = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  t.not(encodeFrame({ v: 1, id: 1, fop: 'write', args: { fd: 1, offset: 0, data } }).indexOf(data), -1);
});

test('malformed requests are rejected with the id when one can be read', (t) => {
  const e = t.throws(() => decodeRequest(encodeFrame({ v: 1, id: 9, fop: 5 } as never)), { instanceOf: MalformedFrameError });
  t.is(e?.id, 9);
  t.throws(() => decodeRequest(Buffer.from([0xc1])), { instanceOf: MalformedFrameError });
  t.throws(() => decodeRequest(encodeFrame({ v: 2, id: 1, fop: 'lookup', args: {} })), { instanceOf: MalformedFrameError });
});

test.serial('a pooled bulk frame is the same msgpack as encodeFrame, and its slab goes back on release', (t) => {
  const before = bulkPool.outstanding;
  const data = Buffer.alloc(128 * 1024, 7);
  data[0] = 1;
  data[data.length - 1] = 255;
  // data placed last, as the pooled encoder places it
  const write = { v: 1, id: 42, fop: 'write', args: { fd: 3, offset: 1 << 40, data } };
  const pooled = encodeFramePooled(write);
  t.deepEqual(pooled.bytes, encodeFrame(write));
  t.is(bulkPool.outstanding, before + 1);
  pooled.release();
  t.is(bulkPool.outstanding, before);
  // data first: the pooled frame moves it last, and it decodes to the same request
  const reordered = encodeFramePooled({ v: 1, id: 43, fop: 'write', args: { data, fd: 4, offset: 0 } });
  t.deepEqual(decodeRequest(reordered.bytes), { v: 1, id: 43, fop: 'write', args: { data, fd: 4, offset: 0 } });
  reordered.release();
  const reply = encodeFramePooled({ v: 1, id: 44, ok: { data, eof: false } });
  t.deepEqual(decodeReply(reply.bytes), { v: 1, id: 44, ok: { data, eof: false }, err: undefined });
  reply.release();
  // small payloads are plain frames
  const small = encodeFramePooled({ v: 1, id: 45, fop: 'write', args: { fd: 1, offset: 0, data: Buffer.from('x') } });
  t.deepEqual(small.bytes, encodeFrame({ v: 1, id: 45, fop: 'write', args: { fd: 1, offset: 0, data: Buffer.from('x') } }));
  small.release();
  t.is(bulkPool.outstanding, before);
});

test('frozen wire sample: an invalidate push, which a client without pushes reads as a reply to no request', (t) => {
  const push = { v: 1, push: 'invalidate' as const, paths: ['/d/f', '/d'] };
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
  const err = { v: 1, id: 7, err: { errno: 2, code: 'ENOENT', message: 'no such file' } };
  t.deepEqual(decodeServerFrame(encodeFrame(err)), { ...err, ok: undefined });
  t.is(decodeServerFrame(encodeFrame({ v: 1, push: 'lease-recall', paths: ['/x'] } as never)), undefined);
  t.throws(() => decodeServerFrame(encodeFrame({ v: 1, push: 'invalidate', paths: [3] } as never)), { instanceOf: MalformedFrameError });
  t.throws(() => decodeServerFrame(encodeFrame({ v: 2, push: 'invalidate', paths: [] } as never)), { instanceOf: MalformedFrameError });
});
