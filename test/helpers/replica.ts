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
