import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Bookkeeping of mount processes, without loading FUSE (the CLI imports this eagerly).

/** root's run directory, unless BRICKFS_RUN_DIR moves it. */
export const ROOT_RUN_DIR = '/run/brickfs';

/** The directory of a run directory that holds each mount's pidfile, log and volfile copy. */
export function mountsDir(run: string): string {
  return path.join(run, 'mounts');
}

/** Where mount processes leave their pidfiles, so `brickfs umount` can find them. */
export function runDir(): string {
  const dir = process.env.BRICKFS_RUN_DIR ?? (process.getuid?.() === 0 ? ROOT_RUN_DIR : path.join(os.tmpdir(), 'brickfs-run'));
  fs.mkdirSync(mountsDir(dir), { recursive: true });
  return dir;
}

/**
 * A file `brickfs mount` keeps for a mount point under the run directory: the mount process's
 * pidfile, its log or the volfile it was started with (/run/brickfs/mounts/_mnt_demo.log).
 */
export function mountRunFile(mountpoint: string, kind: 'pid' | 'log' | 'vol'): string {
  return path.join(mountsDir(runDir()), `${path.resolve(mountpoint).replace(/\//g, '_')}.${kind}`);
}

/** The pidfile of the mount process serving a mount point. */
export function mountPidfile(mountpoint: string): string {
  return mountRunFile(mountpoint, 'pid');
}

/** Undoes the octal escapes (\040 for a space...) of /proc/mounts and mountinfo fields. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** What /proc/self/mountinfo says of one mount. */
export interface MountEntry {
  /** MAJ:MIN of the mounted filesystem (for FUSE, the connection: /sys/fs/fuse/connections/MIN). */
  device: string;
  /** "fuse.brickfs" for a brickfs mount (libfuse's subtype). */
  fstype: string;
  /** What was mounted: "host:/vol" or the volfile's name for a brickfs mount. */
  source: string;
}

/** The filesystem type of a brickfs mount in /proc/mounts (FUSE with subtype=brickfs). */
export const BRICKFS_FSTYPE = 'fuse.brickfs';

/** The mounts on a path right now, oldest first (/proc/self/mountinfo); never touches the path itself. */
function mountsAt(mountpoint: string): MountEntry[] {
  const want = path.resolve(mountpoint);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    // Fields: id, parent id, major:minor, root, mount point, options, optional fields..., "-", fstype, source, super options.
    .map((line) => line.split(' '))
    .filter((f) => f[4] !== undefined && unescapeMountField(f[4]) === want)
    .map((f) => {
      const dash = f.indexOf('-', 6);
      return { device: f[2]!, fstype: dash > 0 ? f[dash + 1] ?? '' : '', source: dash > 0 ? unescapeMountField(f[dash + 2] ?? '') : '' };
    });
}

/** True when a path is a mount point right now. */
export function isMounted(mountpoint: string): boolean {
  return mountsAt(mountpoint).length > 0;
}

/** The newest mount on a path, undefined when nothing is mounted there. */
export function mountAt(mountpoint: string): MountEntry | undefined {
  return mountsAt(mountpoint).pop();
}

/** The device (MAJ:MIN) of the newest mount on a path, undefined when nothing is mounted there. */
export function mountDevice(mountpoint: string): string | undefined {
  return mountAt(mountpoint)?.device;
}

/** The pid a mount point's pidfile names, undefined without a (readable, numeric) pidfile. */
export function readMountPid(mountpoint: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(mountPidfile(mountpoint), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The command line of a process (empty for a zombie, or a process stuck exiting), undefined when there is none. */
function cmdlineOf(pid: number): string[] | undefined {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (args.at(-1) === '') args.pop();
    return args;
  } catch {
    return undefined;
  }
}

/**
 * Whether pid is a live brickfs mount process serving mountpoint: its command line is
 * `node ... brickfs[.js] mount ... DIR ... --foreground` with DIR the mount point (absolute, or
 * relative to the process's working directory). A pidfile outlives its process and the number
 * goes to whatever process the kernel starts next; a zombie, or a process stuck exiting, has an
 * empty command line and is no mount process either.
 */
export function isMountProcess(pid: number, mountpoint: string): boolean {
  const args = cmdlineOf(pid);
  if (!args?.includes('mount') || !args.includes('--foreground')) return false;
  if (!args.some((a) => /(^|\/)brickfs(\.js)?$/.test(a))) return false;
  let cwd: string | undefined;
  try {
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch { /* another user's process: absolute arguments only */ }
  const want = path.resolve(mountpoint);
  return args.some((a) => (path.isAbsolute(a) ? path.resolve(a) : cwd !== undefined ? path.resolve(cwd, a) : undefined) === want);
}

/**
 * The live mount process of a mount point: the pidfile's, when it checks out (isMountProcess),
 * else any process whose command line is a mount of it (a pidfile lost, or overwritten), but
 * never `except` (a mount process looking for another one on its mount point).
 */
export function findMountProcess(mountpoint: string, except?: number): number | undefined {
  const fromFile = readMountPid(mountpoint);
  if (fromFile !== undefined && fromFile !== except && isMountProcess(fromFile, mountpoint)) return fromFile;
  let pids: number[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return undefined;
  }
  return pids.find((pid) => pid !== except && pid !== fromFile && isMountProcess(pid, mountpoint));
}

/** Where the kernel's fusectl filesystem shows each FUSE connection (by device number). */
const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Aborts a FUSE connection through fusectl (/sys/fs/fuse/connections/N/abort, mounting
 * fusectl there first if nothing has): every request waiting on it, sent or not, fails with
 * ENOTCONN at once. The one way out for a mount whose serving process can no longer answer
 * (stuck, or gone but for a thread waiting on its own mount); a no-op for a connection
 * already dead. device is MAJ:MIN from mountinfo. Needs root; says whether it aborted.
 */
export function abortFuseConnection(device: string): boolean {
  const [maj, min] = device.split(':').map(Number);
  if (!Number.isInteger(maj) || !Number.isInteger(min)) return false;
  // The kernel names the directory after its dev_t (MAJ << 20 | MIN; FUSE's major is 0).
  const abort = path.join(FUSECTL, String(maj! * 2 ** 20 + min!), 'abort');
  if (!fs.existsSync(abort) && !fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === FUSECTL)) {
    try {
      execFileSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL], { stdio: 'ignore' });
    } catch { /* not root, or no fusectl: nothing to abort with */ }
  }
  try {
    fs.writeFileSync(abort, '1');
    return true;
  } catch {
    return false;
  }
}

/** Detaches a mount lazily (fusermount -uz, or umount -l where there is no fusermount); never touches the mount itself. */
export async function lazyUnmount(mountpoint: string): Promise<void> {
  const run = (cmd: string, args: string[]): Promise<string | undefined> => new Promise((resolve) => {
    execFile(cmd, args, (err, _out, stderr) => resolve(err ? (stderr.trim() || err.message) : undefined));
  });
  const fuser = await run('fusermount', ['-uz', mountpoint]);
  if (fuser === undefined || !isMounted(mountpoint)) return;
  const plain = await run('umount', ['-l', mountpoint]);
  if (plain !== undefined && isMounted(mountpoint)) throw new Error(`could not unmount ${mountpoint}: ${fuser}; ${plain}`);
}

/** How long `brickfs mount` waits for a mount no process serves to answer a stat before calling it hung. */
const STALE_PROBE_MS = 3000;

/**
 * A brickfs mount on mountpoint that no live mount process serves (its process was killed):
 * the kernel answers ENOTCONN for everything under it. It is unmounted (after its FUSE
 * connection is aborted, should a thread of the dead process still hold it) and the stale
 * pidfile removed. Returns what was done, in a sentence for the user, or undefined when
 * nothing stale is mounted there. Throws (with what to run) when the mount is not ours, is
 * still served, or does not answer.
 *
 * The one access to the mount point is a stat, made only when no mount process of it runs
 * (never from the process serving it: except is that process's pid), and given up after
 * STALE_PROBE_MS.
 */
export async function clearStaleMount(mountpoint: string, except?: number): Promise<string | undefined> {
  const m = mountAt(mountpoint);
  if (!m) return undefined;
  const dir = path.resolve(mountpoint);
  const live = findMountProcess(dir, except);
  if (live !== undefined) throw new Error(`${dir} is already mounted (${m.source}, mount process ${live}); unmount it first: brickfs umount ${dir}`);
  if (m.fstype !== BRICKFS_FSTYPE) throw new Error(`${dir} is already a mount point (${m.fstype} ${m.source}); unmount it first`);
  let timer: NodeJS.Timeout | undefined;
  const probe = await Promise.race([
    fs.promises.stat(dir).then(() => 'answers', (e: NodeJS.ErrnoException) => e.code ?? e.message),
    new Promise<string>((resolve) => { timer = setTimeout(() => resolve('hangs'), STALE_PROBE_MS); }),
  ]);
  clearTimeout(timer);
  if (probe === 'hangs') throw new Error(`${dir} holds a brickfs mount (${m.source}) that does not answer, and no mount process of it runs; remove it with: brickfs umount ${dir}`);
  if (probe !== 'ENOTCONN' && probe !== 'ENXIO') throw new Error(`${dir} holds a brickfs mount (${m.source}) served by no brickfs mount process this host shows (stat: ${probe}); unmount it first: brickfs umount ${dir}`);
  abortFuseConnection(m.device);
  await lazyUnmount(dir);
  const pid = readMountPid(dir);
  fs.rmSync(mountPidfile(dir), { force: true });
  return `${dir} held a stale brickfs mount of ${m.source} (its mount process${pid ? ` ${pid}` : ''} is gone: every access failed with ENOTCONN, "Transport endpoint is not connected"); unmounted it`;
}
