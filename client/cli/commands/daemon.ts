import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError, UsageError } from '../../../lib/errors.js';
import { formatLogText, Logger, LOG_LEVELS, type Level } from '../../../lib/log.js';
import type { HealthReply } from '../../../lib/mgmt/api.js';
import { DEFAULT_BRICK_PORT_BASE, DEFAULT_STATE_DIR } from '../../../brick/mgmt/defaults.js';
import { parseStoreUrl } from '../../../brick/mgmt/store/url.js';
import { MgmtApi, type GlobalArgs } from '../api.js';
import { DEFAULT_MGMT_PORT } from '../../../lib/mgmt/client.js';

interface DaemonArgs extends GlobalArgs {
  port: number;
  listen: string;
  state: string;
  detach: boolean;
  store?: string;
  'brick-port-base': number;
  'log-level'?: Level;
}

/** This CLI's entry module: the detached daemon runs it again, in the foreground. */
const CLI_ENTRY = fileURLToPath(new URL('../index.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function checkPort(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`${what} must be a port number (1-65535), got ${n}`);
}

/** Refuses a --store value that names no store, showing what to type. */
function checkStore(value: string): void {
  try {
    parseStoreUrl(value);
  } catch (e) {
    throw new UsageError(`--store: ${(e as Error).message}; for example: brickfs daemon --store etcd://127.0.0.1:2379 (or leave --store out for the file store in the state directory)`);
  }
}

/** Starts the daemon as a detached process; resolves with its pid once it answers. */
async function detach(argv: ArgumentsCamelCase<DaemonArgs>, stateDir: string): Promise<number> {
  const logFile = path.join(stateDir, 'logs', 'daemon.log');
  try {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
  } catch (e) {
    throw new OperationError(`cannot use state directory ${stateDir}: ${(e as Error).message}; run as root or give a writable --state DIR`);
  }
  const offset = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [
    CLI_ENTRY, 'daemon', '--port', String(argv.port), '--listen', argv.listen, '--state', stateDir,
    '--brick-port-base', String(argv.brickPortBase),
    ...(argv.store === undefined ? [] : ['--store', argv.store]),
    ...(argv.logLevel === undefined ? [] : ['--log-level', argv.logLevel]),
  ], { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let exited: string | undefined;
  child.once('exit', (code, signal) => { exited = signal ? `killed by ${signal}` : `exit code ${code}`; });
  const api = new MgmtApi({ host: argv.listen === '0.0.0.0' ? '127.0.0.1' : argv.listen === '::' ? '::1' : argv.listen, port: argv.port });
  const tail = (): string => formatLogText(fs.readFileSync(logFile).subarray(offset).toString('utf8')).split('\n').slice(-10).join('\n');
  try {
    for (const end = Date.now() + 10_000; ;) {
      if (exited) throw new OperationError(`the daemon exited at start (${exited}):\n${tail()}`);
      const h = await api.json<HealthReply>('GET', '/v1/health').catch(() => undefined);
      if (h?.pid === child.pid) return child.pid!;
      if (Date.now() > end) {
        child.kill('SIGTERM');
        throw new OperationError(`the daemon did not answer on ${argv.listen}:${argv.port} within 10 s; see ${logFile}`);
      }
      await sleep(100);
    }
  } finally {
    child.unref();
  }
}

export const command: CommandModule<GlobalArgs, DaemonArgs> = {
  command: 'daemon',
  describe: 'Run the management daemon (keeps volume definitions, runs brick processes)',
  builder: (y: Argv<GlobalArgs>) => y
    .option('port', { type: 'number', default: DEFAULT_MGMT_PORT, describe: 'TCP port of the management API' })
    .option('listen', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
    .option('state', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'State directory (volume definitions, volfiles, logs)' })
    .option('store', {
      type: 'string',
      describe: 'Where volume definitions live: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] for etcd shared by a pool (default: a file in the state directory)',
    })
    .option('detach', { type: 'boolean', default: false, describe: 'Run in the background; print its pid once it answers' })
    .option('brick-port-base', { type: 'number', default: DEFAULT_BRICK_PORT_BASE, describe: 'First TCP port given to new bricks' })
    .option('log-level', { choices: LOG_LEVELS, describe: 'The daemon\'s own log level (default: BRICKFS_LOG, else info); bricks and services take BRICKFS_LOG' })
    .example('$0 daemon', 'run in the foreground on port 7007 (Ctrl-C stops it; bricks keep running)')
    .example('$0 daemon --detach --state /tmp/brickfs', 'run in the background with state in /tmp/brickfs')
    .example('$0 daemon --store etcd://10.0.0.1:2379,10.0.0.2:2379', 'keep volume definitions in etcd, shared with the other daemons of the pool'),
  handler: async (argv: ArgumentsCamelCase<DaemonArgs>) => {
    checkPort('--port', argv.port);
    checkPort('--brick-port-base', argv.brickPortBase);
    const stateDir = path.resolve(argv.state);
    if (argv.store !== undefined) checkStore(argv.store);
    if (argv.detach) {
      process.stdout.write(`${await detach(argv, stateDir)}\n`);
      return;
    }
    if (argv.logLevel) Logger.setLevel(argv.logLevel);
    else if (!process.env.BRICKFS_LOG) Logger.setLevel('info');
    // The management code loads only for `brickfs daemon`, not for every command (a mount
    // process is this CLI too).
    const { runDaemon } = await import('../../../brick/mgmt/daemon.js');
    const d = await runDaemon({ port: argv.port, listen: argv.listen, stateDir, brickPortBase: argv.brickPortBase, store: argv.store });
    // Only the daemon stops: bricks run in their own sessions and keep serving mounts.
    const stop = (): void => { void d.close().finally(() => process.exit(0)); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  },
};
