// diagnostics.trace on a 2 x 2 volume from the CLI: a `cp` into the mount is traced from the
// FUSE request through replicate and protocol/client, over the wire, through the brick's
// protocol/server down to storage/posix, one trace id throughout, in the span files beside
// the mount's and the bricks' logs; switched off, nothing more is recorded.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountRunFile } from '../../client/mount-table.js';
import type { ZipkinSpan } from '../../lib/trace.js';
import { byTrace, formatTrace, readSpans } from '../../lib/trace-tree.js';
import { runCliOk } from '../helpers/cli.js';
import { unmountQuietly } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { eventually, shOk, sleep, tmpDir } from '../helpers/proc.js';

/** The span files: the mount's (beside its log) and every brick's (beside theirs). */
function spanFiles(stateDir: string, mnt: string): string[] {
  const bricks = path.join(stateDir, 'logs', 'bricks');
  const ofBricks = fs.existsSync(bricks) ? fs.readdirSync(bricks).filter((f) => f.endsWith('.spans.jsonl')).map((f) => path.join(bricks, f)) : [];
  return [mountRunFile(mnt, 'log').replace(/\.log$/, '.spans.jsonl'), ...ofBricks];
}

const WRITE = '(write|writev)';

/** A trace rooted at a FUSE write that reached storage/posix through every layer of the volume. */
function fullWrite(spans: readonly ZipkinSpan[]): ZipkinSpan[] | undefined {
  for (const trace of byTrace(spans).values()) {
    const has = (re: RegExp): boolean => trace.some((s) => re.test(s.name));
    if (has(/^fuse write$/) && has(new RegExp(`^tr-replicate-\\d+ ${WRITE}$`)) && has(new RegExp(`^tr-client-\\d+ ${WRITE}$`)) &&
      has(new RegExp(`^tr-server ${WRITE}$`)) && has(new RegExp(`^tr-posix ${WRITE}$`))) return trace;
  }
  return undefined;
}

/** Line counts of the span files once they stop growing (the last batches exported). */
async function settled(files: readonly string[]): Promise<number> {
  let last = -1;
  for (;;) {
    const n = readSpans(files).length;
    if (n === last) return n;
    last = n;
    await sleep(1500);
  }
}

test('a traced operation yields spans from FUSE to storage/posix with one trace id', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-trace-');
  const bricks = ['b1', 'b2', 'b3', 'b4'].map((b) => `localhost:${path.join(root, b)}`);
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'tr']));
  await cli(['volume', 'create', 'tr', 'replica', '2', ...bricks, '--force']);
  await cli(['volume', 'start', 'tr']);
  const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
  t.teardown(() => unmountQuietly(mnt));
  t.teardown(() => fs.rmSync(mountRunFile(mnt, 'log').replace(/\.log$/, '.spans.jsonl'), { force: true }));
  await cli(['mount', `${d.server}:/tr`, mnt]);
  const src = path.join(root, 'src');
  fs.writeFileSync(src, Buffer.alloc(300_000, 'x'));
  const files = (): string[] => spanFiles(d.stateDir, mnt);

  // Off (the default): no span anywhere.
  await shOk(t, `cp ${src} ${mnt}/off-before`);
  await sleep(1000);
  t.deepEqual(files().filter((f) => fs.existsSync(f)), [], 'no span file while tracing is off');

  await cli(['volume', 'set', 'tr', 'diagnostics.trace', 'on']);
  t.regex(await cli(['volume', 'get', 'tr', 'diagnostics.trace']), /diagnostics\.trace\s+on/);
  // The mount switches to the new graph and the bricks reload their options on their own time.
  let i = 0;
  const trace: ZipkinSpan[] = await eventually(async () => {
    await shOk(t, `cp ${src} ${mnt}/traced-${i++}`);
    await sleep(700);
    return fullWrite(readSpans(files()));
  }, 30_000, 'a trace of a write from fuse to storage/posix').catch((e: Error) => {
    const spans = readSpans(files());
    t.log(`span files: ${files().filter((f) => fs.existsSync(f)).join(', ') || 'none'}; span names: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
    throw e;
  }) as ZipkinSpan[];
  t.log(`\n${formatTrace(trace)}`);
  t.is(new Set(trace.map((s) => s.traceId)).size, 1);
  const services = new Set(trace.map((s) => s.localEndpoint.serviceName));
  t.true(services.has('brickfs-mount'), 'the mount recorded its part');
  t.true([...services].some((s) => s.startsWith('brickfs-brick ')), 'a brick recorded its part');
  // Parent links hold across the wire: the brick's server span is a child of a protocol/client span.
  const server = trace.find((s) => /^tr-server /.test(s.name))!;
  t.regex(trace.find((s) => s.id === server.parentId)?.name ?? '', /^tr-client-\d+ /);
  const fuse = trace.find((s) => s.name === 'fuse write')!;
  t.is(fuse.parentId, undefined, 'the FUSE request is the root');
  t.is(server.kind, 'SERVER');

  await cli(['volume', 'set', 'tr', 'diagnostics.trace', 'off']);
  await eventually(async () => !(await cli(['volume', 'volfile', 'tr'])).includes('debug/trace'), 10_000, 'the volfile without debug/trace');
  await sleep(2000);
  const before = await settled(files());
  await shOk(t, `cp ${src} ${mnt}/off-after && cat ${mnt}/off-after > /dev/null`);
  await sleep(2000);
  t.is(readSpans(files()).length, before, 'no span once tracing is off again');
});
