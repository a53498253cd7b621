import fs from 'node:fs';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError } from '../../../lib/errors.js';
import {
  abortFuseConnection, BRICKFS_FSTYPE, findMountProcess, isMounted, lazyUnmount, mountAt, mountPidfile, readMountPid,
} from '../../mount-table.js';

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

/** How long the mount process has to unmount and exit after SIGTERM before its connection is aborted. */
const STOP_WAIT_MS = 10_000;

/**
 * Asks the mount process to unmount and exit; falls back to a lazy unmount. The process
 * signalled is the mount's (its command line is a `brickfs mount` of this mount point), never
 * just whatever now has the pidfile's number. A brickfs mount no live process serves (killed,
 * or stuck on its way out) has its FUSE connection aborted first (fusectl), which frees
 * anything still waiting on it. Returns notes for the user (a stale pidfile left alone...).
 */
export async function unmount(dir: string): Promise<string[]> {
  const notes: string[] = [];
  const filePid = readMountPid(dir);
  const pid = findMountProcess(dir);
  const staleFile = filePid !== undefined && filePid !== pid;
  if (staleFile && alive(filePid)) notes.push(`the pidfile ${mountPidfile(dir)} names pid ${filePid}, which is not the mount process of ${path.resolve(dir)}: left it alone`);
  if (!isMounted(dir)) {
    if (staleFile) fs.rmSync(mountPidfile(dir), { force: true });
    throw new OperationError(`${dir} is not mounted`);
  }
  const m = mountAt(dir)!;
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    for (let waited = 0; waited < STOP_WAIT_MS && (alive(pid) || isMounted(dir)); waited += 100) await sleep(100);
    if (isMounted(dir) && mountAt(dir)?.device === m.device && m.fstype === BRICKFS_FSTYPE && abortFuseConnection(m.device)) {
      notes.push(`mount process ${pid} did not unmount within ${STOP_WAIT_MS / 1000} s: aborted its FUSE connection`);
    }
  } else if (m.fstype === BRICKFS_FSTYPE) {
    // No process serves it: the connection is dead already, or held by a process stuck exiting.
    abortFuseConnection(m.device);
  }
  if (isMounted(dir)) {
    await lazyUnmount(dir).catch((e: Error) => {
      throw new OperationError(e.message);
    });
  }
  if (staleFile) fs.rmSync(mountPidfile(dir), { force: true });
  return notes;
}

export const command: CommandModule<object, UmountArgs> = {
  command: 'umount <dir>',
  describe: 'Unmount a brickfs mount and stop its client process',
  builder: (y: Argv) => y
    .positional('dir', { type: 'string', demandOption: true, describe: 'The mount point' })
    .example('$0 umount /mnt/demo', 'unmount the volume mounted at /mnt/demo') as unknown as Argv<UmountArgs>,
  handler: async (argv: ArgumentsCamelCase<UmountArgs>) => {
    for (const note of await unmount(argv.dir)) process.stderr.write(`brickfs: ${note}\n`);
  },
};
