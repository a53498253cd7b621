// `brickfs install`: puts this checkout in place as a system service, as a distribution's
// package would: the brickfs command, mount(8)'s helper, the management daemon's systemd
// unit and a logrotate file. Every file names this checkout and this node by absolute path
// (a boot has no PATH to find them by) and carries MARK, so --uninstall removes only files
// it made. Nothing here starts, enables or reloads anything: this host may run no systemd.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StatePaths } from '../brick/mgmt/store.js';
import { mountsDir, ROOT_RUN_DIR } from './mount-table.js';

/** The line every installed file carries: how to tell ours from a file someone else put there. */
const MARK = 'Put in place by `brickfs install`; `brickfs install --uninstall` removes it.';

/** The checkout whose bin/ the installed files run. */
export const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export const UNIT_NAME = 'brickfsd.service';

/** Where each file goes, relative to the prefix (mount(8) looks for helpers in /sbin only). */
export const INSTALL_PATHS = {
  cli: 'usr/local/sbin/brickfs',
  mountHelper: 'sbin/mount.brickfs',
  unit: `etc/systemd/system/${UNIT_NAME}`,
  logrotate: 'etc/logrotate.d/brickfs',
} as const;

/** Extra daemon options (--listen, --store...) for the unit, as gluster's /etc/sysconfig/glusterd. */
export const DAEMON_ENV_FILE = '/etc/default/brickfsd';

export interface InstallOptions {
  /** The root the files go under ("/" for the system itself). */
  prefix: string;
  /** The daemon's state directory (its pidfile and logs are under it). */
  stateDir: string;
  /** The node binary the files run (this one by default). */
  node?: string;
}

export interface InstallFile {
  /** Path relative to the prefix. */
  rel: string;
  mode: number;
  content: string;
}

/** A word for sh: single-quoted unless it needs none. */
function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A word for a systemd Exec line: quoted only when it has blanks or quotes (systemd.service, "Command lines"). */
function unitQuote(s: string): string {
  return /[\s"'\\]/.test(s) ? `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : s;
}

function wrapper(what: string, script: string, node: string): string {
  return `#!/bin/sh
# ${what}, from the brickfs checkout ${CHECKOUT}.
# ${MARK}
exec ${shQuote(node)} ${shQuote(path.join(CHECKOUT, 'bin', script))} "$@"
`;
}

/**
 * The management daemon as glusterd.service runs glusterd: forking (`--detach` returns once
 * the daemon answers, so units ordered after this one find it serving), before
 * network-online.target so that _netdev mounts of this host's own volumes find it up, and
 * KillMode=process because bricks outlive their daemon (the next one adopts them).
 */
function unit(o: Required<InstallOptions>): string {
  const paths = new StatePaths(o.stateDir);
  const exec = [o.node, path.join(CHECKOUT, 'bin', 'brickfs.js'), 'daemon', '--detach', '--state', o.stateDir].map(unitQuote).join(' ');
  return `# The brickfs management daemon, from the brickfs checkout ${CHECKOUT}.
# ${MARK}
# Daemon options (--listen ADDR, --store etcd://..., --port) go in ${DAEMON_ENV_FILE}:
#   BRICKFSD_OPTIONS="--listen 10.0.0.1 --store etcd://10.0.0.1:2379"
[Unit]
Description=brickfs management daemon
Documentation=file://${CHECKOUT}/docs/operations.md
After=network.target
Before=network-online.target

[Service]
Type=forking
PIDFile=${paths.daemonPidfile}
Environment=BRICKFSD_OPTIONS=
EnvironmentFile=-${DAEMON_ENV_FILE}
ExecStart=${exec} $BRICKFSD_OPTIONS
KillMode=process
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/**
 * Every brickfs process appends to its log and to its span file (O_APPEND), so copytruncate
 * needs no signal to the process: its next line lands at the start of the emptied file.
 */
function logrotate(o: Required<InstallOptions>): string {
  const paths = new StatePaths(o.stateDir);
  const dirs = [paths.logDir, paths.brickLogDir, mountsDir(ROOT_RUN_DIR)];
  const globs = dirs.flatMap((d) => [path.join(d, '*.log'), path.join(d, '*.spans.jsonl')]);
  return `# Logs of brickfs (the brickfs checkout ${CHECKOUT}): the management daemon, self-heal
# daemon and rebalance (${paths.logDir}), the bricks (${paths.brickLogDir}), the mounts
# (${mountsDir(ROOT_RUN_DIR)}), and the span files diagnostics.trace writes beside them.
# docs/operations.md, "Logs".
# ${MARK}
${globs.join(' ')} {
    weekly
    maxsize 100M
    rotate 8
    missingok
    notifempty
    compress
    delaycompress
    copytruncate
}
`;
}

/** The files `brickfs install` writes, with their content. */
export function installFiles(opts: InstallOptions): InstallFile[] {
  const o: Required<InstallOptions> = { node: process.execPath, ...opts };
  return [
    { rel: INSTALL_PATHS.cli, mode: 0o755, content: wrapper('The brickfs command', 'brickfs.js', o.node) },
    { rel: INSTALL_PATHS.mountHelper, mode: 0o755, content: wrapper('mount(8)\'s helper for `mount -t brickfs` and fstab lines', 'mount.brickfs.js', o.node) },
    { rel: INSTALL_PATHS.unit, mode: 0o644, content: unit(o) },
    { rel: INSTALL_PATHS.logrotate, mode: 0o644, content: logrotate(o) },
  ];
}

/** Whether a file is one `brickfs install` made (of any checkout). */
function ours(file: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').includes(MARK);
  } catch {
    return false;
  }
}

export class InstallRefusedError extends Error {}

/**
 * Writes every file under the prefix (replacing files an earlier install made) and returns
 * their paths. Refuses before writing anything when a file there is not one of ours.
 */
export function install(opts: InstallOptions): string[] {
  const files = installFiles(opts).map((f) => ({ ...f, abs: path.join(opts.prefix, f.rel) }));
  const foreign = files.filter((f) => fs.existsSync(f.abs) && !ours(f.abs)).map((f) => f.abs);
  if (foreign.length) throw new InstallRefusedError(`${foreign.join(', ')} ${foreign.length === 1 ? 'exists and was' : 'exist and were'} not put there by brickfs install; move ${foreign.length === 1 ? 'it' : 'them'} away first`);
  for (const f of files) {
    fs.mkdirSync(path.dirname(f.abs), { recursive: true });
    // Written beside, then renamed: a mount(8) running the helper meanwhile sees the old or the new one.
    const tmp = `${f.abs}.brickfs-install`;
    fs.writeFileSync(tmp, f.content, { mode: f.mode });
    fs.chmodSync(tmp, f.mode);
    fs.renameSync(tmp, f.abs);
  }
  return files.map((f) => f.abs);
}

/** Removes the installed files that are ours; returns what was removed and what was left (not ours). */
export function uninstall(prefix: string): { removed: string[]; kept: string[] } {
  const removed: string[] = [];
  const kept: string[] = [];
  for (const rel of Object.values(INSTALL_PATHS)) {
    const abs = path.join(prefix, rel);
    if (!fs.existsSync(abs)) continue;
    if (ours(abs)) {
      fs.rmSync(abs);
      removed.push(abs);
    } else {
      kept.push(abs);
    }
  }
  return { removed, kept };
}
