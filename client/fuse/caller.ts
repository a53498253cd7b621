import fs from 'node:fs';
import { BoundedMap } from '../../lib/bounded-map.js';
import type { Frame } from '../../lib/frame.js';

/**
 * How long a process's supplementary groups are trusted once read. A process changes its
 * groups rarely (setgroups before exec, mostly), and reading /proc per request would cost
 * more than the request; GlusterFS's fuse bridge caches them too (its gid-timeout).
 */
const GROUPS_TTL_MS = 1000;
/** Processes whose groups are remembered at most (every cache here is bounded). */
const GROUPS_CACHE_MAX = 4096;

/**
 * Frames for FUSE requests: the kernel gives uid, gid and pid with each request; the
 * supplementary groups come from /proc (fuse_req_getgroups does the same), cached per
 * process for a second. Root's are never read: root passes every check they could matter for.
 */
export class Callers {
  private readonly groups = new BoundedMap<string, { groups: readonly number[]; at: number }>(GROUPS_CACHE_MAX);
  /**
   * The last frame made and when its groups were read, reused while the same caller keeps
   * asking (most requests in a burst come from one process): no lookup per request.
   */
  private last?: { frame: Frame; at: number };

  frame(uid: number, gid: number, pid: number): Frame {
    const now = Date.now();
    const last = this.last;
    if (last && last.frame.uid === uid && last.frame.gid === gid && last.frame.pid === pid && (uid === 0 || now - last.at < GROUPS_TTL_MS)) {
      return last.frame;
    }
    const { groups, at } = uid === 0 ? { groups: [], at: now } : this.groupsOf(uid, gid, pid, now);
    const frame: Frame = Object.freeze({ uid, gid, pid, groups });
    this.last = { frame, at };
    return frame;
  }

  private groupsOf(uid: number, gid: number, pid: number, now: number): { groups: readonly number[]; at: number } {
    const key = `${pid}:${uid}:${gid}`;
    const e = this.groups.get(key);
    if (e && now - e.at < GROUPS_TTL_MS) return e;
    const fresh = { groups: readGroups(pid), at: now };
    this.groups.set(key, fresh);
    return fresh;
  }
}

/** The Groups: line of /proc/PID/status; none when the process is gone (its request is answered anyway). */
function readGroups(pid: number): readonly number[] {
  if (pid <= 0) return [];
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return [];
  }
  const m = /^Groups:\s*([0-9 \t]*)$/m.exec(text);
  if (!m) return [];
  return Object.freeze(m[1]!.trim().split(/\s+/).filter(Boolean).map(Number));
}
