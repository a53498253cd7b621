// Human output of `volume info`, `volume status`, `volume rebalance status`, `peer status` and
// `pool list`, laid out as gluster's.
import type { PeerInfo, PoolReply, RebalanceNodeStatus, RebalanceStatusReply, VolumeInfo, VolumeState, VolumeStatusInfo } from '../../lib/mgmt/api.js';
import { formatBrick, volumeOptionText } from '../../lib/mgmt/args.js';
import { DEFAULT_MGMT_PORT } from '../../lib/mgmt/client.js';

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
    if (v.removing) {
      lines.push(`Bricks being removed (remove-brick started ${v.removing.startedAt}):`,
        ...v.removing.bricks.map((b) => `  ${formatBrick(b, false)}`));
    }
    const opts = Object.entries(v.options);
    if (opts.length > 0) lines.push('Options Reconfigured:', ...opts.map(([k, val]) => `${k}: ${volumeOptionText(k, val)}`));
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
      `${'Process'.padEnd(COL)}${'TCP Port'.padEnd(10)}${'Online'.padEnd(8)}Pid`,
      RULE,
      ...v.bricks.map((b) => {
        const name = `Brick ${formatBrick(b, false)}`;
        // A long name gets its own line, as gluster wraps it, so the columns stay aligned.
        const head = name.length < COL ? name.padEnd(COL) : `${name}\n${''.padEnd(COL)}`;
        return `${head}${String(b.port).padEnd(10)}${(b.online ? 'Y' : 'N').padEnd(8)}${b.pid ?? 'N/A'}`;
      }),
      ...(v.selfHeal ?? []).map((s) => {
        const name = `Self-heal Daemon on ${s.host}`;
        const head = name.length < COL ? name.padEnd(COL) : `${name}\n${''.padEnd(COL)}`;
        return `${head}${'N/A'.padEnd(10)}${(s.online ? 'Y' : 'N').padEnd(8)}${s.pid ?? 'N/A'}`;
      }),
    ];
    if (v.status !== 'started') lines.push('', `Volume ${v.name} is not started`);
    return `${lines.join('\n')}\n`;
  }).join('\n');
}

/** Bytes with a binary unit: 0 B, 512 B, 1.5 KiB, 12.0 MiB... */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Seconds as h:mm:ss (gluster's "run time in h:m:s"). */
export function hms(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** `volume rebalance VOL status` (and remove-brick status) text: gluster's table, a row per node and their total, then rate, ETA and processes. */
export function formatRebalance(r: RebalanceStatusReply): string {
  const head = ['Node', 'Rebalanced-files', 'size', 'scanned', 'failures', 'skipped', 'status', 'run time in h:m:s'];
  const cells = (node: string, x: Omit<RebalanceNodeStatus, 'peer' | 'host' | 'connected'> | RebalanceStatusReply): string[] => [
    node, String(x.filesMoved), humanBytes(x.bytesMoved), String(x.filesScanned), String(x.filesFailed), String(x.filesSkipped),
    x.state, hms(x.elapsedS),
  ];
  // Replies of daemons from before per-node runs carry no rows: their one node is the daemon asked.
  const nodes = r.nodes ?? [{ ...r, peer: '', host: 'localhost', self: true as const, connected: true }];
  const body = [
    ...nodes.map((n) => cells(n.self ? 'localhost' : `${n.host}${n.connected ? '' : ' (disconnected)'}`, n)),
    cells('total', r),
  ];
  const width = head.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const row = (c: string[]): string => c.map((x, i) => (i === 0 ? x.padEnd(width[i]!) : x.padStart(width[i]!))).join('  ');
  const rule = row(width.map((w) => '-'.repeat(w)));
  const what = r.purpose === 'remove-brick' ? 'Remove-brick drain' : r.mode === 'fix-layout' ? 'Rebalance (fix-layout)' : 'Rebalance';
  const running = nodes.filter((n) => n.alive);
  const lines = [
    `${what} of volume ${r.volume}, throttle ${r.throttle}${r.resumed ? ', resumed' : ''}, started ${r.startedAt}` +
      `${nodes.length > 1 ? `, on ${nodes.length} nodes` : ''}`,
    row(head),
    rule,
    ...body.slice(0, -1).map(row),
    rule,
    row(body.at(-1)!),
    '',
    `Directories: ${r.dirsScanned} scanned, ${r.dirsFixed} layouts fixed`,
    `Rate: ${r.rateFilesPerS.toFixed(1)} files/s, ${(r.rateBytesPerS / 1024 ** 2).toFixed(2)} MiB/s`
      + `; ${r.purpose === 'remove-brick' ? 'files on the bricks being removed' : 'files in volume'}: ${r.filesTotal ?? 'counting'}`
      + `; estimated time left: ${r.state === 'running' ? (r.etaS === null ? 'unknown' : hms(r.etaS)) : '-'}`,
    nodes.length === 1
      ? `Process: ${r.alive ? `pid ${r.pid}, running` : 'not running'}${r.finishedAt ? `; finished ${r.finishedAt}` : ''}`
      : `Processes: ${running.length === 0 ? 'none running' : running.map((n) => `${n.self ? 'localhost' : n.host} pid ${n.pid}`).join(', ')}`
        + `${r.finishedAt ? `; finished ${r.finishedAt}` : ''}`,
  ];
  if (r.error) lines.push(`Error: ${r.error}`);
  return `${lines.join('\n')}\n`;
}

/** A member's address as the pool reaches it: HOST, or HOST:PORT off the default management port. */
export function peerName(p: PeerInfo): string {
  if (p.port === DEFAULT_MGMT_PORT) return p.hostname;
  return `${p.hostname.includes(':') ? `[${p.hostname}]` : p.hostname}:${p.port}`;
}

/** `peer status` text: the other members, as gluster prints them. */
export function formatPeerStatus(peers: readonly PeerInfo[]): string {
  const blocks = peers.map((p) => [
    '',
    `Hostname: ${peerName(p)}`,
    `Uuid: ${p.uuid}`,
    `State: Peer in Cluster (${p.connected ? 'Connected' : 'Disconnected'})`,
  ].join('\n'));
  return `Number of Peers: ${peers.length}\n${blocks.map((b) => `${b}\n`).join('')}`;
}

/** `pool list` text: every member, this daemon last as localhost (gluster's order). */
export function formatPoolList(pool: PoolReply): string {
  const rows: Array<[string, string, string]> = [
    ...pool.peers.map((p): [string, string, string] => [p.uuid, peerName(p), p.connected ? 'Connected' : 'Disconnected']),
    [pool.self.uuid, 'localhost', 'Connected'],
  ];
  const w = Math.max('Hostname'.length, ...rows.map((r) => r[1].length)) + 2;
  const line = ([a, b, c]: [string, string, string]): string => `${a.padEnd(38)}${b.padEnd(w)}${c}`;
  return `${[line(['UUID', 'Hostname', 'State']), ...rows.map(line)].join('\n')}\n`;
}
