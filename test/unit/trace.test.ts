import test from 'ava';
import fs from 'node:fs';
import type { Frame } from '../../lib/frame.js';
import type { FopArgs, FopReply } from '../../lib/fops.js';
import { FOPS } from '../../lib/fops.js';
import { argsProblem } from '../../lib/rpc/args.js';
import { decodeRequest, encodeFrame, encodeFramePooled, MalformedFrameError, WIRE_VERSION } from '../../lib/rpc/frame.js';
import { byTrace, formatTrace, readSpans } from '../../lib/trace-tree.js';
import { flushTracing, setTracing, traceFile, traceFromWire, traceToWire, tracing, TRACE_WIRE_BYTES, type TraceContext } from '../../lib/trace.js';
import { Xlator, type FopImpl } from '../../lib/xlator.js';
import { StubChild, userFrame } from '../helpers/stub-child.js';

const CTX: TraceContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 };

test('a trace context is 25 bytes on the wire, and back', (t) => {
  const w = traceToWire(CTX);
  t.is(w.length, TRACE_WIRE_BYTES);
  t.deepEqual(traceFromWire(w), CTX);
  t.is(traceFromWire(new Uint8Array(TRACE_WIRE_BYTES)), undefined, 'all-zero ids are no trace');
  t.is(traceFromWire(w.subarray(1)), undefined);
  t.is(traceFromWire('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), undefined);
});

test('a traced request: the trace beside cred and args, args still exactly the fop\'s; untraced bytes unchanged', (t) => {
  const cred = { uid: 1000, gid: 1000, groups: [], pid: 1 };
  const args = { fd: 3, offset: 0, data: Buffer.alloc(100_000, 1) };
  const plain = { v: WIRE_VERSION, id: 5, fop: 'write', cred, args };
  const traced = { v: WIRE_VERSION, id: 5, fop: 'write', cred, trace: traceToWire(CTX), args };
  for (const encode of [(f: typeof traced | typeof plain) => encodeFrame(f), (f: typeof traced | typeof plain) => encodeFramePooled(f).bytes]) {
    const r = decodeRequest(encode(traced));
    t.deepEqual(traceFromWire(r.trace), CTX);
    t.deepEqual(r.args, args);
    t.is(argsProblem(FOPS.write.args, r.args), undefined, 'the brick\'s args check sees no extra field');
    t.is(decodeRequest(encode(plain)).trace, undefined);
  }
  // An untraced request is byte for byte what it was before the field existed.
  t.false(encodeFrame(plain).includes(Buffer.from('trace')));
  const e = t.throws(() => decodeRequest(encodeFrame({ ...traced, trace: Buffer.alloc(3) })), { instanceOf: MalformedFrameError });
  t.is(e?.id, 5);
});

class Named extends Xlator implements FopImpl {
  frames: Frame[] = [];
  lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    this.frames.push(f);
    return this.children[0]!.call('lookup', a, f);
  }
}

test.serial('a span per translator that handles the fop, under the frame\'s; none for an untraced frame', async (t) => {
  const stub = new StubChild();
  stub.fs.writeFile('/f', 'x');
  const mid = new Named({ name: 'mid', type: 'test/named', options: {}, children: [stub] });
  const top = new Named({ name: 'top', type: 'test/named', options: {}, children: [mid] });
  const owner = {};
  const file = traceFile();
  fs.rmSync(file, { force: true });
  t.teardown(async () => {
    await setTracing(owner, undefined);
    fs.rmSync(file, { force: true });
  });

  await top.call('lookup', { path: '/f' }, userFrame());
  t.is(mid.frames[0]!.trace, undefined);
  t.false(tracing());

  await setTracing(owner, { service: 'unit', endpoint: '' });
  t.true(tracing());
  await top.call('lookup', { path: '/f' }, userFrame());
  t.is(mid.frames[1]!.trace, undefined, 'a frame without a trace stays without, tracing or not');
  await top.call('lookup', { path: '/f' }, { ...userFrame(), trace: CTX });
  await t.throwsAsync(top.call('lookup', { path: '/nope' }, { ...userFrame(), trace: { ...CTX, traceId: 'aa'.repeat(16) } }));
  await flushTracing();
  const traces = byTrace(readSpans([file]));
  t.deepEqual([...traces.keys()].sort(), [CTX.traceId, 'aa'.repeat(16)].sort());
  const spans = traces.get(CTX.traceId)!;
  t.deepEqual(spans.map((s) => s.name).sort(), ['mid lookup', 'top lookup']);
  const topSpan = spans.find((s) => s.name === 'top lookup')!;
  t.is(topSpan.parentId, CTX.spanId);
  const midSpan = spans.find((s) => s.name === 'mid lookup')!;
  t.is(midSpan.parentId, topSpan.id);
  t.is(mid.frames[2]!.trace?.spanId, midSpan.id, 'a handler runs under its own span, which its children\'s spans hang from');
  t.is(traces.get('aa'.repeat(16))!.find((s) => s.name === 'top lookup')!.tags?.error, 'ENOENT');
  t.regex(formatTrace(spans), /^top lookup .*\n└─ mid lookup /);

  await setTracing(owner, undefined);
  t.false(tracing());
  await top.call('lookup', { path: '/f' }, { ...userFrame(), trace: CTX });
  t.is(readSpans([file]).length, 4, 'off: a traced frame makes no span');
});

test.serial('diagnostics.trace-endpoint: the spans are POSTed to Zipkin\'s v2 API', async (t) => {
  const http = await import('node:http');
  const posted: Array<{ url?: string; body: Array<{ traceId: string; name: string; parentId?: string; localEndpoint: { serviceName: string } }> }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      posted.push({ url: req.url, body: JSON.parse(body) as never });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  const owner = {};
  t.teardown(() => setTracing(owner, undefined));
  await setTracing(owner, { service: 'unit-zipkin', endpoint: `http://127.0.0.1:${port}/api/v2/spans` });
  const stub = new StubChild();
  stub.fs.writeFile('/f', 'x');
  const top = new Named({ name: 'top', type: 'test/named', options: {}, children: [stub] });
  await top.call('lookup', { path: '/f' }, { ...userFrame(), trace: CTX });
  await flushTracing();
  const spans = posted.flatMap((p) => p.body);
  t.true(posted.every((p) => p.url === '/api/v2/spans'));
  const span = spans.find((s) => s.name === 'top lookup');
  t.truthy(span, JSON.stringify(posted));
  t.is(span!.traceId, CTX.traceId);
  t.is(span!.parentId, CTX.spanId);
  t.is(span!.localEndpoint.serviceName, 'unit-zipkin');
});
