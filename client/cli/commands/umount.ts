import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError } from '../../../lib/errors.js';
import { isMounted, mountPidfile } from '../../mount-table.js';

interface UmountArgs {
  dir: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Asks the mount process to unmount and exit; falls back to a lazy fusermount. */
export async function unmount(dir: string): Promise<void> {
  if (!isMounted(dir)) throw new OperationError(`${dir} is not mounted`);
  const pidText = fs.readFileSync(mountPidfile(dir), { encoding: 'utf8', flag: 'r' } as const);
  const pid = Number(pidText.trim());
  if (pid && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && (alive(pid) || isMounted(dir)); i++) await sleep(100);
  }
  if (isMounted(dir)) {
    await promisify(execFile)('fusermount', ['-uz', dir]).catch((e: Error) => {
      throw new OperationError(`could not unmount ${dir}: ${e.message}`);
    });
  }
}

export const command: CommandModule<object, UmountArgs> = {
  command: 'umount <dir>',
  describe: 'Unmount a brickfs mount and stop its client process',
  builder: (y: Argv) => y
    .positional('dir', { type: 'string', demandOption: true, describe: 'The mount point' })
    .example('$0 umount /mnt/demo', 'unmount the volume mounted at /mnt/demo') as unknown as Argv<UmountArgs>,
  handler: async (argv: ArgumentsCamelCase<UmountArgs>) => {
    try {
      await unmount(argv.dir);
    } catch (e) {
      if (e instanceof OperationError) throw e;
      // No pidfile: not ours to signal, but still ours to unmount.
      if (isMounted(argv.dir)) {
        await promisify(execFile)('fusermount', ['-uz', argv.dir]).catch((err: Error) => {
          throw new OperationError(`could not unmount ${argv.dir}: ${err.message}`);
        });
      }
    }
  },
};
