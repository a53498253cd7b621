// A real etcd for tests: one member on free loopback ports (never 2379/2380, where
// Debian's packaged etcd may run), or a cluster of several (one per test host, in its
// network namespace: test/helpers/hosts.ts), each member's data in a fresh temp dir,
// killed and removed by the owner's teardown (and killed should the test process exit
// without it).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestHost } from './hosts.js';
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

/** Where one etcd member listens and how it is run. */
interface MemberSpec {
  name: string;
  /** Address of its client and peer URLs. */
  addr: string;
  clientPort: number;
  peerPort: number;
  /** Every member's peer URL, as etcd's --initial-cluster. */
  initialCluster: string;
  token: string;
  /** Runs it inside a test host (its network namespace); absent: in this process's namespace. */
  host?: TestHost;
  /** Serve clients over TLS only and require a client certificate of this CA (etcd's --client-cert-auth). */
  tls?: EtcdTls;
}

/** PEM files of etcd's own certificate (naming its address) and of the CA its clients' certificates must chain to. */
export interface EtcdTls {
  cert: string;
  key: string;
  ca: string;
}

/** Starts one etcd member with its data in a fresh temp dir, killed and removed by owner; resolves once it is spawned. */
function spawnMember(owner: Owner, m: MemberSpec): { server: EtcdServer; logTail: () => string } {
  const bin = etcdBinary();
  if (!bin) throw new Error('etcd is not installed (Debian: apt-get install etcd-server; .ci/run installs it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-etcd-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  // etcd 3.4 runs on arm64 only when told so (amd64 ignores this).
  if (process.arch === 'arm64') env.ETCD_UNSUPPORTED_ARCH = 'arm64';
  const logFile = path.join(dir, 'etcd.log');
  const fd = fs.openSync(logFile, 'a');
  const args = [
    '--name', m.name,
    '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', `${m.tls ? 'https' : 'http'}://${m.addr}:${m.clientPort}`,
    '--advertise-client-urls', `${m.tls ? 'https' : 'http'}://${m.addr}:${m.clientPort}`,
    ...(m.tls ? ['--cert-file', m.tls.cert, '--key-file', m.tls.key, '--trusted-ca-file', m.tls.ca, '--client-cert-auth'] : []),
    '--listen-peer-urls', `http://${m.addr}:${m.peerPort}`,
    '--initial-advertise-peer-urls', `http://${m.addr}:${m.peerPort}`,
    '--initial-cluster', m.initialCluster,
    '--initial-cluster-token', m.token,
    '--initial-cluster-state', 'new',
    // Elected within a second; also lowers etcd's minimum lease TTL to 1 s.
    '--heartbeat-interval', '50',
    '--election-timeout', '500',
  ];
  const opts = { stdio: ['ignore', fd, fd] as ['ignore', number, number], env };
  const proc = m.host ? m.host.spawn(bin, args, opts) : spawn(bin, args, opts);
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
  const logTail = (): string => fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  return { server: { endpoint: `${m.addr}:${m.clientPort}`, proc, dir, kill }, logTail };
}

/** Resolves once the member answers healthy (a cluster member: once the cluster has a leader). */
async function healthy(server: EtcdServer, logTail: () => string, tls?: EtcdTls): Promise<void> {
  if (tls) {
    // Over TLS the member is healthy once it accepts a client with a certificate of the CA at all.
    const { cert, key, ca } = tls;
    const https = await import('node:https');
    await eventually(async () => {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null) throw new Error(`etcd exited:\n${logTail()}`);
      return new Promise<boolean>((resolve) => {
        const req = https.get(`https://${server.endpoint}/health`, { cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca), checkServerIdentity: () => undefined, timeout: 1000 }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => { body += c.toString(); });
          res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
        });
        req.on('error', () => resolve(false));
        req.on('timeout', () => req.destroy());
      });
    }, 30_000, `etcd on ${server.endpoint} to be healthy (TLS)`);
    return;
  }
  const { proc, endpoint } = server;
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
}

/**
 * Starts a one-member etcd on free loopback ports with its data in a fresh temp dir, stopped
 * and removed by owner; with tls, its clients must speak TLS and present a certificate of tls.ca.
 */
export async function startEtcd(owner: Owner, opts: { tls?: EtcdTls } = {}): Promise<EtcdServer> {
  const client = await freePort();
  const peer = await freePort();
  const { server, logTail } = spawnMember(owner, {
    name: 't', addr: '127.0.0.1', clientPort: client, peerPort: peer,
    initialCluster: `t=http://127.0.0.1:${peer}`, token: `brickfs-test-${process.pid}-${client}`, ...(opts.tls ? { tls: opts.tls } : {}),
  });
  await healthy(server, logTail, opts.tls);
  return server;
}

/** A multi-member etcd cluster under test. */
export interface EtcdCluster {
  members: EtcdServer[];
  /** Client endpoints, HOST:PORT, one per member. */
  endpoints: string[];
  /** `--store` value naming every member, with a key prefix. */
  storeUrl(prefix?: string): string;
}

/**
 * Starts an etcd cluster of one member per host (in each host's network namespace, on its
 * address, etcd's own ports 2379/2380, which are free in a fresh namespace), or, without
 * hosts, `members` members on free loopback ports of this namespace. Resolves once every
 * member answers healthy; each is killed and its data removed by owner. With tls, clients
 * must speak TLS with a certificate of tls.ca (etcd's certificate must name every member's address).
 */
export async function startEtcdCluster(owner: Owner, where: { hosts: readonly TestHost[] } | { members: number }, opts: { tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const specs: Array<Omit<MemberSpec, 'initialCluster' | 'token'>> = [];
  if ('hosts' in where) {
    where.hosts.forEach((h, i) => specs.push({ name: `m${i + 1}`, addr: h.addr, clientPort: 2379, peerPort: 2380, host: h }));
  } else {
    for (let i = 0; i < where.members; i++) {
      specs.push({ name: `m${i + 1}`, addr: '127.0.0.1', clientPort: await freePort(), peerPort: await freePort() });
    }
  }
  const initialCluster = specs.map((m) => `${m.name}=http://${m.addr}:${m.peerPort}`).join(',');
  const token = `brickfs-test-${process.pid}-${specs[0]!.addr}-${specs[0]!.clientPort}`;
  const started = specs.map((m) => spawnMember(owner, { ...m, initialCluster, token, ...(opts.tls ? { tls: opts.tls } : {}) }));
  await Promise.all(started.map(({ server, logTail }) => healthy(server, logTail, opts.tls)));
  const members = started.map((s) => s.server);
  const endpoints = members.map((m) => m.endpoint);
  return {
    members,
    endpoints,
    storeUrl: (prefix) => `etcd://${endpoints.join(',')}${prefix ? `/${prefix}` : ''}`,
  };
}
