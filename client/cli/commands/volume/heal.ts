import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../../../../lib/errors.js';
import type { HealReport, HealRequest } from '../../../heal.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { watch } from '../../live.js';

interface HealArgs extends GlobalArgs {
  volname: string;
  what: string[];
  json: boolean;
  watch: boolean;
  interval: number;
}

const USAGE = 'usage: brickfs volume heal VOL [info|full|split-brain bigger-file FILE|split-brain latest-mtime FILE|split-brain source-brick HOST:PATH FILE]';

/** Turns the words after the volume name into a heal request, as gluster spells them. */
export function parseHealWords(words: string[]): HealRequest {
  const [first, policy, a, b] = words;
  if (words.length === 0) return { op: 'index' };
  if (first === 'info' && words.length === 1) return { op: 'info' };
  if (first === 'full' && words.length === 1) return { op: 'full' };
  if (first === 'split-brain') {
    const file = policy === 'source-brick' ? b : a;
    if ((policy === 'bigger-file' || policy === 'latest-mtime') && words.length === 3 && file?.startsWith('/')) return { op: 'split-brain', policy, file };
    if (policy === 'source-brick' && words.length === 4 && a?.includes(':/') && file?.startsWith('/')) return { op: 'split-brain', policy, file, brick: a };
    throw new UsageError(`split-brain needs a policy and a volume path (FILE starts with /)\n${USAGE}`);
  }
  throw new UsageError(`unknown heal request "${words.join(' ')}"\n${USAGE}`);
}

function print(req: HealRequest, r: HealReport, out: Pick<NodeJS.WritableStream, 'write'> = process.stdout): void {
  if (req.op === 'info') {
    // gluster's layout: each brick with what its own index lists, then its status and count.
    for (const b of r.bricks ?? []) {
      out.write(`Brick ${b.brick}\n`);
      for (const p of b.entries ?? []) out.write(`${p.path}${p.splitBrain ? ' - Is in split-brain' : ''} (pending on: ${p.blamed.join(' ') || '-'})\n`);
      out.write(`Status: ${b.status}\nNumber of entries: ${b.entries ? b.entries.length : '-'}\n\n`);
    }
  } else if (req.op === 'split-brain') {
    for (const s of r.sets) out.write(`Healed ${req.file} from ${s.source} (replica set ${s.set})\n`);
    if (!r.sets.length) out.write(`${req.file} was found on no replica set\n`);
  } else {
    const healed = r.sets.reduce((n, s) => n + (s.healed ?? 0), 0);
    const split = r.sets.flatMap((s) => s.splitBrain ?? []);
    out.write(`Healed ${healed} entr${healed === 1 ? 'y' : 'ies'}${split.length ? `; in split-brain (use \`volume heal VOL split-brain POLICY FILE\`): ${split.join(' ')}` : ''}\n`);
  }
}

export const command: CommandModule<GlobalArgs, HealArgs> = {
  command: 'heal <volname> [what..]',
  describe: 'Heal replicas now, list what is pending, or resolve a split-brain',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('what', { type: 'string', array: true, default: [], describe: 'info | full | split-brain POLICY [HOST:PATH] FILE' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
    .option('watch', { type: 'boolean', default: false, describe: 'With info: show it again every --interval seconds until nothing is pending (in place on a terminal)' })
    .option('interval', { type: 'number', default: 2, describe: 'Seconds between two looks with --watch' })
    .example('$0 volume heal demo', 'heal every path the bricks index as pending')
    .example('$0 volume heal demo info', 'list what each brick\'s heal index holds, brick by brick')
    .example('$0 volume heal demo info --watch', 'follow it until nothing is pending')
    .example('$0 volume heal demo full', 'crawl the whole volume and heal what differs')
    .example('$0 volume heal demo split-brain source-brick host1:/srv/b1 /dir/file', 'take that brick\'s copy') as unknown as Argv<HealArgs>,
  handler: async (argv: ArgumentsCamelCase<HealArgs>) => {
    const req = parseHealWords((argv.what ?? []).map(String));
    if (argv.watch && (req.op !== 'info' || argv.json)) throw new UsageError(`--watch follows heal info, without --json: brickfs volume heal ${argv.volname} info --watch`);
    if (!(argv.interval > 0)) throw new UsageError(`--interval is seconds, more than 0: brickfs volume heal ${argv.volname} info --watch --interval 2`);
    await labelled(`volume heal: ${argv.volname}`, async () => {
      const api = MgmtApi.fromArgs(argv);
      // The daemon runs it: heal reads the heal index, which only the pool's services may.
      const heal = (): Promise<HealReport> => api.json<HealReport>('POST', volumePath(argv.volname, '/heal'), req, 0);
      if (argv.watch) {
        await watch(async () => {
          const r = await heal();
          let text = '';
          print(req, r, { write: (s: string) => { text += s; return true; } });
          const pending = (r.bricks ?? []).some((b) => !b.entries || b.entries.length > 0);
          return { text, done: !pending };
        }, { intervalMs: argv.interval * 1000 });
        return;
      }
      const report = await heal();
      if (argv.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else print(req, report);
    });
  },
};
