/**
 * How the management daemon reads the counters of the brick and mount processes of its host
 * (its /metrics, `volume profile`, `volume top`): each process answers small JSON requests
 * over HTTP on a Unix socket of its own, `<run dir>/stats/<kind>-<pid>.sock`.
 *
 * Why a socket per process rather than a fop on the brick's connection or a stats file:
 * mounts have no listener at all, and the brick's wire is the data path (one fop table that
 * every layer derives from, TLS and credentials); a file would be written whether or not
 * anyone reads it and be stale when read. A socket costs nothing until asked, answers with
 * the counters as they are (profile's interval ends when `info` asks), and the run
 * directory (0700, root's: lib/mgmt/token.ts) lets only root ask, which matters since
 * `top` names files. Paths stay short (pid, not brick path) for the 108-byte limit of
 * socket addresses.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { runDir } from './mgmt/token.js';

export type StatsKind = 'brick' | 'mount';

/** The directory of every process's stats socket on this host. */
export function statsDir(): string {
  return path.join(runDir(), 'stats');
}

export function statsSocket(kind: StatsKind, pid: number): string {
  return path.join(statsDir(), `${kind}-${pid}.sock`);
}

/** A request a process answers: the path (/stats, /profile, /top) and its query. */
export type StatsHandler = (pathname: string, query: URLSearchParams) => unknown;

/**
 * Serves handler's answers on this process's socket. Failing to listen is logged and
 * otherwise ignored: counters are not worth a brick or a mount that does not start.
 */
export function serveStats(kind: StatsKind, handler: StatsHandler, warn: (msg: string) => void): http.Server | undefined {
  const sock = statsSocket(kind, process.pid);
  try {
    fs.mkdirSync(statsDir(), { recursive: true, mode: 0o700 });
    // Named by our pid: whatever is there was left by a dead process of the same pid.
    fs.rmSync(sock, { force: true });
  } catch (e) {
    warn(`no stats socket (${(e as Error).message}): the daemon's /metrics, volume profile and top will not see this process`);
    return undefined;
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stats');
    let body: string;
    try {
      const answer = handler(url.pathname, url.searchParams);
      if (answer === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: `no ${url.pathname} here` })}\n`);
        return;
      }
      body = JSON.stringify(answer);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: (e as Error).message })}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  server.on('error', (e) => warn(`stats socket ${sock}: ${e.message}`));
  server.listen(sock);
  // Never what keeps a process alive; gone with it.
  server.unref();
  process.once('exit', () => fs.rmSync(sock, { force: true }));
  return server;
}

/** Asks a process's stats socket; rejects when nothing answers within timeoutMs. */
export function queryStats<T>(sock: string, pathAndQuery: string, timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: sock, path: pathAndQuery, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new Error(`${sock}${pathAndQuery}: ${res.statusCode} ${text.trim()}`));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch (e) {
          reject(new Error(`${sock}${pathAndQuery}: ${(e as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${sock}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** The pids of the processes of a kind that have a stats socket on this host. */
export function statsPids(kind: StatsKind): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(statsDir());
  } catch {
    return [];
  }
  const re = new RegExp(`^${kind}-(\\d+)\\.sock$`);
  return names.map((n) => re.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
}
