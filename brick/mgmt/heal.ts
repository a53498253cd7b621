// `volume heal` (glusterd asking the self-heal daemon): the daemon runs the heal process
// (dist/client/heal-main.js) over the volume's service volfile and answers with its report.
// The heal reads the heal index, which only the service credential may, so it runs here and
// not in the CLI, which has only what any client has.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../lib/errors.js';
import type { HealReport, HealRequest } from '../../client/heal.js';
import type { MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { writeFileAtomic } from './store.js';
import { serviceVolfile } from './volgen.js';

/** dist/client/heal-main.js, resolved from this module's place in the build (as REBALANCE_MAIN). */
export const HEAL_MAIN = fileURLToPath(new URL('../../client/heal-main.js', import.meta.url));

const POLICIES = ['bigger-file', 'latest-mtime', 'source-brick'];

/** The request as the heal process takes it; anything else is a 400 saying what to send. */
export function checkHealRequest(v: unknown): HealRequest {
  const r = v as Partial<Record<string, unknown>> | null;
  const shape = 'expected {"op": "index"|"full"|"info"} or {"op": "split-brain", "policy": "bigger-file"|"latest-mtime"|"source-brick", "file": "/PATH", "brick"?: "HOST:/PATH"}';
  if (!r || typeof r !== 'object') throw new UsageError(shape);
  if (r.op === 'index' || r.op === 'full' || r.op === 'info') return { op: r.op };
  if (r.op !== 'split-brain' || typeof r.policy !== 'string' || !POLICIES.includes(r.policy) || typeof r.file !== 'string' || !r.file.startsWith('/')) throw new UsageError(shape);
  if (r.policy === 'source-brick' ? typeof r.brick !== 'string' : r.brick !== undefined) throw new UsageError(`${shape} (brick with source-brick only, and then required)`);
  return { op: 'split-brain', policy: r.policy as 'bigger-file', file: r.file, ...(typeof r.brick === 'string' ? { brick: r.brick } : {}) };
}

/** Runs one heal of a started volume in the heal process; its report, or a 500 with what it said. */
export async function healVolume(ctx: MgmtContext, name: string, body: unknown, main = HEAL_MAIN): Promise<HealReport> {
  const req = checkHealRequest(body);
  const vol = ctx.need(name);
  // gluster's words; only replicas have copies to compare.
  if ((vol.replicaCount ?? 1) < 2) throw new MgmtError(409, `Volume ${name} is not of type replicate`);
  if (vol.status !== 'started') throw new MgmtError(409, `volume ${name} is not started; start it with \`brickfs volume start ${name}\``);
  // Current whatever happened to the file since (it is the daemon's; a heal is rare).
  await writeFileAtomic(ctx.store.paths.serviceVolfile(name), serviceVolfile(vol), 0o600);
  const child = spawn(process.execPath, [main, '--volfile', ctx.store.paths.serviceVolfile(name), '--request', JSON.stringify(req)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const said = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-20).join('\n');
  if (code !== 0) throw new MgmtError(500, `volume ${name}: the heal process failed (exit code ${code}): ${said}`);
  try {
    return JSON.parse(Buffer.concat(out).toString('utf8')) as HealReport;
  } catch {
    throw new MgmtError(500, `volume ${name}: the heal process answered no report: ${said}`);
  }
}
