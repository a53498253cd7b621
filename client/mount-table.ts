import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Bookkeeping of mount processes, without loading FUSE (the CLI imports this eagerly).

/** Where mount processes leave their pidfiles, so `brickfs umount` can find them. */
export function runDir(): string {
  const dir = process.env.BRICKFS_RUN_DIR ?? (process.getuid?.() === 0 ? '/run/brickfs' : path.join(os.tmpdir(), 'brickfs-run'));
  fs.mkdirSync(path.join(dir, 'mounts'), { recursive: true });
  return dir;
}

/**
 * A file `brickfs mount` keeps for a mount point under the run directory: the mount process's
 * pidfile, its log or the volfile it was started with (/run/brickfs/mounts/_mnt_demo.log).
 */
export function mountRunFile(mountpoint: string, kind: 'pid' | 'log' | 'vol'): string {
  return path.join(runDir(), 'mounts', `${path.resolve(mountpoint).replace(/\//g, '_')}.${kind}`);
}

/** The pidfile of the mount process serving a mount point. */
export function mountPidfile(mountpoint: string): string {
  return mountRunFile(mountpoint, 'pid');
}

/** Undoes the octal escapes (\040 for a space...) of /proc/mounts and mountinfo fields. */
export function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The devices (MAJ:MIN) of the mounts on a path right now, oldest first (/proc/self/mountinfo). */
function mountsAt(mountpoint: string): string[] {
  const want = path.resolve(mountpoint);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    // Fields: id, parent id, major:minor, root, mount point, ...
    .map((line) => line.split(' '))
    .filter((f) => f[4] !== undefined && unescapeMountField(f[4]) === want)
    .map((f) => f[2]!);
}

/** True when a path is a mount point right now. */
export function isMounted(mountpoint: string): boolean {
  return mountsAt(mountpoint).length > 0;
}

/** The device (MAJ:MIN) of the newest mount on a path, undefined when nothing is mounted there. */
export function mountDevice(mountpoint: string): string | undefined {
  return mountsAt(mountpoint).pop();
}
