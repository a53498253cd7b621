// `volume profile VOL info` and `volume top VOL LIST` (glusterd's brick ops for
// GD_OP_PROFILE_VOLUME): the daemon asks each of its own bricks' stats sockets
// (lib/stats-socket.ts). `profile start|stop` are the two diagnostics volume options, set by
// the CLI through the options API like any other (protocol/server declares them).
import { formatBrick } from '../../lib/mgmt/args.js';
import { TOP_LISTS, type BrickProfileReply, type BrickTopReply, type ProfileInfoReply, type TopList, type TopReply } from '../../lib/mgmt/profile.js';
import { UsageError } from '../../lib/errors.js';
import { queryStats, statsSocket } from '../../lib/stats-socket.js';
import { brickPid } from './bricks.js';
import type { MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import type { BrickDef, VolumeDef } from './store.js';

/** Most entries `top ... list-cnt N` may ask of each brick (what a brick keeps: brick/xlators/protocol/profile.ts). */
export const MAX_TOP_COUNT = 1024;

/** Asks one stats path of every brick of a started volume; bricks elsewhere or down carry an error instead. */
async function askBricks<T>(ctx: MgmtContext, vol: VolumeDef, words: string, pathAndQuery: string): Promise<({ brick: string; error?: string } & Partial<T>)[]> {
  if (vol.status !== 'started') throw new MgmtError(409, `volume ${vol.name} is not started; start it with \`brickfs volume start ${vol.name}\``);
  return Promise.all(vol.bricks.map(async (b: BrickDef) => {
    const brick = formatBrick(b, false);
    type Row = { brick: string; error?: string } & Partial<T>;
    if (!(await ctx.isMine(b))) return { brick, error: `on another host: ask its daemon (\`brickfs --server ${b.host} ${words}\`)` } as Row;
    const pid = brickPid(ctx.brickProc(vol, b));
    if (pid === null) return { brick, error: `the brick is not running (\`brickfs volume start ${vol.name} force\` starts it)` } as Row;
    try {
      return { brick, ...(await queryStats<T>(statsSocket('brick', pid), pathAndQuery)) } as Row;
    } catch (e) {
      return { brick, error: `its stats socket did not answer: ${(e as Error).message}` } as Row;
    }
  }));
}

/** Each brick's cumulative and interval profile; ends each brick's interval. 409 when no brick profiles. */
export async function profileInfo(ctx: MgmtContext, name: string): Promise<ProfileInfoReply> {
  const vol = ctx.need(name);
  const bricks = await askBricks<BrickProfileReply>(ctx, vol, `volume profile ${name} info`, '/profile');
  if (bricks.every((b) => b.error === undefined && !b.enabled)) {
    throw new MgmtError(409, `profile on volume ${name} is not started; start it with \`brickfs volume profile ${name} start\``);
  }
  return { name, bricks };
}

/** The most opened, read or written files, or listed directories, of each brick. */
export async function topList(ctx: MgmtContext, name: string, list: string | null, count: string | null): Promise<TopReply> {
  if (!TOP_LISTS.includes(list as TopList)) throw new UsageError(`list must be one of ${TOP_LISTS.join(', ')} (GET /v1/volumes/VOL/top?list=read&count=10)`);
  const n = count === null ? 100 : Number(count);
  if (!Number.isInteger(n) || n < 1 || n > MAX_TOP_COUNT) throw new UsageError(`count must be a whole number from 1 to ${MAX_TOP_COUNT}`);
  const vol = ctx.need(name);
  const bricks = await askBricks<BrickTopReply>(ctx, vol, `volume top ${name} ${list}`, `/top?list=${list}&count=${n}`);
  return { name, list: list as TopList, bricks };
}
