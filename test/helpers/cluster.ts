import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { brickGraph, clientGraph } from '../../brick/mgmt/volgen.js';
import { mountPidfile, mountRunFile } from '../../client/mount-table.js';
import { validateVolumeOption } from '../../lib/mgmt/args.js';
import { requestStatedump } from '../../lib/statedump.js';
import { formatVolfile } from '../../lib/volfile/parse.js';
import type { ExecutionContext } from 'ava';
import { runCliOk } from './cli.js';
import { useTestTls } from './tls.js';
import { BRICK_MAIN, cli, eventually, freePort, portOpen, sleep, spawnOwned, tmpDir, type Owner } from './proc.js';

/** One real brick process serving a temporary directory. */
/**
 * How long a brick may take to listen. Generous on purpose: a test file starts a dozen
 * bricks at once, and beside the bench test (sync, drop_caches) each one loads its modules
 * from a cold disk; 10 s was exceeded in CI that way. A brick that exits fails at once.
 */
const BRICK_START_WAIT_MS = 30_000;

export class TestBrick {
  proc?: ChildProcess;

  constructor(private readonly t: Owner, readonly dir: string, readonly port: number, readonly volfile: string, readonly log: string) {}

  /** Starts (or restarts) the brick process and waits until it listens. */
  async start(): Promise<void> {
    this.proc = spawnOwned(this.t, process.execPath, [BRICK_MAIN, '--volfile', this.volfile], this.log);
    const p = this.proc;
    await eventually(async () => {
      if (p.exitCode !== null) throw new Error(`brick exited: ${fs.readFileSync(this.log, 'utf8')}`);
      return portOpen(this.port);
    }, BRICK_START_WAIT_MS, `brick on port ${this.port}`);
  }

  /** The brick's statedump (SIGUSR1, written to its log): every translator of its graph, by name. */
  async statedump(): Promise<Record<string, { type: string } & Record<string, unknown>>> {
    return await requestStatedump(this.proc!.pid!, this.log) as Record<string, { type: string } & Record<string, unknown>>;
  }

  /** Kills the brick process (SIGKILL by default) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    if (signal === 'SIGSTOP') return;
    await gone;
  }
}

export interface TestVolume {
  root: string;
  bricks: TestBrick[];
  /** Client volfile for the bricks (the generated graph, md-cache on top). */
  volfile: string;
  volfilePath: string;
}

/** The client graph of a test volume, in the words of `volume create` and `volume set`. */
export interface VolumeShape {
  /** Bricks per stripe set: cluster/stripe over each N consecutive bricks, distribute over the sets when there are several. */
  stripe?: number;
  /** cluster.stripe-block-size, e.g. '64KiB'. */
  blockSize?: string;
  /** Bricks per replica set: cluster/replicate over each N consecutive bricks (below any stripe). */
  replica?: number;
  /** `volume set` options by their CLI names, e.g. {'cluster.quorum-type': 'none'}. */
  set?: Record<string, string>;
  pingTimeoutS?: number;
  name?: string;
}

/**
 * Starts n real brick processes on free ports and writes the client volfile the management
 * daemon would generate for them (brick/mgmt/volgen.ts), under the performance translators.
 */
export async function startVolume(t: Owner, n: number, opts: VolumeShape = {}): Promise<TestVolume> {
  const root = tmpDir(t);
  const name = opts.name ?? 'tv';
  const options: Record<string, string> = {};
  if (opts.pingTimeoutS) options['network.ping-timeout'] = validateVolumeOption('network.ping-timeout', String(opts.pingTimeoutS));
  if (opts.blockSize) options['cluster.stripe-block-size'] = validateVolumeOption('cluster.stripe-block-size', opts.blockSize);
  // BRICKFS_TEST_TLS=1: the volume speaks TLS unless the test sets ssl itself.
  for (const [k, v] of Object.entries({ ...useTestTls(), ...opts.set })) options[k] = validateVolumeOption(k, v);
  const bricks: TestBrick[] = [];
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, `brick${i}`);
    fs.mkdirSync(dir);
    const port = await freePort();
    const volfile = path.join(root, `brick${i}.vol`);
    // The brick graph the daemon generates (brick-side options included), on loopback only.
    const decls = brickGraph({ name, options, bricks: [] }, { host: '127.0.0.1', port, path: dir });
    decls.at(-1)!.options['listen-host'] = '127.0.0.1';
    fs.writeFileSync(volfile, formatVolfile(decls));
    bricks.push(new TestBrick(t, dir, port, volfile, path.join(root, `brick${i}.log`)));
  }
  await Promise.all(bricks.map((b) => b.start()));
  const graph = clientGraph({
    name, options, ...(opts.stripe ? { stripeCount: opts.stripe } : {}), ...(opts.replica ? { replicaCount: opts.replica } : {}),
    bricks: bricks.map((b) => ({ host: '127.0.0.1', port: b.port, path: b.dir })),
  });
  // The graph the daemon generates, performance translators included: tests run the stack users run.
  const volfile = formatVolfile(graph);
  const volfilePath = path.join(root, 'client.vol');
  fs.writeFileSync(volfilePath, volfile);
  return { root, bricks, volfile, volfilePath };
}

/** Starts n real bricks under a distribute client volfile. */
export function startDistribute(t: Owner, n: number, opts: Omit<VolumeShape, 'stripe' | 'blockSize'> = {}): Promise<TestVolume> {
  return startVolume(t, n, opts);
}

/** Starts n real bricks under one cluster/stripe over all of them. */
export function startStripe(t: Owner, n: number, opts: Omit<VolumeShape, 'stripe'> = {}): Promise<TestVolume> {
  return startVolume(t, n, { ...opts, stripe: n });
}

/** Mounts volume VOL of the daemon at server (HOST:PORT) at mnt with the real CLI; unmounted when the test ends. */
export async function mountVolume(t: Owner & Pick<ExecutionContext, 'fail'>, server: string, vol: string, mnt: string): Promise<string> {
  t.teardown(() => unmountQuietly(mnt));
  await runCliOk(t, ['mount', `${server}:/${vol}`, mnt], { server });
  return mnt;
}

/** Mounts a volfile with the real CLI (a separate FUSE process, `-o o` if given); unmounted when the test ends. */
export async function mountVolfile(t: Owner, volfilePath: string, mnt?: string, o?: string): Promise<string> {
  const dir = mnt ?? fs.mkdtempSync(path.join(path.dirname(volfilePath), 'mnt-'));
  const r = await cli(['mount', '--volfile', volfilePath, dir, ...(o ? ['-o', o] : [])]);
  if (r.code !== 0) throw new Error(`mount failed (${r.code}): ${r.stderr}`);
  t.teardown(() => unmountQuietly(dir));
  return dir;
}

/**
 * Unmounts if mounted, then removes what `brickfs mount` left for dir in the run directory
 * (log, volfile, pidfile; a user's `brickfs umount` keeps the log, as GlusterFS keeps
 * /var/log/glusterfs/<mnt>.log). Used in teardowns, never throws.
 */
export async function unmountQuietly(dir: string): Promise<void> {
  const r = await cli(['umount', dir]);
  if (r.code !== 0 && isMountPoint(dir)) {
    await import('node:child_process').then(({ execFileSync }) => {
      try {
        execFileSync('fusermount', ['-uz', dir]);
      } catch { /* already gone */ }
    });
  }
  // BRICKFS_KEEP_TMP=1 keeps the mount logs for a post-mortem, as tmpDir keeps the bricks'.
  if (!process.env.BRICKFS_KEEP_TMP && !isMountPoint(dir)) {
    for (const kind of ['log', 'vol', 'pid'] as const) fs.rmSync(mountRunFile(dir, kind), { force: true });
  }
  await sleep(0);
}

/** Whether dir is a mount point now. */
export function isMountPoint(dir: string): boolean {
  const want = path.resolve(dir);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === want);
}

/** A mount's statedump (SIGUSR1, written to its log): the FUSE bridge and the current graph. */
export async function mountStatedump(mnt: string): Promise<{ fuse: Record<string, unknown>; xlators: Record<string, { type: string }> }> {
  const pid = Number(fs.readFileSync(mountPidfile(mnt), 'utf8').trim());
  return await requestStatedump(pid, mountRunFile(mnt, 'log')) as { fuse: Record<string, unknown>; xlators: Record<string, { type: string }> };
}

/** One translator's part of a mount's statedump, by its type (e.g. performance/read-ahead). */
export async function xlatorStatedump(mnt: string, type: string): Promise<Record<string, unknown>> {
  const { xlators } = await mountStatedump(mnt);
  return Object.values(xlators).find((x) => x.type === type) as unknown as Record<string, unknown>;
}
