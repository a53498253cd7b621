// What the operation modules (volume-ops, brick-ops, rebalance) share: the volume store, the
// one lock that keeps volume changes from interleaving, the 'changed' events long polls
// wait on, and where a volume's processes and volfiles live (the role of glusterd-utils).
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { FsError } from '../../lib/errors.js';
import { formatBrick } from '../../lib/mgmt/args.js';
import { BRICK_MAIN, type BrickProcess } from './bricks.js';
import { MgmtError, noSuchVolume } from './errors.js';
import { isThisHost } from './hosts.js';
import { writeFileAtomic, type BrickDef, type VolumeDef, type VolumeStore } from './store.js';
import { brickVolfile, clientVolfile, listenHostFor, serviceVolfile, type VolumeCredentials } from './volgen.js';

/** Settings of the operation modules. */
export interface MgmtOptions {
  /** First port tried for new bricks. */
  brickPortBase: number;
  /** The brick program (dist/brick/main.js); tests may substitute one. */
  brickMain?: string;
  /** The rebalance program (dist/client/rebalance/main.js); tests may substitute one. */
  rebalanceMain?: string;
  /** This daemon's peer UUID: it owns the bricks stored with it (BrickDef.peer). */
  selfUuid: string;
  /** How errors name the configuration store (etcd://H:P,H:P/PREFIX or file:DIR). */
  storeName?: string;
}

/** Runs async tasks one at a time (volume changes must not interleave). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * The loop of a per-host service that follows the store (this host's bricks, its self-heal
 * daemon, its rebalance processes): its work runs one piece at a time on the queue, on the
 * store's changes and again periodically (how a process that died is noticed), until close().
 */
export class StoreFollower {
  /** The service's work, one piece at a time. */
  readonly queue = new Mutex();
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;

  get closed(): boolean {
    return this.stopped;
  }

  /** Keeps what stops the store's watch (onChange's return), for close(). */
  watching(unwatch: () => void): void {
    this.unwatch = unwatch;
  }

  /** Runs work on the queue periodMs after its previous run ended, again and again until close(); onError hears its failures. */
  every(periodMs: number, work: () => Promise<void>, onError: (e: Error) => void): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.queue.run(work).catch(onError).finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, periodMs).unref();
      });
    };
    this.timer = setTimeout(tick, periodMs).unref();
  }

  /** Stops following the store and the periodic work (the processes the service runs keep running). */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unwatch?.();
  }
}

/** "replica 2", "stripe 2", "stripe 2 replica 2" or "distribute": the shape words of a volume. */
export function shapeWords(vol: VolumeDef): string {
  const w = [
    ...(vol.stripeCount ? [`stripe ${vol.stripeCount}`] : []),
    ...(vol.replicaCount ? [`replica ${vol.replicaCount}`] : []),
  ];
  return w.length > 0 ? w.join(' ') : 'distribute';
}

/** The bricks a remove-brick in progress drains. */
export function removingBricks(vol: VolumeDef): BrickDef[] {
  const ids = new Set(vol.removing?.bricks ?? []);
  return vol.bricks.filter((b) => ids.has(b.id));
}

/** The brick words of the removal in progress, for messages. */
export function removingWords(vol: VolumeDef): string {
  return removingBricks(vol).map((b) => formatBrick(b, false)).join(' ');
}

/** How long a volume change waits for another daemon's to finish before it is refused (503). */
export const OPERATION_LOCK_WAIT_MS = 30_000;

/**
 * The lock every volume change runs under: this daemon's own queue, then the configuration
 * store's cluster-wide lock (VolumeStore.exclusive), so no two changes interleave, whether
 * they come to this daemon or to another daemon on the same store.
 */
export class OperationLock {
  private readonly local = new Mutex();

  constructor(private readonly store: VolumeStore, private readonly storeName = 'the configuration store', private readonly waitMs = OPERATION_LOCK_WAIT_MS) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.local.run(async () => {
      let entered = false;
      try {
        return await this.store.exclusive(() => {
          entered = true;
          return fn();
        }, this.waitMs);
      } catch (e) {
        if (entered || !(e instanceof FsError)) throw e;
        if (e.code === 'EBUSY') {
          throw new MgmtError(503, `another volume operation is still in progress after ${this.waitMs / 1000} s (${e.message}); nothing was changed, try again`);
        }
        // The store's own messages start with its name: said once here, in front.
        const why = e.message.replace(/^config store \S+: /, '');
        if (e.code === 'ETIMEDOUT' || e.code === 'ENOTCONN') {
          throw new MgmtError(503,
            `the configuration store ${this.storeName} is unreachable from this daemon (${why}); nothing was changed. ` +
            'Bricks and mounts keep serving; check etcd and this host\'s network to those endpoints, and try again once it answers');
        }
        throw new MgmtError(503, `the configuration store ${this.storeName} cannot be used (${why}); nothing was changed, try again once it answers`);
      }
    });
  }
}

/** The state every operation module works on; one per daemon. */
export class MgmtContext {
  /** Every volume change runs under it: one at a time across every daemon of the store, as the API promises. */
  readonly lock: OperationLock;
  /** Emits 'changed' (name) when a volume's volfile or state changes; long-polls listen. */
  readonly events = new EventEmitter();
  readonly brickMain: string;
  /** isThisHost per host string, for bricks stored without an owner. */
  private readonly hereCache = new Map<string, Promise<boolean>>();

  constructor(readonly store: VolumeStore, readonly opts: MgmtOptions) {
    this.lock = new OperationLock(store, opts.storeName);
    this.brickMain = opts.brickMain ?? BRICK_MAIN;
    this.events.setMaxListeners(0);
  }

  /** A copy of the volume's definition; 404 when there is none. */
  need(name: string): VolumeDef {
    const v = this.store.get(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  /**
   * Whether this daemon owns the brick: it was stored with this daemon's UUID, or (stored
   * before pools, without an owner) its host names this machine.
   */
  isMine(b: BrickDef): Promise<boolean> {
    if (b.peer !== undefined) return Promise.resolve(b.peer === this.opts.selfUuid);
    let p = this.hereCache.get(b.host);
    if (!p) {
      p = isThisHost(b.host);
      this.hereCache.set(b.host, p);
    }
    return p;
  }

  /** The bricks of a volume this daemon owns. */
  async myBricks(vol: VolumeDef): Promise<BrickDef[]> {
    const mine = await Promise.all(vol.bricks.map((b) => this.isMine(b)));
    return vol.bricks.filter((_, i) => mine[i]);
  }

  /** How to run, find and stop one brick of a volume. */
  brickProc(vol: VolumeDef, b: BrickDef): BrickProcess {
    const p = this.store.paths;
    return {
      label: formatBrick(b, false),
      volfile: p.brickVolfile(vol.name, b),
      pidfile: p.brickPidfile(vol.name, b),
      log: p.brickLog(b),
      port: b.port,
      listenHost: listenHostFor(b.host),
    };
  }

  /**
   * Writes the client volfile, the services' volfile and the volfile of every brick of the
   * definition this daemon owns; all hold credentials, so only root reads them.
   */
  async writeVolfiles(vol: VolumeDef): Promise<void> {
    const p = this.store.paths;
    await writeFileAtomic(p.clientVolfile(vol.name), clientVolfile(vol), 0o600);
    await writeFileAtomic(p.serviceVolfile(vol.name), serviceVolfile(vol), 0o600);
    for (const b of await this.myBricks(vol)) await writeFileAtomic(p.brickVolfile(vol.name, b), brickVolfile(vol, b), 0o600);
  }
}

/**
 * New credentials for a volume (GlusterFS's auth.login username and password, a UUID and a
 * random secret each): one for its clients, one for the daemon's own services.
 */
export function newCredentials(): VolumeCredentials {
  const secret = (): string => randomBytes(32).toString('base64url');
  return { username: randomUUID(), password: secret(), serviceUsername: randomUUID(), servicePassword: secret() };
}
