// A brick listens on its host's address only: a brick of a localhost volume is not
// reachable on the machine's other addresses (a network interface), so nothing on the
// network reaches a brick meant for this host's own mounts.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { runCliJson } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/proc.js';

/** The IPv4 addresses (dotted) that listening sockets on port are bound to, from /proc/net/tcp. */
function boundAddresses(port: number): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue; // TCP_LISTEN
    const [addr, p] = f[1]!.split(':');
    if (parseInt(p!, 16) !== port) continue;
    // The address's bytes in host (little-endian) order.
    out.push([0, 1, 2, 3].map((i) => parseInt(addr!.slice(2 * i, 2 * i + 2), 16)).reverse().join('.'));
  }
  return out;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function otherAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.once('timeout', () => { s.destroy(); resolve(false); });
  });
}

test('bricks of localhost and 127.0.0.1 listen on 127.0.0.1 only, not on the machine\'s other addresses', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t);
  const bricks = ['b0', 'b1'].map((b) => path.join(root, b));
  t.teardown(() => d.cli(['volume', 'stop', 'la']));
  const created = await d.cli(['volume', 'create', 'la', `localhost:${bricks[0]}`, `127.0.0.1:${bricks[1]}`, '--force']);
  t.is(created.code, 0, created.stderr);
  const started = await d.cli(['volume', 'start', 'la']);
  t.is(started.code, 0, started.stderr);
  const st = await runCliJson<StatusListReply>(t, ['volume', 'status', 'la', '--json'], { server: d.server });
  const other = otherAddress();
  for (const b of st.volumes[0]!.bricks) {
    t.true(b.online, `${b.path} online`);
    t.deepEqual(boundAddresses(b.port), ['127.0.0.1'], `brick ${b.host}:${b.path} bound to 127.0.0.1 only`);
    t.true(await connects('127.0.0.1', b.port));
    if (other) t.false(await connects(other, b.port), `brick port ${b.port} reachable on ${other}`);
  }
  t.log(other ? `checked against ${other}` : 'no non-loopback IPv4 address here: checked /proc/net/tcp only');
});
