// A real etcd for tests: one member on free loopback ports (never 2379/2380, where
// Debian's packaged etcd may run), its data in a fresh temp dir, killed and removed by
// the owner's teardown (and killed should the test process exit without it).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually, freePort, type Owner } from './proc.js';

export interface EtcdServer {
  endpoint: string;
  proc: ChildProcess;
  dir: string;
  /** SIGKILL, and resolves once it is gone. */
  kill(): Promise<void>;
}

export function etcdBinary(): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    const f = path.join(d || '.', 'etcd');
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch { /* next */ }
  }
  return undefined;
}

/** Starts a one-member etcd on free loopback ports with its data in a fresh temp dir, stopped and removed by owner. */
export async function startEtcd(owner: Owner): Promise<EtcdServer> {
  const bin = etcdBinary();
  if (!bin) throw new Error('etcd is not installed (Debian: apt-get install etcd-server; .ci/run installs it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-etcd-'));
  const client = await freePort();
  const peer = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  // etcd 3.4 runs on arm64 only when told so (amd64 ignores this).
  if (process.arch === 'arm64') env.ETCD_UNSUPPORTED_ARCH = 'arm64';
  const logFile = path.join(dir, 'etcd.log');
  const fd = fs.openSync(logFile, 'a');
  const proc = spawn(bin, [
    '--name', 't',
    '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `t=http://127.0.0.1:${peer}`,
    // Elected within a second; also lowers etcd's minimum lease TTL to 1 s.
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
  ], { stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  const killNow = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  // Should this test process die without its teardowns, etcd goes with it.
  process.once('exit', killNow);
  const kill = async (): Promise<void> => {
    killNow();
    await exited;
  };
  owner.teardown(async () => {
    process.off('exit', killNow);
    await kill();
    if (!process.env.BRICKFS_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  });
  const endpoint = `127.0.0.1:${client}`;
  const logTail = (): string => fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  await eventually(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}):\n${logTail()}`);
    }
    const r = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await r.json()) as { health?: string };
    return body.health === 'true';
  }, 30_000, `etcd on ${endpoint} to be healthy`).catch((e: Error) => {
    throw new Error(`${e.message}\n--- etcd log:\n${logTail()}`);
  });
  return { endpoint, proc, dir, kill };
}
