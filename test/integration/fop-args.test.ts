// A hostile client over a real socket: for every fop, each field of the wrong kind, each
// required one missing, unknown ones, lists and maps too long. Every such request gets
// EINVAL naming the field before it reaches the brick's storage, and the brick keeps serving.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { FOP_NAMES, FOPS } from '../../lib/fops.js';
import { mutations } from '../helpers/arg-samples.js';
import { startDistribute } from '../helpers/cluster.js';
import { RawBrickClient } from '../helpers/wire.js';

test('every malformed fop gets EINVAL naming the field; nothing reaches the disk; the brick keeps serving', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  fs.writeFileSync(path.join(brick.dir, 'hello'), 'hi');
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  let n = 0;
  for (const fop of FOP_NAMES) {
    for (const m of mutations(FOPS[fop].args)) {
      const r = await c.call(fop, m.args, ROOT_FRAME);
      t.is(r.err?.code, 'EINVAL', `${fop}: ${m.what}`);
      t.true(r.err?.message.startsWith(`${fop}: ${m.field}`), `${fop}: ${m.what}: ${r.err?.message}`);
      n++;
    }
  }
  t.true(n > 200);
  // The samples name /hostile: no request made it there.
  t.false(fs.existsSync(path.join(brick.dir, 'hostile')));
  const ok = await c.call('lookup', { path: '/hello' }, ROOT_FRAME);
  t.is(ok.err, undefined);
  t.is((ok.ok as { iatt: { size: number } }).iatt.size, 2);
});

test('a well-formed request with one unknown field is refused whole, not run without it', async (t) => {
  const vol = await startDistribute(t, 1);
  const brick = vol.bricks[0]!;
  const c = await RawBrickClient.connect(brick.port, brick.dir);
  t.teardown(() => c.close());
  const r = await c.call('create', { path: '/made', mode: 0o644, flags: fs.constants.O_WRONLY, mode_hint: 0o777 }, ROOT_FRAME);
  t.is(r.err?.code, 'EINVAL');
  t.regex(r.err!.message, /args\.mode_hint is not an argument/);
  t.false(fs.existsSync(path.join(brick.dir, 'made')));
  const burst = await c.call('create', {
    path: '/made', mode: 0o644, flags: fs.constants.O_WRONLY,
    burst: { lock: { name: 'made', owner: 'o', as: 'root' }, add: {} },
  }, ROOT_FRAME);
  t.regex(burst.err!.message, /args\.burst\.lock\.as is not an argument/);
  t.false(fs.existsSync(path.join(brick.dir, 'made')));
  const good = await c.call('create', { path: '/made', mode: 0o644, flags: fs.constants.O_WRONLY }, ROOT_FRAME);
  t.is(good.err, undefined);
  t.true(fs.existsSync(path.join(brick.dir, 'made')));
});
