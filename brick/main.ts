import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { graphFromVolfile, type Graph } from '../lib/graph.js';
import { serveStats } from '../lib/stats-socket.js';
import { isLogLevel, Logger } from '../lib/log.js';
import { writeStatedump } from '../lib/statedump.js';
import { parseVolfile } from '../lib/volfile/parse.js';
import { readPidfile } from './mgmt/bricks.js';
import { Server } from './xlators/protocol/server.js';
import './xlators/index.js';

const log = new Logger('brick');

/**
 * The brick process (role of glusterfsd): builds the brick graph
 * (protocol/server → features/locks → storage/posix) from a brick volfile and serves it.
 * SIGHUP re-reads the volfile and applies its options (the management daemon sends it after
 * `volume set`, as glusterd reconfigures its bricks); SIGUSR1 writes a statedump to the log.
 *   node dist/brick/main.js --volfile FILE [--pidfile FILE] [--log-level error|warn|info|debug]
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { volfile: { type: 'string' }, pidfile: { type: 'string' }, 'log-level': { type: 'string' } } });
  if (!values.volfile || (values['log-level'] !== undefined && !isLogLevel(values['log-level']))) {
    process.stderr.write('usage: brick --volfile FILE [--pidfile FILE] [--log-level error|warn|info|debug]\n');
    process.exit(2);
  }
  if (isLogLevel(values['log-level'])) Logger.setLevel(values['log-level']);
  const volfile = values.volfile;
  let running: Graph | undefined;
  // Installed first: a SIGHUP while the brick starts must not end it (the default action).
  process.on('SIGHUP', () => {
    if (!running) return;
    try {
      running.reconfigure(parseVolfile(fs.readFileSync(volfile, 'utf8'), volfile), volfile);
      log.always(`brick ${running.top.name}: options reloaded from ${volfile}`);
    } catch (e) {
      log.error(`brick ${running.top.name}: options of ${volfile} not applied: ${(e as Error).message}`);
    }
  });
  const graph = graphFromVolfile(fs.readFileSync(volfile, 'utf8'), volfile);
  await graph.init();
  running = graph;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    graph.fini().finally(() => {
      // Only our own: a brick started again on the same pidfile (by hand, or a daemon restart
      // that lost track of this one) must not lose its pidfile when this one exits.
      if (values.pidfile && readPidfile(values.pidfile) === process.pid) fs.rmSync(values.pidfile, { force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // GlusterFS's statedump signal, as for a mount: every translator's state, to the brick log.
  process.on('SIGUSR1', () => writeStatedump(graph.statedump()));
  // Counters for the daemon's /metrics, volume profile and top (lib/stats-socket.ts says why a socket).
  const top = graph.top;
  if (top instanceof Server) serveStats('brick', (p, q) => top.statsRequest(p, q), (m) => process.stderr.write(`brick ${top.name}: ${m}\n`));
  // Written once the handlers are in place: whoever reads our pid from it may signal us at once.
  if (values.pidfile) fs.writeFileSync(values.pidfile, `${process.pid}\n`);
  log.always(`brick ${graph.top.name} serving (pid ${process.pid})`);
}

main().catch((e: Error) => {
  log.error(`brick failed to start: ${e.message}`);
  process.exit(1);
});
