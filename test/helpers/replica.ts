import { ROOT_FRAME } from '../../lib/frame.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { prepareGraph } from '../../client/graph-switch.js';
import type { FopName } from '../../lib/fops.js';
import type { Xlator } from '../../lib/xlator.js';
import { startVolume, type TestVolume } from './cluster.js';
import type { Owner } from './proc.js';

/**
 * Real bricks under a replicate graph as the daemon generates it: `sets` replica sets of
 * `replica` consecutive bricks, distribute over them when there are several.
 */
export function startReplicated(t: Owner, replica: number, sets = 1, opts: { pingTimeoutS?: number; quorum?: string; set?: Record<string, string> } = {}): Promise<TestVolume> {
  return startVolume(t, replica * sets, {
    name: 'rv', replica, ...(opts.pingTimeoutS ? { pingTimeoutS: opts.pingTimeoutS } : {}),
    set: { ...(opts.quorum ? { 'cluster.quorum-type': opts.quorum } : {}), ...opts.set },
  });
}

/**
 * The replicate translator of the volume's first replica set in a client graph of its own
 * (own connections to the bricks, as another mount would have), torn down with the test.
 * The caller imports client/xlators/index.js so the graph's translator types are known.
 */
export async function replicateClient(t: Owner, vol: TestVolume): Promise<Xlator> {
  const graph = await prepareGraph(fs.readFileSync(vol.volfilePath, 'utf8'), 'test', { readyTimeoutMs: 1500 });
  t.teardown(() => graph.fini());
  return graph.byName.get('rv-replicate-0')!;
}

/** Makes every `fop` a translator is asked for wait for `before()` first; other fops go at once. */
function gateFop(x: Xlator, fop: FopName, before: () => Promise<void>): void {
  const call = x.call.bind(x);
  x.call = (async (f: FopName, a: never) => {
    if (f === fop) await before();
    return call(f, a, ROOT_FRAME);
  }) as Xlator['call'];
}

/** Holds every `fop` a translator is asked for by `ms` before it goes (a slow brick, for one fop). */
export function delayFop(x: Xlator, fop: FopName, ms: number): void {
  gateFop(x, fop, () => new Promise((res) => setTimeout(res, ms)));
}

/**
 * Holds every `fop` a translator is asked for until release() (a write stuck on its way to
 * one brick, for as long as a test needs: no timing involved). held() counts those waiting.
 */
export function holdFop(x: Xlator, fop: FopName): { release: () => void; held: () => number } {
  let release!: () => void;
  const gate = new Promise<void>((res) => { release = res; });
  let waiting = 0;
  gateFop(x, fop, async () => {
    waiting++;
    await gate;
    waiting--;
  });
  return { release, held: () => waiting };
}

/** Relative path → content hash, mode and owner, for every entry of a brick but brickfs' own: replicas that agree give equal trees. */
export function brickTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (!rel && e.name === '.brickfs') continue;
      const r = path.join(rel, e.name);
      const st = fs.lstatSync(path.join(dir, r));
      out[r] = e.isDirectory() ? `dir ${st.mode}` : `${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, r))).digest('hex')} ${st.mode} ${st.uid}`;
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
