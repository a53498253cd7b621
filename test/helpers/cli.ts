// Running the brickfs CLI against a given management daemon.
import type { ExecutionContext } from 'ava';
import { cli, type RunResult } from './proc.js';
import { useTestTls } from './tls.js';

export type { RunResult } from './proc.js';

export interface CliOptions {
  /** HOST:PORT of the management daemon (passed as --server). */
  server?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs args through run; under BRICKFS_TEST_TLS=1, a `volume create VOL` that succeeded is
 * followed by `volume set VOL client.ssl on` and `server.ssl on`, so suites that make their
 * volumes through the CLI run them over TLS.
 */
export async function withTestTls(args: readonly string[], run: (a: readonly string[]) => Promise<RunResult>): Promise<RunResult> {
  const r = await run(args);
  const at = args.findIndex((a, i) => a === 'volume' && args[i + 1] === 'create');
  const name = at >= 0 ? args[at + 2] : undefined;
  if (r.code !== 0 || name === undefined) return r;
  for (const [k, v] of Object.entries(useTestTls())) {
    const s = await run([...args.slice(0, at), 'volume', 'set', name, k, v]);
    if (s.code !== 0) throw new Error(`volume set ${name} ${k} ${v} failed (${s.code}): ${s.stderr}`);
  }
  return r;
}

/**
 * What withTestTls adds to a volume the CLI creates in this run: its options, and the versions
 * their `volume set`s count (the volume is that many versions further on). None without
 * BRICKFS_TEST_TLS=1. Tests that count a volume's versions or list its options add these.
 */
export function testTlsVolume(): { options: Record<string, string>; versions: number } {
  const options = useTestTls();
  return { options, versions: Object.keys(options).length };
}

/** Runs `brickfs [--server S] ARGS...`; resolves with exit code and output, never throws. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<RunResult> {
  const server = opts.server === undefined ? [] : ['--server', opts.server];
  return withTestTls([...server, ...args], (a) => cli([...a], { timeoutMs: opts.timeoutMs, env: opts.env }));
}

/** Runs the CLI, fails the test unless it exits 0, and returns stdout. */
export async function runCliOk(t: Pick<ExecutionContext, 'fail'>, args: readonly string[], opts: CliOptions = {}): Promise<string> {
  const r = await runCli(args, opts);
  if (r.code !== 0) t.fail(`brickfs ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Runs a `--json` command that must succeed and parses its output. */
export async function runCliJson<T>(t: Pick<ExecutionContext, 'fail'>, args: readonly string[], opts: CliOptions = {}): Promise<T> {
  return JSON.parse(await runCliOk(t, args, opts)) as T;
}
