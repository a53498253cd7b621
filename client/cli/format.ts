// Human output of `volume info` and `volume status`, laid out as gluster's.
import type { VolumeInfo, VolumeState, VolumeStatusInfo } from '../../lib/mgmt/api.js';
import { formatBrick } from '../../lib/mgmt/args.js';

const STATE_WORD: Record<VolumeState, string> = { created: 'Created', started: 'Started', stopped: 'Stopped' };

function perSet(v: VolumeInfo): number {
  return (v.stripeCount ?? 1) * (v.replicaCount ?? 1);
}

/** `volume info` text for some volumes. */
export function formatInfo(volumes: readonly VolumeInfo[]): string {
  if (volumes.length === 0) return 'No volumes present\n';
  return volumes.map((v) => {
    const lines = [
      '',
      `Volume Name: ${v.name}`,
      `Type: ${v.type.split('-').map((w) => `${w[0]!.toUpperCase()}${w.slice(1)}`).join('-')}`,
      `Volume ID: ${v.id}`,
      `Status: ${STATE_WORD[v.status]}`,
      `Version: ${v.version}`,
      // gluster's "sets x bricks per set = total" for replicated and striped volumes.
      `Number of Bricks: ${perSet(v) > 1 ? `${v.bricks.length / perSet(v)} x ${perSet(v)} = ` : ''}${v.bricks.length}`,
      'Transport-type: tcp',
      'Bricks:',
      ...v.bricks.map((b, i) => `Brick${i + 1}: ${formatBrick(b, false)}`),
    ];
    const opts = Object.entries(v.options);
    if (opts.length > 0) lines.push('Options Reconfigured:', ...opts.map(([k, val]) => `${k}: ${val}`));
    return `${lines.join('\n')}\n`;
  }).join('');
}

const COL = 46;
const RULE = '-'.repeat(78);

/** `volume status` text for some volumes. */
export function formatStatus(volumes: readonly VolumeStatusInfo[]): string {
  if (volumes.length === 0) return 'No volumes present\n';
  return volumes.map((v) => {
    const lines = [
      `Status of volume: ${v.name}`,
      `${'Brick process'.padEnd(COL)}${'TCP Port'.padEnd(10)}${'Online'.padEnd(8)}Pid`,
      RULE,
      ...v.bricks.map((b) => {
        const name = `Brick ${formatBrick(b, false)}`;
        // A long name gets its own line, as gluster wraps it, so the columns stay aligned.
        const head = name.length < COL ? name.padEnd(COL) : `${name}\n${''.padEnd(COL)}`;
        return `${head}${String(b.port).padEnd(10)}${(b.online ? 'Y' : 'N').padEnd(8)}${b.pid ?? 'N/A'}`;
      }),
    ];
    if (v.status !== 'started') lines.push('', `Volume ${v.name} is not started`);
    return `${lines.join('\n')}\n`;
  }).join('\n');
}
