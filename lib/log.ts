/** A named logger per translator instance; level from BRICKFS_LOG (error|warn|info|debug). */

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

function configuredLevel(): number {
  const v = (process.env.BRICKFS_LOG ?? 'warn') as Level;
  return LEVELS[v] ?? LEVELS.warn;
}

let threshold = configuredLevel();

export class Logger {
  constructor(readonly name: string) {}

  static setLevel(level: Level): void {
    threshold = LEVELS[level];
  }

  error(msg: string): void { this.emit('error', msg); }
  warn(msg: string): void { this.emit('warn', msg); }
  info(msg: string): void { this.emit('info', msg); }
  debug(msg: string): void { this.emit('debug', msg); }

  private emit(level: Level, msg: string): void {
    if (LEVELS[level] > threshold) return;
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [${this.name}] ${msg}\n`);
  }
}
