// The rebalance process the management daemon spawns (the role of GlusterFS's rebalance
// daemon): a client graph without FUSE, driven by client/rebalance/rebalancer.ts. The
// command line and the status file are the contract in lib/mgmt/rebalance.ts.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildGraph } from '../../lib/graph.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { Logger } from '../../lib/log.js';
import { parseSubvolShares, REBALANCE_THROTTLES, type RebalanceStatus, type RebalanceThrottle } from '../../lib/mgmt/rebalance.js';
import { Distribute } from '../xlators/cluster/distribute/index.js';
import '../xlators/index.js';
import { REBALANCE_FRAME, Rebalancer } from './rebalancer.js';

const log = new Logger('rebalance');
const STATUS_EVERY_MS = 500;
const CONNECT_WAIT_MS = 15_000;

function usage(msg: string): never {
  process.stderr.write(`rebalance: ${msg}\nusage: node dist/client/rebalance/main.js --volfile FILE --status FILE --checkpoint FILE [--fix-layout] [--resume] [--throttle lazy|normal|aggressive] [--subvols NAME[:I/N],... --node TAG --no-settle] [--settle]\n`);
  process.exit(2);
}

/** Written whole or not at all: the daemon may read it at any moment. */
function writeStatus(file: string, s: RebalanceStatus): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      volfile: { type: 'string' },
      status: { type: 'string' },
      checkpoint: { type: 'string' },
      'fix-layout': { type: 'boolean', default: false },
      resume: { type: 'boolean', default: false },
      throttle: { type: 'string', default: 'normal' },
      subvols: { type: 'string' },
      node: { type: 'string' },
      'no-settle': { type: 'boolean', default: false },
      settle: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.volfile || !values.status || !values.checkpoint) usage('--volfile, --status and --checkpoint are required');
  const throttle = values.throttle as RebalanceThrottle;
  if (!REBALANCE_THROTTLES.includes(throttle)) usage(`--throttle must be one of ${REBALANCE_THROTTLES.join(', ')}`);
  let shareList;
  try {
    shareList = values.subvols === undefined ? undefined : parseSubvolShares(values.subvols);
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.node !== undefined && !/^[A-Za-z0-9_-]+$/.test(values.node)) usage('--node takes letters, digits, - and _ only (it names files)');
  const statusFile = path.resolve(values.status);
  const checkpoint = path.resolve(values.checkpoint);
  fs.mkdirSync(path.dirname(statusFile), { recursive: true });

  const done = new Set<string>();
  if (values.resume && fs.existsSync(checkpoint)) {
    for (const line of fs.readFileSync(checkpoint, 'utf8').split('\n')) if (line) done.add(line);
  } else {
    fs.writeFileSync(checkpoint, '');
  }
  const mode = values['fix-layout'] ? 'fix-layout' : 'migrate';

  const decls = parseVolfile(fs.readFileSync(values.volfile, 'utf8'), values.volfile);
  // No self-heal from the mover: a file it holds frozen may carry a writer's changelog
  // marks, and healing them would wait for that writer's lock, which waits for the mover.
  for (const d of decls) if (d.type === 'cluster/replicate') d.options['self-heal'] = 'off';
  const graph = buildGraph(decls, values.volfile);
  const dht = [...graph.byName.values()].find((x): x is Distribute => x instanceof Distribute);
  const fail = (error: string): number => {
    const failed: RebalanceStatus = {
      mode, state: 'failed', startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(), elapsedS: 0,
      dirsScanned: 0, dirsFixed: 0, filesScanned: 0, filesMoved: 0, filesFailed: 0, filesSkipped: 0, bytesMoved: 0,
      filesTotal: null, rateFilesPerS: 0, rateBytesPerS: 0, etaS: null, resumed: values.resume === true, error,
    };
    writeStatus(statusFile, failed);
    return 1;
  };
  if (!dht) return fail('the volume has no cluster/distribute translator: nothing to rebalance');
  let shares: Map<number, { index: number; of: number }> | undefined;
  if (shareList) {
    shares = new Map();
    for (const s of shareList) {
      const child = dht.childNamed(s.name);
      if (child === undefined) return fail(`--subvols names ${s.name}, which is not a subvolume of ${dht.name} in ${values.volfile}`);
      shares.set(child, { index: s.index, of: s.of });
    }
  }
  await graph.init();
  // Every brick must answer before files move: a brick away would hide files from the walk.
  const deadline = Date.now() + CONNECT_WAIT_MS;
  for (;;) {
    const res = await Promise.allSettled(dht.children.map((c) => c.call('lookup', { path: '/' }, REBALANCE_FRAME)));
    if (res.every((r) => r.status === 'fulfilled')) break;
    if (Date.now() > deadline) {
      const down = dht.children.filter((_, i) => res[i]!.status === 'rejected').map((c) => c.name);
      log.error(`subvolumes not reachable: ${down.join(', ')}`);
      break; // the walk fails with the brick's error and says which
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const rebalancer = new Rebalancer(dht, {
    mode, throttle, done, resumed: values.resume === true,
    ...(shares ? { shares } : {}), ...(values.node === undefined ? {} : { node: values.node }), settle: !values['no-settle'], settleOnly: values.settle === true,
    onDirDone: (dir) => fs.appendFileSync(checkpoint, `${dir}\n`),
  });
  const stop = (): void => {
    log.info('stop requested: finishing the files in hand');
    rebalancer.stop();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  writeStatus(statusFile, rebalancer.snapshot());
  const timer = setInterval(() => writeStatus(statusFile, rebalancer.snapshot()), STATUS_EVERY_MS);
  const share = shareList ? `, moving the files of ${shareList.map((x) => (x.of === 1 ? x.name : `${x.name} (share ${x.index + 1} of ${x.of})`)).join(', ')}` : '';
  log.info(`rebalance (${mode}, throttle ${throttle}${values.resume ? `, resuming after ${done.size} directories` : ''}${share}) started, pid ${process.pid}`);
  const final = await rebalancer.run();
  clearInterval(timer);
  writeStatus(statusFile, final);
  log.info(`rebalance ${final.state}: ${final.filesMoved} moved, ${final.filesFailed} failed, ${final.filesSkipped} skipped, ${final.dirsFixed} layouts fixed in ${final.elapsedS} s`);
  await graph.fini().catch(() => undefined);
  return final.state === 'failed' ? 1 : 0;
}

main().then((code) => process.exit(code), (e: Error) => {
  log.error(`rebalance: ${e.stack ?? e.message}`);
  process.exit(1);
});
