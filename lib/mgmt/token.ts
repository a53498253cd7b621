// The host's management token: a secret in a file only the daemon's user (root) can read.
// Whoever can read it is root on the host, for the management API (docs/security.md): the
// daemon makes it, the CLI and the mount read it and send it as a bearer token. Here in
// lib/ because the mount runtime needs it as much as the CLI.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperationError } from '../errors.js';

/** The file name of the token in the run directory. */
const TOKEN_NAME = 'mgmt.token';

/**
 * The run directory of this user's brickfs: $BRICKFS_RUN_DIR, else /run/brickfs for root,
 * else $XDG_RUNTIME_DIR/brickfs (or /tmp/brickfs-UID) for a daemon run by another user.
 * The CLI computes the same, so it finds the token of a daemon run by its own user.
 */
export function runDir(): string {
  const env = process.env.BRICKFS_RUN_DIR;
  if (env) return path.resolve(env);
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return '/run/brickfs';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? path.join(xdg, 'brickfs') : path.join(os.tmpdir(), `brickfs-${uid}`);
}

/** Where the token is. */
export function tokenFile(): string {
  return path.join(runDir(), TOKEN_NAME);
}

/** Throws unless st belongs to this user and no one else may write it (or, for the token, read it). */
function checkOwned(file: string, st: fs.Stats, forbidden: number): void {
  const uid = process.geteuid?.() ?? 0;
  if (st.uid !== uid || (st.mode & forbidden) !== 0) {
    throw new OperationError(
      `${file} belongs to uid ${st.uid} with mode ${(st.mode & 0o7777).toString(8)}; it must be this user's (uid ${uid}) and ` +
      `${forbidden === 0o077 ? 'readable by no one else' : 'writable by no one else'}: remove it and start the daemon again`);
  }
}

/**
 * The daemon's side: the token in the run directory, made on first use (0600 in a 0700
 * directory). Daemons of one host share it; made by link() so two starting at once agree.
 */
export function ensureRootToken(): string {
  const dir = runDir();
  const file = path.join(dir, TOKEN_NAME);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dst = fs.lstatSync(dir);
    if (!dst.isDirectory()) throw new OperationError(`${dir} is not a directory; remove it, or set BRICKFS_RUN_DIR to another directory`);
    checkOwned(dir, dst, 0o022);
    for (;;) {
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (st) {
        if (!st.isFile()) throw new OperationError(`${file} is not a regular file; remove it`);
        checkOwned(file, st, 0o077);
        const token = fs.readFileSync(file, 'utf8').trim();
        if (token.length < 32) throw new OperationError(`${file} holds no token; remove it and start the daemon again`);
        return token;
      }
      const tmp = path.join(dir, `.${TOKEN_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`);
      fs.writeFileSync(tmp, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      try {
        fs.linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    }
  } catch (e) {
    if (e instanceof OperationError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new OperationError(
      `cannot keep the management token in ${dir} (${err.code ?? err.message}); run the daemon as root, ` +
      'or set BRICKFS_RUN_DIR to a directory of its own for the daemon and the CLI alike');
  }
}

/** What a client found: the token, or why there is none (ENOENT: no daemon made one; EACCES: not root). */
export type TokenLookup = { token: string } | { token?: undefined; why: string };

/** The client's side: reads the token if this user may. */
export function readRootToken(): TokenLookup {
  try {
    const token = fs.readFileSync(tokenFile(), 'utf8').trim();
    return token ? { token } : { why: 'empty' };
  } catch (e) {
    return { why: (e as NodeJS.ErrnoException).code ?? 'unreadable' };
  }
}

/** The Authorization header to send, if this user can read the token; else none. */
export function authHeaders(): Record<string, string> {
  const t = readRootToken();
  return t.token === undefined ? {} : { authorization: `Bearer ${t.token}` };
}
