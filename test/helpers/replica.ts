import fs from 'node:fs';
import path from 'node:path';
import { formatVolfile } from '../../lib/volfile/parse.js';
import { startVolume, type TestVolume } from './cluster.js';
import type { Owner } from './proc.js';

/**
 * Real bricks under a replicate graph: `sets` replica sets of `replica` consecutive bricks,
 * distribute over them when there are several, md-cache on top.
 */
export async function startReplicated(t: Owner, replica: number, sets = 1, opts: { pingTimeoutS?: number; quorum?: string } = {}): Promise<TestVolume> {
  const vol = await startVolume(t, replica * sets, { name: 'rv' });
  const decls = vol.bricks.map((b, i) => ({
    name: `rv-client-${i}`, type: 'protocol/client', subvolumes: [],
    options: { 'remote-host': '127.0.0.1', 'remote-port': String(b.port), 'remote-subvolume': b.dir, ...(opts.pingTimeoutS ? { 'ping-timeout': String(opts.pingTimeoutS) } : {}) },
  }));
  const setNames: string[] = [];
  for (let s = 0; s < sets; s++) {
    const name = `rv-replicate-${s}`;
    setNames.push(name);
    decls.push({
      name, type: 'cluster/replicate', options: opts.quorum ? { 'quorum-type': opts.quorum } : {},
      subvolumes: decls.slice(s * replica, (s + 1) * replica).map((d) => d.name),
    } as never);
  }
  if (sets > 1) decls.push({ name: 'rv-dht', type: 'cluster/distribute', options: {}, subvolumes: setNames } as never);
  decls.push({ name: 'rv-md-cache', type: 'performance/md-cache', options: {}, subvolumes: [decls.at(-1)!.name] } as never);
  const volfile = formatVolfile(decls);
  fs.writeFileSync(vol.volfilePath, volfile);
  return { ...vol, volfile, volfilePath: path.resolve(vol.volfilePath) };
}
