// Live progress for long work (`volume heal VOL info --watch`; made for `rebalance status
// --watch` too): on a terminal the report is redrawn in place (log-update); elsewhere (a
// pipe, a file, CI) each report that differs from the last is printed as plain lines under a
// `== TIME` line, so a log of it reads top to bottom and no escape codes end up in it.

/** One look at the work: the text to show, and whether there is nothing left to watch. */
export interface Frame {
  text: string;
  done: boolean;
}

export interface WatchOptions {
  /** Time between two looks. */
  intervalMs: number;
  /** Where to draw; process.stdout by default. */
  stream?: NodeJS.WriteStream;
  /** Clock for the `== TIME` lines (tests). */
  now?: () => Date;
}

/**
 * A redrawable area on stream when it is a terminal with a size (a pseudo-terminal nobody
 * sized, rows 0, would show log-update nothing at all), else undefined. log-update is loaded
 * only then: every CLI command imports this module, and loading it costs a third of a second.
 */
async function liveArea(stream: NodeJS.WriteStream): Promise<ReturnType<typeof import('log-update').createLogUpdate> | undefined> {
  if (!stream.isTTY || !(stream.rows > 0)) return undefined;
  const { createLogUpdate } = await import('log-update');
  return createLogUpdate(stream);
}

/**
 * Calls look() every intervalMs and shows its text until a frame says done, SIGINT or
 * SIGTERM arrives (the last frame stays on the screen), or look() throws (thrown on).
 */
export async function watch(look: () => Promise<Frame>, opts: WatchOptions): Promise<void> {
  const stream = opts.stream ?? process.stdout;
  const now = opts.now ?? ((): Date => new Date());
  const live = await liveArea(stream);
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let last: string | undefined;
  try {
    while (!stopped) {
      const f = await look();
      const text = f.text.replace(/\n+$/, '');
      if (live) live(`${text}\n\n${f.done ? 'nothing left to watch' : `every ${opts.intervalMs / 1000} s; Ctrl-C stops watching`} (${now().toLocaleTimeString()})`);
      else if (text !== last) stream.write(`== ${now().toISOString()}\n${text}\n`);
      last = text;
      if (f.done) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, opts.intervalMs);
      });
    }
  } finally {
    live?.done();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

/** A one-line status of long work, with notes that stay (warnings). */
export interface StatusLine {
  /** Shows line as the current status: in place of the last on a terminal, as a new line elsewhere. */
  update(line: string): void;
  /** A line that stays above the status. */
  note(line: string): void;
  /** Leaves the last status on the screen; later output goes below it. */
  done(): void;
}

/** A StatusLine on stream (`bench` shows each step of a run on stderr so). */
export async function statusLine(stream: NodeJS.WriteStream = process.stderr): Promise<StatusLine> {
  const live = await liveArea(stream);
  if (!live) {
    return { update: (line) => { stream.write(`${line}\n`); }, note: (line) => { stream.write(`${line}\n`); }, done: () => undefined };
  }
  return { update: (line) => live(line), note: (line) => live.persist(line), done: () => live.done() };
}
