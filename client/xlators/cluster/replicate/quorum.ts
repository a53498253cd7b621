import { FsError } from '../../../../lib/errors.js';

/** cluster.quorum-type: when replicated changes are refused. */
export type QuorumType = 'none' | 'auto' | 'fixed';

/**
 * Whether a change may go ahead with the replicas `up` of a set of n reachable. auto: more
 * than half, or exactly half including the first replica (so two halves of a split set
 * cannot both write); fixed: at least `count`; none: one.
 */
export function hasQuorum(type: QuorumType, count: number, n: number, up: readonly number[]): boolean {
  switch (type) {
    case 'none':
      return up.length > 0;
    case 'fixed':
      return up.length >= count;
    default:
      return up.length * 2 > n || (up.length * 2 === n && up.includes(0));
  }
}

/** The answer to a change refused for want of quorum: the volume is read-only for it. */
export function quorumLost(reachable: number, n: number): FsError {
  return FsError.of('EROFS', `quorum not met: ${reachable} of ${n} replicas reachable`);
}
