import { graphFromVolfile, type Graph } from '../lib/graph.js';
import type { Xlator } from '../lib/xlator.js';
import { Replicate } from './xlators/cluster/replicate/index.js';
import type { PendingEntry, SplitBrainPolicy } from './xlators/cluster/replicate/self-heal.js';
import { ProtocolClient } from './xlators/protocol/client.js';
import './xlators/index.js';

/** What `volume heal` asks for. */
export type HealRequest =
  | { op: 'index' }
  | { op: 'full' }
  | { op: 'info' }
  | { op: 'split-brain'; policy: SplitBrainPolicy; file: string; brick?: string };

/** One brick's part of `volume heal VOL info`: what its own heal index lists, as gluster prints it per brick. */
export interface BrickHealInfo {
  /** HOST:/path. */
  brick: string;
  /** Its replica set (the translator's name). */
  set: string;
  /** "Connected", or why its index could not be read. */
  status: string;
  /** The pending entries its index lists (blamed bricks as HOST:/path); absent when it could not be read. */
  entries?: PendingEntry[];
}

export interface HealReport {
  /** Per replica set (its translator name); for info, the entries of every brick of the set. */
  sets: Array<{ set: string; healed?: number; pending?: PendingEntry[]; splitBrain?: string[]; source?: string }>;
  /** For info: every brick of every replica set, in volume order. */
  bricks?: BrickHealInfo[];
}

/** How users name a replica: HOST:/path for a brick, else its translator's name. */
export function replicaName(x: Xlator): string {
  return x instanceof ProtocolClient ? x.brick : x.name;
}

/** gluster's words for a brick whose index cannot be read. */
function statusWord(code: string, message: string): string {
  return code === 'ENOTCONN' ? 'Transport endpoint is not connected' : `${code}: ${message}`;
}

/** `volume heal VOL info` of one replica set: per brick, and the set's entries once each. */
async function info(r: Replicate): Promise<{ bricks: BrickHealInfo[]; pending: PendingEntry[] }> {
  const names = new Map(r.children.map((c) => [c.name, replicaName(c)]));
  const named = (p: PendingEntry): PendingEntry => ({ ...p, blamed: p.blamed.map((n) => names.get(n) ?? n) });
  const bricks: BrickHealInfo[] = [];
  const union = new Map<string, PendingEntry>();
  for (const b of await r.heal.pendingByReplica()) {
    const brick = replicaName(r.children[b.child]!);
    if (b.error) {
      bricks.push({ brick, set: r.name, status: statusWord(b.error.code, b.error.message) });
      continue;
    }
    const entries = b.entries!.map(named);
    for (const e of entries) union.set(e.path, e);
    bricks.push({ brick, set: r.name, status: 'Connected', entries });
  }
  return { bricks, pending: [...union.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}

/**
 * The self-heal client, run on demand (`volume heal`): builds the volume's client graph
 * without FUSE and asks every replica set to heal, list or resolve. Every brick is reached
 * through the volfile, whichever host it is on.
 */
export async function runHeal(volfileText: string, req: HealRequest): Promise<HealReport> {
  const graph: Graph = graphFromVolfile(volfileText, 'heal.vol');
  await graph.init();
  try {
    const sets = [...graph.byName.values()].filter((x): x is Replicate => x instanceof Replicate);
    const report: HealReport = { sets: [] };
    for (const r of sets) {
      if (req.op === 'info') {
        const { bricks, pending } = await info(r);
        report.sets.push({ set: r.name, pending });
        (report.bricks ??= []).push(...bricks);
      } else if (req.op === 'index') report.sets.push({ set: r.name, ...(await r.heal.healIndexed()) });
      else if (req.op === 'full') report.sets.push({ set: r.name, healed: await r.heal.healFull() });
      else {
        const here = await r.onEach('lookup', { path: req.file });
        if (!here.some((x) => x.ok)) continue;
        const source = await r.heal.resolveSplitBrain(req.file, req.policy, req.brick);
        const x = graph.byName.get(source);
        report.sets.push({ set: r.name, source: x ? replicaName(x) : source });
      }
    }
    if (req.op === 'info') report.bricks ??= [];
    return report;
  } finally {
    await graph.fini();
  }
}
