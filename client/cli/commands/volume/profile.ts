import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError, UsageError } from '../../../../lib/errors.js';
import type { SetOptionRequest, VolumeReply } from '../../../../lib/mgmt/api.js';
import type { ProfileInfoReply, ProfilePeriod } from '../../../../lib/mgmt/profile.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface ProfileArgs extends GlobalArgs {
  volname: string;
  action: string;
  json: boolean;
}

const USAGE = 'usage: brickfs volume profile VOL start|info|stop [--json]';
/** What `profile start` switches on and `stop` off again (protocol/server's options). */
const PROFILE_OPTIONS = ['diagnostics.latency-measurement', 'diagnostics.count-fop-hits'];

/** The block-size rows of one period, three sizes a line, as gluster prints them. */
function blockRows(p: ProfilePeriod): string[] {
  const sizes = [...new Set([...Object.keys(p.readBlocks), ...Object.keys(p.writeBlocks)])].map(Number).sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sizes.length; i += 3) {
    const cols = sizes.slice(i, i + 3);
    out.push('Block Size:'.padStart(14) + cols.map((s) => `${String(s).padStart(19)}b+ `).join(''));
    out.push('No. of Reads:'.padStart(14) + cols.map((s) => `${String(p.readBlocks[s] ?? 0).padStart(21)} `).join(''));
    out.push('No. of Writes:'.padStart(14) + cols.map((s) => `${String(p.writeBlocks[s] ?? 0).padStart(21)} `).join(''));
    // gluster ends each full line of three with a blank one.
    if (cols.length === 3) out.push(' ');
  }
  return out;
}

/** One period as gluster's cmd_profile_volume_brick_out lays it out: blocks, the fop table by share of latency, totals. */
export function formatPeriod(title: string, p: ProfilePeriod): string {
  const lines = [title, ...blockRows(p)];
  const fops = Object.entries(p.fops).filter(([, f]) => f.calls > 0);
  const total = fops.reduce((n, [, f]) => n + f.calls * f.avgUs, 0);
  const rows = fops.map(([name, f]) => ({ name, f, pct: total ? (100 * f.calls * f.avgUs) / total : 0 })).sort((a, b) => a.pct - b.pct || a.name.localeCompare(b.name));
  if (rows.length) {
    const num = (n: number): string => n.toFixed(2).padStart(10);
    lines.push(`${'%-latency'.padStart(10)} ${'Avg-latency'.padStart(13)} ${'Min-Latency'.padStart(13)} ${'Max-Latency'.padStart(13)} ${'No. of calls'.padStart(14)} ${'Fop'.padStart(11)}`);
    lines.push(`${'---------'.padStart(10)} ${'-----------'.padStart(13)} ${'-----------'.padStart(13)} ${'-----------'.padStart(13)} ${'------------'.padStart(14)} ${'----'.padStart(11)}`);
    for (const r of rows) {
      lines.push(`${num(r.pct)} ${num(r.f.avgUs)} us ${num(r.f.minUs)} us ${num(r.f.maxUs)} us ${String(r.f.calls).padStart(14)} ${r.name.toUpperCase().padStart(11)}`);
    }
  }
  lines.push(' ', `${'Duration'.padStart(12)}: ${p.durationS} seconds`, `${'Data Read'.padStart(12)}: ${p.bytesRead} bytes`, `${'Data Written'.padStart(12)}: ${p.bytesWritten} bytes`, ' ');
  return `${lines.join('\n')}\n`;
}

export function formatProfileInfo(r: ProfileInfoReply): string {
  let out = '';
  for (const b of r.bricks) {
    const head = `Brick: ${b.brick}`;
    out += `${head}\n${'-'.repeat(head.length)}\n`;
    if (b.error) out += `${b.error}\n \n`;
    else if (!b.enabled) out += 'profile is not started on this brick (it has not applied the volume\'s options yet?)\n \n';
    else {
      if (b.cumulative) out += formatPeriod('Cumulative Stats:', b.cumulative);
      if (b.interval) out += formatPeriod(`Interval ${b.interval.number} Stats:`, b.interval);
    }
  }
  return out;
}

export const command: CommandModule<GlobalArgs, ProfileArgs> = {
  command: 'profile <volname> <action>',
  describe: 'Count and time every fop on each brick of a volume: start, info, stop (as `gluster volume profile`)',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume profile VOL start|info|stop [--json]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('action', { type: 'string', demandOption: true, describe: 'start | info | stop' })
    .option('json', { type: 'boolean', default: false, describe: 'info: print {"name", "bricks": [{"brick", "enabled", "cumulative", "interval" | "error"}]} (docs/metrics.md)' })
    .example('$0 volume profile demo start', 'bricks start counting calls, latencies and block sizes')
    .example('$0 volume profile demo info', 'per brick: since start, and since the last info')
    .example('$0 volume profile demo stop', 'bricks stop counting')
    .epilog('start and stop set and reset diagnostics.latency-measurement and diagnostics.count-fop-hits; '
      + 'each info ends the bricks\' current interval.') as unknown as Argv<ProfileArgs>,
  handler: async (argv: ArgumentsCamelCase<ProfileArgs>) => {
    const action = String(argv.action);
    if (!['start', 'info', 'stop'].includes(action)) throw new UsageError(`unknown profile action "${action}": type start, info or stop\n${USAGE}`);
    await labelled(`volume profile: ${argv.volname}`, async () => {
      const api = MgmtApi.fromArgs(argv);
      if (action === 'start') {
        const body: SetOptionRequest = { value: 'on' };
        for (const key of PROFILE_OPTIONS) await api.json<VolumeReply>('PUT', volumePath(argv.volname, `/options/${encodeURIComponent(key)}`), body);
        process.stdout.write(`Starting volume profile on ${argv.volname} has been successful\n`);
        return;
      }
      if (action === 'stop') {
        for (const key of PROFILE_OPTIONS) await api.json<VolumeReply>('DELETE', volumePath(argv.volname, `/options/${encodeURIComponent(key)}`));
        process.stdout.write(`Stopping volume profile on ${argv.volname} has been successful\n`);
        return;
      }
      const r = await api.json<ProfileInfoReply>('GET', volumePath(argv.volname, '/profile'));
      process.stdout.write(argv.json ? `${JSON.stringify(r, null, 2)}\n` : formatProfileInfo(r));
      const missing = r.bricks.filter((b) => b.error).length;
      if (missing) throw new OperationError(`${missing} of ${r.bricks.length} bricks gave no profile (above, why)`);
    });
  },
};
