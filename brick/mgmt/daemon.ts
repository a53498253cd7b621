// The management daemon (role of glusterd): an HTTP/JSON server over the volume manager.
// Routes are listed in ROUTES below and documented in docs/mgmt-api.md.
import fs from 'node:fs';
import http from 'node:http';
import { OperationError, UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import {
  VERSION_HEADER, type AddBrickRequest, type CreateRequest, type ErrorReply, type HealthReply, type RebalanceStartRequest,
  type RemoveBrickRequest, type SetOptionRequest, type StartRequest,
} from '../../lib/mgmt/api.js';
import { pidAlive, readPidfile } from './bricks.js';
import { MgmtError } from './errors.js';
import { VolumeStore } from './store.js';
import { VolumeManager } from './volumes.js';

const log = new Logger('mgmt');

export const DEFAULT_STATE_DIR = '/var/lib/brickfs';
export const DEFAULT_BRICK_PORT_BASE = 7100;
const MAX_BODY_BYTES = 1 << 20;
const DEFAULT_WAIT_S = 60;
const MAX_WAIT_S = 600;

/** How `brickfs daemon` was asked to run. */
export interface DaemonOptions {
  port: number;
  /** Address to listen on; 127.0.0.1 keeps the API off the network. */
  listen: string;
  stateDir: string;
  brickPortBase: number;
  /** The brick program; defaults to dist/brick/main.js. */
  brickMain?: string;
  /**
   * The rebalance program; defaults to $BRICKFS_REBALANCE_MAIN, else dist/client/rebalance/main.js
   * (the variable lets tests put a stand-in under a daemon they run as a process).
   */
  rebalanceMain?: string;
}

/** A daemon that listens; close() stops it and leaves the bricks running. */
export interface RunningDaemon {
  port: number;
  stateDir: string;
  /** Resolves once the bricks of started volumes have been adopted or respawned. */
  ready: Promise<void>;
  /** Stops serving (brick processes keep running, as glusterfsd outlives glusterd). */
  close(): Promise<void>;
}

/** A reply: JSON (the default) or text. */
interface Reply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

interface RouteCtx {
  params: string[];
  url: URL;
  body: unknown;
  req: http.IncomingMessage;
}

type Route = [method: string, pattern: RegExp, handler: (ctx: RouteCtx) => Promise<Reply>];

/** Reads a JSON body (empty means {}); bad JSON or too large is a 400. */
async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new UsageError(`request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError('request body is not valid JSON');
  }
}

/** Refuses to share a state directory with another live daemon. */
function claimPidfile(file: string): void {
  const pid = readPidfile(file);
  if (pid !== null && pid !== process.pid && pidAlive(pid)) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch { /* no /proc: believe the pidfile */ }
    if (!cmd || cmd.split('\0').includes('daemon')) {
      throw new OperationError(`another management daemon (pid ${pid}) uses this state directory (${file}); stop it first, or give another --state`);
    }
  }
  fs.writeFileSync(file, `${process.pid}\n`);
}

/** Starts the management daemon; resolves once it listens. */
export async function runDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  let store: VolumeStore;
  try {
    store = await VolumeStore.open(opts.stateDir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
      throw new OperationError(`cannot use state directory ${opts.stateDir} (${err.code}); run as root or give a writable --state DIR`);
    }
    throw new OperationError(err.message);
  }
  claimPidfile(store.paths.daemonPidfile);
  const mgr = new VolumeManager(store, {
    brickPortBase: opts.brickPortBase,
    brickMain: opts.brickMain,
    rebalanceMain: opts.rebalanceMain ?? (process.env.BRICKFS_REBALANCE_MAIN || undefined),
  });
  let ready = false;

  const volfile = async ({ params, url, req }: RouteCtx): Promise<Reply> => {
    const name = params[0]!;
    const newerThan = url.searchParams.get('newer-than');
    const reply = (v: { text: string; version: number }): Reply => ({
      text: v.text, headers: { [VERSION_HEADER]: String(v.version) },
    });
    const anyState = url.searchParams.get('state') === 'any';
    let cur = mgr.volfile(name, anyState);
    if (newerThan === null) return reply(cur);
    // Long poll: a mount waits here for a new volfile (GlusterFS pushes; we answer late).
    const since = Number(newerThan);
    const waitS = Math.min(Number(url.searchParams.get('wait') ?? DEFAULT_WAIT_S), MAX_WAIT_S);
    if (!Number.isFinite(since) || !Number.isFinite(waitS) || waitS < 0) {
      throw new UsageError('newer-than and wait must be numbers (GET /v1/volumes/VOL/volfile?newer-than=VERSION&wait=SECONDS)');
    }
    const deadline = Date.now() + waitS * 1000;
    while (cur.version <= since) {
      const left = deadline - Date.now();
      if (left <= 0 || req.destroyed) return { status: 304 };
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          mgr.events.off('changed', onChange);
          req.off('close', done);
          resolve();
        };
        const onChange = (n: string): void => { if (n === name) done(); };
        const timer = setTimeout(done, left);
        mgr.events.on('changed', onChange);
        req.on('close', done);
      });
      cur = mgr.volfile(name, anyState); // throws 404/409 when the volume went away or stopped
    }
    return reply(cur);
  };

  const VOL = '([^/]+)';
  const ROUTES: Route[] = [
    ['GET', /^\/v1\/health$/, async () => {
      const h: HealthReply = { ok: true, pid: process.pid, stateDir: store.paths.root, ready };
      return { json: h };
    }],
    ['GET', /^\/v1\/volumes$/, async () => ({ json: { volumes: mgr.list() } })],
    ['POST', /^\/v1\/volumes$/, async ({ body }) => ({ status: 201, json: await mgr.create(body as CreateRequest) })],
    ['GET', /^\/v1\/status$/, async () => ({ json: { volumes: await mgr.statusAll() } })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}$`), async ({ params }) => ({ json: { volume: mgr.info(params[0]!) } })],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}$`), async ({ params }) => ({ json: { volume: await mgr.delete(params[0]!) } })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/start$`), async ({ params, body }) => ({
      json: await mgr.start(params[0]!, (body as StartRequest | null)?.force === true),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/stop$`), async ({ params }) => ({ json: await mgr.stop(params[0]!) })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/status$`), async ({ params }) => ({ json: await mgr.status(params[0]!) })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/statedump$`), async ({ params }) => ({ json: await mgr.statedump(params[0]!) })],
    ['PUT', new RegExp(`^/v1/volumes/${VOL}/options/([^/]+)$`), async ({ params, body }) => {
      const value = (body as Partial<SetOptionRequest> | null)?.value;
      if (typeof value !== 'string') throw new UsageError('expected a JSON body {"value": "STRING"}');
      return { json: { volume: await mgr.set(params[0]!, params[1]!, value) } };
    }],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}/options/([^/]+)$`), async ({ params }) => ({ json: { volume: await mgr.reset(params[0]!, params[1]!) } })],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}/options$`), async ({ params }) => ({ json: { volume: await mgr.reset(params[0]!) } })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/volfile$`), volfile],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/add-brick$`), async ({ params, body }) => ({
      json: await mgr.addBrick(params[0]!, body as AddBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/start$`), async ({ params, body }) => ({
      json: await mgr.removeBrickStart(params[0]!, body as RemoveBrickRequest),
    })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/remove-brick/status$`), async ({ params, url }) => ({
      json: await mgr.removeBrickStatus(params[0]!, url.searchParams.getAll('brick')),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/commit$`), async ({ params, body }) => ({
      json: await mgr.removeBrickCommit(params[0]!, body as RemoveBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/stop$`), async ({ params, body }) => ({
      json: await mgr.removeBrickStop(params[0]!, body as RemoveBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/rebalance/start$`), async ({ params, body }) => ({
      json: await mgr.rebalanceStart(params[0]!, body as RebalanceStartRequest),
    })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/rebalance/status$`), async ({ params }) => ({ json: mgr.rebalanceStatus(params[0]!) })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/rebalance/stop$`), async ({ params }) => ({ json: await mgr.rebalanceStop(params[0]!) })],
  ];

  const send = (res: http.ServerResponse, r: Reply): void => {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = { ...r.headers };
    let payload = '';
    if (r.text !== undefined) {
      headers['content-type'] = 'text/plain; charset=utf-8';
      payload = r.text;
    } else if (r.json !== undefined) {
      headers['content-type'] = 'application/json';
      payload = `${JSON.stringify(r.json)}\n`;
    }
    res.writeHead(r.status ?? 200, headers).end(payload);
  };
  const fail = (res: http.ServerResponse, status: number, error: string): void => {
    const body: ErrorReply = { error };
    send(res, { status, json: body });
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://mgmt');
    const method = req.method ?? 'GET';
    const matching = ROUTES.map(([m, re, h]) => ({ m, h, match: re.exec(url.pathname) })).filter((r) => r.match);
    const route = matching.find((r) => r.m === method);
    if (!route) {
      if (matching.length > 0) {
        res.setHeader('allow', matching.map((r) => r.m).join(', '));
        fail(res, 405, `${method} is not allowed on ${url.pathname} (allowed: ${matching.map((r) => r.m).join(', ')}); see docs/mgmt-api.md`);
      } else {
        fail(res, 404, `no such API route: ${method} ${url.pathname}; see docs/mgmt-api.md`);
      }
      return;
    }
    void (async () => {
      try {
        const params = route.match!.slice(1).map((p) => decodeURIComponent(p));
        const body = method === 'GET' || method === 'DELETE' ? {} : await readBody(req);
        send(res, await route.h({ params, url, body, req }));
      } catch (e) {
        if (e instanceof MgmtError) fail(res, e.status, e.message);
        else if (e instanceof UsageError) fail(res, 400, e.message);
        else {
          log.error(`${method} ${url.pathname}: ${(e as Error).stack ?? String(e)}`);
          fail(res, 500, `internal error: ${(e as Error).message}; the daemon's log has details`);
        }
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fs.rmSync(store.paths.daemonPidfile, { force: true });
      if (e.code === 'EADDRINUSE') {
        reject(new OperationError(`port ${opts.port} on ${opts.listen} is in use (another brickfs daemon?); stop it or choose another --port`));
      } else {
        reject(new OperationError(`cannot listen on ${opts.listen}:${opts.port}: ${e.message}`));
      }
    });
    server.listen(opts.port, opts.listen, () => resolve());
  });
  server.on('error', (e) => log.error(`http server: ${e.message}`));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  log.info(`management daemon listening on ${opts.listen}:${port}, state in ${store.paths.root} (pid ${process.pid})`);

  const readyP = mgr.reconcile().then(
    () => { ready = true; },
    (e: Error) => { ready = true; log.error(`adopting bricks: ${e.message}`); },
  );

  return {
    port,
    stateDir: store.paths.root,
    ready: readyP,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // long polls would otherwise hold close() open
      });
      if (readPidfile(store.paths.daemonPidfile) === process.pid) fs.rmSync(store.paths.daemonPidfile, { force: true });
      log.info('management daemon stopped (brick processes keep running)');
    },
  };
}
