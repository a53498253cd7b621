// A real management daemon process per test: free API port, own state directory, own
// range of brick ports. Teardown kills the daemon and every brick process it started.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HealthReply } from '../../lib/mgmt/api.js';
import { mgmtFetch, mgmtUrl } from '../../lib/mgmt/http.js';
import { authHeaders } from '../../lib/mgmt/token.js';
import { runCli, withTestTls, type CliOptions, type RunResult } from './cli.js';
import type { TestHost } from './hosts.js';
import { BIN, eventually, freePort, reservePortBlock, type Owner } from './proc.js';
import { useTestTls } from './tls.js';

export interface StartDaemonOptions {
  /** Reuse a state directory (it is still removed when the test ends). */
  stateDir?: string;
  /** First brick port; by default a block of 100 reserved for this daemon. */
  brickPortBase?: number;
  /** --store: where the daemon keeps volume definitions (default: the file store in its state directory). */
  store?: string;
  /**
   * Run it inside this test host (test/helpers/hosts.ts), listening on the host's address;
   * its CLI calls then run inside the host too.
   */
  host?: TestHost;
  /** Its management port (default: a free one). */
  port?: number;
}

/**
 * Reserves a block of 100 brick ports below the ephemeral range for one test daemon, with
 * a lock file in the temp directory, so daemons of tests running in parallel (in this
 * process or another) never hand out the same brick ports.
 */
export function reserveBrickPortBase(t: Owner): number {
  return reservePortBlock((release) => t.teardown(release));
}

/** Pids from the pidfiles under a state directory: bricks, rebalance, the self-heal daemon. */
function brickPids(stateDir: string): number[] {
  const vols = path.join(stateDir, 'vols');
  const out: number[] = [];
  const run = path.join(stateDir, 'run');
  for (const f of fs.existsSync(run) ? fs.readdirSync(run) : []) {
    const pid = Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
    if (pid > 0) out.push(pid);
  }
  for (const vol of fs.existsSync(vols) ? fs.readdirSync(vols) : []) {
    const run = path.join(vols, vol, 'run');
    for (const f of fs.existsSync(run) ? fs.readdirSync(run) : []) {
      const pid = Number(fs.readFileSync(path.join(run, f), 'utf8').trim());
      if (pid > 0) out.push(pid);
    }
  }
  return out;
}

/** Whether pid is alive and was started with an argument under dir (so a reused pid is left alone). */
function isOurs(pid: number, dir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(dir));
  } catch {
    return false;
  }
}

/**
 * Kills (SIGKILL) every brick, rebalance and self-heal process a daemon over stateDir started:
 * they run detached from the daemon, so killing the daemon leaves them.
 */
export function killStateProcesses(stateDir: string): void {
  for (const pid of brickPids(stateDir)) {
    if (!isOurs(pid, stateDir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch { /* gone */ }
  }
}

/** One management daemon process under test. */
export class TestDaemon {
  port = 0;
  proc?: ChildProcess;

  constructor(
    readonly stateDir: string,
    readonly brickPortBase: number,
    readonly log: string,
    readonly store?: string,
    readonly host?: TestHost,
    private readonly fixedPort?: number,
  ) {}

  /** The address it listens on. */
  get addr(): string {
    return this.host?.addr ?? '127.0.0.1';
  }

  /** --server value for the CLI. */
  get server(): string {
    return `${this.addr}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * Runs the CLI against this daemon. Under BRICKFS_TEST_TLS=1 a volume it creates gets
   * client.ssl and server.ssl on before anything else is done with it.
   */
  async cli(args: readonly string[], opts: Omit<CliOptions, 'server'> = {}): Promise<RunResult> {
    if (this.host) return withTestTls(['--server', this.server, ...args], (a) => this.host!.cli(a, { timeoutMs: opts.timeoutMs }));
    return runCli(args, { ...opts, server: this.server });
  }

  /**
   * A request to the daemon's API as root sends it (the host's token; a body as JSON unless
   * init says another content-type), returning status, body text and headers.
   */
  async http(pathname: string, init: RequestInit = {}): Promise<{ status: number; text: string; headers: Headers }> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) for (const [k, v] of Object.entries(authHeaders())) headers.set(k, v);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const r = await mgmtFetch(mgmtUrl(this.server, pathname), {
      method: init.method ?? 'GET', headers: Object.fromEntries(headers.entries()),
      ...(init.body === undefined || init.body === null ? {} : { body: String(init.body) }),
    });
    return { status: r.status, text: await r.text(), headers: r.headers };
  }

  /** Starts the daemon on a fresh free port and waits until it has adopted its bricks. */
  async start(): Promise<void> {
    useTestTls();
    this.port = this.fixedPort ?? await freePort();
    const fd = fs.openSync(this.log, 'a');
    const args = [
      BIN, 'daemon', '--port', String(this.port), '--state', this.stateDir, '--brick-port-base', String(this.brickPortBase),
      ...(this.store === undefined ? [] : ['--store', this.store]),
      ...(this.host ? ['--listen', this.host.addr] : []),
    ];
    const opts = { stdio: ['ignore', fd, fd] as ['ignore', number, number] };
    const p = this.host ? this.host.spawn(process.execPath, args, opts) : spawn(process.execPath, args, opts);
    fs.closeSync(fd);
    this.proc = p;
    await eventually(async () => {
      if (p.exitCode !== null) throw new Error(`daemon exited (${p.exitCode}): ${fs.readFileSync(this.log, 'utf8')}`);
      const r = await this.http('/v1/health').catch(() => undefined);
      return r?.status === 200 && (JSON.parse(r.text) as HealthReply).ready;
    }, 15_000, `management daemon on port ${this.port}`);
  }

  /** Stops the daemon only (bricks keep running): SIGTERM, SIGKILL if it lingers. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  /** Stops and starts the daemon over the same state directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Kills the daemon and every brick, rebalance and self-heal process it started (SIGKILL). */
  killAll(): void {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    killStateProcesses(this.stateDir);
  }
}

/** Starts a management daemon for a test; everything is killed and removed when the test ends. */
export async function startDaemon(t: Owner, opts: StartDaemonOptions = {}): Promise<TestDaemon> {
  const stateDir = opts.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-mgmt-'));
  const d = new TestDaemon(stateDir, opts.brickPortBase ?? reserveBrickPortBase(t), `${stateDir}.daemon.log`, opts.store, opts.host, opts.port);
  t.teardown(() => {
    d.killAll();
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(d.log, { force: true });
  });
  await d.start();
  return d;
}
