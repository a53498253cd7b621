// A rename on a settled layout sends no lookup of its target:
// what it replaces shows on the new name's hashed brick, whose rename says which link file
// it replaced, so distribute removes the data that link file stood for. Real bricks over
// real sockets, the client graph in this process.
import { ROOT_FRAME } from '../../lib/frame.js';
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { prepareGraph } from '../../client/graph-switch.js';
import { Fd } from '../../lib/inode.js';
import { Distribute } from '../../client/xlators/cluster/distribute/index.js';
import '../../client/xlators/index.js';
import { startDistribute } from '../helpers/cluster.js';

const { O_WRONLY } = fs.constants;

test('the brick\'s rename says which link file it replaced: the data it stood for goes', async (t) => {
  const vol = await startDistribute(t, 2);
  const graph = await prepareGraph(fs.readFileSync(vol.volfilePath, 'utf8'), 'test', { readyTimeoutMs: 5000 });
  t.teardown(() => graph.fini());
  const dht = [...graph.byName.values()].find((x): x is Distribute => x instanceof Distribute)!;
  const write = async (p: string, text: string): Promise<void> => {
    const fd = Fd.forPath(p, O_WRONLY);
    await dht.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
    await dht.call('write', { fd, offset: 0, data: Buffer.from(text) }, ROOT_FRAME);
    await dht.call('release', { fd }, ROOT_FRAME);
  };
  // The target's data on brick x, its link file on its hashed brick s; the source made on s.
  const named = async (want: number, prefix: string): Promise<string> => {
    for (let i = 0; ; i++) if ((await dht.hashedChild(`/${prefix}${i}`, ROOT_FRAME)) === want) return `/${prefix}${i}`;
  };
  const target = await named(0, 'target-');
  const s = 0;
  const x = 1;
  const pre = await named(x, 'pre-');
  await write(pre, 'old target\n');
  await dht.call('rename', { from: pre, to: target }, ROOT_FRAME);
  const at = (b: number): string => path.join(vol.bricks[b]!.dir, target.slice(1));
  t.is(fs.statSync(at(s)).size, 0, 'the target is a link file on its hashed brick');
  t.is(fs.readFileSync(at(x), 'utf8'), 'old target\n', 'and data on the other');
  const source = await named(s, 'source-');
  await write(source, 'new content\n');
  await dht.call('rename', { from: source, to: target }, ROOT_FRAME);
  t.is(fs.readFileSync(at(s), 'utf8'), 'new content\n', 'the data renamed over the link file');
  t.false(fs.existsSync(at(x)), 'the old target\'s data is gone');
  const r = await dht.call('readfile', { path: target, offset: 0, size: 100 }, ROOT_FRAME);
  t.is(r.data.toString(), 'new content\n');
});
