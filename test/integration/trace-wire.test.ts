// The trace field of a request on a real brick that does not trace (diagnostics.trace off
// there, as on a brick of a build from before tracing, which reads the same envelope keys):
// it serves the request as any other; a malformed trace is EPROTO and the connection lives on.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT_FRAME } from '../../lib/frame.js';
import { encodeFrame, WIRE_VERSION } from '../../lib/rpc/frame.js';
import { traceToWire } from '../../lib/trace.js';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

test('a brick that does not trace serves traced requests as any other', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  fs.writeFileSync(path.join(brick.dir, 'f'), 'hi');
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const trace = traceToWire({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
  c.sendRaw(encodeFrame({ v: WIRE_VERSION, id: 101, fop: 'lookup', cred: ROOT_FRAME, trace, args: { path: '/f' } }));
  const ok = await c.next();
  t.is(ok.id, 101);
  t.is(ok.err, undefined);
  t.is((ok.ok as { iatt: { size: number } }).iatt.size, 2);

  c.sendRaw(encodeFrame({ v: WIRE_VERSION, id: 102, fop: 'lookup', cred: ROOT_FRAME, trace: Buffer.alloc(3), args: { path: '/f' } }));
  const bad = await c.next();
  t.is(bad.id, 102);
  t.is(bad.err?.code, 'EPROTO');
  t.regex(bad.err!.message, /trace/);
  t.is((await c.call('lookup', { path: '/f' })).err, undefined, 'the connection lives on');
});
