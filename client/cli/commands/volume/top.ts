import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError, UsageError } from '../../../../lib/errors.js';
import { TOP_LISTS, type TopList, type TopReply } from '../../../../lib/mgmt/profile.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface TopArgs extends GlobalArgs {
  volname: string;
  list: string;
  words: string[];
  json: boolean;
}

const USAGE = 'usage: brickfs volume top VOL open|read|write|opendir [list-cnt N] [--json]';

/** gluster's words after the list: `list-cnt N` (N from 1 to 1024; 100 when absent). */
export function parseTopWords(list: string, words: readonly string[]): { list: TopList; count: number } {
  if (!TOP_LISTS.includes(list as TopList)) throw new UsageError(`unknown top list "${list}": type open, read, write or opendir\n${USAGE}`);
  if (words.length === 0) return { list: list as TopList, count: 100 };
  const n = Number(words[1]);
  if (words[0] !== 'list-cnt' || words.length !== 2 || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new UsageError(`expected "list-cnt N" with N from 1 to 1024 after the list, not "${words.join(' ')}"\n${USAGE}`);
  }
  return { list: list as TopList, count: n };
}

/** gluster's gf_cli_print_top layout: per brick, the open fd line for open, then count and name, most first. */
export function formatTop(r: TopReply): string {
  let out = '';
  for (const b of r.bricks) {
    out += `Brick: ${b.brick}\n`;
    if (b.error) {
      out += `${b.error}\n`;
      continue;
    }
    if (b.openFds) out += `Current open fds: ${b.openFds.current}, Max open fds: ${b.openFds.max}, Max openfd time: ${b.openFds.maxAt}\n`;
    if (!b.entries?.length) continue;
    out += 'Count\t\tfilename\n=======================\n';
    for (const e of b.entries) out += `${e.count}\t\t${e.path}\n`;
  }
  return out;
}

export const command: CommandModule<GlobalArgs, TopArgs> = {
  command: 'top <volname> <list> [words..]',
  describe: 'The files each brick opened, read or wrote most, or the directories it listed most (as `gluster volume top`)',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume top VOL open|read|write|opendir [list-cnt N] [--json]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('list', { type: 'string', demandOption: true, describe: 'open | read | write | opendir' })
    .positional('words', { type: 'string', array: true, default: [], describe: 'list-cnt N: at most N names per brick (default 100)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"name", "list", "bricks": [{"brick", "entries": [{"path", "count"}], "openFds"?} | {"brick", "error"}]}' })
    .example('$0 volume top demo read list-cnt 10', 'the 10 files each brick served most reads of')
    .example('$0 volume top demo open', 'open fds now, the most there were, and the most opened files')
    .epilog('Counted since each brick process started, whether or not a profile runs; each brick keeps its 1024 most counted names per list.') as unknown as Argv<TopArgs>,
  handler: async (argv: ArgumentsCamelCase<TopArgs>) => {
    const { list, count } = parseTopWords(String(argv.list), (argv.words ?? []).map(String));
    await labelled(`volume top: ${argv.volname}`, async () => {
      const r = await MgmtApi.fromArgs(argv).json<TopReply>('GET', volumePath(argv.volname, `/top?list=${list}&count=${count}`));
      process.stdout.write(argv.json ? `${JSON.stringify(r, null, 2)}\n` : formatTop(r));
      const missing = r.bricks.filter((b) => b.error).length;
      if (missing) throw new OperationError(`${missing} of ${r.bricks.length} bricks gave no list (above, why)`);
    });
  },
};
