// The management daemon (role of glusterd): opens the state directory and the configuration
// store (the file store in it, or etcd shared by a pool), puts the operation
// modules together, serves them over HTTP/JSON (routes.ts, docs/mgmt-api.md) and brings
// back the bricks, rebalance processes and self-heal daemon of its volumes after a restart.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fromBrowser } from '../../lib/browser.js';
import { OperationError, UsageError } from '../../lib/errors.js';
import { Logger } from '../../lib/log.js';
import { BrickOps } from './brick-ops.js';
import { pidAlive, readPidfile } from './bricks.js';
import { MgmtContext } from './context.js';
import { OwnBricks } from './own-bricks.js';
import { RebalanceOps } from './rebalance.js';
import { RebalanceNode } from './rebalance-node.js';
import { advertisedHost, ensureClusterId, ensurePoolSecret, loadPeerUuid, PeerOps } from './peers.js';
import { MgmtGuard } from './auth.js';
import { ensureRootToken } from '../../lib/mgmt/token.js';
import { loadTls, secureAccess, serverTlsOptions, tlsReason, TlsConfigError } from '../../lib/tls.js';
import { SelfHealDaemon } from './self-heal-daemon.js';
import { mgmtRoutes, routeRequests } from './routes.js';
import { StatePaths, VolumeStore } from './store.js';
import type { ConfigStore } from './config-store.js';
import { FileConfigStore } from './store/file.js';
import { parseStoreUrl, type StoreLocation } from './store/url.js';
import { VolumeOps } from './volume-ops.js';

const log = new Logger('mgmt');


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
  /**
   * Where the volume definitions live (store/url.ts): absent for the file store in the
   * state directory, or etcd://H:P[,H:P...][/PREFIX] for a store shared by a pool.
   */
  store?: string;
}

/** How messages and the health reply name a store location. */
export function storeName(loc: StoreLocation): string {
  return loc.kind === 'etcd' ? `etcd://${loc.endpoints.join(',')}/${loc.prefix}` : `file:${loc.dir}`;
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
  const stateError = (e: unknown): OperationError => {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
      return new OperationError(`cannot use state directory ${opts.stateDir} (${err.code}); run as root or give a writable --state DIR`);
    }
    return new OperationError(err.message);
  };
  const paths = new StatePaths(path.resolve(opts.stateDir));
  let loc: StoreLocation;
  try {
    loc = opts.store === undefined ? { kind: 'file', dir: paths.root } : parseStoreUrl(opts.store);
  } catch (e) {
    throw new UsageError(`--store: ${(e as Error).message}`);
  }
  const where = storeName(loc);
  try {
    fs.mkdirSync(paths.root, { recursive: true });
    // Volfiles (which hold credentials) and logs (statedumps name clients) are root's alone.
    for (const dir of [path.join(paths.root, 'vols'), path.join(paths.root, 'logs')]) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.chmodSync(dir, 0o700);
    }
  } catch (e) {
    throw stateError(e);
  }
  const rootToken = ensureRootToken();
  // Before the store: a second daemon is told about the first, not about the store's lock.
  try {
    claimPidfile(paths.daemonPidfile);
  } catch (e) {
    throw e instanceof OperationError ? e : stateError(e);
  }
  let config: ConfigStore;
  try {
    // secure-access covers the store too: etcd is reached over TLS with this host's certificate.
    // etcd's client (gRPC, protobuf) loads only for a daemon that uses it: ~0.2 s of every start.
    config = loc.kind === 'etcd'
      ? new (await import('./store/etcd.js')).EtcdConfigStore(loc.endpoints, { prefix: loc.prefix, ...(secureAccess() ? { tls: loadTls() } : {}) })
      : new FileConfigStore(loc.dir);
  } catch (e) {
    fs.rmSync(paths.daemonPidfile, { force: true });
    throw new OperationError(`cannot use the configuration store ${where}: ${(e as Error).message}`);
  }
  let store: VolumeStore;
  try {
    store = await VolumeStore.open(paths.root, config);
  } catch (e) {
    await config.close().catch(() => undefined);
    fs.rmSync(paths.daemonPidfile, { force: true });
    if (loc.kind === 'etcd') {
      throw new OperationError(`cannot open the configuration store ${where}: ${(e as Error).message}; check that etcd runs and answers at ${loc.endpoints.join(', ')}, or give another --store`);
    }
    throw stateError(e);
  }
  log.info(`configuration store: ${where}`);
  let uuid: string;
  let clusterId: string | null = null;
  let poolSecret: string | null = null;
  try {
    uuid = await loadPeerUuid(store.paths);
    if (loc.kind === 'etcd') {
      clusterId = await ensureClusterId(config);
      poolSecret = await ensurePoolSecret(config);
    }
  } catch (e) {
    await store.close().catch(() => undefined);
    await config.close().catch(() => undefined);
    fs.rmSync(paths.daemonPidfile, { force: true });
    throw new OperationError(`cannot establish this daemon's identity in the pool: ${(e as Error).message}`);
  }
  const ctx = new MgmtContext(store, {
    brickPortBase: opts.brickPortBase,
    brickMain: opts.brickMain,
    rebalanceMain: opts.rebalanceMain ?? (process.env.BRICKFS_REBALANCE_MAIN || undefined),
    selfUuid: uuid,
    storeName: where,
  });
  // The port is the one asked for until the server says which it got (--port 0).
  const peers = new PeerOps(ctx, config, { uuid, hostname: advertisedHost(opts.listen), port: opts.port }, clusterId, where, poolSecret);
  const own = new OwnBricks(ctx, config, peers);
  const rebalanceNode = new RebalanceNode(ctx, config, peers);
  const rebalance = new RebalanceOps(ctx, rebalanceNode);
  const bricks = new BrickOps(ctx, rebalance, peers, own);
  const shd = new SelfHealDaemon(ctx, config, peers);
  const volumes = new VolumeOps(ctx, bricks, rebalance, own, shd, peers);
  // Mounts long-polling this daemon hear of changes made through any daemon of the store.
  store.onChange((name) => ctx.events.emit('changed', name));
  let ready = false;
  const routes = mgmtRoutes({
    ctx, volumes, bricks, rebalance, peers,
    health: () => ({ ok: true, pid: process.pid, stateDir: store.paths.root, store: where, ready, ...peers.healthFields() }),
  });
  const guard = new MgmtGuard({
    rootToken,
    poolSecret,
    ownNames: [opts.listen, peers.self.hostname],
    storeNames: () => peers.selfNames(),
  });
  const route = routeRequests(routes);
  // secure-access: HTTPS only, and the handshake refuses a caller without a certificate of the
  // CA (peers, the CLI and mounts of the pool's hosts present theirs); the token or the pool's
  // secret is still asked for after it.
  let tls: ReturnType<typeof serverTlsOptions> | undefined;
  if (secureAccess()) {
    try {
      tls = serverTlsOptions(loadTls());
    } catch (e) {
      await store.close().catch(() => undefined);
      await config.close().catch(() => undefined);
      fs.rmSync(store.paths.daemonPidfile, { force: true });
      throw new OperationError(`secure-access is on: ${(e as TlsConfigError).message}`);
    }
  }
  const handler: http.RequestListener = (req, res) => {
    // A web page must not drive the daemon (it would act for whoever browses on this host).
    if (fromBrowser(req.headers)) {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'requests from web browsers are refused' }));
      return;
    }
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://mgmt').pathname;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: 'the request target is not a URL path; see docs/mgmt-api.md' })}\n`);
      return;
    }
    void guard.check(req, req.method ?? 'GET', pathname).then((refusal) => {
      if (refusal === null) {
        route(req, res);
        return;
      }
      res.writeHead(refusal.status, { 'content-type': 'application/json', ...refusal.headers }).end(`${JSON.stringify({ error: refusal.error })}\n`);
    }, (e: Error) => {
      log.error(`checking a request: ${e.stack ?? e.message}`);
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal error; the daemon\'s log has details' }));
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  if (tls) {
    server.on('tlsClientError', (e, socket) => {
      const msg = `refused a TLS connection from ${socket.remoteAddress ?? 'a client that closed'}: ${tlsReason(e)}`;
      // A reset before any handshake is a port probe, not a client.
      if ((e as NodeJS.ErrnoException).code === 'ECONNRESET') log.debug(msg);
      else log.warn(msg);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      void store.close().then(() => config.close());
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
  peers.self.port = port;
  log.info(`management daemon listening on ${opts.listen}:${port}${tls ? ' (HTTPS, secure-access)' : ''}, state in ${store.paths.root}, volumes in ${where} (pid ${process.pid}, peer ${uuid})`);
  // Alive once it answers: a peer that sees the key can reach the API.
  try {
    await peers.startLiveness();
  } catch (e) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close().catch(() => undefined);
    await config.close().catch(() => undefined);
    fs.rmSync(store.paths.daemonPidfile, { force: true });
    throw new OperationError(`cannot publish this daemon's liveness in ${where}: ${(e as Error).message}`);
  }

  // Bricks and rebalance processes run detached: adopt the live ones, respawn dead bricks,
  // then follow the store. Not under the operation lock: a change made by another daemon
  // waits for this one's bricks, never the other way round.
  const reconcile = (async () => {
    await own.start();
    await rebalanceNode.start();
    await shd.start();
  })();
  const readyP = reconcile.then(
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
      own.close();
      shd.close();
      rebalanceNode.close();
      await peers.close();
      await store.close();
      await config.close();
      if (readPidfile(store.paths.daemonPidfile) === process.pid) fs.rmSync(store.paths.daemonPidfile, { force: true });
      log.info('management daemon stopped (brick processes keep running)');
    },
  };
}
