// GlusterFS's statedump, our way: on SIGUSR1 a mount or brick process writes one line
// `<ISO time> statedump <JSON>` to its log (stderr). This module writes that line and reads
// it back for whoever sent the signal (the daemon's `volume statedump`, tests).
import fs from 'node:fs';

const LINE = /statedump (\{.*\})\n/;
const POLL_MS = 50;

/** Writes a statedump line to stderr, the process's log. */
export function writeStatedump(dump: Record<string, unknown>): void {
  process.stderr.write(`${new Date().toISOString()} statedump ${JSON.stringify(dump)}\n`);
}

/** Sends SIGUSR1 to pid and returns the statedump it writes to `log` within waitMs. */
export async function requestStatedump(pid: number, log: string, waitMs = 5000): Promise<Record<string, unknown>> {
  const from = fs.statSync(log, { throwIfNoEntry: false })?.size ?? 0;
  process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const m = LINE.exec(fs.readFileSync(log).subarray(from).toString('utf8'));
    if (m) return JSON.parse(m[1]!) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`no statedump in ${log} within ${waitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
