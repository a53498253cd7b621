// The bricks of this host, driven by the desired state in the configuration store: each
// daemon starts, stops, adopts and reconfigures only the bricks it owns (BrickDef.peer),
// whenever a volume's definition changes (the store's watch, whoever made the change) and
// at its own start; and it publishes each one's port, pid and online state under
//
//   /brickfs/bricks/<volume>/<brick id>   {peer, host, path, port, pid, online, rev, error?}
//
// with its liveness lease, so the state of a dead daemon's bricks goes with it. `rev` is
// the store revision of the definition the daemon acted on: the daemon that made a change
// waits for every owner to report on that revision or a later one (glusterd2 ran the same
// step on each node in a transaction; here each node reacts to the stored result).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Logger } from '../../lib/log.js';
import type { BrickStatus } from '../../lib/mgmt/api.js';
import { claimVolumeIdAt } from '../xlators/storage/volume-id.js';
import { brickPid, brickState, BrickStartError, ensureBrick, sleep, stopBrick, type BrickProcess } from './bricks.js';
import type { ConfigStore, StoreLease } from './config-store.js';
import { StoreFollower, type MgmtContext } from './context.js';
import type { PeerOps } from './peers.js';
import { writeFileAtomic, type BrickDef, type VolumeDef } from './store.js';
import { brickVolfile, clientVolfile, serviceVolfile } from './volgen.js';

const log = new Logger('mgmt:bricks');

export const BRICKS_PREFIX = '/brickfs/bricks/';
/** How often each daemon re-reads its bricks' state and republishes what changed. */
export const BRICK_REFRESH_MS = 2000;
/** How long a volume change waits for the other owners to report on it. */
export const OWNER_REPORT_WAIT_MS = 30_000;

/** A brick's state as its owner publishes it. */
export interface PublishedBrick {
  peer: string;
  host: string;
  path: string;
  port: number;
  pid: number | null;
  online: boolean;
  /** The store revision of the volume definition the owner acted on. */
  rev: number;
  /** Why the brick is not running although its volume is started. */
  error?: string;
}

/** Writes file only when its content differs (only root reads it: volfiles hold credentials); true when it wrote. */
export async function writeIfChanged(file: string, text: string): Promise<boolean> {
  const cur = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (cur === text) return false;
  await writeFileAtomic(file, text, 0o600);
  return true;
}

/** This daemon's bricks: reconciled with the store, and their state published in it. */
export class OwnBricks {
  /** Every start and stop of a brick of this host goes through it, one at a time. */
  private readonly follow = new StoreFollower();
  /** Per volume: the store revision last acted on. */
  private readonly acted = new Map<string, number>();
  /** Per key: the value last published (so an unchanged state is not written again). */
  private readonly published = new Map<string, string>();
  /** Per key: why the brick failed to start, until it runs. */
  private readonly failures = new Map<string, string>();
  private readonly pending = new Set<string>();
  private scheduled = false;

  constructor(private readonly ctx: MgmtContext, private readonly config: ConfigStore, private readonly peers: PeerOps) {}

  /** Acts on every volume once, then follows the store; call once the daemon's liveness is published. */
  async start(): Promise<void> {
    this.follow.watching(this.ctx.store.onChange((name) => this.schedule(name)));
    this.peers.onLease(() => {
      // A new lease: this daemon was cut off from the store for a whole TTL. What it
      // published with the old lease is gone, and changes made meanwhile are read again
      // (whatever the watch may have missed) before its bricks are reconciled with them.
      this.published.clear();
      void this.ctx.store.resync()
        .catch((e: Error) => log.warn(`reading the volume definitions again: ${e.message}`))
        .then(() => this.follow.queue.run(() => this.refreshAll()))
        .catch((e: Error) => log.warn(`republishing brick states: ${e.message}`));
    });
    await this.follow.queue.run(async () => {
      for (const vol of this.ctx.store.list()) await this.reconcile(vol.name);
      await this.forgetGone();
    });
    this.follow.every(BRICK_REFRESH_MS, () => this.refreshAll(), (e) => log.debug(`refresh: ${e.message}`));
  }

  /** Stops following the store (brick processes keep running). */
  close(): void {
    this.follow.close();
  }

  /** Runs fn with no reconcile of this daemon's bricks in between (the volume operations' own starts and stops). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.follow.queue.run(fn);
  }

  private schedule(name: string): void {
    if (this.follow.closed) return;
    this.pending.add(name);
    if (this.scheduled) return;
    this.scheduled = true;
    void this.follow.queue.run(async () => {
      this.scheduled = false;
      const names = [...this.pending];
      this.pending.clear();
      for (const n of names) {
        try {
          await this.reconcile(n);
        } catch (e) {
          log.error(`volume ${n}: ${(e as Error).message}`);
        }
      }
    });
  }

  /** Makes this host's bricks of one volume what its definition says (call inside the queue). */
  private async reconcile(name: string): Promise<void> {
    const vol = this.ctx.store.get(name);
    const rev = this.ctx.store.revisionOf(name);
    if (!vol) {
      await this.forget(name);
      return;
    }
    const p = this.ctx.store.paths;
    await writeIfChanged(p.clientVolfile(name), clientVolfile(vol));
    await writeIfChanged(p.serviceVolfile(name), serviceVolfile(vol));
    const mine = await this.ctx.myBricks(vol);
    await this.sweep(name, new Set(mine.map((b) => b.id)));
    await Promise.all(mine.map(async (b) => {
      const proc = this.ctx.brickProc(vol, b);
      const changed = await writeIfChanged(proc.volfile, brickVolfile(vol, b));
      const key = this.key(name, b);
      if (vol.status === 'started') {
        try {
          const r = await this.ensure(vol, b);
          this.failures.delete(key);
          if (r.adopted && changed) {
            // A running brick re-reads its volfile (brick-side options).
            try {
              process.kill(r.pid, 'SIGHUP');
            } catch { /* gone since: it reads the new volfile when it starts again */ }
          }
          if (!r.adopted) log.info(`volume ${name}: brick ${proc.label} started (pid ${r.pid})`);
          await this.publish(vol, b, { pid: r.pid, online: true, rev });
        } catch (e) {
          const msg = e instanceof BrickStartError ? e.message : `brick ${proc.label}: ${(e as Error).message}`;
          this.failures.set(key, msg);
          log.error(`volume ${name}: ${msg}`);
          await this.publish(vol, b, { pid: brickPid(proc), online: false, rev, error: msg });
        }
      } else {
        try {
          if (brickPid(proc) !== null) {
            await stopBrick(proc);
            log.info(`volume ${name}: brick ${proc.label} stopped`);
          }
        } catch (e) {
          log.error(`volume ${name}: ${(e as Error).message}`);
        }
        this.failures.delete(key);
        await this.publish(vol, b, { pid: brickPid(proc), online: false, rev });
      }
    }));
    this.acted.set(name, rev);
  }

  /** Starts (or adopts) one brick of this host: its directory, its volume id, its process. */
  async ensure(vol: VolumeDef, b: BrickDef): Promise<{ pid: number; adopted: boolean }> {
    const proc = this.ctx.brickProc(vol, b);
    const refuse = (why: string): never => {
      const msg = `brick ${proc.label}: ${why}`;
      try {
        fs.mkdirSync(path.dirname(proc.log), { recursive: true });
        fs.appendFileSync(proc.log, `=== ${new Date().toISOString()} brickfs daemon: not starting brick ${proc.label}: ${why}\n`);
      } catch { /* the reply says it anyway */ }
      throw new BrickStartError(msg);
    };
    const st = fs.statSync(b.path, { throwIfNoEntry: false });
    if (!st) {
      try {
        await fsp.mkdir(b.path, { recursive: true });
      } catch (e) {
        refuse(`cannot create directory ${b.path}: ${(e as Error).message}`);
      }
    }
    // Something else than a directory there: the brick process says so in its log.
    if (st && !st.isDirectory()) return ensureBrick(proc, this.ctx.brickMain);
    try {
      if (claimVolumeIdAt(b.path, vol.id, b.replaces)) log.info(`volume ${vol.name}: brick ${proc.label} now carries volume id ${vol.id}`);
    } catch (e) {
      refuse((e as Error).message);
    }
    return ensureBrick(proc, this.ctx.brickMain);
  }

  /** Stops the processes of this volume's bricks that are no longer this host's (removed, or the volume gone). */
  private async sweep(name: string, keep: ReadonlySet<string>): Promise<void> {
    const p = this.ctx.store.paths;
    const run = path.dirname(p.brickPidfile(name, { id: 'x' } as BrickDef));
    let files: string[];
    try {
      files = await fsp.readdir(run);
    } catch {
      return;
    }
    for (const f of files) {
      if (!f.endsWith('.pid') || f === path.basename(p.rebalancePidfile(name))) continue;
      const id = f.slice(0, -'.pid'.length);
      if (keep.has(id)) continue;
      const ghost = { id } as BrickDef;
      const proc: BrickProcess = {
        label: id, volfile: p.brickVolfile(name, ghost), pidfile: p.brickPidfile(name, ghost), log: p.brickLog(ghost), port: 0, listenHost: '0.0.0.0',
      };
      try {
        if (brickPid(proc) !== null) log.info(`volume ${name}: stopping brick ${id}, no longer in the volume`);
        await stopBrick(proc);
        await fsp.rm(proc.volfile, { force: true });
      } catch (e) {
        log.error(`volume ${name}: ${(e as Error).message}`);
      }
      await this.unpublish(`${BRICKS_PREFIX}${name}/${id}`);
    }
  }

  /** A volume gone from the store: its bricks here stop, its files here go, its states are withdrawn. */
  private async forget(name: string): Promise<void> {
    await this.sweep(name, new Set());
    for (const key of [...this.published.keys()]) if (key.startsWith(`${BRICKS_PREFIX}${name}/`)) await this.unpublish(key);
    this.acted.delete(name);
    await fsp.rm(this.ctx.store.paths.volDir(name), { recursive: true, force: true });
  }

  /** Volumes this host has files of that the store no longer has (deleted while this daemon was down). */
  private async forgetGone(): Promise<void> {
    const vols = path.dirname(this.ctx.store.paths.volDir('x'));
    const names = await fsp.readdir(vols).catch(() => [] as string[]);
    for (const n of names) if (!this.ctx.store.get(n)) await this.forget(n);
  }

  /** Re-reads the state of every brick of this host and republishes what changed; acts on missed changes. */
  private async refreshAll(): Promise<void> {
    for (const vol of this.ctx.store.list()) {
      if (this.acted.get(vol.name) !== this.ctx.store.revisionOf(vol.name)) {
        await this.reconcile(vol.name);
        continue;
      }
      const rev = this.acted.get(vol.name)!;
      for (const b of await this.ctx.myBricks(vol)) {
        const st = await brickState(this.ctx.brickProc(vol, b));
        const error = st.online ? undefined : this.failures.get(this.key(vol.name, b));
        await this.publish(vol, b, { ...st, rev, ...(error === undefined ? {} : { error }) });
      }
    }
    for (const name of [...this.acted.keys()]) if (!this.ctx.store.get(name)) await this.forget(name);
  }

  private key(name: string, b: BrickDef): string {
    return `${BRICKS_PREFIX}${name}/${b.id}`;
  }

  /** Puts a brick's state with this daemon's lease (nothing on the file store: status reads the bricks there). */
  private async publish(vol: VolumeDef, b: BrickDef, st: Pick<PublishedBrick, 'pid' | 'online' | 'rev' | 'error'>): Promise<void> {
    const lease: StoreLease | undefined = this.peers.lease;
    if (!lease) return;
    const key = this.key(vol.name, b);
    const rec: PublishedBrick = { peer: this.peers.self.uuid, host: b.host, path: b.path, port: b.port, ...st };
    const value = JSON.stringify(rec);
    if (this.published.get(key) === value) return;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const cur = await this.config.get(key);
        if (await this.config.putIf(key, value, cur?.revision ?? 0, lease)) {
          this.published.set(key, value);
          return;
        }
      }
    } catch (e) {
      log.warn(`publishing the state of brick ${b.host}:${b.path}: ${(e as Error).message}`);
    }
  }

  private async unpublish(key: string): Promise<void> {
    this.published.delete(key);
    this.failures.delete(key);
    if (!this.peers.lease) return;
    try {
      const cur = await this.config.get(key);
      if (cur) await this.config.removeIf(key, cur.revision);
    } catch (e) {
      log.warn(`withdrawing ${key}: ${(e as Error).message}`);
    }
  }

  /** The published states of a volume's bricks, by brick id. */
  async publishedStates(name: string): Promise<Map<string, PublishedBrick>> {
    const out = new Map<string, PublishedBrick>();
    for (const kv of await this.config.list(`${BRICKS_PREFIX}${name}/`)) {
      try {
        out.set(kv.key.slice(`${BRICKS_PREFIX}${name}/`.length), JSON.parse(kv.value) as PublishedBrick);
      } catch { /* not a state: shown offline */ }
    }
    return out;
  }

  /**
   * Every brick's pid and online state: this host's from the processes themselves, the
   * others' as their owners published them (offline when the owner is gone).
   */
  async status(vol: VolumeDef): Promise<BrickStatus[]> {
    const mine = await Promise.all(vol.bricks.map((b) => this.ctx.isMine(b)));
    const states = mine.every(Boolean) ? new Map<string, PublishedBrick>() : await this.publishedStates(vol.name).catch(() => new Map<string, PublishedBrick>());
    return Promise.all(vol.bricks.map(async (b, i): Promise<BrickStatus> => {
      const where = { host: b.host, path: b.path, port: b.port };
      if (mine[i]) return { ...where, ...(await brickState(this.ctx.brickProc(vol, b))) };
      const st = states.get(b.id);
      return { ...where, pid: st?.online ? st.pid : null, online: st?.online === true };
    }));
  }

  /**
   * Waits until the owners of `bricks` (none of them this daemon) have acted on revision
   * minRev or later: running (or failed, with why) when `running`, else stopped. Returns
   * one message per brick that failed, did not report in time, or whose daemon is down.
   */
  async waitForOwners(vol: VolumeDef, bricks: readonly BrickDef[], minRev: number, running: boolean, timeoutMs = OWNER_REPORT_WAIT_MS): Promise<string[]> {
    const left = new Map(bricks.map((b) => [b.id, b]));
    const failed: string[] = [];
    const deadline = Date.now() + timeoutMs;
    while (left.size > 0) {
      let states: Map<string, PublishedBrick>;
      let alive: Set<string>;
      try {
        [states, alive] = await Promise.all([this.publishedStates(vol.name), this.peers.aliveUuids()]);
      } catch (e) {
        for (const b of left.values()) failed.push(`brick ${b.host}:${b.path}: cannot read its state (${(e as Error).message})`);
        break;
      }
      for (const b of [...left.values()]) {
        const st = states.get(b.id);
        if (st && st.rev >= minRev) {
          if (!running && !st.online) left.delete(b.id);
          else if (running && st.online) left.delete(b.id);
          else if (running && st.error !== undefined) {
            failed.push(`on host ${b.host}: ${st.error}`);
            left.delete(b.id);
          }
          continue;
        }
        if (b.peer !== undefined && !alive.has(b.peer)) {
          failed.push(`brick ${b.host}:${b.path}: the management daemon of host ${b.host} is not connected (\`brickfs pool list\`); it acts on the change when it runs again`);
          left.delete(b.id);
        }
      }
      if (left.size === 0) break;
      if (Date.now() > deadline) {
        for (const b of left.values()) failed.push(`brick ${b.host}:${b.path}: the daemon of host ${b.host} did not report within ${timeoutMs / 1000} s`);
        break;
      }
      await sleep(150);
    }
    return failed;
  }
}
