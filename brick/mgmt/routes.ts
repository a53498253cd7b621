// The HTTP routes of the management daemon (the role of glusterd-handler): each route maps
// a request to one operation module; MgmtError and UsageError become error replies with
// their status. The routes are documented in docs/mgmt-api.md.
import type http from 'node:http';
import { UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import {
  VERSION_HEADER, type AddBrickRequest, type BrickCheckRequest, type CreateRequest, type ErrorReply, type HealthReply, type ProbeRequest, type RebalanceStartRequest,
  type RemoveBrickRequest, type SetOptionRequest, type StartRequest,
} from '../../lib/mgmt/api.js';
import type { BrickOps } from './brick-ops.js';
import { healVolume } from './heal.js';
import { collectMetrics } from './metrics.js';
import type { MgmtContext } from './context.js';
import { MgmtError } from './errors.js';
import type { PeerOps } from './peers.js';
import { localParam, profileInfo, topList } from './profile.js';
import type { RebalanceOps } from './rebalance.js';
import type { VolumeOps } from './volume-ops.js';

const log = new Logger('mgmt');

const MAX_BODY_BYTES = 1 << 20;
const DEFAULT_WAIT_S = 60;
const MAX_WAIT_S = 600;

/** What the routes call. */
export interface MgmtOps {
  ctx: MgmtContext;
  volumes: VolumeOps;
  bricks: BrickOps;
  rebalance: RebalanceOps;
  peers: PeerOps;
  health(): HealthReply;
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

/** A refusal with its own status that is not an operation's failure (415). */
class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Whether a content-type header value is JSON (parameters such as charset allowed). */
function isJson(contentType: string): boolean {
  return contentType.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * Reads a JSON body (empty means {}). A body must say `Content-Type: application/json` (415
 * otherwise: a form or text/plain post is no API call); bad JSON, anything but a JSON object
 * or too large is a 400.
 */
async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'];
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if ((type !== undefined || hasBody) && !isJson(type ?? '')) {
    req.resume();
    throw new RequestError(415, `request bodies must be JSON sent with Content-Type: application/json (got ${type === undefined ? 'none' : JSON.stringify(type)})`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new UsageError(`request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`request body is not valid JSON (${(e as Error).message}); see docs/mgmt-api.md`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new UsageError('request body must be a JSON object ({...}); see docs/mgmt-api.md');
  }
  return body as Record<string, unknown>;
}

/** GET volfile: at once, or with newer-than as a long poll that answers when the version passes it. */
function volfileRoute(ops: MgmtOps): Route[2] {
  return async ({ params, url, req }) => {
    const name = params[0]!;
    const newerThan = url.searchParams.get('newer-than');
    const reply = (v: { text: string; version: number }): Reply => ({
      text: v.text, headers: { [VERSION_HEADER]: String(v.version) },
    });
    const anyState = url.searchParams.get('state') === 'any';
    let cur = ops.volumes.volfile(name, anyState);
    if (newerThan === null) return reply(cur);
    // Long poll: a mount waits here for a new volfile (GlusterFS pushes; we answer late).
    const since = Number(newerThan);
    const waitS = Math.min(Number(url.searchParams.get('wait') ?? DEFAULT_WAIT_S), MAX_WAIT_S);
    if (!Number.isFinite(since) || !Number.isFinite(waitS) || waitS < 0) {
      throw new UsageError('newer-than and wait must be numbers (GET /v1/volumes/VOL/volfile?newer-than=VERSION&wait=SECONDS)');
    }
    const events = ops.ctx.events;
    const deadline = Date.now() + waitS * 1000;
    while (cur.version <= since) {
      const left = deadline - Date.now();
      if (left <= 0 || req.destroyed) return { status: 304 };
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          events.off('changed', onChange);
          req.off('close', done);
          resolve();
        };
        const onChange = (n: string): void => { if (n === name) done(); };
        const timer = setTimeout(done, left);
        events.on('changed', onChange);
        req.on('close', done);
      });
      cur = ops.volumes.volfile(name, anyState); // throws 404/409 when the volume went away or stopped
    }
    return reply(cur);
  };
}

/** Every route of the API. */
export function mgmtRoutes(ops: MgmtOps): Route[] {
  const { volumes, bricks, rebalance, peers } = ops;
  const VOL = '([^/]+)';
  return [
    ['GET', /^\/v1\/health$/, async () => ({ json: ops.health() })],
    // Open to anyone who reaches the daemon, as scrapers expect (docs/security.md): counts, no secrets.
    ['GET', /^\/metrics$/, async () => {
      const reg = await collectMetrics(ops.ctx, rebalance);
      return { text: await reg.metrics(), headers: { 'content-type': reg.contentType } };
    }],
    ['GET', /^\/v1\/peers$/, async () => ({ json: await peers.pool() })],
    ['POST', /^\/v1\/peers$/, async ({ body }) => {
      const r = await peers.probe(body as ProbeRequest);
      return { status: r.result === 'probed' ? 201 : 200, json: r };
    }],
    ['DELETE', /^\/v1\/peers\/([^/]+)$/, async ({ params, url }) => {
      const force = url.searchParams.get('force');
      if (force !== null && force !== 'true' && force !== 'false') throw new UsageError('force must be true or false (DELETE /v1/peers/PEER?force=true)');
      return { json: await peers.detach(params[0]!, force === 'true') };
    }],
    // Internal: another daemon of the pool asks whether bricks of this host may become bricks.
    ['POST', /^\/v1\/bricks\/check$/, async ({ body }) => ({ json: await bricks.checkOwn(body as BrickCheckRequest) })],
    ['GET', /^\/v1\/volumes$/, async () => ({ json: { volumes: volumes.list() } })],
    ['POST', /^\/v1\/volumes$/, async ({ body }) => ({ status: 201, json: await volumes.create(body as CreateRequest) })],
    ['GET', /^\/v1\/status$/, async () => ({ json: { volumes: await volumes.statusAll() } })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}$`), async ({ params }) => ({ json: { volume: volumes.info(params[0]!) } })],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}$`), async ({ params }) => ({ json: { volume: await volumes.delete(params[0]!) } })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/start$`), async ({ params, body }) => ({
      json: await volumes.start(params[0]!, (body as StartRequest | null)?.force === true),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/stop$`), async ({ params }) => ({ json: await volumes.stop(params[0]!) })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/status$`), async ({ params }) => ({ json: await volumes.status(params[0]!) })],
    // local=true: only this host's bricks (another daemon of the pool gathering the volume's).
    ['GET', new RegExp(`^/v1/volumes/${VOL}/profile$`), async ({ params, url }) => ({
      json: await profileInfo(ops.ctx, peers, params[0]!, localParam(url.searchParams.get('local'))),
    })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/top$`), async ({ params, url }) => ({
      json: await topList(ops.ctx, peers, params[0]!, url.searchParams.get('list'), url.searchParams.get('count'), localParam(url.searchParams.get('local'))),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/statedump$`), async ({ params, url }) => ({
      json: await volumes.statedump(params[0]!, localParam(url.searchParams.get('local'))),
    })],
    ['PUT', new RegExp(`^/v1/volumes/${VOL}/options/([^/]+)$`), async ({ params, body }) => {
      const value = (body as Partial<SetOptionRequest> | null)?.value;
      if (typeof value !== 'string') throw new UsageError('expected a JSON body {"value": "STRING"}');
      return { json: { volume: await volumes.set(params[0]!, params[1]!, value) } };
    }],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}/options/([^/]+)$`), async ({ params }) => ({ json: { volume: await volumes.reset(params[0]!, params[1]!) } })],
    ['DELETE', new RegExp(`^/v1/volumes/${VOL}/options$`), async ({ params }) => ({ json: { volume: await volumes.reset(params[0]!) } })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/volfile$`), volfileRoute(ops)],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/heal$`), async ({ params, body }) => ({ json: await healVolume(ops.ctx, params[0]!, body) })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/add-brick$`), async ({ params, body }) => ({
      json: await bricks.addBrick(params[0]!, body as AddBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/start$`), async ({ params, body }) => ({
      json: await bricks.removeBrickStart(params[0]!, body as RemoveBrickRequest),
    })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/remove-brick/status$`), async ({ params, url }) => ({
      json: await bricks.removeBrickStatus(params[0]!, url.searchParams.getAll('brick')),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/commit$`), async ({ params, body }) => ({
      json: await bricks.removeBrickCommit(params[0]!, body as RemoveBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/remove-brick/stop$`), async ({ params, body }) => ({
      json: await bricks.removeBrickStop(params[0]!, body as RemoveBrickRequest),
    })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/rebalance/start$`), async ({ params, body }) => ({
      json: await rebalance.start(params[0]!, body as RebalanceStartRequest),
    })],
    ['GET', new RegExp(`^/v1/volumes/${VOL}/rebalance/status$`), async ({ params }) => ({ json: await rebalance.status(params[0]!) })],
    ['POST', new RegExp(`^/v1/volumes/${VOL}/rebalance/stop$`), async ({ params }) => ({ json: await rebalance.stop(params[0]!) })],
  ];
}

function send(res: http.ServerResponse, r: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { ...r.headers };
  let payload = '';
  if (r.text !== undefined) {
    headers['content-type'] = r.headers?.['content-type'] ?? 'text/plain; charset=utf-8';
    payload = r.text;
  } else if (r.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = `${JSON.stringify(r.json)}\n`;
  }
  res.writeHead(r.status ?? 200, headers).end(payload);
}

function fail(res: http.ServerResponse, status: number, error: string): void {
  const body: ErrorReply = { error };
  send(res, { status, json: body });
}

/** The server's request listener: finds the route (404, or 405 with allow), runs it, sends its reply or error. */
export function routeRequests(routes: readonly Route[]): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://mgmt');
    const method = req.method ?? 'GET';
    const matching = routes.map(([m, re, h]) => ({ m, h, match: re.exec(url.pathname) })).filter((r) => r.match);
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
        const params = route.match!.slice(1).map((p) => {
          try {
            return decodeURIComponent(p);
          } catch {
            throw new UsageError(`"${p}" in ${url.pathname} is not valid percent-encoding`);
          }
        });
        const body = method === 'GET' || method === 'DELETE' ? {} : await readBody(req);
        send(res, await route.h({ params, url, body, req }));
      } catch (e) {
        if (e instanceof MgmtError || e instanceof RequestError) fail(res, e.status, e.message);
        else if (e instanceof UsageError) fail(res, 400, e.message);
        else {
          log.error(`${method} ${url.pathname}: ${(e as Error).stack ?? String(e)}`);
          fail(res, 500, `internal error: ${(e as Error).message}; the daemon's log has details`);
        }
      }
    })();
  };
}
