// The self-heal daemon of this host (glusterd's glustershd service): one process for every
// started replicated volume with a brick here and cluster.self-heal-daemon on. The daemon
// writes what it heals to its config file (lib/mgmt/self-heal.ts), starts it (detached, so
// neither a crash of it takes the daemon down nor a daemon restart stops healing), tells it
// of changes (SIGHUP), starts it again when it died, and stops it when nothing is left to
// heal here. Its state is published with the daemon's lease under
//
//   /brickfs/shd/<peer uuid>   {peer, hostname, pid, online, volumes}
//
// so `volume status` on any peer prints a "Self-heal Daemon on HOST" line per host.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDataPath } from '../../lib/data-path-process.js';
import { Logger } from '../../lib/log.js';
import type { SelfHealStatus } from '../../lib/mgmt/api.js';
import type { ShdConfig, ShdVolume } from '../../lib/mgmt/self-heal.js';
import { formatBrick } from '../../lib/mgmt/args.js';
import { pidAlive, readPidfile, sleep } from './bricks.js';
import type { ConfigStore } from './config-store.js';
import { StoreFollower, type MgmtContext } from './context.js';
import { BRICK_REFRESH_MS, writeIfChanged } from './own-bricks.js';
import type { PeerOps } from './peers.js';
import type { BrickDef, VolumeDef } from './store.js';
import { serviceVolfile, valueInEffect } from './volgen.js';

const log = new Logger('mgmt:shd');

export const SHD_PREFIX = '/brickfs/shd/';

/** dist/client/shd/main.js, resolved from this module's place in the build (as BRICK_MAIN). */
export const SHD_MAIN = fileURLToPath(new URL('../../client/shd/main.js', import.meta.url));

/** How long a stop waits for the process to exit before SIGKILL. */
const SHD_STOP_MS = 10_000;

/** The state of a host's self-heal daemon as its management daemon publishes it. */
export interface PublishedShd {
  peer: string;
  hostname: string;
  pid: number | null;
  online: boolean;
  /** The volumes it heals. */
  volumes: string[];
}

/** Whether a volume's self-heal daemons run: started, replicated, cluster.self-heal-daemon on. */
export function healedByDaemon(vol: VolumeDef): boolean {
  return vol.status === 'started' && vol.replicaCount !== undefined && valueInEffect(vol, 'cluster.self-heal-daemon') === true;
}

/** This host's self-heal daemon, kept in line with the volumes in the store. */
export class SelfHealDaemon {
  private readonly follow = new StoreFollower();
  private readonly main: string;
  private scheduled = false;
  /** The volumes the running process was last told of. */
  private volumes: string[] = [];
  private lastPublished: string | undefined;

  constructor(private readonly ctx: MgmtContext, private readonly config: ConfigStore, private readonly peers: PeerOps, main?: string) {
    this.main = main ?? SHD_MAIN;
  }

  /** Adopts or starts the process for what the store says, then follows the store. */
  async start(): Promise<void> {
    this.follow.watching(this.ctx.store.onChange(() => this.schedule()));
    this.peers.onLease(() => {
      this.lastPublished = undefined;
      this.schedule();
    });
    await this.follow.queue.run(() => this.reconcile());
    // Also how a process that died is started again.
    this.follow.every(BRICK_REFRESH_MS, () => this.reconcile(), (e) => log.warn(`self-heal daemon: ${e.message}`));
  }

  /** Stops following the store (the process keeps healing, as bricks keep serving). */
  close(): void {
    this.follow.close();
  }

  private schedule(): void {
    if (this.follow.closed || this.scheduled) return;
    this.scheduled = true;
    void this.follow.queue.run(async () => {
      this.scheduled = false;
      await this.reconcile();
    }).catch((e: Error) => log.error(`self-heal daemon: ${e.message}`));
  }

  /** The pid of the live self-heal daemon of this host, or null. */
  pid(): number | null {
    const p = this.ctx.store.paths;
    const pid = readPidfile(p.shdPidfile);
    if (pid === null || !pidAlive(pid)) return null;
    try {
      // A reused pid is not ours: ours has this state directory's config on its command line.
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(p.shdConfig)) return null;
    } catch { /* no /proc: the pidfile is all there is */ }
    return pid;
  }

  /** What this host's process should heal. */
  private async wanted(): Promise<ShdVolume[]> {
    const out: ShdVolume[] = [];
    for (const vol of this.ctx.store.list()) {
      if (!healedByDaemon(vol)) continue;
      const mine = await this.ctx.myBricks(vol);
      if (mine.length === 0) continue;
      try {
        out.push({ name: vol.name, volfile: serviceVolfile(vol), bricks: mine.map((b) => formatBrick(b, false)) });
      } catch (e) {
        // One definition volgen cannot render must not stop the healing of the others.
        log.error(`volume ${vol.name}: not healed by the self-heal daemon: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** Makes the process and its config what the store says, and publishes its state (inside the queue). */
  private async reconcile(): Promise<void> {
    const p = this.ctx.store.paths;
    const volumes = await this.wanted();
    const cfg: ShdConfig = { volumes };
    const changed = await writeIfChanged(p.shdConfig, `${JSON.stringify(cfg, null, 2)}\n`);
    let pid = this.pid();
    if (volumes.length === 0) {
      if (pid !== null) {
        await this.stop(pid);
        log.info('self-heal daemon stopped: no replicated volume with a brick here is started');
      }
      pid = null;
    } else if (pid === null) {
      try {
        pid = this.spawn();
        log.info(`self-heal daemon started (pid ${pid}) for ${volumes.map((v) => v.name).join(', ')}`);
      } catch (e) {
        log.error(`cannot start the self-heal daemon: ${(e as Error).message}`);
      }
    } else if (changed) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch { /* gone: started again on the next tick */ }
    }
    this.volumes = pid === null ? [] : volumes.map((v) => v.name);
    await this.publish(pid);
  }

  private spawn(): number {
    const p = this.ctx.store.paths;
    if (!fs.existsSync(this.main)) throw new Error(`${this.main} does not exist; build brickfs first (npm run build)`);
    fs.mkdirSync(path.dirname(p.shdLog), { recursive: true });
    fs.mkdirSync(path.dirname(p.shdPidfile), { recursive: true });
    fs.appendFileSync(p.shdLog, `=== ${new Date().toISOString()} brickfs daemon: starting the self-heal daemon\n`);
    const fd = fs.openSync(p.shdLog, 'a');
    const child = spawnDataPath([this.main, '--config', p.shdConfig, '--pidfile', p.shdPidfile], { detached: true, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    child.once('error', (e) => log.error(`self-heal daemon: ${e.message}`));
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot run ${process.execPath} ${this.main}`);
    // Before the process writes it itself: status and the next tick find it at once.
    fs.writeFileSync(p.shdPidfile, `${child.pid}\n`);
    return child.pid;
  }

  private async stop(pid: number): Promise<void> {
    try {
      process.kill(pid, 'SIGTERM');
    } catch { /* already gone */ }
    for (const end = Date.now() + SHD_STOP_MS; pidAlive(pid) && Date.now() < end;) await sleep(50);
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    fs.rmSync(this.ctx.store.paths.shdPidfile, { force: true });
  }

  /** Puts this host's state with the daemon's lease (nothing on the file store: status reads the process here). */
  private async publish(pid: number | null): Promise<void> {
    const lease = this.peers.lease;
    if (!lease) return;
    const key = SHD_PREFIX + this.peers.self.uuid;
    const rec: PublishedShd = { peer: this.peers.self.uuid, hostname: this.peers.self.hostname, pid, online: pid !== null, volumes: this.volumes };
    const value = JSON.stringify(rec);
    if (value === this.lastPublished) return;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const cur = await this.config.get(key);
        if (await this.config.putIf(key, value, cur?.revision ?? 0, lease)) {
          this.lastPublished = value;
          return;
        }
      }
    } catch (e) {
      log.warn(`publishing the self-heal daemon's state: ${(e as Error).message}`);
    }
  }

  /**
   * The "Self-heal Daemon on HOST" lines of a volume: one per host with a brick of it (in
   * brick order), this host's from its process, the others' as their daemons published them.
   * Undefined when the volume's self-heal daemons do not run (not started, not replicated, off).
   */
  async status(vol: VolumeDef): Promise<SelfHealStatus[] | undefined> {
    if (!healedByDaemon(vol)) return undefined;
    const hosts = new Map<string, { host: string; bricks: BrickDef[] }>();
    for (const b of vol.bricks) {
      const owner = b.peer ?? `host:${b.host}`;
      if (!hosts.has(owner)) hosts.set(owner, { host: b.host, bricks: [] });
      hosts.get(owner)!.bricks.push(b);
    }
    let published: Map<string, PublishedShd> | undefined;
    const out: SelfHealStatus[] = [];
    for (const { host, bricks } of hosts.values()) {
      if (await this.ctx.isMine(bricks[0]!)) {
        const pid = this.pid();
        out.push({ host, pid, online: pid !== null && this.volumes.includes(vol.name) });
        continue;
      }
      published ??= await this.publishedStates().catch(() => new Map<string, PublishedShd>());
      const st = bricks[0]!.peer === undefined ? undefined : published.get(bricks[0]!.peer);
      const online = st?.online === true && st.volumes.includes(vol.name);
      out.push({ host, pid: online ? st!.pid : null, online });
    }
    return out;
  }

  private async publishedStates(): Promise<Map<string, PublishedShd>> {
    const out = new Map<string, PublishedShd>();
    for (const kv of await this.config.list(SHD_PREFIX)) {
      try {
        out.set(kv.key.slice(SHD_PREFIX.length), JSON.parse(kv.value) as PublishedShd);
      } catch { /* not a state: shown offline */ }
    }
    return out;
  }
}
