// How the processes every byte of a file passes through are started: the mount process, the
// bricks and rebalance (which copies files from brick to brick). Tuned for moving bulk data
// through fresh Buffers; measured in docs/performance.md ("Large reads and writes").
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Each MiB read or written arrives in fresh external buffers (Node reads a TCP stream into a
 * new 64 KiB buffer per read, and ws joins a message spanning several into another). V8
 * counts them against the old generation and, at its default starting limit, ran a full
 * collection every ~10 MiB moved: 57 mark-compacts, ~0.4 s of main-thread time, in a 512 MiB
 * read. Starting the heap at 128 MB lets them die in bulk (peak RSS of a mount during a
 * 512 MiB read: 130 → 169 MB).
 */
export const DATA_PATH_NODE_FLAGS: readonly string[] = ['--initial-heap-size=128'];

/**
 * glibc malloc tunables. A joined 1 MiB message is above glibc's mmap threshold, and once a
 * collection frees a run of them the heap top is trimmed: every such buffer came from fresh
 * pages, and faulting them in was ws's join (`consume`) showing as 1.1 s of a 512 MiB read.
 * Serving them from the heap and keeping up to 128 MiB of freed top (grown 16 MiB at a time)
 * makes that copy land in warm pages. A GLIBC_TUNABLES the user set is left as it is.
 */
export const DATA_PATH_GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728:glibc.malloc.top_pad=16777216';

/** Runs `node ARGS` as a data-path process: DATA_PATH_NODE_FLAGS, and the malloc tunables in its environment. */
export function spawnDataPath(args: readonly string[], opts: SpawnOptions): ChildProcess {
  const env = { ...(opts.env ?? process.env) };
  env.GLIBC_TUNABLES ??= DATA_PATH_GLIBC_TUNABLES;
  return spawn(process.execPath, [...DATA_PATH_NODE_FLAGS, ...args], { ...opts, env });
}
