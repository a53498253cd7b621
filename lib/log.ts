/**
 * A named logger per translator instance, over pino. Each process has one level
 * (BRICKFS_LOG, then whatever `Logger.setLevel` is given: `--log-level`, `-o log-level=`),
 * which the volume's diagnostics.brick-log-level or .client-log-level overrides while set.
 * Lines go to stderr, which whoever starts a process points at its log file: JSON lines
 * there, human-readable lines when stderr is a terminal (docs/operations.md, "Logs").
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import tty from 'node:tty';
import { pino, stdTimeFunctions, type DestinationStream, type Logger as Pino } from 'pino';
import type PinoPretty from 'pino-pretty';

// pino-pretty is loaded only when a person reads: most processes log to a file, and every
// brick, mount and CLI run would pay for loading it.
const requireCjs = createRequire(import.meta.url);

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type Level = typeof LOG_LEVELS[number];

const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export function isLogLevel(v: unknown): v is Level {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

/** One record of a JSON log file, as pino writes it here. */
export interface LogRecord {
  level: Level;
  time: string;
  pid: number;
  name?: string;
  msg: string;
  [field: string]: unknown;
}

/** The process's own level (BRICKFS_LOG, --log-level, -o log-level=). */
let processLevel: Level = isLogLevel(process.env.BRICKFS_LOG) ? process.env.BRICKFS_LOG : 'warn';
/** The volume's level for this kind of process (diagnostics.brick-log-level, .client-log-level), which wins while set. */
let volumeLevel: Level | undefined;
let threshold = RANK[processLevel];

/**
 * GlusterFS's log level names (diagnostics.*-log-level take them) and ours, as our levels:
 * TRACE is DEBUG here, CRITICAL and NONE keep errors (a brick never hides why it stops).
 */
const LEVEL_NAMES: Readonly<Record<string, Level>> = {
  debug: 'debug', trace: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', critical: 'error', none: 'error',
};

/** The level a name stands for (either vocabulary, any case), or undefined. */
export function levelOf(name: string): Level | undefined {
  return LEVEL_NAMES[name.toLowerCase()];
}

/** The option pattern of a diagnostics.*-log-level: empty (the process's own level) or a name levelOf knows. */
export const LOG_LEVEL_PATTERN = {
  regex: `^(|${Object.keys(LEVEL_NAMES).map((n) => `${n}|${n.toUpperCase()}`).join('|')})$`,
  what: 'a log level: DEBUG, INFO, WARNING, ERROR (GlusterFS\'s TRACE, CRITICAL, NONE too), or empty for the process\'s own',
} as const;

/** Human-readable lines for a person watching: `[ISO-TIME] LEVEL: [name] message`. */
function prettyLine(colorize: boolean): (json: string) => string {
  const { prettyFactory } = requireCjs('pino-pretty') as typeof PinoPretty;
  return prettyFactory({
    colorize,
    translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
    ignore: 'pid,hostname,name',
    messageFormat: '{if name}[{name}] {end}{msg}',
    singleLine: true,
  });
}

function destination(): DestinationStream {
  // Synchronous writes to fd 2, never a worker-thread transport: a line written just before
  // process.exit (a brick that fails to start) must be in the file, and the fd stays the
  // O_APPEND one its starter opened, which logrotate's copytruncate needs.
  if (!tty.isatty(2)) return pino.destination({ dest: 2, sync: true });
  const pretty = prettyLine(true);
  return { write: (line: string) => { fs.writeSync(2, pretty(line)); } };
}

// The pino level stays at debug: the facade filters, so that a level set after a module made
// its loggers applies to them too (a pino child keeps the level it was made with).
const root: Pino = pino({
  level: 'debug',
  base: { pid: process.pid },
  timestamp: stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
}, destination());

export class Logger {
  private readonly out: Pino;

  constructor(readonly name: string) {
    this.out = root.child({ name });
  }

  /** The process's own level; a volume's level set with setVolumeLevel wins over it. */
  static setLevel(level: Level): void {
    processLevel = level;
    threshold = RANK[volumeLevel ?? processLevel];
  }

  /** The volume's level for this process (undefined: back to its own); says so in the log when it changes. */
  static setVolumeLevel(level: Level | undefined): void {
    if (level === volumeLevel) return;
    volumeLevel = level;
    threshold = RANK[volumeLevel ?? processLevel];
    root.child({ name: 'log' }).info(`log level ${volumeLevel ?? processLevel}${volumeLevel ? ' (the volume\'s)' : ' (this process\'s own)'}`);
  }

  error(msg: string): void { if (threshold >= RANK.error) this.out.error(msg); }
  warn(msg: string): void { if (threshold >= RANK.warn) this.out.warn(msg); }
  info(msg: string): void { if (threshold >= RANK.info) this.out.info(msg); }
  debug(msg: string): void { if (threshold >= RANK.debug) this.out.debug(msg); }

  /** An info line written whatever the level (a mount saying it was mounted), with fields. */
  always(msg: string, fields: Record<string, unknown> = {}): void {
    this.out.info(fields, msg);
  }
}

/** The records of a log file's text; lines that are not JSON records (a crash's stack) are kept as messages. */
export function parseLogLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const r = JSON.parse(line) as LogRecord;
      if (r && typeof r === 'object' && typeof r.msg === 'string') {
        out.push(r);
        continue;
      }
    } catch { /* not a record */ }
    out.push({ level: 'error', time: '', pid: 0, msg: line });
  }
  return out;
}

/** A log file's text as a person reads it (error messages quoting a log's tail). */
export function formatLogText(text: string): string {
  const pretty = prettyLine(false);
  return text.split('\n').filter(Boolean).map((line) => (line.startsWith('{') ? pretty(line).trimEnd() : line)).join('\n');
}

/** A diagnostics.*-log-level value as a translator has it (empty: none) made the process's volume level. */
export function applyVolumeLogLevel(name: string): void {
  Logger.setVolumeLevel(name ? levelOf(name) : undefined);
}
