// Running the brickfs CLI against a given management daemon.
import type { ExecutionContext } from 'ava';
import { cli, type RunResult } from './proc.js';

export type { RunResult } from './proc.js';

export interface CliOptions {
  /** HOST:PORT of the management daemon (passed as --server). */
  server?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs `brickfs [--server S] ARGS...`; resolves with exit code and output, never throws. */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<RunResult> {
  const server = opts.server === undefined ? [] : ['--server', opts.server];
  return cli([...server, ...args], { timeoutMs: opts.timeoutMs, env: opts.env });
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
