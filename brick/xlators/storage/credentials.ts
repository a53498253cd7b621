import type { Frame } from '../../../lib/frame.js';
import { becomeCaller, becomeRoot } from './sys.js';

/**
 * Runs fn with the caller's filesystem credentials on this thread (fsuid, fsgid and the
 * supplementary groups, per thread, as the kernel keeps them), then back to root's. The
 * brick's metadata calls are synchronous on the main thread, so the kernel itself creates
 * entries owned by the caller (group from a setgid parent), checks permissions, the sticky
 * bit and the chown/chmod rules, and clears setgid where ext4 would: exactly the local
 * disk's behaviour, not a copy of it in JavaScript. fn must not await: the thread pool's
 * threads keep root's credentials, and the next request must not run as this caller.
 * Root with its own group (the common case: bricks' own services, root's shells) skips the
 * switch.
 */
export function asCaller<T>(f: Frame, fn: () => T): T {
  if (f.uid === 0 && f.gid === 0) return fn();
  becomeCaller(f.uid, f.gid, f.groups);
  try {
    return fn();
  } finally {
    becomeRoot();
  }
}
