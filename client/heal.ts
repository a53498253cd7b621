import { graphFromVolfile, type Graph } from '../lib/graph.js';
import { Replicate } from './xlators/cluster/replicate/index.js';
import type { PendingEntry, SplitBrainPolicy } from './xlators/cluster/replicate/self-heal.js';
import './xlators/index.js';

/** What `volume heal` asks for. */
export type HealRequest =
  | { op: 'index' }
  | { op: 'full' }
  | { op: 'info' }
  | { op: 'split-brain'; policy: SplitBrainPolicy; file: string; brick?: string };

export interface HealReport {
  /** Per replica set (its translator name). */
  sets: Array<{ set: string; healed?: number; pending?: PendingEntry[]; splitBrain?: string[]; source?: string }>;
}

/**
 * The self-heal client (GlusterFS's glustershd, run on demand): builds the volume's client
 * graph without FUSE and asks every replica set to heal, list or resolve.
 */
export async function runHeal(volfileText: string, req: HealRequest): Promise<HealReport> {
  const graph: Graph = graphFromVolfile(volfileText, 'heal.vol');
  await graph.init();
  try {
    const sets = [...graph.byName.values()].filter((x): x is Replicate => x instanceof Replicate);
    const report: HealReport = { sets: [] };
    for (const r of sets) {
      if (req.op === 'info') report.sets.push({ set: r.name, pending: await r.heal.pending() });
      else if (req.op === 'index') report.sets.push({ set: r.name, ...(await r.heal.healIndexed()) });
      else if (req.op === 'full') report.sets.push({ set: r.name, healed: await r.heal.healFull() });
      else {
        const here = await r.onEach('lookup', { path: req.file });
        if (!here.some((x) => x.ok)) continue;
        report.sets.push({ set: r.name, source: await r.heal.resolveSplitBrain(req.file, req.policy, req.brick) });
      }
    }
    return report;
  } finally {
    await graph.fini();
  }
}
