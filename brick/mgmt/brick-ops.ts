// Brick operations (glusterd-brick-ops): the checks every new brick passes, add-brick, and
// remove-brick start/status/commit/stop with its drain (a rebalance run of purpose
// remove-brick), plus the layout weights both recompute from the bricks' free space.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import type {
  AddBrickReply, AddBrickRequest, BrickCheckReply, BrickCheckRequest, BrickInfo, ErrorReply, RebalanceStatusReply, RemoveBrickEndReply, RemoveBrickRequest,
  RemoveBrickStartReply, RemoveBrickStatusReply, RemovingInfo,
} from '../../lib/mgmt/api.js';
import {
  formatBrick, parseAddBrickArgs, parseBrickList, parseBrickSpec, parseThrottle, type BrickSpec,
} from '../../lib/mgmt/args.js';
import { allocatePorts, BrickStartError, portFree, stopBrick } from './bricks.js';
import { removingBricks, removingWords, shapeWords, type MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { isThisHost } from './hosts.js';
import { hostPort, isLoopback, type BrickOwner, type PeerOps } from './peers.js';
import { volumeIdAt } from '../xlators/storage/volume-id.js';
import type { OwnBricks } from './own-bricks.js';
import { drainProgress } from '../../lib/mgmt/rebalance.js';
import { REBALANCE_STOP_MS, RebalanceStartError, type RebalanceOps } from './rebalance.js';
import { toVolumeInfo, writeFileAtomic, type BrickDef, type VolumeDef } from './store.js';
import { brickVolfile, distributeUnits, setWidth, slotOf, volumeType, type DistributeUnit } from './volgen.js';

const log = new Logger('mgmt');

const GIB = 1024 ** 3;

/**
 * Layout weights from the free bytes of each distribute subvolume: free GiB rounded (at
 * least 1) when the largest free space among the subvolumes that keep a range is more than
 * 10% above the smallest; undefined (equal ranges) otherwise. Drained subvolumes (a
 * remove-brick) get a weight too, one per subvolume, but do not take part in the decision.
 */
export function weightsFromFree(freeBytes: readonly number[], drained: readonly boolean[] = []): number[] | undefined {
  const kept = freeBytes.filter((_, i) => !drained[i]);
  if (kept.length < 2) return undefined;
  if (Math.max(...kept) <= 1.1 * Math.min(...kept)) return undefined;
  const w = freeBytes.map((f) => Math.max(1, Math.round(f / GIB)));
  const keptW = w.filter((_, i) => !drained[i]);
  return keptW.every((x) => x === keptW[0]) ? undefined : w;
}

/** The canonical form of a path that may not exist yet: realpath of its deepest existing ancestor. */
function canonical(p: string): string {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...tail);
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return p;
      tail.unshift(path.basename(head));
      head = parent;
    }
  }
}

/** True when inner is outer or lies below it. */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

/** The deepest ancestor of p (p itself included) that exists. */
function existingAncestor(p: string): string {
  let cur = path.resolve(p);
  while (!fs.existsSync(cur)) {
    const parent = path.dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  return cur;
}

/** Directories that are never bricks: the root itself, and these with all below them. */
const FORBIDDEN = ['/', '/etc', '/proc', '/sys', '/dev'];
/** Free bytes a new brick's filesystem must have at least. */
const MIN_FREE_BYTES = 16 * 1024 * 1024;
/** How long a daemon waits for another to check its bricks. */
const BRICK_CHECK_TIMEOUT_MS = 15_000;

/** Adds and removes the bricks of volumes; the drains run through the rebalance operations. */
export class BrickOps {
  constructor(private readonly ctx: MgmtContext, private readonly rebalance: RebalanceOps, private readonly peers: PeerOps, private readonly own: OwnBricks) {}

  /**
   * The checks a new brick passes on the host that owns it (this daemon's), writing
   * nothing: a brick of this host; not /, nor in /etc, /proc, /sys, /dev; not twice; not
   * in, around or equal to another brick of this host (unless force); a directory, or a
   * path whose deepest existing ancestor is a writable directory (it is made later); empty
   * (unless force); free space on its filesystem; a free port. Assigns the ports. For
   * add-brick, `volume` is the volume that grows: a directory that is already one of its
   * bricks is refused even with force (one directory cannot be two bricks of a volume).
   */
  async checkOwn(req: BrickCheckRequest): Promise<BrickCheckReply> {
    if (!Array.isArray(req?.bricks) || !req.bricks.every((b) => typeof b === 'string') || (req.volume !== undefined && typeof req.volume !== 'string')) {
      throw new UsageError('expected {"bricks": ["HOST:/abs/path", ...], "force"?: bool, "volume"?: VOL}');
    }
    const force = req.force === true;
    const specs = req.bricks.map(parseBrickSpec);
    // What the daemon asking wrote last, even if our watch has not told us yet.
    await this.ctx.store.sync();
    const into = req.volume === undefined ? undefined : this.ctx.store.get(req.volume);
    for (const s of specs) {
      if (!(await this.peers.ownerOf(s.host)).self) {
        throw new MgmtError(409, `brick ${formatBrick(s, false)}: host ${s.host} is not this host (${this.peers.self.hostname}); its own daemon checks it`);
      }
    }
    const canon = specs.map((s) => canonical(s.path));
    for (let i = 0; i < specs.length; i++) {
      const label = formatBrick(specs[i]!, false);
      const bad = FORBIDDEN.find((f) => canon[i] === f || (f !== '/' && within(canon[i]!, f)));
      if (bad !== undefined) {
        throw new MgmtError(409, `brick ${label}: ${bad === '/' ? 'the root directory' : `${bad} and what is under it`} cannot be a brick; give a directory of its own, such as /srv/brick1`);
      }
      for (let j = 0; j < specs.length; j++) {
        if (i === j) continue;
        if (canon[i] === canon[j]) {
          throw new UsageError(`bricks ${label} and ${formatBrick(specs[j]!, false)} are the same directory`);
        }
        if (!force && within(canon[i]!, canon[j]!)) {
          throw new MgmtError(409, `brick ${label} is inside brick ${formatBrick(specs[j]!, false)}; use separate directories, or add --force to use it anyway`);
        }
      }
    }
    const usedPorts = new Set<number>();
    for (const v of this.ctx.store.list()) {
      for (const b of v.bricks) {
        // Ports are kept apart pool-wide: cheap, and several daemons may share one machine.
        usedPorts.add(b.port);
        if (!(await this.ctx.isMine(b))) continue;
        if (v.name === into?.name) {
          const i = canon.indexOf(canonical(b.path));
          if (i >= 0) throw new MgmtError(409, `brick ${formatBrick(specs[i]!, false)} is already a brick of volume ${v.name}; give another directory`);
        }
        if (force) continue;
        const other = canonical(b.path);
        const label = formatBrick(b, false);
        for (let i = 0; i < specs.length; i++) {
          const mine = formatBrick(specs[i]!, false);
          if (canon[i] === other) throw new MgmtError(409, `brick ${mine} is already a brick of volume ${v.name}; use another directory, or add --force to use it anyway`);
          if (within(canon[i]!, other)) throw new MgmtError(409, `brick ${mine} is inside brick ${label} of volume ${v.name}; use another directory, or add --force to use it anyway`);
          if (within(other, canon[i]!)) throw new MgmtError(409, `brick ${mine} contains brick ${label} of volume ${v.name}; use another directory, or add --force to use it anyway`);
        }
      }
    }
    const warnings: string[] = [];
    const rootDev = fs.statSync('/').dev;
    const replaces: Array<string | undefined> = [];
    for (const s of specs) {
      const label = formatBrick(s, false);
      const st = fs.statSync(s.path, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) throw new MgmtError(409, `brick ${label}: ${s.path} exists and is not a directory; give a directory`);
      if (st && !force && fs.readdirSync(s.path).length > 0) {
        throw new MgmtError(409, `brick ${label}: directory ${s.path} is not empty; use an empty directory, or add --force to use it with its content`);
      }
      const base = existingAncestor(s.path);
      if (!st) {
        const bst = fs.statSync(base);
        if (!bst.isDirectory()) throw new MgmtError(409, `brick ${label}: cannot create directory ${s.path}: ${base} is not a directory`);
        try {
          fs.accessSync(base, fs.constants.W_OK | fs.constants.X_OK);
        } catch {
          throw new MgmtError(409, `brick ${label}: cannot create directory ${s.path}: ${base} is not writable by the daemon`);
        }
      }
      const sfs = fs.statfsSync(base);
      const free = Number(sfs.bavail) * Number(sfs.bsize);
      if (free < MIN_FREE_BYTES) {
        throw new MgmtError(409, `brick ${label}: the filesystem of ${s.path} has ${free} bytes free (at least ${MIN_FREE_BYTES} needed); free some space or use another filesystem`);
      }
      if (fs.statSync(base).dev === rootDev) {
        warnings.push(`brick ${label} is on the root filesystem; a full brick will fill the root filesystem too`);
      }
      const id = st ? volumeIdAt(s.path) : undefined;
      if (id !== undefined && id !== into?.id && !force) {
        throw new MgmtError(409, `brick ${label}: directory ${s.path} is a brick of another volume (volume id ${id}); use an empty directory, or add --force to take it over`);
      }
      replaces.push(id !== undefined && id !== into?.id ? id : undefined);
    }
    // Explicit ports first (they must be free), then assign the rest from the base upward.
    for (const s of specs) {
      if (s.port === undefined) continue;
      if (usedPorts.has(s.port)) throw new MgmtError(409, `brick ${formatBrick(s)}: port ${s.port} is already used by another brick; choose another port or leave it out`);
      if (!(await portFree(s.port))) throw new MgmtError(409, `brick ${formatBrick(s)}: port ${s.port} is in use by another process; choose another port or leave it out`);
      usedPorts.add(s.port);
    }
    let auto: number[];
    try {
      auto = await allocatePorts(specs.filter((s) => s.port === undefined).length, this.ctx.opts.brickPortBase, usedPorts);
    } catch (e) {
      throw new MgmtError(409, (e as Error).message);
    }
    return {
      bricks: specs.map((s, i) => ({ host: s.host, path: s.path, port: s.port ?? auto.shift()!, ...(replaces[i] === undefined ? {} : { replaces: replaces[i] }) })),
      warnings,
    };
  }

  /** The owner's answer to a brick check, through its management API. */
  private async askOwner(owner: BrickOwner, req: BrickCheckRequest): Promise<BrickCheckReply> {
    const where = hostPort(owner.hostname, owner.port);
    let res: Response;
    try {
      res = await this.peers.askPeer(where, '/v1/bricks/check', { method: 'POST', body: req, timeoutMs: BRICK_CHECK_TIMEOUT_MS });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      const why = err.name === 'TimeoutError' ? `no answer within ${BRICK_CHECK_TIMEOUT_MS / 1000} s` : (err.cause?.code ?? err.message);
      throw new MgmtError(502, `host ${owner.hostname}: cannot reach its management daemon at ${where} to check its bricks (${why}); start it there (\`brickfs pool list\` shows who is connected) and try again`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch { /* below */ }
    if (!res.ok) {
      const msg = (body as Partial<ErrorReply> | undefined)?.error ?? `HTTP ${res.status}: ${text.slice(0, 200)}`;
      throw new MgmtError(res.status === 400 ? 400 : 409, `host ${owner.hostname}: ${msg}`);
    }
    const reply = body as BrickCheckReply | undefined;
    if (!reply || !Array.isArray(reply.bricks) || reply.bricks.length !== req.bricks.length) {
      throw new MgmtError(502, `host ${owner.hostname}: the daemon at ${where} gave no brick check answer (an older brickfs?); upgrade it first`);
    }
    return reply;
  }

  /**
   * Checks new bricks on the hosts that own them, all before anything is written (a refusal
   * on any host leaves every host as it was), then makes this host's directories. Bricks
   * of a volume spanning hosts are named by their owners' addresses, never a loopback name,
   * so the volfile means the same on every host. `into` is the volume that grows (add-brick).
   */
  async prepareBricks(specs: readonly BrickSpec[], force: boolean, into?: VolumeDef): Promise<{ bricks: Array<BrickInfo & { peer: string; replaces?: string }>; warnings: string[] }> {
    const owners = await Promise.all(specs.map((s) => this.peers.ownerOf(s.host)));
    const groups = new Map<string, { owner: BrickOwner; idx: number[] }>();
    owners.forEach((o, i) => {
      const g = groups.get(o.uuid) ?? { owner: o, idx: [] };
      g.idx.push(i);
      groups.set(o.uuid, g);
    });
    const list = [...groups.values()];
    const results = await Promise.allSettled(list.map((g) => {
      const req: BrickCheckRequest = { bricks: g.idx.map((i) => formatBrick(specs[i]!)), force, ...(into ? { volume: into.name } : {}) };
      return g.owner.self ? this.checkOwn(req) : this.askOwner(g.owner, req);
    }));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failed.length === 1) throw failed[0]!;
    if (failed.length > 1) {
      const usage = failed.every((e) => e instanceof UsageError || (e instanceof MgmtError && e.status === 400));
      const msg = `${failed.length} hosts refused bricks; nothing was changed:\n${failed.map((e) => e.message).join('\n')}`;
      throw usage ? new UsageError(msg) : new MgmtError(409, msg);
    }
    const self = this.peers.selfOwner;
    const spans = groups.size > 1 || (into !== undefined && into.bricks.some((b) => b.peer !== undefined && b.peer !== self.uuid));
    const out: Array<BrickInfo & { peer: string; replaces?: string }> = new Array(specs.length);
    const warnings: string[] = [];
    list.forEach((g, k) => {
      const reply = (results[k] as PromiseFulfilledResult<BrickCheckReply>).value;
      warnings.push(...reply.warnings.map((w) => (g.owner.self ? w : `host ${g.owner.hostname}: ${w}`)));
      g.idx.forEach((i, n) => {
        const r = reply.bricks[n]!;
        const host = g.owner.self ? (spans && isLoopback(specs[i]!.host) ? self.hostname : specs[i]!.host) : g.owner.hostname;
        out[i] = { host, path: specs[i]!.path, port: r.port, peer: g.owner.uuid, ...(r.replaces === undefined ? {} : { replaces: r.replaces }) };
      });
    });
    for (const i of groups.get(self.uuid)?.idx ?? []) {
      const s = specs[i]!;
      try {
        await fsp.mkdir(s.path, { recursive: true });
      } catch (e) {
        throw new MgmtError(409, `brick ${formatBrick(s, false)}: cannot create directory ${s.path}: ${(e as Error).message}`);
      }
    }
    return { bricks: out, warnings };
  }

  /**
   * When a volume spans hosts, this host's bricks named by a loopback name get its address
   * (and an owner, if stored before pools), so every host reads the same volfile.
   */
  async pinHosts(vol: VolumeDef): Promise<void> {
    const self = this.peers.selfOwner;
    const owners = new Set<string>();
    for (const b of vol.bricks) owners.add(b.peer ?? ((await this.ctx.isMine(b)) ? self.uuid : `host:${b.host}`));
    if (owners.size < 2) return;
    for (const b of vol.bricks) {
      if (!(await this.ctx.isMine(b))) continue;
      b.peer = self.uuid;
      if (isLoopback(b.host)) b.host = self.hostname;
    }
  }

  /** Gives the bricks ids unique across every volume. */
  withIds<T extends BrickInfo>(bricks: readonly T[]): Array<T & { id: string }> {
    const ids = new Set<string>();
    return bricks.map((b) => {
      const id = this.ctx.store.uniqueBrickId(b.host, b.path, ids);
      ids.add(id);
      return { ...b, id };
    });
  }

  /** Free bytes per distribute subvolume (a set has the free space of its fullest brick); undefined if a brick cannot be measured. */
  private async freePerUnit(vol: VolumeDef, units: readonly DistributeUnit[]): Promise<number[] | undefined> {
    // Only this host's bricks can be measured here; a volume spanning hosts keeps equal ranges.
    if ((await this.ctx.myBricks(vol)).length !== vol.bricks.length) return undefined;
    try {
      return await Promise.all(units.map(async (u) => {
        const free = await Promise.all(u.bricks.map(async (i) => {
          const st = await fsp.statfs(vol.bricks[i]!.path);
          return Number(st.bavail) * Number(st.bsize);
        }));
        return Math.min(...free);
      }));
    } catch (e) {
      log.warn(`volume ${vol.name}: cannot measure free space of its bricks (${(e as Error).message}); layouts stay equal`);
      return undefined;
    }
  }

  /** Measures free space and sets (or clears) vol.layoutWeights; drained units do not count. */
  private async measureWeights(vol: VolumeDef): Promise<void> {
    const units = distributeUnits(vol);
    const gone = new Set(vol.removing?.bricks ?? []);
    const drained = units.map((u) => u.bricks.every((i) => gone.has(vol.bricks[i]!.id)));
    const free = units.length > 1 ? await this.freePerUnit(vol, units) : undefined;
    const w = free && weightsFromFree(free, drained);
    if (w) vol.layoutWeights = w;
    else delete vol.layoutWeights;
  }

  /** Gives every brick its slot explicitly (volumes stored before slots use the index). */
  private static pinSlots(vol: VolumeDef): void {
    vol.bricks.forEach((b, i) => { b.slot = slotOf(b, i); });
  }

  private removingInfo(vol: VolumeDef): RemovingInfo {
    return toVolumeInfo(vol).removing ?? { bricks: [], startedAt: '' };
  }

  /** Adds bricks (whole replica/stripe sets) to a volume; starts them first when the volume is started. */
  addBrick(name: string, req: AddBrickRequest): Promise<AddBrickReply> {
    return this.ctx.lock.run(async () => {
      if (!Array.isArray(req?.bricks) || !req.bricks.every((b) => typeof b === 'string')) {
        throw new UsageError('expected {"bricks": ["HOST:/abs/path", ...], "replica"?: N, "force"?: bool}');
      }
      const vol = this.ctx.need(name);
      const parsed = parseAddBrickArgs(name, [...(req.replica !== undefined ? ['replica', String(req.replica)] : []), ...req.bricks], req.force === true);
      const width = setWidth(vol);
      const r = vol.replicaCount ?? 1;
      if (parsed.replica !== undefined && parsed.replica !== r) {
        throw new MgmtError(501,
          `changing the replica count with add-brick is not supported yet; volume ${name} has ${r === 1 ? 'no replicas' : `replica ${r}`}: ` +
          `add bricks in multiples of ${width}${r > 1 ? ` (say "replica ${r}" or nothing)` : ' (without "replica N")'}`);
      }
      if (parsed.bricks.length % width !== 0) {
        throw new UsageError(
          `volume ${name} (${shapeWords(vol)}) grows by whole sets of ${width} bricks: give a multiple of ${width}, got ${parsed.bricks.length}; ` +
          `each ${width} consecutive new bricks form one set; for example: brickfs volume add-brick ${name} ` +
          Array.from({ length: width }, (_, i) => `localhost:/srv/new${i + 1}`).join(' '));
      }
      await this.rebalance.refuseWhileBusy(vol, 'add bricks');
      const prepared = await this.prepareBricks(parsed.bricks.map(parseBrickSpec), parsed.force === true, vol);
      const next = structuredClone(vol);
      BrickOps.pinSlots(next);
      let slot = Math.max(next.nextSlot ?? 0, ...next.bricks.map((b) => b.slot! + 1));
      const added: BrickDef[] = this.withIds(prepared.bricks).map((b) => ({ ...b, slot: slot++ }));
      next.bricks.push(...added);
      next.type = volumeType(next);
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      await this.pinHosts(next);
      const self = this.peers.self.uuid;
      const mineAdded = added.filter((b) => b.peer === self);
      const theirs = added.filter((b) => b.peer !== self);
      const p = this.ctx.store.paths;
      for (const b of mineAdded) await writeFileAtomic(p.brickVolfile(name, b), brickVolfile(next, b), 0o600);
      const started = next.status === 'started';
      const undo = async (): Promise<void> => {
        if (started) await this.own.exclusive(() => Promise.allSettled(mineAdded.map((b) => stopBrick(this.ctx.brickProc(next, b)))));
        for (const b of mineAdded) await fsp.rm(p.brickVolfile(name, b), { force: true });
      };
      if (started) {
        const results = await this.own.exclusive(() => Promise.allSettled(mineAdded.map((b) => this.own.ensure(next, b))));
        const failed = results.flatMap((res) => (res.status === 'rejected' ? [res.reason as Error] : []));
        if (failed.length > 0) {
          await undo();
          const msgs = failed.map((e) => (e instanceof BrickStartError ? e.message : `unexpected error: ${e.message}`));
          throw new MgmtError(500, `volume ${name}: ${failed.length} of ${added.length} new brick(s) failed to start; the volume is unchanged:\n${msgs.join('\n')}`);
        }
      }
      try {
        await this.ctx.writeVolfiles(next);
        await this.ctx.store.put(next);
      } catch (e) {
        await undo();
        await this.ctx.writeVolfiles(vol).catch(() => undefined);
        throw e;
      }
      if (started && theirs.length > 0) {
        // The other hosts start their new bricks when they see the definition; wait for their word.
        const failed = await this.own.waitForOwners(next, theirs, this.ctx.store.revisionOf(name), true);
        if (failed.length > 0) {
          const back = structuredClone(vol);
          back.version = next.version + 1;
          back.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
          await this.ctx.store.put(back).catch((e: Error) => failed.push(`and the volume could not be put back: ${e.message}`));
          await undo();
          await this.ctx.writeVolfiles(back).catch(() => undefined);
          this.ctx.events.emit('changed', name);
          throw new MgmtError(500, `volume ${name}: ${failed.length} of ${added.length} new brick(s) failed to start; the volume has its bricks from before again:\n${failed.join('\n')}`);
        }
      }
      log.info(`volume ${name}: added ${added.length} brick(s) (version ${next.version}, layout epoch ${next.layoutEpoch})`);
      this.ctx.events.emit('changed', name);
      return { volume: toVolumeInfo(next), added: added.map(({ host, path: bp, port }) => ({ host, path: bp, port })), warnings: prepared.warnings };
    });
  }

  /** Indices of the named bricks in the volume; a brick not in it is a usage error. */
  private async findBricks(vol: VolumeDef, words: unknown): Promise<number[]> {
    if (!Array.isArray(words) || !words.every((b) => typeof b === 'string')) {
      throw new UsageError('expected {"bricks": ["HOST:/abs/path", ...]}');
    }
    if (words.length === 0) throw new UsageError('no bricks given; name the bricks to remove as `brickfs volume info` lists them');
    const specs = parseBrickList(words as string[]).map(parseBrickSpec);
    const out: number[] = [];
    for (const s of specs) {
      const byPath = (b: BrickDef): boolean => b.path === s.path || canonical(b.path) === canonical(s.path);
      let i = -1;
      for (let k = 0; k < vol.bricks.length && i < 0; k++) {
        const b = vol.bricks[k]!;
        if (byPath(b) && (b.host === s.host || ((await isThisHost(s.host)) && (await isThisHost(b.host))))) i = k;
      }
      if (i < 0) {
        throw new UsageError(`${formatBrick(s, false)} is not a brick of volume ${vol.name}; \`brickfs volume info ${vol.name}\` lists its bricks`);
      }
      if (s.port !== undefined && s.port !== vol.bricks[i]!.port) {
        throw new UsageError(`brick ${formatBrick(s, false)} of volume ${vol.name} listens on port ${vol.bricks[i]!.port}, not ${s.port}; leave the port out`);
      }
      out.push(i);
    }
    return out;
  }

  /** The distribute subvolumes the bricks make up; bricks that are part of a set only are a usage error. */
  private wholeUnits(vol: VolumeDef, indices: readonly number[]): DistributeUnit[] {
    const chosen = new Set(indices);
    const units = distributeUnits(vol).filter((u) => u.bricks.some((i) => chosen.has(i)));
    for (const u of units) {
      const missing = u.bricks.filter((i) => !chosen.has(i));
      if (missing.length > 0) {
        const kind = vol.replicaCount && vol.stripeCount ? 'striped replica set' : vol.replicaCount ? 'replica set' : 'stripe set';
        throw new UsageError(
          `remove whole ${kind}s (${shapeWords(vol)}): ${u.bricks.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ')} ` +
          `form one; add ${missing.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ')} to the bricks to remove, or leave the set in`);
      }
    }
    return units;
  }

  private sameBricks(vol: VolumeDef, indices: readonly number[]): boolean {
    const ids = new Set(indices.map((i) => vol.bricks[i]!.id));
    const removing = vol.removing?.bricks ?? [];
    return ids.size === removing.length && removing.every((id) => ids.has(id));
  }

  /** Marks whole distribute subvolumes for removal and starts draining them (files move to the others). */
  removeBrickStart(name: string, req: RemoveBrickRequest): Promise<RemoveBrickStartReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      const throttle = req?.throttle === undefined ? 'normal' : parseThrottle(String(req.throttle));
      const indices = await this.findBricks(vol, req?.bricks);
      const units = this.wholeUnits(vol, indices);
      const words = indices.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ');
      if (units.length >= distributeUnits(vol).length) {
        throw new MgmtError(409, `removing ${words} would leave volume ${name} without bricks: at least one ${setWidth(vol) > 1 ? 'set' : 'brick'} must stay; ` +
          `to get rid of the whole volume, \`brickfs volume stop ${name}\` and \`brickfs volume delete ${name}\``);
      }
      if (vol.status !== 'started') {
        throw new MgmtError(409, `volume ${name} is not started; the drain moves files through the bricks: start it with \`brickfs volume start ${name}\` first`);
      }
      const drainFailed = (e: unknown): never => {
        if (e instanceof RebalanceStartError) {
          throw new MgmtError(500, `volume ${name}: ${words} are marked for removal, but the drain did not start: ${e.message}\n` +
            `run \`brickfs volume remove-brick ${name} ${words} start\` again once fixed, or \`... stop\` to keep the bricks`);
        }
        throw e;
      };
      if (vol.removing) {
        if (!this.sameBricks(vol, indices)) await this.rebalance.refuseWhileBusy(vol, 'remove other bricks');
        if (await this.rebalance.busy(vol)) {
          throw new MgmtError(409, `the drain of ${words} is already running; \`brickfs volume remove-brick ${name} ${words} status\` shows its progress`);
        }
        // The same removal again: start (resume) its drain.
        const rebalance = await this.rebalance.launch(vol, 'remove-brick', false, throttle).catch(drainFailed);
        return { volume: toVolumeInfo(vol), removing: this.removingInfo(vol), rebalance };
      }
      await this.rebalance.refuseWhileBusy(vol, 'remove bricks');
      const next = structuredClone(vol);
      next.removing = { bricks: indices.map((i) => vol.bricks[i]!.id), startedAt: new Date().toISOString() };
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      await this.ctx.writeVolfiles(next);
      await this.ctx.store.put(next);
      log.info(`volume ${name}: draining ${words} (version ${next.version}, layout epoch ${next.layoutEpoch})`);
      this.ctx.events.emit('changed', name);
      const rebalance = await this.rebalance.launch(next, 'remove-brick', false, throttle).catch(drainFailed);
      return { volume: toVolumeInfo(next), removing: this.removingInfo(next), rebalance };
    });
  }

  /** The remove-brick in progress and its drain; bricks, when given, must be the ones being removed. */
  async removeBrickStatus(name: string, bricks?: string[]): Promise<RemoveBrickStatusReply> {
    const vol = this.ctx.need(name);
    if (!vol.removing) throw new MgmtError(409, `no remove-brick is in progress on volume ${name}; start one with \`brickfs volume remove-brick ${name} BRICK... start\``);
    if (bricks !== undefined && bricks.length > 0 && !this.sameBricks(vol, await this.findBricks(vol, bricks))) {
      throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${removingWords(vol)}; ask about those bricks`);
    }
    const { drain, complete } = await this.drainOf(vol);
    return { volume: name, removing: this.removingInfo(vol), rebalance: drain, complete };
  }

  /**
   * The drain of the remove-brick in progress, and whether it completed with no file left on
   * the bricks (none failed, none skipped: hard links and special files are not moved, and a
   * commit would take them out of the volume) and no process left: what status shows and what
   * commit checks. The last run is the drain only when a remove-brick started it over the
   * current layout (an earlier rebalance, or the drain of a removal since stopped, is not).
   */
  private async drainOf(vol: VolumeDef): Promise<{ drain: RebalanceStatusReply | null; complete: boolean }> {
    const last = await this.rebalance.view(vol);
    const drain = last?.purpose === 'remove-brick' && last.layoutEpoch === (vol.layoutEpoch ?? 0) ? last : null;
    return { drain, complete: !!drain && drain.state === 'completed' && drain.filesFailed === 0 && drain.filesSkipped === 0 && !drain.alive };
  }

  /**
   * Takes drained bricks out of the volume: their processes stop, the definition forgets
   * them; their directories and whatever is left in them stay. With force, also when the
   * drain has not completed, or without a remove-brick start (files on them become unreachable).
   */
  removeBrickCommit(name: string, req: RemoveBrickRequest): Promise<RemoveBrickEndReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      const force = req?.force === true;
      const indices = await this.findBricks(vol, req?.bricks);
      const units = this.wholeUnits(vol, indices);
      const words = indices.map((i) => formatBrick(vol.bricks[i]!, false)).join(' ');
      const next = structuredClone(vol);
      if (!vol.removing) {
        if (!force) {
          throw new MgmtError(409, `no remove-brick of ${words} was started on volume ${name}; drain them first with ` +
            `\`brickfs volume remove-brick ${name} ${words} start\`, or \`... commit force\` to take them out now, leaving their files on them, out of the volume`);
        }
        if (units.length >= distributeUnits(vol).length) {
          throw new MgmtError(409, `removing ${words} would leave volume ${name} without bricks: at least one must stay`);
        }
        if (await this.rebalance.busy(vol)) await this.rebalance.refuseWhileBusy(vol, 'remove bricks');
        // Without a drain the remaining bricks take over the removed ones' hash ranges.
        next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      } else {
        if (!this.sameBricks(vol, indices)) {
          throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${removingWords(vol)}; commit those bricks (or \`... stop\` it first)`);
        }
        const { drain, complete } = await this.drainOf(vol);
        if (!force && !complete) {
          const how = drain ? drainProgress(drain) : 'the drain never started';
          throw new MgmtError(409, `the drain is not complete: ${how}; wait (\`brickfs volume remove-brick ${name} ${words} status\`), ` +
            `or \`brickfs volume remove-brick ${name} ${words} commit force\` to remove the bricks with the files still on them`);
        }
        if (drain?.alive && !(await this.rebalance.stopAll(vol))) {
          throw new MgmtError(500, `the drain of volume ${name} did not stop within ${REBALANCE_STOP_MS / 1000} s; try the commit again`);
        }
        // Recorded stopped by stopAll: the commit keeps it so.
        if (vol.rebalance) next.rebalance = structuredClone(vol.rebalance);
      }
      BrickOps.pinSlots(next);
      next.nextSlot = Math.max(next.nextSlot ?? 0, ...next.bricks.map((b) => b.slot! + 1));
      const gone = new Set(indices);
      const goneUnits = new Set(units.map((u) => u.name));
      const allUnits = distributeUnits(next);
      const removed = next.bricks.filter((_, i) => gone.has(i));
      if (next.layoutWeights) {
        const kept = next.layoutWeights.filter((_, k) => !goneUnits.has(allUnits[k]!.name));
        if (kept.length > 1 && kept.some((w) => w !== kept[0])) next.layoutWeights = kept;
        else delete next.layoutWeights;
      }
      next.bricks = next.bricks.filter((_, i) => !gone.has(i));
      delete next.removing;
      next.type = volumeType(next);
      next.version += 1;
      await this.ctx.writeVolfiles(next);
      await this.ctx.store.put(next);
      log.info(`volume ${name}: removed ${words} (version ${next.version})`);
      // Mounts switch to the new volfile; then the removed bricks stop (on other hosts, by
      // their own daemons when they see the definition without them).
      this.ctx.events.emit('changed', name);
      const warnings: string[] = [];
      const mineRemoved: BrickDef[] = [];
      for (const b of removed) if (await this.ctx.isMine(b)) mineRemoved.push(b);
      const results = await this.own.exclusive(() => Promise.allSettled(mineRemoved.map((b) => stopBrick(this.ctx.brickProc(vol, b)))));
      results.forEach((res, k) => {
        if (res.status === 'rejected') warnings.push(`brick ${formatBrick(mineRemoved[k]!, false)}: ${(res.reason as Error).message}`);
      });
      for (const b of mineRemoved) await fsp.rm(this.ctx.store.paths.brickVolfile(name, b), { force: true });
      return { volume: toVolumeInfo(next), bricks: removed.map(({ host, path: bp, port }) => ({ host, path: bp, port })), warnings };
    });
  }

  /** Cancels a remove-brick: stops its drain and gives the bricks their hash ranges back (moved files stay where they went). */
  removeBrickStop(name: string, req: RemoveBrickRequest): Promise<RemoveBrickEndReply> {
    return this.ctx.lock.run(async () => {
      const vol = this.ctx.need(name);
      const indices = await this.findBricks(vol, req?.bricks);
      if (!vol.removing) throw new MgmtError(409, `no remove-brick is in progress on volume ${name}`);
      if (!this.sameBricks(vol, indices)) {
        throw new MgmtError(409, `the remove-brick in progress on volume ${name} is of ${removingWords(vol)}; stop it with those bricks`);
      }
      if (!(await this.rebalance.stopAll(vol))) {
        throw new MgmtError(500, `the drain of volume ${name} did not stop within ${REBALANCE_STOP_MS / 1000} s; try again`);
      }
      const kept = removingBricks(vol);
      const next = structuredClone(vol);
      delete next.removing;
      next.version += 1;
      next.layoutEpoch = (next.layoutEpoch ?? 0) + 1;
      await this.measureWeights(next);
      await this.ctx.writeVolfiles(next);
      await this.ctx.store.put(next);
      log.info(`volume ${name}: remove-brick stopped; ${kept.length} brick(s) keep their place (version ${next.version})`);
      this.ctx.events.emit('changed', name);
      return {
        volume: toVolumeInfo(next),
        bricks: kept.map(({ host, path: bp, port }) => ({ host, path: bp, port })),
        warnings: [`files already moved off these bricks stay where they went; \`brickfs volume rebalance ${name} start\` spreads files over every brick again`],
      };
    });
  }
}
