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

/** True when a path is a mount point right now (from /proc/self/mountinfo). */
export function isMounted(mountpoint: string): boolean {
  const want = path.resolve(mountpoint);
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => {
    const mp = line.split(' ')[4];
    return mp !== undefined && mp.replace(/\\040/g, ' ') === want;
  });
}
