// Helpers for rebalance tests: a volume that grows by hand (more bricks, a new client
// volfile at a higher layout epoch), the rebalance process, and a census of the bricks.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { clientGraph } from '../../brick/mgmt/volgen.js';
import type { RebalanceStatus } from '../../lib/mgmt/rebalance.js';
import { formatVolfile } from '../../lib/volfile/parse.js';
import { useTestTls } from './tls.js';
import { LINKFILE_MODE, BRICK_PRIVATE_DIR } from '../../lib/fops.js';
import { REPO, eventually, type Owner } from './proc.js';
import type { TestBrick } from './cluster.js';

export const REBALANCE_MAIN = path.join(REPO, 'dist', 'client', 'rebalance', 'main.js');

export interface GraphSpec {
  replica?: number;
  /** Extra options on the cluster/distribute translator (layout-epoch, decommissioned-bricks...). */
  dht?: Record<string, string>;
}

/** Writes the client volfile the daemon would generate over these bricks, with dht options added. */
export function writeClientVolfile(file: string, bricks: readonly TestBrick[], spec: GraphSpec = {}): string {
  const graph = clientGraph({
    // BRICKFS_TEST_TLS=1: the bricks startVolume made speak TLS.
    name: 'tv', options: useTestTls(), ...(spec.replica ? { replicaCount: spec.replica } : {}),
    bricks: bricks.map((b) => ({ host: '127.0.0.1', port: b.port, path: b.dir })),
  });
  const dht = graph.find((d) => d.type === 'cluster/distribute');
  if (!dht) throw new Error('no distribute translator in the graph');
  Object.assign(dht.options, spec.dht ?? {});
  fs.writeFileSync(file, formatVolfile(graph));
  return file;
}

export interface RebalanceRun {
  proc: ChildProcess;
  statusFile: string;
  checkpoint: string;
  exited: Promise<number | null>;
  status(): RebalanceStatus | undefined;
}

/** Starts the rebalance process on a volfile; killed when the test ends. */
export function startRebalance(t: Owner, volfile: string, dir: string, args: string[] = []): RebalanceRun {
  const statusFile = path.join(dir, 'rebalance-status.json');
  const checkpoint = path.join(dir, 'rebalance-checkpoint');
  const log = fs.openSync(path.join(dir, 'rebalance.log'), 'a');
  const proc = spawn(process.execPath, [REBALANCE_MAIN, '--volfile', volfile, '--status', statusFile, '--checkpoint', checkpoint, ...args], {
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc, statusFile, checkpoint, exited,
    status: () => {
      try {
        return JSON.parse(fs.readFileSync(statusFile, 'utf8')) as RebalanceStatus;
      } catch {
        return undefined;
      }
    },
  };
}

/** Runs a rebalance to its end and returns the final status. */
export async function rebalanceToEnd(t: Owner, volfile: string, dir: string, args: string[] = []): Promise<RebalanceStatus> {
  const run = startRebalance(t, volfile, dir, args);
  const code = await run.exited;
  const s = run.status();
  if (!s) throw new Error(`rebalance wrote no status (exit ${code}): ${fs.readFileSync(path.join(dir, 'rebalance.log'), 'utf8')}`);
  return s;
}

/** What the bricks hold: for each volume path of a regular file, the bricks holding data, and every link file. */
export interface Census {
  data: Map<string, number[]>;
  links: Array<{ path: string; brick: number }>;
}

export function census(bricks: readonly Pick<TestBrick, 'dir'>[]): Census {
  const data = new Map<string, number[]>();
  const links: Census['links'] = [];
  bricks.forEach((b, i) => {
    const walk = (rel: string): void => {
      for (const e of fs.readdirSync(path.join(b.dir, rel), { withFileTypes: true })) {
        if (rel === '' && e.name === BRICK_PRIVATE_DIR) continue;
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(r);
        else {
          const st = fs.lstatSync(path.join(b.dir, r));
          if (st.mode === LINKFILE_MODE && st.size === 0) links.push({ path: `/${r}`, brick: i });
          else data.set(`/${r}`, [...(data.get(`/${r}`) ?? []), i]);
        }
      }
    };
    walk('');
  });
  return { data, links };
}

/** The data files under one brick directory (not link files, not the private directory), by volume path. */
export function dataFiles(dir: string): string[] {
  return [...census([{ dir }]).data.keys()];
}

/** Files still staged under the bricks' private directory (a move that did not finish). */
export function stagedLeftovers(bricks: readonly TestBrick[]): string[] {
  return bricks.flatMap((b) => {
    const d = path.join(b.dir, BRICK_PRIVATE_DIR, 'migrate');
    return fs.existsSync(d) ? fs.readdirSync(d).map((n) => `${b.dir}: ${n}`) : [];
  });
}

/** Waits until the rebalance status satisfies a predicate. */
export function statusWhen(run: RebalanceRun, pred: (s: RebalanceStatus) => boolean, what: string, timeoutMs = 60_000): Promise<RebalanceStatus> {
  return eventually(() => {
    const s = run.status();
    if (s && pred(s)) return s;
    throw new Error(`rebalance status: ${JSON.stringify(s)}`);
  }, timeoutMs, what);
}
