// What both FUSE bridges share (bridge.ts over fuse-native, lowlevel-bridge.ts over
// native/fuse-ll): which paths and attributes a mount exposes, errno mapping, the fsname
// option and the BRICKFS_PROFILE timing of kernel requests.
import { FsError } from '../../lib/errors.js';
import { BRICK_PRIVATE_DIR, INTERNAL_XATTR_PREFIX } from '../../lib/fops.js';
import { Logger } from '../../lib/log.js';
import { profileRecord, profileStart } from '../../lib/profile.js';

export interface BridgeOptions {
  /** Shown as the filesystem source in /proc/mounts (e.g. "host:/vol"). */
  fsname: string;
  /** Extra libfuse options from `mount -o`, already validated. */
  extraOptions?: string[];
  /** Seconds the kernel trusts attributes (mount -o attribute-timeout=); default 1. */
  attrTimeoutS?: number;
  /** Seconds the kernel trusts a name's entry (mount -o entry-timeout=); default 1. */
  entryTimeoutS?: number;
  /** Seconds the kernel trusts that a name does not exist (mount -o negative-timeout=); default 0. */
  negativeTimeoutS?: number;
  /**
   * The kernel's writeback cache (mount -o writeback-cache, libfuse 3 bridge only): writes
   * land in the page cache and go down in page-sized batches, and the kernel keeps mtime and
   * size. Off by default: docs/performance.md ("The kernel's writeback cache") says what another
   * client then sees.
   */
  writebackCache?: boolean;
}

/** fsname as a libfuse option value: options are comma separated, so commas and blanks go. */
export function fsnameOption(fsname: string): string {
  return fsname.replace(/[,\s]/g, '_');
}

const log = new Logger('fuse');

/** Negative errno from anything thrown (fuse-native's convention; negate for libfuse). */
export function errnoOf(e: unknown): number {
  const err = FsError.from(e);
  if (err.code === 'EIO' || err.code === 'EPROTO') log.warn(`EIO: ${err.message}`);
  return -err.errno;
}

/** Only user.* attributes pass through the mount; brickfs' own metadata never does. */
export function userXattr(name: string): boolean {
  return name.startsWith('user.') && !name.startsWith(INTERNAL_XATTR_PREFIX);
}

const PRIVATE_PATH = `/${BRICK_PRIVATE_DIR}`;

/**
 * The bricks' private directory (the rebalancer stages files under /.brickfs/migrate) is no
 * part of the volume: such paths never reach a graph.
 */
export function isPrivate(path: string): boolean {
  return path === PRIVATE_PATH || path.startsWith(`${PRIVATE_PATH}/`);
}

/**
 * Times every op of a bridge from the kernel's request to our answer (BRICKFS_PROFILE,
 * lib/profile.ts). arm() gets each call's arguments and a done() to call when the answer
 * goes out; it rewrites the arguments as its bridge needs (fuse-native: the callback).
 */
export function profiled<T extends object>(ops: T, arm: (args: unknown[], done: () => void) => void): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...a: unknown[]) => void][]) {
    out[name] = (...args: unknown[]) => {
      const start = profileStart();
      arm(args, () => profileRecord('fuse', name, start));
      fn(...args);
    };
  }
  return out as T;
}
