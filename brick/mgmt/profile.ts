// `volume profile VOL info` and `volume top VOL LIST` (glusterd's brick ops for
// GD_OP_PROFILE_VOLUME): the daemon asks its own bricks' stats sockets (lib/stats-socket.ts)
// and, for bricks of other hosts of the pool, those hosts' daemons (with `local=true`, so
// that each asks only its own bricks and a request never travels further). `profile
// start|stop` are the two diagnostics volume options, set by the CLI through the options API
// like any other (protocol/server declares them).
import { formatBrick } from '../../lib/mgmt/args.js';
import type { ErrorReply } from '../../lib/mgmt/api.js';
import { TOP_LISTS, type BrickProfileReply, type BrickTopReply, type ProfileInfoReply, type TopList, type TopReply } from '../../lib/mgmt/profile.js';
import { UsageError } from '../../lib/errors.js';
import { queryStats, statsSocket } from '../../lib/stats-socket.js';
import { brickPid } from './bricks.js';
import type { MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import { hostPort, type PeerOps } from './peers.js';
import type { BrickDef, VolumeDef } from './store.js';

/** Most entries `top ... list-cnt N` may ask of each brick (what a brick keeps: brick/xlators/protocol/profile.ts). */
export const MAX_TOP_COUNT = 1024;
const PEER_TIMEOUT_MS = 10_000;

/** How to ask: the stats socket path, the API path of the same request on another daemon, the CLI words for messages. */
interface Ask {
  stats: string;
  api: string;
  words: string;
  /** Only this host's bricks (a request from another daemon of the pool). */
  local: boolean;
}

type Row<T> = { brick: string; error?: string } & Partial<T>;

/** This host's brick b, from its stats socket. */
async function askOwn<T>(ctx: MgmtContext, vol: VolumeDef, b: BrickDef, ask: Ask): Promise<Row<T>> {
  const brick = formatBrick(b, false);
  const pid = brickPid(ctx.brickProc(vol, b));
  if (pid === null) return { brick, error: `the brick is not running (\`brickfs volume start ${vol.name} force\` starts it)` } as Row<T>;
  try {
    return { brick, ...(await queryStats<T>(statsSocket('brick', pid), ask.stats)) } as Row<T>;
  } catch (e) {
    return { brick, error: `its stats socket did not answer: ${(e as Error).message}` } as Row<T>;
  }
}

/** The rows of the bricks another daemon of the pool owns, from that daemon; an error row each when it cannot answer. */
async function askPeer<T>(peers: PeerOps, uuid: string | undefined, bricks: BrickDef[], ask: Ask): Promise<Row<T>[]> {
  const rows = (error: string): Row<T>[] => bricks.map((b) => ({ brick: formatBrick(b, false), error }) as Row<T>);
  const elsewhere = `on host ${bricks[0]!.host}: ask its daemon (\`brickfs --server ${bricks[0]!.host} ${ask.words}\`)`;
  if (ask.local || uuid === undefined) return rows(elsewhere);
  const m = await peers.member(uuid).catch(() => undefined);
  if (!m) return rows(`${elsewhere}; its owner is not a member of this daemon's pool`);
  if (!m.connected) return rows(`host ${m.owner.hostname}: its daemon is not connected (\`brickfs pool list\`)`);
  const where = hostPort(m.owner.hostname, m.owner.port);
  try {
    const res = await peers.askPeer(where, ask.api, { timeoutMs: PEER_TIMEOUT_MS });
    const body = await res.json() as { bricks?: Row<T>[] } & Partial<ErrorReply>;
    if (!res.ok) return rows(`host ${m.owner.hostname}: ${body.error ?? `HTTP ${res.status}`}`);
    const byBrick = new Map((body.bricks ?? []).map((r) => [r.brick, r]));
    return bricks.map((b) => byBrick.get(formatBrick(b, false)) ?? ({ brick: formatBrick(b, false), error: `host ${m.owner.hostname} did not answer for this brick` } as Row<T>));
  } catch (e) {
    return rows(`host ${m.owner.hostname}: cannot reach its daemon at ${where} (${(e as Error).message})`);
  }
}

/** Asks every brick of a started volume, in volume order; a brick that cannot answer carries an error instead. */
async function askBricks<T>(ctx: MgmtContext, peers: PeerOps, vol: VolumeDef, ask: Ask): Promise<Row<T>[]> {
  if (vol.status !== 'started') throw new MgmtError(409, `volume ${vol.name} is not started; start it with \`brickfs volume start ${vol.name}\``);
  const mine = await Promise.all(vol.bricks.map((b) => ctx.isMine(b)));
  const out: (Row<T> | undefined)[] = await Promise.all(vol.bricks.map((b, i) => (mine[i] ? askOwn<T>(ctx, vol, b, ask) : undefined)));
  // One request per other daemon: its answer ends the profile interval of each of its bricks once.
  const byPeer = new Map<string | undefined, number[]>();
  vol.bricks.forEach((b, i) => {
    if (mine[i]) return;
    const list = byPeer.get(b.peer) ?? [];
    list.push(i);
    byPeer.set(b.peer, list);
  });
  await Promise.all([...byPeer].map(async ([uuid, idx]) => {
    if (uuid === undefined) {
      // Stored before pools: each such brick on its own host.
      await Promise.all(idx.map(async (i) => { out[i] = (await askPeer<T>(peers, undefined, [vol.bricks[i]!], ask))[0]; }));
      return;
    }
    const rows = await askPeer<T>(peers, uuid, idx.map((i) => vol.bricks[i]!), ask);
    idx.forEach((i, k) => { out[i] = rows[k]; });
  }));
  return out as Row<T>[];
}

/** Each brick's cumulative and interval profile; ends each brick's interval. 409 when no brick profiles. */
export async function profileInfo(ctx: MgmtContext, peers: PeerOps, name: string, local: boolean): Promise<ProfileInfoReply> {
  const vol = ctx.need(name);
  const enc = encodeURIComponent(name);
  const bricks = await askBricks<BrickProfileReply>(ctx, peers, vol, {
    stats: '/profile', api: `/v1/volumes/${enc}/profile?local=true`, words: `volume profile ${name} info`, local,
  });
  if (!local && bricks.every((b) => b.error === undefined && !b.enabled)) {
    throw new MgmtError(409, `profile on volume ${name} is not started; start it with \`brickfs volume profile ${name} start\``);
  }
  return { name, bricks };
}

/** The most opened, read or written files, or listed directories, of each brick. */
export async function topList(ctx: MgmtContext, peers: PeerOps, name: string, list: string | null, count: string | null, local: boolean): Promise<TopReply> {
  if (!TOP_LISTS.includes(list as TopList)) throw new UsageError(`list must be one of ${TOP_LISTS.join(', ')} (GET /v1/volumes/VOL/top?list=read&count=10)`);
  const n = count === null ? 100 : Number(count);
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOP_COUNT) throw new UsageError(`count must be a whole number from 1 to ${MAX_TOP_COUNT}`);
  const vol = ctx.need(name);
  const q = `list=${list}&count=${n}`;
  const bricks = await askBricks<BrickTopReply>(ctx, peers, vol, {
    stats: `/top?${q}`, api: `/v1/volumes/${encodeURIComponent(name)}/top?${q}&local=true`, words: `volume top ${name} ${list}`, local,
  });
  return { name, list: list as TopList, bricks };
}

/** The `local` query parameter of the profile and top routes: true or false, absent is false. */
export function localParam(v: string | null): boolean {
  if (v !== null && v !== 'true' && v !== 'false') throw new UsageError('local must be true or false');
  return v === 'true';
}
