import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_STATE_DIR } from '../../../brick/mgmt/defaults.js';
import { OperationError, UsageError } from '../../../lib/errors.js';
import { DAEMON_ENV_FILE, install, InstallRefusedError, UNIT_NAME, uninstall } from '../../install.js';
import type { GlobalArgs } from '../api.js';

interface InstallArgs extends GlobalArgs {
  prefix: string;
  state: string;
  uninstall: boolean;
}

/** A filesystem error as the user should read it: root is what installing into / needs. */
function failed(e: unknown, what: string): OperationError {
  const err = e as NodeJS.ErrnoException;
  const hint = err.code === 'EACCES' || err.code === 'EPERM' ? '; run it as root (sudo brickfs install), or give --prefix DIR' : '';
  return new OperationError(`${what}: failed: ${err.message}${hint}`);
}

export const command: CommandModule<GlobalArgs, InstallArgs> = {
  command: 'install',
  describe: 'Install the brickfs command, mount.brickfs, the daemon\'s systemd unit and a logrotate file',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 install [--prefix DIR] [--state DIR] [--uninstall]')
    .option('prefix', { type: 'string', default: '/', describe: 'Root to install under (a staging directory, a chroot)' })
    .option('state', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'State directory the installed daemon uses (its pidfile and logs)' })
    .option('uninstall', { type: 'boolean', default: false, describe: 'Remove the files an install put there' })
    .example('sudo $0 install', 'then: systemctl daemon-reload && systemctl enable --now brickfsd; mount -t brickfs localhost:/demo /mnt/demo')
    .example('$0 install --prefix /tmp/root', 'write the files under /tmp/root to look at them')
    .example('sudo $0 install --uninstall', 'remove them again')
    .epilog('Installs /usr/local/sbin/brickfs, /sbin/mount.brickfs (mount(8) looks for its helpers in /sbin), '
      + `/etc/systemd/system/${UNIT_NAME} and /etc/logrotate.d/brickfs, each running this checkout with this node by `
      + 'absolute path: move the checkout and install again. It starts and enables nothing. docs/operations.md.') as unknown as Argv<InstallArgs>,
  handler: (argv: ArgumentsCamelCase<InstallArgs>) => {
    if (!path.isAbsolute(argv.state)) throw new UsageError(`--state must be an absolute path (the unit runs from /), got ${argv.state}; for example --state ${DEFAULT_STATE_DIR}`);
    const prefix = path.resolve(argv.prefix);
    if (argv.uninstall) {
      let r: { removed: string[]; kept: string[] };
      try {
        r = uninstall(prefix);
      } catch (e) {
        throw failed(e, 'install --uninstall');
      }
      for (const f of r.removed) process.stdout.write(`removed ${f}\n`);
      if (r.removed.length === 0) process.stdout.write(`nothing of brickfs install under ${prefix}\n`);
      for (const f of r.kept) process.stderr.write(`brickfs: left ${f} alone: brickfs install did not put it there\n`);
      if (r.removed.some((f) => f.endsWith(UNIT_NAME)) && prefix === '/') process.stdout.write('then: systemctl daemon-reload\n');
      return;
    }
    let files: string[];
    try {
      files = install({ prefix, stateDir: argv.state });
    } catch (e) {
      if (e instanceof InstallRefusedError) throw new OperationError(`install: failed: ${e.message}`);
      throw failed(e, 'install');
    }
    for (const f of files) process.stdout.write(`installed ${f}\n`);
    if (prefix === '/') {
      process.stdout.write(`then: systemctl daemon-reload && systemctl enable --now brickfsd (daemon options: ${DAEMON_ENV_FILE}, BRICKFSD_OPTIONS="...")\n`);
    }
  },
};
