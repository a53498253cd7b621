import { constants } from 'node:os';

/** errno names we use, mapped to their positive Linux numbers. */
export const Errno = {
  EPERM: constants.errno.EPERM,
  ENOENT: constants.errno.ENOENT,
  EIO: constants.errno.EIO,
  EBADF: constants.errno.EBADF,
  EAGAIN: constants.errno.EAGAIN,
  EBUSY: constants.errno.EBUSY,
  EACCES: constants.errno.EACCES,
  EEXIST: constants.errno.EEXIST,
  EXDEV: constants.errno.EXDEV,
  ENOTDIR: constants.errno.ENOTDIR,
  EISDIR: constants.errno.EISDIR,
  EINVAL: constants.errno.EINVAL,
  EFBIG: constants.errno.EFBIG,
  ENOSPC: constants.errno.ENOSPC,
  EROFS: constants.errno.EROFS,
  EMLINK: constants.errno.EMLINK,
  ERANGE: constants.errno.ERANGE,
  ENAMETOOLONG: constants.errno.ENAMETOOLONG,
  ENOSYS: constants.errno.ENOSYS,
  ENOTEMPTY: constants.errno.ENOTEMPTY,
  ENODATA: constants.errno.ENODATA,
  EPROTO: constants.errno.EPROTO,
  EMSGSIZE: constants.errno.EMSGSIZE,
  ENOTSUP: constants.errno.ENOTSUP,
  ENOTCONN: constants.errno.ENOTCONN,
  ETIMEDOUT: constants.errno.ETIMEDOUT,
  ESTALE: constants.errno.ESTALE,
  ELOOP: constants.errno.ELOOP,
} as const;

export type ErrnoCode = keyof typeof Errno;

const codeByNumber = new Map<number, ErrnoCode>(
  Object.entries(Errno).map(([code, n]) => [n, code as ErrnoCode]),
);

/** What crosses the wire for a failed fop: nothing else of an error ever does. */
export interface WireError {
  errno: number;
  code: string;
  message: string;
}

/** The one failure type of a fop: a positive errno, its code and a message. */
export class FsError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(code: ErrnoCode | string, message?: string, errno?: number) {
    const n = errno ?? (Errno as Record<string, number>)[code] ?? Errno.EIO;
    super(message ?? code);
    this.name = 'FsError';
    this.errno = n;
    this.code = code;
  }

  static of(code: ErrnoCode, message?: string): FsError {
    return new FsError(code, message, Errno[code]);
  }

  /** Converts anything thrown (Node system errors included) into an FsError. */
  static from(err: unknown): FsError {
    if (err instanceof FsError) return err;
    const e = err as { errno?: number; code?: string; message?: string } | undefined;
    if (e && typeof e.code === 'string' && e.code in Errno) {
      return new FsError(e.code, e.message, Errno[e.code as ErrnoCode]);
    }
    if (e && typeof e.errno === 'number' && e.errno !== 0) {
      const n = Math.abs(e.errno);
      return new FsError(codeByNumber.get(n) ?? 'EIO', e.message, n);
    }
    return new FsError('EIO', e?.message ?? String(err), Errno.EIO);
  }

  static fromWire(w: WireError): FsError {
    return new FsError(w.code, w.message, w.errno);
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
    super('ENOTCONN', `brick ${brick} is not connected`, Errno.ENOTCONN);
    this.name = 'BrickDisconnectedError';
  }
}

/** A request got no answer within the ping timeout. */
export class RpcTimeoutError extends FsError {
  constructor(brick: string, ms: number) {
    super('ENOTCONN', `brick ${brick} did not answer within ${ms} ms`, Errno.ENOTCONN);
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
