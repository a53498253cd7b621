import type { Frame } from '../../lib/frame.js';
import type { FopArgs, FopName, FopReply } from '../../lib/fops.js';
import { Xlator } from '../../lib/xlator.js';

/**
 * A pass-through translator for unit tests that notes the uid of the frame each fop came
 * down with ("write 1001"): which caller a translator's deferred work goes as.
 */
export class FrameSpy extends Xlator {
  readonly uids: string[] = [];

  override call<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    this.uids.push(`${fop} ${frame.uid}`);
    return super.call(fop, args, frame);
  }
}

/** A caller's frame, distinguishable by uid (gid = uid, pid 4000 + uid). */
export const userFrame = (uid: number): Frame => ({ uid, gid: uid, groups: [], pid: 4000 + uid });
