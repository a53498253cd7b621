import { FsError } from './errors.js';
import type { FopArgs, FopName, FopReply } from './fops.js';
import type { Frame } from './frame.js';
import type { Xlator } from './xlator.js';

/** One child's outcome of a fanned-out fop. */
export type Settled<T> = { ok: true; value: T; child: number } | { ok: false; error: FsError; child: number };

/**
 * Winds one fop to several children at once and returns every child's outcome, in child
 * order (AFR's call_count, DHT's per-subvolume replies). Never rejects.
 */
export async function fanout<F extends FopName>(
  children: readonly Xlator[],
  fop: F,
  args: FopArgs<F> | ((child: number) => FopArgs<F>),
  frame: Frame,
  which: readonly number[] = children.map((_, i) => i),
): Promise<Array<Settled<FopReply<F>>>> {
  return settleEach(which, (i) => children[i]!.call(fop, typeof args === 'function' ? args(i) : args, frame));
}

/** Runs `op` for each child at once and returns every outcome, in `which` order. Never rejects. */
export async function settleEach<T>(which: readonly number[], op: (child: number) => Promise<T>): Promise<Array<Settled<T>>> {
  return Promise.all(which.map((child) => settle(child, () => op(child))));
}

async function settle<T>(child: number, op: () => Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await op(), child };
  } catch (e) {
    return { ok: false, error: FsError.from(e), child };
  }
}

/** One wind of a fop to one child, for fanouts that send several pieces to the same child. */
export interface FanoutCall<F extends FopName> {
  child: number;
  args: FopArgs<F>;
}

/**
 * Winds one fop per call, all at once, and returns every call's outcome in call order
 * (stripe's per-block pieces, several of which may go to one child). Never rejects.
 */
export async function fanoutCalls<F extends FopName>(
  children: readonly Xlator[],
  fop: F,
  calls: ReadonlyArray<FanoutCall<F>>,
  frame: Frame,
): Promise<Array<Settled<FopReply<F>>>> {
  return Promise.all(calls.map(({ child, args }) => settle(child, () => children[child]!.call(fop, args, frame))));
}

/** The successes of a fanout. */
export function successes<T>(results: Array<Settled<T>>): Array<{ value: T; child: number }> {
  return results.filter((r): r is { ok: true; value: T; child: number } => r.ok);
}

/** The first failure that is not one of the ignored codes, if any. */
export function firstFailure<T>(results: Array<Settled<T>>, ignore: readonly string[] = []): FsError | undefined {
  for (const r of results) if (!r.ok && !ignore.includes(r.error.code)) return r.error;
  return undefined;
}

/**
 * The migrate fop on every child, for translators whose file lives on all their children
 * (replicate, stripe): a move needs every copy held, so any failure fails it (thaw is best
 * effort). Dirty when any copy changed; diverged when any child says so.
 */
export async function migrateOnAll(children: readonly Xlator[], args: FopArgs<'migrate'>, frame: Frame): Promise<FopReply<'migrate'>> {
  return migrateReply(args, await fanout(children, 'migrate', args, frame));
}

/** migrateOnAll's answer from the children's replies. */
export function migrateReply(args: FopArgs<'migrate'>, res: Array<Settled<FopReply<'migrate'>>>, diverged = false): FopReply<'migrate'> {
  if (args.op === 'thaw') return {};
  const failed = firstFailure(res);
  if (failed) throw failed;
  const ok = successes(res);
  const anyDiverged = diverged || ok.some((r) => r.value.diverged === true);
  return { iatt: ok[0]?.value.iatt, dirty: anyDiverged || ok.some((r) => r.value.dirty === true), ...(anyDiverged ? { diverged: true } : {}) };
}
