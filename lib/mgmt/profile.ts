// What `volume profile VOL info` and `volume top VOL LIST` answer (GET /v1/volumes/VOL/profile
// and /top, their --json), and what each brick's stats socket gives the daemon for them
// (brick/xlators/protocol/profile.ts keeps the counters).

export type TopList = 'open' | 'read' | 'write' | 'opendir';
export const TOP_LISTS: readonly TopList[] = ['open', 'read', 'write', 'opendir'];

/** One period of a brick's profile. */
export interface ProfilePeriod {
  durationS: number;
  /** Per fop: calls, and latencies in microseconds (0 while diagnostics.latency-measurement is off). */
  fops: Record<string, { calls: number; avgUs: number; minUs: number; maxUs: number }>;
  /** Reads and writes by block size: "4096" counts those of 4096 to 8191 bytes. */
  readBlocks: Record<string, number>;
  writeBlocks: Record<string, number>;
  bytesRead: number;
  bytesWritten: number;
}

/** A brick's answer to /profile. */
export interface BrickProfileReply {
  enabled: boolean;
  latency: boolean;
  /** Since the profile started. */
  cumulative?: ProfilePeriod;
  /** Since the last info, which this one ends; numbered from 0 since the profile started. */
  interval?: ProfilePeriod & { number: number };
}

/** A brick's answer to /top. */
export interface BrickTopReply {
  list: TopList;
  /** Most counted first. */
  entries: { path: string; count: number }[];
  /** For open: fds open now on this brick, the most there were, and when (ISO 8601). */
  openFds?: { current: number; max: number; maxAt: string };
}

/** GET /v1/volumes/VOL/profile: every brick of the volume, in volume order. */
export interface ProfileInfoReply {
  name: string;
  bricks: ({ brick: string; error?: string } & Partial<BrickProfileReply>)[];
}

/** GET /v1/volumes/VOL/top?list=LIST&count=N. */
export interface TopReply {
  name: string;
  list: TopList;
  bricks: ({ brick: string; error?: string } & Partial<BrickTopReply>)[];
}
