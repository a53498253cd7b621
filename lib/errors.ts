import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/**
 * Names Linux gives one number twice: the second is accepted (from Node, from the wire) and
 * becomes the first, so code comparisons need only know one of them.
 */
const ALIASES = { EOPNOTSUPP: 'ENOTSUP', EWOULDBLOCK: 'EAGAIN' } as const;

/** Linux errnos libuv reports that os.constants.errno leaves out (numbers from Node's own error map). */
const LIBUV_ONLY = ['EHOSTDOWN', 'ENONET', 'EREMOTEIO', 'ESHUTDOWN', 'ESOCKTNOSUPPORT', 'EUNATCH'] as const;

/** An errno name: every one Node knows on Linux (os.constants.errno and libuv's), aliases folded. */
export type ErrnoCode =
  | Exclude<keyof typeof constants.errno, `WSA${string}` | keyof typeof ALIASES>
  | (typeof LIBUV_ONLY)[number];

function buildErrno(): Record<ErrnoCode, number> {
  const table: Record<string, number> = {};
  for (const [name, n] of Object.entries(constants.errno)) {
    if (!name.startsWith('WSA') && !(name in ALIASES)) table[name] = n;
  }
  // libuv's codes on Linux are the negated errno; its own (EOF, EAI_*, ...) are far beyond.
  for (const [n, [name]] of getSystemErrorMap()) {
    if ((LIBUV_ONLY as readonly string[]).includes(name) && n < 0 && n > -4000) table[name] = -n;
  }
  return table as Record<ErrnoCode, number>;
}

/** Every errno name mapped to its positive Linux number. */
export const Errno: Readonly<Record<ErrnoCode, number>> = Object.freeze(buildErrno());

const codeByNumber = new Map<number, ErrnoCode>(
  (Object.entries(Errno) as Array<[ErrnoCode, number]>).map(([code, n]) => [n, code]),
);

/** The errno name a string stands for (aliases folded), or undefined when it is none. */
export function errnoCode(name: unknown): ErrnoCode | undefined {
  if (typeof name !== 'string') return undefined;
  const code = (ALIASES as Record<string, ErrnoCode>)[name] ?? name;
  return Object.prototype.hasOwnProperty.call(Errno, code) ? (code as ErrnoCode) : undefined;
}

/** The errno name of a positive errno number, or undefined when Linux has none. */
export function errnoCodeOf(n: number): ErrnoCode | undefined {
  return codeByNumber.get(n);
}

/**
 * What crosses the wire for a failed fop: nothing else of an error ever does. code is an
 * ErrnoCode when we send it; what a peer sends is checked by FsError.fromWire.
 */
export interface WireError {
  errno: number;
  code: string;
  message: string;
}

/** The one failure type of a fop: an errno name, its positive number and a message. */
export class FsError extends Error {
  readonly errno: number;
  readonly code: ErrnoCode;

  constructor(code: ErrnoCode, message?: string) {
    // An errno a fop answers (ENOENT of a lookup, EEXIST of an exclusive create) is an
    // answer, not a fault: capturing a stack for each cost the mount and the bricks a few
    // percent of their CPU in a tree walk. EIO and EPROTO, the failures nobody expected,
    // keep theirs.
    const limit = Error.stackTraceLimit;
    if (code !== 'EIO' && code !== 'EPROTO') Error.stackTraceLimit = 0;
    super(message ?? code);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
    this.errno = Errno[code];
    this.code = code;
  }

  static of(code: ErrnoCode, message?: string): FsError {
    return new FsError(code, message);
  }

  /** Converts anything thrown (Node system errors included) into an FsError. */
  static from(err: unknown): FsError {
    if (err instanceof FsError) return err;
    const e = err as { errno?: unknown; code?: unknown; message?: string } | undefined;
    const code = errnoCode(e?.code) ?? (typeof e?.errno === 'number' ? errnoCodeOf(Math.abs(e.errno)) : undefined);
    if (code) return new FsError(code, e?.message);
    // An argument the call refused before making it (Node's and our addons' ERR_INVALID_ARG_*,
    // ERR_OUT_OF_RANGE: a name with a NUL byte, a number out of range) is the caller's EINVAL.
    if (typeof e?.code === 'string' && (e.code.startsWith('ERR_INVALID_ARG') || e.code === 'ERR_OUT_OF_RANGE')) return new FsError('EINVAL', e.message);
    return new FsError('EIO', e?.message ?? String(err));
  }

  /** A peer's error: its code when we know it, else its number's, else EIO (never an unknown code). */
  static fromWire(w: WireError): FsError {
    const code = errnoCode(w.code) ?? (typeof w.errno === 'number' ? errnoCodeOf(w.errno) : undefined);
    const message = typeof w.message === 'string' ? w.message : undefined;
    return new FsError(code ?? 'EIO', code ? message : `${String(w.code)} (errno ${String(w.errno)}): ${message ?? ''}`);
  }

  toWire(): WireError {
    return { errno: this.errno, code: this.code, message: this.message };
  }
}

/** A volfile that does not parse or does not make a valid graph; names the line. */
export class VolfileSyntaxError extends Error {
  constructor(readonly line: number, message: string, readonly file = 'volfile') {
    super(`${file}:${line}: ${message}`);
    this.name = 'VolfileSyntaxError';
  }
}

/** A request could not be sent because the brick connection is down. */
export class BrickDisconnectedError extends FsError {
  constructor(brick: string) {
    super('ENOTCONN', `brick ${brick} is not connected`);
    this.name = 'BrickDisconnectedError';
  }
}

/** A request got no answer within the ping timeout. */
export class RpcTimeoutError extends FsError {
  constructor(brick: string, ms: number) {
    super('ENOTCONN', `brick ${brick} did not answer within ${ms} ms`);
    this.name = 'RpcTimeoutError';
  }
}

/** A CLI invocation that is wrong as typed: exit code 2, with what to type instead. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An operation the management daemon refused or could not do: exit code 1. */
export class OperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperationError';
  }
}
