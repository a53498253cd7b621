// The brickfs CLI: one yargs command module per file under commands/, registered from
// the COMMANDS list below. Exit codes: 0 ok, 1 operation failed, 2 usage error.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { OperationError, UsageError } from '../../lib/errors.js';
import { editDistance } from '../../lib/nearest.js';
import { command as daemon } from './commands/daemon.js';
import { command as peer } from './commands/peer.js';
import { command as pool } from './commands/pool.js';
import { command as volume } from './commands/volume.js';
// mount / umount: owned by the client-side work (client/cli/commands/{mount,umount}.ts).
import { command as mount } from './commands/mount.js';
import { command as umount } from './commands/umount.js';
import { command as bench } from './commands/bench.js';
import { command as install } from './commands/install.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Erases a module's own argument types so modules fit one list; yargs checks arguments when parsing. */
function listed<T, U>(m: CommandModule<T, U>): CommandModule {
  return m as unknown as CommandModule;
}

/** Every top-level command, in the order `brickfs --help` shows them. */
const COMMANDS: readonly CommandModule[] = [
  listed(daemon),
  listed(peer),
  listed(pool),
  listed(volume),
  listed(mount), // client/cli/commands/mount.ts (mount work)
  listed(umount), // client/cli/commands/umount.ts (mount work)
  listed(bench), // client/cli/commands/bench.ts, client/bench/
  listed(install), // client/cli/commands/install.ts, client/install.ts
];

const DEFAULT_SERVER = 'localhost:7007';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The usage line, commands and examples of a help text: what to print under a usage error. */
function usageSummary(help: string): string {
  const lines = help.split('\n');
  const out = [`usage: ${lines[0]}`];
  for (const section of ['Commands:', 'Examples:']) {
    const i = lines.findIndex((l) => l.trim() === section);
    if (i < 0) continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '');
    out.push('', ...lines.slice(i, end < 0 ? undefined : end));
  }
  return out.join('\n');
}

/** yargs' recommendation (recommendCommands: within 3 edits) said with the word that was typed. */
function didYouMean(msg: string | null, argv: readonly string[]): string | undefined {
  const meant = /^Did you mean (.+)\?$/.exec(msg ?? '')?.[1];
  if (!meant) return undefined;
  const typed = argv.find((a) => !a.startsWith('-') && a !== meant && editDistance(a, meant) <= 3);
  return typed ? `unknown command "${typed}"; did you mean ${meant}?` : `unknown command; did you mean ${meant}?`;
}

let outputGuarded = false;

/**
 * Output errors end the command quietly: a reader that went away (`brickfs ... | head -1`,
 * EPIPE) is not a failure of the command, and any other (a terminal gone, a full disk) is said
 * once on stderr, if it still can be, with exit 1. Without this Node throws them as uncaught.
 */
function guardOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK);
      if (stream !== process.stderr) process.stderr.write(`brickfs: cannot write the output: ${e.message}\n`);
      process.exit(EXIT_FAILED);
    });
  }
}

/** Runs the CLI with argv (without node and script); resolves with the exit code, also set as process.exitCode. */
export async function main(argv: string[]): Promise<number> {
  guardOutput();
  // Help of the command that failed, captured in .fail() where yargs still knows which it was.
  let help = '';
  const parser: Argv = yargs(argv)
    .scriptName('brickfs')
    .usage('$0 <command> [options]')
    .option('server', {
      type: 'string',
      global: true,
      default: DEFAULT_SERVER,
      describe: 'Management daemon to talk to, HOST[:PORT]',
    })
    .strict()
    .recommendCommands()
    .demandCommand(1, 'give a command')
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .exitProcess(false)
    .wrap(Math.min(120, process.stdout.columns || 120))
    .fail((msg: string | null, err: Error | undefined, y: Argv) => {
      y.showHelp((s: string) => { help = s; });
      throw err ?? new UsageError(didYouMean(msg, argv) ?? msg ?? 'invalid command line');
    });
  for (const c of COMMANDS) parser.command(c);
  // yargs' own command, listed last: the script (bash, or zsh when $SHELL is zsh) completes by
  // asking `brickfs --get-yargs-completions`.
  parser.completion('completion', 'Print a shell completion script: brickfs completion >> ~/.bashrc');
  let code = EXIT_OK;
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`brickfs: ${e.message}\n${help ? `\n${usageSummary(help)}\n` : ''}`);
      code = EXIT_USAGE;
    } else if (e instanceof OperationError) {
      process.stderr.write(`${e.message}\n`);
      code = EXIT_FAILED;
    } else {
      process.stderr.write(`brickfs: ${(e as Error).message ?? String(e)}\n`);
      code = EXIT_FAILED;
    }
  }
  process.exitCode = code;
  return code;
}

// Run when executed directly (node dist/client/cli/index.js ...); bin/brickfs.js imports main().
const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(fs.realpathSync(entry)).href) {
  void main(process.argv.slice(2));
}
