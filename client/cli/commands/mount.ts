import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { spawnDataPath } from '../../../lib/data-path-process.js';
import { OperationError, UsageError, VolfileSyntaxError } from '../../../lib/errors.js';
import { graphFromVolfile } from '../../../lib/graph.js';
import { Logger } from '../../../lib/log.js';
import { writeStatedump } from '../../../lib/statedump.js';
import { BRICKFS_FSTYPE, clearStaleMount, findMountProcess, isMounted, mountAt, mountRunFile } from '../../mount-table.js';
import type { VolfileSource } from '../../graph-switch.js';
import { fetchVolfileFromAny, formatServer, parseServer, parseVolfileServers, parseVolumeSource, type ServerAddr } from '../../../lib/mgmt/client.js';

interface MountArgs {
  source?: string;
  dir?: string;
  volfile?: string;
  o?: string;
  foreground?: boolean;
  fsname?: string;
  watch?: string;
  volfileVersion?: number;
}

/**
 * The kernel's generic mount flags that both libfuse 3 and libfuse 2 take and hand to
 * mount(2) (fstab lines carry them): passed through as they are. Not `suid` nor `dev`: a
 * mount stays nosuid,nodev (libfuse's default), since any client of the volume could
 * plant a setuid program or a device node that every user of this host may reach.
 */
const VFS_FLAGS_O = ['nosuid', 'nodev', 'exec', 'noexec', 'async', 'sync', 'atime', 'noatime', 'dirsync'];

/** -o options brickfs understands; anything else is refused (an unknown FUSE option leaves a stale mount). */
export const KNOWN_O = ['ro', 'rw', ...VFS_FLAGS_O, 'nonempty', 'log-level', 'attribute-timeout', 'entry-timeout', 'negative-timeout', 'backup-volfile-servers', 'writeback-cache'];

/** The kernel cache timeouts by their mount option names (glusterfs's); defaults 1, 1 and 0 s. */
const TIMEOUT_O = { 'attribute-timeout': 'attrTimeoutS', 'entry-timeout': 'entryTimeoutS', 'negative-timeout': 'negativeTimeoutS' } as const;
/** Longer than a day is a mistake (the caches still drop what bricks invalidate). */
const MAX_TIMEOUT_S = 86_400;

interface ParsedO {
  fuse: string[];
  logLevel?: string;
  attrTimeoutS?: number;
  entryTimeoutS?: number;
  negativeTimeoutS?: number;
  /** backup-volfile-servers as typed; its hosts' default port is the volfile server's. */
  backupVolfileServers?: string;
  /** Mount over a directory that has entries (hiding them while mounted). */
  nonempty?: boolean;
  /** The kernel's writeback cache (glusterfs's kernel-writeback-cache; docs/performance.md says when it is safe). */
  writebackCache?: boolean;
}

function parseTimeout(k: keyof typeof TIMEOUT_O, v: string | undefined): number {
  const n = v !== undefined && /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= MAX_TIMEOUT_S)) {
    throw new UsageError(`mount option ${k} needs a number of seconds from 0 to ${MAX_TIMEOUT_S}, got ${v === undefined ? 'nothing' : `"${v}"`}; for example -o ${k}=1`);
  }
  return n;
}

function parseO(o: string | undefined): ParsedO {
  const out: ParsedO = { fuse: [] };
  for (const part of (o ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=', 2);
    if ((k === 'ro' || k === 'rw' || VFS_FLAGS_O.includes(k!)) && v === undefined) out.fuse.push(k!);
    else if (k === 'nonempty' && v === undefined) out.nonempty = true;
    else if (k === 'writeback-cache' && (v === undefined || v === 'on' || v === 'off' || v === 'yes' || v === 'no')) out.writebackCache = v === undefined || v === 'on' || v === 'yes';
    else if (k === 'log-level' && v && ['error', 'warn', 'info', 'debug'].includes(v)) out.logLevel = v;
    else if (k === 'backup-volfile-servers' && v !== undefined) {
      parseVolfileServers(v);
      out.backupVolfileServers = v;
    }
    else if (k !== undefined && k in TIMEOUT_O) {
      const key = k as keyof typeof TIMEOUT_O;
      out[TIMEOUT_O[key]] = parseTimeout(key, v);
    } else {
      throw new UsageError(`unknown mount option "${part}"; known: ${KNOWN_O.join(', ')} (log-level=error|warn|info|debug, attribute-timeout=SECONDS, entry-timeout=SECONDS, negative-timeout=SECONDS, backup-volfile-servers=HOST[/PORT]:HOST[/PORT]..., writeback-cache[=on|off])`);
    }
  }
  return out;
}

/** "HOST:PORT[,HOST:PORT...]/VOL" for the hidden --watch option of the mount process: its volfile servers in order. */
function formatWatch(w: VolfileSource): string {
  return `${w.servers.map(formatServer).join(',')}/${w.volume}`;
}

function parseWatch(s: string, version: number | undefined): VolfileSource {
  const i = s.lastIndexOf('/');
  if (i <= 0 || version === undefined || !Number.isFinite(version)) throw new UsageError(`--watch ${s} needs HOST:PORT[,HOST:PORT...]/VOLUME and --volfile-version`);
  return { servers: s.slice(0, i).split(',').map((x) => parseServer(x)), volume: s.slice(i + 1), version };
}

/** The volfile server and its backups, each once, the volfile server first. */
function volfileServers(server: ServerAddr, backups: string | undefined): ServerAddr[] {
  const all = [server, ...(backups === undefined ? [] : parseVolfileServers(backups, server.port))];
  return all.filter((s, i) => all.findIndex((x) => x.host === s.host && x.port === s.port) === i);
}

/** The mount process runs the same CLI entry point as this one, in the foreground. */
function cliEntry(): string {
  return process.argv[1] ?? fileURLToPath(new URL('../../../../bin/brickfs.js', import.meta.url));
}

/** Validates, then runs the mount in a detached background process and waits until it is up. */
async function mountInBackground(volfileText: string, source: string, dir: string, o: string | undefined, watch: VolfileSource | undefined): Promise<void> {
  const volfilePath = mountRunFile(dir, 'vol');
  fs.writeFileSync(volfilePath, volfileText);
  const logPath = mountRunFile(dir, 'log');
  const logFd = fs.openSync(logPath, 'a');
  // The mount point absolute: `brickfs umount` knows the mount process by its command line.
  const args = [cliEntry(), 'mount', '--volfile', volfilePath, path.resolve(dir), '--foreground', '--fsname', source];
  if (o) args.push('-o', o);
  // The mount process follows the volume's volfile on the daemon it came from.
  if (watch) args.push('--watch', formatWatch(watch), '--volfile-version', String(watch.version));
  const child = spawnDataPath(args, { detached: true, stdio: ['ignore', logFd, logFd, 'ipc'] });
  fs.closeSync(logFd);
  const outcome = await new Promise<{ ok: true } | { ok: false; message: string }>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      resolve({ ok: false, message: `the mount process did not come up within 30 s (log: ${logPath})` });
    }, 30_000);
    child.on('message', (m: { ready?: boolean; error?: string }) => {
      clearTimeout(timer);
      resolve(m.ready ? { ok: true } : { ok: false, message: m.error ?? 'mount failed' });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: false, message: `the mount process exited (code ${code}); see ${logPath}` });
    });
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  if (!outcome.ok) throw new OperationError(`mount of ${source} on ${dir} failed: ${outcome.message}`);
}

/** The mount process itself: serve until unmounted or signalled. */
async function mountInForeground(volfileText: string, volfileName: string, source: string, dir: string, o: string | undefined, watch: VolfileSource | undefined): Promise<void> {
  const opts = parseO(o);
  let m: import('../../mount.js').MountedVolume;
  try {
    const { MountedVolume } = await import('../../mount.js');
    m = await MountedVolume.start({
      volfileText, volfileName, source, mountpoint: dir, extraOptions: opts.fuse, watch,
      attrTimeoutS: opts.attrTimeoutS, entryTimeoutS: opts.entryTimeoutS, negativeTimeoutS: opts.negativeTimeoutS,
      writebackCache: opts.writebackCache,
    });
  } catch (e) {
    process.send?.({ error: (e as Error).message });
    throw new OperationError((e as Error).message);
  }
  new Logger('mount').always(`mounted ${source} on ${m.mountpoint} (pid ${process.pid})`);
  process.send?.({ ready: true });
  if (process.connected) process.disconnect();
  const stop = (): void => {
    void m.stop().then(() => process.exit(0));
  };
  // GlusterFS's statedump signal: the graphs alive, their open fds and translators, to the log.
  process.on('SIGUSR1', () => writeStatedump({ fuse: m.bridge.statedump(), ...m.graphs.statedump() }));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);
  await new Promise<never>(() => undefined);
}

export const command: CommandModule<object, MountArgs> = {
  command: 'mount [source] [dir]',
  describe: 'Mount a volume with FUSE',
  builder: (y: Argv) => y
    .positional('source', { type: 'string', describe: 'HOST[:PORT]:/VOLUME, or gluster\'s HOST[:PORT]:VOLUME (the mount point with --volfile)' })
    .positional('dir', { type: 'string', describe: 'Mount point (an existing directory)' })
    .option('volfile', { type: 'string', describe: 'Mount from a volfile instead of asking a daemon' })
    .option('o', { type: 'string', describe: `Mount options, comma separated: ${KNOWN_O.join(', ')}` })
    .option('foreground', { type: 'boolean', default: false, describe: 'Stay in the foreground (Ctrl-C unmounts)' })
    .option('fsname', { type: 'string', hidden: true })
    .option('watch', { type: 'string', hidden: true, describe: 'HOST:PORT/VOLUME whose new volfiles the mount switches to' })
    .option('volfile-version', { type: 'number', hidden: true, describe: 'Version of the volfile given with --watch' })
    .example('$0 mount localhost:/demo /mnt/demo', 'mount volume demo served by the local daemon')
    .example('$0 mount --volfile volfiles/distribute.vol /mnt/demo', 'mount a hand-written volfile')
    .example('$0 mount 10.0.0.1:/demo /mnt/demo -o backup-volfile-servers=10.0.0.2:10.0.0.3', 'fetch and follow the volfile from 10.0.0.2 or 10.0.0.3 when 10.0.0.1 is down')
    .example('$0 mount localhost:/demo /mnt/demo -o attribute-timeout=600', 'the kernel keeps attributes 10 minutes (bricks invalidate changes)') as unknown as Argv<MountArgs>,
  handler: async (argv: ArgumentsCamelCase<MountArgs>) => {
    let text: string;
    let name: string;
    let source: string;
    let dir: string | undefined;
    let watch: VolfileSource | undefined;
    const opts = parseO(argv.o);
    if (argv.volfile) {
      if (argv.dir) throw new UsageError('with --volfile give only the mount point: brickfs mount --volfile FILE DIR');
      dir = argv.source;
      if (!dir) throw new UsageError('missing mount point: brickfs mount --volfile FILE DIR');
      // The mount process gets its servers with --watch; a volfile file has no server to back up.
      if (!argv.watch && opts.backupVolfileServers !== undefined) throw new UsageError('backup-volfile-servers needs a volume from a daemon: brickfs mount HOST:/VOLUME DIR -o backup-volfile-servers=HOST2:HOST3');
      name = argv.volfile;
      try {
        text = fs.readFileSync(argv.volfile, 'utf8');
      } catch (e) {
        throw new OperationError(`cannot read volfile ${argv.volfile}: ${(e as Error).message}`);
      }
      source = argv.fsname ?? `brickfs:${path.basename(argv.volfile)}`;
      if (argv.watch) watch = parseWatch(argv.watch, argv.volfileVersion);
    } else {
      if (!argv.source || !argv.dir) throw new UsageError('usage: brickfs mount HOST[:PORT]:/VOLUME DIR (for example: brickfs mount localhost:/demo /mnt/demo)');
      const { server, volume } = parseVolumeSource(argv.source);
      dir = argv.dir;
      name = `${volume}.vol`;
      const servers = volfileServers(server, opts.backupVolfileServers);
      const fetched = await fetchVolfileFromAny(servers, volume);
      if (fetched.index > 0) process.stderr.write(`brickfs: volfile server ${formatServer(server)} cannot serve; volume ${volume} from ${formatServer(servers[fetched.index]!)}\n`);
      text = fetched.text;
      // The mount follows the daemon that served it first, then the next ones round the list.
      if (fetched.version !== undefined) watch = { servers: [...servers.slice(fetched.index), ...servers.slice(0, fetched.index)], volume, version: fetched.version };
      source = `${server.host}:/${volume}`;
    }
    if (opts.logLevel) Logger.setLevel(opts.logLevel as 'error' | 'warn' | 'info' | 'debug');
    try {
      // The mount runtime registers the translators a volfile names (no other command loads them).
      await import('../../mount.js');
      graphFromVolfile(text, name);
    } catch (e) {
      if (e instanceof VolfileSyntaxError) throw new OperationError(`bad volfile: ${e.message}`);
      throw e;
    }
    // Whatever is mounted on dir is looked at before dir itself: a stale brickfs mount (its
    // process killed) answers every access with ENOTCONN, and is cleared here, saying so.
    // A live mount there is refused, but a foreground mount (a user's) goes over it as it always did.
    if (isMounted(dir) && !(argv.foreground && (findMountProcess(dir, process.pid) !== undefined || mountAt(dir)?.fstype !== BRICKFS_FSTYPE))) {
      const cleared = await clearStaleMount(dir, process.pid).catch((e: Error) => {
        throw new OperationError(e.message);
      });
      if (cleared) process.stderr.write(`brickfs: ${cleared}; mounting afresh\n`);
    }
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new OperationError(`mount point ${dir} does not exist or is not a directory; create it with mkdir -p ${dir}`);
    // As libfuse 2's fusermount did: a mount hides what the directory holds, which surprises
    // (a live mount there, kept above, is another matter: its entries are not the directory's).
    if (!opts.nonempty && !isMounted(dir)) {
      const entries = fs.readdirSync(dir);
      if (entries.length > 0) {
        throw new UsageError(`mount point ${dir} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, hidden while mounted); mount on an empty directory, or add -o nonempty to mount over them`);
      }
    }
    if (argv.foreground) await mountInForeground(text, name, source, dir, argv.o, watch);
    else await mountInBackground(text, source, dir, argv.o, watch);
  },
};
