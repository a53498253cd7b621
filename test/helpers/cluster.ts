import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { formatVolfile } from '../../lib/volfile/parse.js';
import { BRICK_MAIN, cli, eventually, freePort, portOpen, sleep, spawnOwned, tmpDir, type Owner } from './proc.js';

/** One real brick process serving a temporary directory. */
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
    }, 10_000, `brick on port ${this.port}`);
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
  /** Client volfile for the bricks (distribute on top). */
  volfile: string;
  volfilePath: string;
}

/** Starts n real brick processes on free ports and writes a distribute client volfile for them. */
export async function startDistribute(t: Owner, n: number, opts: { pingTimeoutS?: number; name?: string } = {}): Promise<TestVolume> {
  const root = tmpDir(t);
  const name = opts.name ?? 'tv';
  const bricks: TestBrick[] = [];
  const clients = [];
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, `brick${i}`);
    fs.mkdirSync(dir);
    const port = await freePort();
    const volfile = path.join(root, `brick${i}.vol`);
    fs.writeFileSync(volfile, formatVolfile([
      { name: `${name}-posix`, type: 'storage/posix', options: { directory: dir }, subvolumes: [] },
      { name: dir, type: 'features/locks', options: {}, subvolumes: [`${name}-posix`] },
      { name: `${name}-server`, type: 'protocol/server', options: { 'listen-port': String(port), 'listen-host': '127.0.0.1' }, subvolumes: [dir] },
    ]));
    bricks.push(new TestBrick(t, dir, port, volfile, path.join(root, `brick${i}.log`)));
    clients.push({
      name: `${name}-client-${i}`, type: 'protocol/client', subvolumes: [],
      options: {
        'remote-host': '127.0.0.1', 'remote-port': String(port), 'remote-subvolume': dir,
        ...(opts.pingTimeoutS ? { 'ping-timeout': String(opts.pingTimeoutS) } : {}),
      },
    });
  }
  await Promise.all(bricks.map((b) => b.start()));
  const volfile = formatVolfile([
    ...clients,
    { name: `${name}-dht`, type: 'cluster/distribute', options: {}, subvolumes: clients.map((c) => c.name) },
    // The performance translators a generated volfile has, so tests run the stack users run.
    { name: `${name}-md-cache`, type: 'performance/md-cache', options: {}, subvolumes: [`${name}-dht`] },
  ]);
  const volfilePath = path.join(root, 'client.vol');
  fs.writeFileSync(volfilePath, volfile);
  return { root, bricks, volfile, volfilePath };
}

/** Mounts a volfile with the real CLI (a separate FUSE process); unmounted when the test ends. */
export async function mountVolfile(t: Owner, volfilePath: string, mnt?: string): Promise<string> {
  const dir = mnt ?? fs.mkdtempSync(path.join(path.dirname(volfilePath), 'mnt-'));
  const r = await cli(['mount', '--volfile', volfilePath, dir]);
  if (r.code !== 0) throw new Error(`mount failed (${r.code}): ${r.stderr}`);
  t.teardown(() => unmountQuietly(dir));
  return dir;
}

/** Unmounts if mounted; used in teardowns, never throws. */
export async function unmountQuietly(dir: string): Promise<void> {
  const r = await cli(['umount', dir]);
  if (r.code !== 0 && isMountPoint(dir)) {
    await import('node:child_process').then(({ execFileSync }) => {
      try {
        execFileSync('fusermount', ['-uz', dir]);
      } catch { /* already gone */ }
    });
  }
  await sleep(0);
}

/** Whether dir is a mount point now. */
export function isMountPoint(dir: string): boolean {
  const want = path.resolve(dir);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === want);
}
