// N "hosts" on one machine for pool tests: each a network namespace with one veth whose
// other end is on a bridge in the root namespace. Host i has 10.77.S.i/24 (S picked per
// call, unused on this machine), the bridge 10.77.S.254, so the test process reaches every
// host and the hosts reach one another. Processes run inside with
// `nsenter --net=/run/netns/NAME` (nsenter execs the command, so its pid is the command's).
//
// Names carry this process's pid (bfs<pid base 36>x<n>...), so parallel test processes never
// collide and namespaces left by a test process that died are swept by the next call.
// The owner's teardown kills every process in the namespaces (including those started by
// them, such as brick processes), deletes namespaces, veths and the bridge; so does the exit
// of this process should it end without its teardowns. Needs root.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import { BIN, sleep, type Owner, type RunResult } from './proc.js';

const IP = '/usr/sbin/ip';
const NSENTER = '/usr/bin/nsenter';

/** Runs `ip ARGS` (or another tool); rejects with its stderr on failure. */
function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ip(...args: string[]): Promise<string> {
  const r = await run(IP, args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function ipSync(...args: string[]): string {
  try {
    return execFileSync(IP, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
  } catch {
    return '';
  }
}

/** Pids of the processes in a namespace (`ip netns pids`). */
function nsPidsSync(ns: string): number[] {
  return ipSync('netns', 'pids', ns).split(/\s+/).filter(Boolean).map(Number).filter((n) => n > 0);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One host: a network namespace with one address on the test network. */
export interface TestHost {
  /** 1-based. */
  index: number;
  /** The namespace's name (ip netns). */
  netns: string;
  /** --net= argument of nsenter. */
  nsPath: string;
  /** The host's address, 10.77.S.index. */
  addr: string;
  /** The root-namespace end of its link (on the bridge). */
  veth: string;
  /** Starts cmd inside the host; killed at teardown with everything else in the namespace. */
  spawn(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Runs cmd inside the host; resolves with its exit code and output, never throws. */
  exec(cmd: string, args: readonly string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** Runs the brickfs CLI inside the host (`--server` as given in args). */
  cli(args: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Takes the host's link down: nothing reaches it, it reaches nothing (but its own loopback). */
  cut(): Promise<void>;
  /** Brings the link back. */
  restore(): Promise<void>;
}

export interface TestNet {
  /** "10.77.S.0/24". */
  subnet: string;
  /** The bridge's address in the root namespace (where the test process talks from). */
  gateway: string;
  bridge: string;
  hosts: TestHost[];
}

const NAME_RE = /^bfs([0-9a-z]+)x[0-9a-z]+(?:br|[hv]\d+)$/;
let made = 0;

/** Removes namespaces and links left by test processes that died without their teardowns. */
function sweepStale(): void {
  const deadPid = (name: string): boolean => {
    const m = NAME_RE.exec(name);
    return m !== null && !pidAlive(parseInt(m[1]!, 36));
  };
  for (const line of ipSync('netns', 'list').split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!deadPid(ns)) continue;
    for (const pid of nsPidsSync(ns)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    ipSync('netns', 'del', ns);
  }
  for (const line of ipSync('-o', 'link', 'show').split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
    if (deadPid(name)) ipSync('link', 'del', name);
  }
}

/** A /24 under 10.77/16 that no interface or route of this machine uses. */
function freeSubnet(seed: number): number {
  const used = `${ipSync('-4', '-o', 'addr', 'show')}\n${ipSync('-4', 'route', 'show', 'table', 'all')}`;
  for (let i = 0; i < 254; i++) {
    const s = (seed + i * 37) % 254;
    if (!used.includes(`10.77.${s}.`)) return s;
  }
  throw new Error('no free /24 under 10.77.0.0/16 for the test network');
}

/**
 * Makes n hosts (network namespaces on one bridge); everything is removed when owner ends.
 * Fails with what to do unless run as root with iproute2 and nsenter.
 */
export async function makeHosts(owner: Owner, n: number): Promise<TestNet> {
  if (process.getuid?.() !== 0) throw new Error('network-namespace hosts need root (CI runs the tests as root): run the test as root');
  for (const f of [IP, NSENTER]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing (Debian: apt-get install iproute2 util-linux)`);
  }
  sweepStale();
  const k = made++;
  const base = `bfs${process.pid.toString(36)}x${k.toString(36)}`;
  const s = freeSubnet(process.pid * 7 + k * 13);
  const net: TestNet = { subnet: `10.77.${s}.0/24`, gateway: `10.77.${s}.254`, bridge: `${base}br`, hosts: [] };
  const namespaces: string[] = [];
  const procs = new Set<ChildProcess>();

  let cleaned = false;
  const cleanupSync = (): void => {
    if (cleaned) return;
    cleaned = true;
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // Everything still in a namespace (brick processes started by a daemon too) goes.
    for (let round = 0; round < 50; round++) {
      const left = namespaces.flatMap(nsPidsSync);
      if (left.length === 0) break;
      for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      execFileSync('sleep', ['0.05']);
    }
    for (const ns of namespaces) ipSync('netns', 'del', ns);
    for (const h of net.hosts) ipSync('link', 'del', h.veth);
    ipSync('link', 'del', net.bridge);
  };
  process.once('exit', cleanupSync);
  owner.teardown(async () => {
    process.off('exit', cleanupSync);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (let end = Date.now() + 5000; Date.now() < end;) {
      const left = namespaces.flatMap(nsPidsSync);
      if (left.length === 0) break;
      for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await sleep(50);
    }
    cleanupSync();
  });

  await ip('link', 'add', net.bridge, 'type', 'bridge');
  await ip('link', 'set', net.bridge, 'up');
  await ip('addr', 'add', `${net.gateway}/24`, 'dev', net.bridge);
  for (let i = 1; i <= n; i++) {
    const netns = `${base}h${i}`;
    const veth = `${base}v${i}`;
    await ip('netns', 'add', netns);
    namespaces.push(netns);
    const addr = `10.77.${s}.${i}`;
    const nsPath = `/run/netns/${netns}`;
    const wrap = (cmd: string, args: readonly string[]): string[] => [`--net=${nsPath}`, '--', cmd, ...args];
    const host: TestHost = {
      index: i,
      netns,
      nsPath,
      addr,
      veth,
      spawn: (cmd, args, opts = {}) => {
        const p = spawn(NSENTER, wrap(cmd, args), opts);
        procs.add(p);
        p.once('exit', () => procs.delete(p));
        return p;
      },
      exec: (cmd, args, opts = {}) => new Promise((resolve) => {
        execFile(NSENTER, wrap(cmd, args), { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
          resolve({ code, stdout, stderr });
        });
      }),
      cli: (args, opts = {}) => host.exec(process.execPath, [BIN, ...args], opts),
      cut: async () => { await ip('link', 'set', veth, 'down'); },
      restore: async () => { await ip('link', 'set', veth, 'up'); },
    };
    net.hosts.push(host);
    await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
    await ip('link', 'set', veth, 'master', net.bridge, 'up');
    await ip('-n', netns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    await ip('-n', netns, 'link', 'set', 'eth0', 'up');
    await ip('-n', netns, 'link', 'set', 'lo', 'up');
  }
  return net;
}
