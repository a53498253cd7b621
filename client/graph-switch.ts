// The live graph switch (GlusterFS's glusterfs_graph_activate + fuse_graph_switch): the FUSE
// bridge talks to an ActiveGraph, never to a fixed top translator. A new volfile becomes a
// new graph; path fops go to the newest graph at once, open files move over lazily (on
// their next fd op) and in the background, and an old graph is torn down once nothing uses
// it. docs/graph-switch.md explains the rules.
import { setTimeout as sleep } from 'node:timers/promises';
import { FsError } from '../lib/errors.js';
import { elapsedNs, FopStats, startMark, type FopStatsSnapshot } from '../lib/fop-stats.js';
import { reopenFlags, type FopArgs, type FopName, type FopReply, type Iatt, type Xattrs } from '../lib/fops.js';
import { ROOT_FRAME, type Frame } from '../lib/frame.js';
import { graphFromVolfile, type Graph } from '../lib/graph.js';
import { CtxKey, Fd, type Inode, type InodeTable } from '../lib/inode.js';
import { Logger } from '../lib/log.js';
import { Xlator } from '../lib/xlator.js';
import { formatServer, pollVolfile, type ServerAddr, type VolfilePoll } from '../lib/mgmt/client.js';
import { ProtocolClient } from './xlators/protocol/client.js';
import { mgmtFetch, mgmtUrl } from '../lib/mgmt/http.js';

const log = new Logger('graph');

/**
 * The parent of a graph's top translator in a mount (GlusterFS's mount/fuse translator): the
 * invalidations another client's changes send up the graph end here and go to the bridge.
 */
class MountTop extends Xlator {
  static override readonly description = 'The FUSE bridge above a mount graph';

  constructor(top: Xlator, private readonly sink: (paths: readonly string[]) => void) {
    super({ name: 'fuse', type: 'mount/fuse', options: {}, children: [top] });
  }

  override invalidate(paths: readonly string[]): void {
    this.sink(paths);
  }
}

/** Fops that work on an open fd (release aside, which ends the handle). */
export type FdFop = 'fstat' | 'read' | 'write' | 'ftruncate' | 'fsync' | 'flush';

/** Arguments of an fd fop without the fd: the holder supplies the fd of the handle's graph. */
export type FdFopArgs<F extends FdFop> = Omit<FopArgs<F>, 'fd'>;

export interface ActiveGraphOptions {
  /** An old graph still in use this long after a switch is torn down anyway. */
  maxRetireMs?: number;
  /** How often a retiring graph checks whether it can go. */
  retireCheckMs?: number;
  /** How often a retiring graph retries moving open files that failed to move. */
  remigrateMs?: number;
}

/** One graph the mount has served from: it lives until no handle and no fop uses it. */
interface GraphSlot {
  readonly graph: Graph;
  /** "graph N" in logs: 1 for the graph of the mount, +1 per switch. */
  readonly id: number;
  readonly version: number | undefined;
  /** Fops running on this graph right now. */
  inflight: number;
  /** Bridge handles' fds open in this graph (including ones being released). */
  readonly bindings: Set<FdBinding>;
  /** fini() was called: the graph serves nothing any more. */
  finished: boolean;
  retiredAt?: number;
  retireTimer?: NodeJS.Timeout;
}

/**
 * A handle's fd in one graph: an Fd of its own per graph (each graph's translators keep their
 * state in it), all on the handle's inode.
 */
interface FdBinding {
  readonly slot: GraphSlot;
  readonly fd: Fd;
  /** Fops running on this fd; the fd is released only when it is idle. */
  inflight: number;
  onIdle?: () => void;
}

/** What the kernel knows as a file handle: the bridge's own number for an open file. */
interface Handle {
  /** Its number, which the kernel knows it by. */
  readonly fh: number;
  binding: FdBinding;
  /** The file: a reopen in a new graph goes to its path then (renames follow it). */
  readonly inode: Inode;
  readonly flags: number;
  /** A running move to the current graph; concurrent fops on the handle share it. */
  migrating?: Promise<void>;
  /** Released by the kernel: a background move must not reopen it. */
  closed?: boolean;
  /** After a failed move, fops stay on the old graph without retrying until then (ms). */
  retryAt?: number;
}

/**
 * The graph the mount serves from, and the open files of every graph still alive. Every fop
 * counts as in flight on the graph it started on and finishes there, whatever switches
 * happen meanwhile.
 */
export class ActiveGraph {
  /** The mount's inode table, shared by every graph it serves from. */
  readonly inodes: InodeTable;
  private current: GraphSlot;
  private readonly retiring = new Set<GraphSlot>();
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private nextGraphId = 1;
  private closed = false;
  private invalidated?: (paths: readonly string[]) => void;
  private readonly maxRetireMs: number;
  private readonly retireCheckMs: number;
  private readonly remigrateMs: number;
  /** Each binding's fd says which handle it serves (handleOn). */
  private readonly handleKey = new CtxKey<number>('graph-switch');
  /** Every fop the mount ran, for the daemon's /metrics (client/mount.ts serves them). */
  private readonly fopStats = new FopStats();

  constructor(graph: Graph, version: number | undefined, opts: ActiveGraphOptions = {}) {
    this.inodes = graph.inodes;
    this.maxRetireMs = opts.maxRetireMs ?? 5 * 60_000;
    this.retireCheckMs = opts.retireCheckMs ?? 1000;
    this.remigrateMs = opts.remigrateMs ?? 5000;
    this.current = this.slot(graph, version);
  }

  /** Number of the graph new fops go to ("graph N" in the log). */
  get graphId(): number {
    return this.current.id;
  }

  /** Volfile version of the graph new fops go to, when it came from a daemon. */
  get version(): number | undefined {
    return this.current.version;
  }

  /** Where paths another client changed go (the bridge drops them from the kernel's caches); from every graph alive. */
  onInvalidate(fn: (paths: readonly string[]) => void): void {
    this.invalidated = fn;
  }

  /** Runs a path fop on the current graph. */
  call<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    return this.run(this.current, fop, args, frame);
  }

  /** Opens the file of inode; the answer is a handle number of the bridge, valid across switches. */
  open(inode: Inode, flags: number, frame: Frame): Promise<number> {
    const fd = new Fd(inode, flags);
    return this.opener('open', fd, (top) => top.call('open', { path: inode.path, flags, fd }, frame)).then((o) => o.fh);
  }

  /**
   * Creates and opens the file inode names (create's flags; O_RDWR from fuse-native, which
   * does not pass them); also answers the new file's attributes.
   */
  create(inode: Inode, mode: number, flags: number, frame: Frame, xattrs?: Xattrs): Promise<{ fh: number; iatt: Iatt }> {
    const fd = new Fd(inode, flags);
    const args: FopArgs<'create'> = xattrs ? { path: inode.path, mode, flags, fd, xattrs } : { path: inode.path, mode, flags, fd };
    return this.opener('create', fd, (top) => top.call('create', args, frame)).then(({ fh, reply }) => ({ fh, iatt: reply.iatt }));
  }

  /** The inode a handle is open on. */
  inodeOf(fh: number): Inode | undefined {
    return this.handles.get(fh)?.inode;
  }

  /** A handle open on inode, if any (an unlinked file is served through one). */
  handleOn(inode: Inode): number | undefined {
    for (const fd of inode.fds) {
      const fh = fd.ctx.get(this.handleKey);
      if (fh !== undefined && this.handles.has(fh)) return fh;
    }
    return undefined;
  }

  /**
   * Runs an fd fop on a handle, moving the handle to the current graph first if needed. The
   * fop is the caller's; the move is not (moveHandle).
   */
  fdCall<F extends FdFop>(fh: number, fop: F, args: FdFopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const h = this.handles.get(fh);
    if (!h) return Promise.reject(FsError.of('EBADF', `file handle ${fh} is not open`));
    const slot = h.binding.slot;
    if (!h.migrating && (slot === this.current || (!slot.finished && h.retryAt !== undefined && Date.now() < h.retryAt))) {
      return this.onFd(h.binding, fop, args, frame);
    }
    return this.migrate(h).then(() => this.onFd(h.binding, fop, args, frame));
  }

  /** The last close of a handle: releases its fd in whichever graph holds it. */
  async release(fh: number, frame: Frame): Promise<void> {
    const h = this.handles.get(fh);
    if (!h) throw FsError.of('EBADF', `file handle ${fh} is not open`);
    // No point in moving a file only to close it: wait for a move already running, then
    // release where the fd is.
    if (h.migrating) await h.migrating.catch(() => undefined);
    h.closed = true;
    this.handles.delete(fh);
    const b = h.binding;
    if (b.slot === this.current) {
      await this.releaseBinding(b, frame);
    } else {
      await this.releaseBinding(b, frame).catch((e: Error) => log.warn(`release of ${h.inode.path} in old graph ${b.slot.id}: ${e.message}`));
    }
  }

  /** Makes graph the one new fops go to; the previous one retires in the background. */
  switchTo(graph: Graph, version: number | undefined): void {
    // The handles' inodes, and every translator's state on them, must mean the same in the new graph.
    if (graph.inodes !== this.inodes) throw new Error('a graph of this mount must be built on the mount\'s inode table');
    if (this.closed) {
      void graph.fini();
      return;
    }
    const old = this.current;
    this.current = this.slot(graph, version);
    log.info(`switched to volfile version ${version ?? '?'} (graph ${this.current.id})`);
    this.retire(old);
  }

  /** The graphs alive, their fds and fops in flight, and the current graph's translators. */
  statedump(): Record<string, unknown> {
    const slots = [this.current, ...this.retiring];
    return {
      graph: this.current.id, version: this.current.version, handles: this.handles.size,
      graphs: slots.map((s) => ({ graph: s.id, version: s.version, inflight: s.inflight, fds: s.bindings.size, finished: s.finished })),
      xlators: this.current.graph.statedump(),
    };
  }

  /** Unmount: tears down every graph still alive. */
  async fini(): Promise<void> {
    this.closed = true;
    const slots = [...this.retiring, this.current];
    this.retiring.clear();
    for (const s of slots) {
      clearInterval(s.retireTimer);
      if (s.finished) continue;
      s.finished = true;
      await s.graph.fini().catch((e: Error) => log.error(`fini of graph ${s.id}: ${e.message}`));
    }
  }

  private slot(graph: Graph, version: number | undefined): GraphSlot {
    // Links itself above the top (the base constructor adds it to the top's parents).
    new MountTop(graph.top, (paths) => this.invalidated?.(paths));
    return { graph, id: this.nextGraphId++, version, inflight: 0, bindings: new Set(), finished: false };
  }

  private run<F extends FopName>(slot: GraphSlot, fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    slot.inflight++;
    const began = startMark();
    let p: Promise<FopReply<F>>;
    try {
      p = slot.graph.top.call(fop, args, frame);
    } catch (e) {
      slot.inflight--;
      this.fopStats.record(fop, elapsedNs(began), false);
      return Promise.reject(e);
    }
    return p.then(
      (r) => { slot.inflight--; this.observe(fop, args, r, began); return r; },
      (e: unknown) => { slot.inflight--; this.fopStats.record(fop, elapsedNs(began), false); throw e; },
    );
  }

  private observe(fop: FopName, args: unknown, reply: unknown, began: number): void {
    this.fopStats.record(fop, elapsedNs(began), true);
    if (fop === 'read' || fop === 'readfile') this.fopStats.bytes('read', (reply as FopReply<'read'>).data.length);
    else if (fop === 'lookup' && (reply as FopReply<'lookup'>).data) this.fopStats.bytes('read', (reply as FopReply<'lookup'>).data!.length);
    else if (fop === 'write') this.fopStats.bytes('write', (args as FopArgs<'write'>).data.length);
    else if (fop === 'writev') this.fopStats.bytes('write', (args as FopArgs<'writev'>).extents.reduce((n, e) => n + e.data.length, 0));
  }

  /** What the mount's stats socket answers: its fop counters and the hits and misses of the current graph's caches. */
  stats(): FopStatsSnapshot & { caches: Record<string, { type: string; hits: number; misses: number }> } {
    const caches: Record<string, { type: string; hits: number; misses: number }> = {};
    for (const [name, d] of Object.entries(this.current.graph.statedump())) {
      const x = d as { type?: string; hits?: unknown; misses?: unknown };
      if (typeof x.hits === 'number' && typeof x.misses === 'number') caches[name] = { type: x.type ?? '', hits: x.hits, misses: x.misses };
    }
    return { ...this.fopStats.snapshot(), caches };
  }

  /** run() for an fd fop, counted on the fd too (one promise less on the read/write path). */
  private onFd<F extends FdFop | 'release'>(b: FdBinding, fop: F, args: Omit<FopArgs<F>, 'fd'>, frame: Frame): Promise<FopReply<F>> {
    const slot = b.slot;
    slot.inflight++;
    b.inflight++;
    const done = (): void => {
      slot.inflight--;
      if (--b.inflight === 0) b.onIdle?.();
    };
    const began = startMark();
    let p: Promise<FopReply<F>>;
    try {
      p = slot.graph.top.call(fop, { ...args, fd: b.fd } as unknown as FopArgs<F>, frame);
    } catch (e) {
      done();
      this.fopStats.record(fop, elapsedNs(began), false);
      return Promise.reject(e);
    }
    return p.then(
      (r) => { done(); this.observe(fop, args, r, began); return r; },
      (e: unknown) => { done(); this.fopStats.record(fop, elapsedNs(began), false); throw e; },
    );
  }

  /**
   * Opens fd (open or create, as call does it) on the current graph and makes its handle; an
   * open that spans a switch gives an old-graph fd, moved later.
   */
  private async opener<R>(fop: 'open' | 'create', fd: Fd, call: (top: Xlator) => Promise<R>): Promise<{ fh: number; reply: R }> {
    const slot = this.current;
    // The inode stays in the table while the fd is open, even once the kernel forgets it.
    this.inodes.opened(fd);
    slot.inflight++;
    const began = startMark();
    let reply: R;
    try {
      reply = await call(slot.graph.top);
    } catch (e) {
      this.inodes.released(fd);
      this.fopStats.record(fop, elapsedNs(began), false);
      throw e;
    } finally {
      slot.inflight--;
    }
    this.fopStats.record(fop, elapsedNs(began), true);
    const fh = this.nextHandle++;
    const h: Handle = { fh, binding: this.bind(slot, fd, fh), inode: fd.inode, flags: fd.flags };
    this.handles.set(fh, h);
    if (slot !== this.current) void this.migrate(h).catch(() => undefined);
    return { fh, reply };
  }

  private bind(slot: GraphSlot, fd: Fd, fh: number): FdBinding {
    fd.ctx.set(this.handleKey, fh);
    const b: FdBinding = { slot, fd, inflight: 0 };
    slot.bindings.add(b);
    return b;
  }

  /** Moves a handle to the current graph; one move at a time per handle. */
  private migrate(h: Handle): Promise<void> {
    h.migrating ??= this.moveHandle(h).finally(() => { h.migrating = undefined; });
    return h.migrating;
  }

  /**
   * Opens the handle's file (at its inode's path now) on a new fd in the current graph and
   * releases the old fd. When the open fails the handle stays where it is as long as that
   * graph is alive (tried again later); only a handle whose graph is gone gets the error.
   * Done as root, whichever fop (or the retiring graph's sweep) asked for it: the open was
   * allowed once, and concurrent fops on the handle share the move.
   */
  private async moveHandle(h: Handle): Promise<void> {
    const old = h.binding;
    const target = this.current;
    if (old.slot === target || h.closed) return;
    const fd = new Fd(h.inode, reopenFlags(h.flags));
    this.inodes.opened(fd);
    try {
      await this.run(target, 'open', { path: h.inode.path, flags: fd.flags, fd }, ROOT_FRAME);
    } catch (e) {
      this.inodes.released(fd);
      const err = FsError.from(e);
      if (!old.slot.finished) {
        log.warn(`${h.inode.path}: reopen in graph ${target.id} failed (${err.code}: ${err.message}); stays on graph ${old.slot.id} for now`);
        h.retryAt = Date.now() + this.remigrateMs;
        return;
      }
      throw err;
    }
    h.retryAt = undefined;
    h.binding = this.bind(target, fd, h.fh);
    if (old.slot.finished) {
      old.slot.bindings.delete(old);
      this.inodes.released(old.fd);
      return;
    }
    await this.releaseBinding(old, ROOT_FRAME).catch((e: Error) => log.warn(`${h.inode.path}: release of the old fd in graph ${old.slot.id}: ${e.message}`));
  }

  /** Releases a binding's fd once the fops running on it are done. */
  private async releaseBinding(b: FdBinding, frame: Frame): Promise<void> {
    try {
      if (b.inflight > 0) await new Promise<void>((resolve) => { b.onIdle = resolve; });
      if (!b.slot.finished) await this.onFd(b, 'release', {}, frame);
    } finally {
      b.slot.bindings.delete(b);
      this.inodes.released(b.fd);
    }
  }

  private retire(slot: GraphSlot): void {
    this.retiring.add(slot);
    slot.retiredAt = Date.now();
    let lastMove = Date.now();
    void this.migrateAll(slot);
    slot.retireTimer = setInterval(() => {
      if (slot.inflight === 0 && slot.bindings.size === 0) {
        void this.finish(slot, `graph ${slot.id} (volfile version ${slot.version ?? '?'}) released`);
      } else if (Date.now() - slot.retiredAt! >= this.maxRetireMs) {
        void this.finish(slot, `graph ${slot.id} (volfile version ${slot.version ?? '?'}) released with ${slot.bindings.size} open fds and ${slot.inflight} fops still on it after ${Math.round(this.maxRetireMs / 1000)} s`);
      } else if (Date.now() - lastMove >= this.remigrateMs) {
        lastMove = Date.now();
        void this.migrateAll(slot);
      }
    }, this.retireCheckMs);
    slot.retireTimer.unref();
  }

  /** Moves every handle still on slot to the current graph, a few at a time. */
  private async migrateAll(slot: GraphSlot): Promise<void> {
    const todo = [...this.handles.values()].filter((h) => h.binding.slot === slot);
    const worker = async (): Promise<void> => {
      for (let h = todo.shift(); h; h = todo.shift()) {
        await this.migrate(h).catch((e: Error) => log.warn(`${h!.inode.path}: move to graph ${this.current.id}: ${e.message}`));
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, todo.length) }, worker));
  }

  private async finish(slot: GraphSlot, message: string): Promise<void> {
    if (slot.finished) return;
    clearInterval(slot.retireTimer);
    slot.finished = true;
    this.retiring.delete(slot);
    if (slot.bindings.size > 0 || slot.inflight > 0) log.warn(message);
    else log.info(message);
    // Handles still bound here reopen in the current graph on their next fop.
    await slot.graph.fini().catch((e: Error) => log.error(`fini of graph ${slot.id}: ${e.message}`));
  }
}

/** Where a mount's volfile came from, so the mount can follow changes. */
export interface VolfileSource {
  /**
   * The management daemons that serve the volume's volfile, in the order the mount tries
   * them: the one it follows first, then the others (its volfile server and
   * backup-volfile-servers, from the one that served the mount onwards, round the list).
   */
  servers: ServerAddr[];
  volume: string;
  /** Version of the volfile the mount started with. */
  version: number;
}

export interface PrepareOptions {
  /** The mount's inode table, which the new graph shares with the mount's other graphs; a new one when absent. */
  inodes?: InodeTable;
  /** Longest wait for every brick connection of the new graph. */
  readyTimeoutMs?: number;
  /** Gives up waiting early (the mount is stopping). */
  cancelled?: () => boolean;
}

/**
 * Builds and initialises a graph and waits (bounded) until every protocol/client in it is
 * connected, so the first fops on it do not meet bricks that are still connecting. Bricks
 * that stay down are left to the translators, as on a mount.
 */
export async function prepareGraph(text: string, name: string, opts: PrepareOptions = {}): Promise<Graph> {
  const graph = graphFromVolfile(text, name, opts.inodes);
  try {
    await graph.init();
  } catch (e) {
    await graph.fini().catch(() => undefined);
    throw e;
  }
  const clients = [...graph.byName.values()].filter((x): x is ProtocolClient => x instanceof ProtocolClient);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  while (!clients.every((c) => c.isUp) && Date.now() < deadline && !opts.cancelled?.()) await sleep(50);
  const down = clients.filter((c) => !c.isUp);
  if (down.length > 0) log.warn(`${name}: ${down.length} of ${clients.length} bricks not connected yet (${down.map((c) => c.name).join(', ')}); switching anyway`);
  return graph;
}

const POLL_WAIT_S = 60;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

export interface VolfileWatcherOptions {
  /** Longest wait for every brick connection of a new graph. */
  readyTimeoutMs?: number;
  /**
   * How often the server is asked for its health while a poll waits on it: a host that
   * vanishes without closing the connection (power off, cut link) is found within this
   * plus healthTimeoutMs, not only when the poll times out.
   */
  healthEveryMs?: number;
  healthTimeoutMs?: number;
}

/**
 * Follows a volume's volfile on a management daemon with a long poll and switches the mount
 * to each new version (the push of glusterd, as a GET that answers late). When that daemon
 * cannot be reached (or fails with a 5xx) the watcher moves to the next of its servers at
 * once and stays there (GlusterFS's backup-volfile-servers: no fail back); only when none
 * answers does it wait, with backoff, and go round again. Every member of a pool serves the
 * same volfile at the same version, so a poll continues on another daemon where it left off.
 */
export class VolfileWatcher {
  private readonly abort = new AbortController();
  private stopped = false;
  private running?: Promise<void>;
  private version: number;
  /** Index in src.servers of the daemon followed now. */
  private at = 0;
  private readonly readyTimeoutMs: number;
  private readonly healthEveryMs: number;
  private readonly healthTimeoutMs: number;

  constructor(private readonly src: VolfileSource, private readonly active: ActiveGraph, private currentText: string, opts: VolfileWatcherOptions = {}) {
    if (src.servers.length === 0) throw new Error('a volfile watcher needs at least one server');
    this.version = src.version;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
    this.healthEveryMs = opts.healthEveryMs ?? 10_000;
    this.healthTimeoutMs = opts.healthTimeoutMs ?? 5000;
  }

  /** The daemon followed now. */
  get server(): ServerAddr {
    return this.src.servers[this.at]!;
  }

  start(): void {
    this.running ??= this.loop().catch((e: Error) => log.error(`volfile watcher of ${this.what} stopped: ${e.stack ?? e.message}`));
  }

  /** Ends the poll at once; a graph still being prepared is torn down when its init returns. */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  private get what(): string {
    return `volume ${this.src.volume} at ${formatServer(this.server)}`;
  }

  /** One long poll on the current server, given up when the server stops answering health checks. */
  private async poll(): Promise<VolfilePoll> {
    const server = this.server;
    const poll = new AbortController();
    const onStop = (): void => poll.abort();
    this.abort.signal.addEventListener('abort', onStop);
    let silent = false;
    const health = setInterval(() => {
      void mgmtFetch(mgmtUrl(formatServer(server), '/v1/health'), { signal: AbortSignal.any([poll.signal, AbortSignal.timeout(this.healthTimeoutMs)]) })
        .then((res) => res.body?.cancel())
        .catch(() => {
          if (poll.signal.aborted) return;
          silent = true;
          poll.abort();
        });
    }, this.healthEveryMs);
    try {
      return await pollVolfile(server, this.src.volume, this.version, POLL_WAIT_S, poll.signal);
    } catch (e) {
      if (silent) throw new Error(`no answer to a health check within ${this.healthTimeoutMs / 1000} s`);
      throw e;
    } finally {
      clearInterval(health);
      this.abort.signal.removeEventListener('abort', onStop);
    }
  }

  private async loop(): Promise<void> {
    let backoffMs = BACKOFF_MIN_MS;
    /** The last problem reported, so a long outage is logged once, not every retry. */
    let problem = '';
    /** Servers in a row that could not serve: the whole list means wait before going round again. */
    let down = 0;
    const retry = async (kind: string, message: string, level: 'info' | 'warn'): Promise<void> => {
      if (kind !== problem) log[level](`${message}; retrying with backoff (${BACKOFF_MIN_MS / 1000} s up to ${BACKOFF_MAX_MS / 1000} s)`);
      problem = kind;
      await sleep(backoffMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
    };
    /** The current server could not serve: the next one at once, or a wait when every one failed in turn. */
    const serverDown = async (why: string): Promise<void> => {
      const n = this.src.servers.length;
      const was = formatServer(this.server);
      this.at = (this.at + 1) % n;
      if (++down < n) {
        if (problem !== 'down') log.warn(`volfile server ${was} of volume ${this.src.volume} cannot serve (${why}); following it at ${formatServer(this.server)}`);
        return;
      }
      down = 0;
      const list = n > 1 ? `any volfile server of volume ${this.src.volume} (${this.src.servers.map(formatServer).join(', ')}); last: ${was}: ${why}` : `the volfile of volume ${this.src.volume} at ${was}: ${why}`;
      await retry('down', `cannot follow ${list}`, 'info');
    };
    while (!this.stopped) {
      let r: VolfilePoll;
      try {
        r = await this.poll();
      } catch (e) {
        if (this.stopped) break;
        await serverDown((e as Error).message);
        continue;
      }
      if (r.kind === 'error' && r.status >= 500) {
        await serverDown(`answered ${r.status}: ${r.text.trim()}`);
        continue;
      }
      down = 0;
      if (r.kind === 'error') {
        const { status, text } = r;
        if (status === 404) await retry('deleted', `${this.what} does not exist any more; the mount keeps serving with graph ${this.active.graphId}`, 'warn');
        else if (status === 409) await retry('stopped', `${this.what} is stopped; waiting for it to start again`, 'info');
        else await retry(`http-${status}`, `volfile poll of ${this.what} answered ${status}: ${text.trim()}`, 'info');
        continue;
      }
      if (problem) log.info(`following the volfile of ${this.what} again`);
      problem = '';
      backoffMs = BACKOFF_MIN_MS;
      if (r.kind === 'new') await this.apply(r.text, r.version);
    }
  }

  /** Builds, connects and switches to a new volfile; a volfile that fails keeps the old graph. */
  private async apply(text: string, version: number): Promise<void> {
    const before = this.version;
    this.version = Math.max(version, this.version);
    if (version <= before) return;
    if (text === this.currentText) {
      log.info(`volfile version ${version}: client graph unchanged; graph ${this.active.graphId} stays`);
      return;
    }
    let graph: Graph;
    try {
      graph = await prepareGraph(text, `${this.src.volume}.vol (version ${version})`, {
        inodes: this.active.inodes, readyTimeoutMs: this.readyTimeoutMs, cancelled: () => this.stopped,
      });
    } catch (e) {
      log.error(`volfile version ${version} of ${this.what} not used: ${(e as Error).message}; graph ${this.active.graphId} (version ${this.active.version ?? '?'}) stays`);
      return;
    }
    if (this.stopped) {
      await graph.fini().catch(() => undefined);
      return;
    }
    this.currentText = text;
    this.active.switchTo(graph, version);
  }
}
