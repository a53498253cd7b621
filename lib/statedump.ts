// GlusterFS's statedump, our way: on SIGUSR1 a mount or brick process writes one record
// `{"msg":"statedump","statedump":{...}}` to its log (stderr). This module writes that record
// and reads it back for whoever sent the signal (the daemon's `volume statedump`, tests).
import fs from 'node:fs';
import { Logger, parseLogLines } from './log.js';

const POLL_MS = 50;
const log = new Logger('statedump');

/** Writes a statedump record to the process's log, whatever its level. */
export function writeStatedump(dump: Record<string, unknown>): void {
  log.always('statedump', { statedump: dump });
}

/** The first statedump record in a log's text. */
export function findStatedump(text: string): Record<string, unknown> | undefined {
  return parseLogLines(text).find((r) => r.msg === 'statedump' && r.statedump)?.statedump as Record<string, unknown> | undefined;
}

/** Sends SIGUSR1 to pid and returns the statedump it writes to `log` within waitMs. */
export async function requestStatedump(pid: number, log: string, waitMs = 5000): Promise<Record<string, unknown>> {
  const from = fs.statSync(log, { throwIfNoEntry: false })?.size ?? 0;
  process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const dump = findStatedump(fs.readFileSync(log).subarray(from).toString('utf8'));
    if (dump) return dump;
    if (Date.now() > deadline) throw new Error(`no statedump in ${log} within ${waitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
