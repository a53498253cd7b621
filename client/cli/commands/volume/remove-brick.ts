import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type {
  RemoveBrickEndReply, RemoveBrickRequest, RemoveBrickStartReply, RemoveBrickStatusReply,
} from '../../../../lib/mgmt/api.js';
import { formatBrick, parseRemoveBrickArgs, parseThrottle } from '../../../../lib/mgmt/args.js';
import { UsageError } from '../../../../lib/errors.js';
import { drainProgress, REBALANCE_THROTTLES } from '../../../../lib/mgmt/rebalance.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { formatRebalance } from '../../format.js';

interface RemoveBrickArgs extends GlobalArgs {
  volname: string;
  words: string[];
  throttle?: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, RemoveBrickArgs> = {
  command: 'remove-brick <volname> [words..]',
  describe: 'Shrink a volume: drain whole replica/stripe sets of bricks (start), watch (status), then take them out (commit)',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume remove-brick VOL HOST:/abs/path... start|status|commit|stop [force] [--json]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('words', { type: 'string', array: true, default: [], describe: 'BRICK... start | status | commit [force] | stop' })
    .option('throttle', { type: 'string', choices: [...REBALANCE_THROTTLES], describe: 'start: how hard the drain pushes (default normal)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the reply object (docs/mgmt-api.md)' })
    .example('$0 volume remove-brick demo localhost:/srv/b3 start', 'move the files of b3 to the other bricks')
    .example('$0 volume remove-brick demo localhost:/srv/b3 status', 'how far the drain is')
    .example('$0 volume remove-brick demo localhost:/srv/b3 commit', 'once drained: take b3 out of the volume')
    .example('$0 volume remove-brick demo localhost:/srv/b3 commit force', 'take b3 out now; files still on it leave the volume')
    .example('$0 volume remove-brick demo localhost:/srv/b3 stop', 'cancel: b3 stays, moved files stay where they went')
    .epilog('Bricks go in whole distribute subvolumes: all bricks of a replica or stripe set together, and at least one set '
      + 'must stay. commit leaves the brick directories and anything in them on disk.') as unknown as Argv<RemoveBrickArgs>,
  handler: async (argv: ArgumentsCamelCase<RemoveBrickArgs>) => {
    const { action, bricks, force } = await labelled(`volume remove-brick: ${argv.volname}`, async () => {
      const parsed = parseRemoveBrickArgs(argv.volname, (argv.words ?? []).map(String));
      if (argv.throttle !== undefined && parsed.action !== 'start') throw new UsageError('--throttle goes with start only');
      return parsed;
    });
    const label = `volume remove-brick ${action}: ${argv.volname}`;
    await labelled(label, async () => {
      const api = MgmtApi.fromArgs(argv);
      const out = (reply: unknown, text: string): void => {
        process.stdout.write(argv.json ? `${JSON.stringify(reply, null, 2)}\n` : text);
      };
      if (action === 'status') {
        const q = bricks.map((b) => `brick=${encodeURIComponent(b)}`).join('&');
        const r = await api.json<RemoveBrickStatusReply>('GET', volumePath(argv.volname, `/remove-brick/status?${q}`));
        const head = `Removing from volume ${r.volume} (since ${r.removing.startedAt}): ${r.removing.bricks.map((b) => formatBrick(b, false)).join(' ')}\n`;
        const tail = r.complete
          ? `The drain is complete: \`brickfs volume remove-brick ${argv.volname} ${bricks.join(' ')} commit\` takes the bricks out\n`
          : '';
        const drain = r.rebalance ? `${formatRebalance(r.rebalance)}Drain: ${drainProgress(r.rebalance)}\n` : 'The drain has not started.\n';
        out(r, `${head}${drain}${tail}`);
        return;
      }
      const body: RemoveBrickRequest = { bricks, force, ...(argv.throttle ? { throttle: parseThrottle(argv.throttle) } : {}) };
      if (action === 'start') {
        const r = await api.json<RemoveBrickStartReply>('POST', volumePath(argv.volname, '/remove-brick/start'), body);
        out(r, `${label}: success: draining ${r.removing.bricks.length} brick(s)` +
          `${r.rebalance.pid !== null ? ` (pid ${r.rebalance.pid})` : r.rebalance.alive ? '' : ` (the drain is already ${r.rebalance.state})`}; ` +
          `watch with \`brickfs volume remove-brick ${argv.volname} ${bricks.join(' ')} status\`, then commit\n`);
        return;
      }
      const r = await api.json<RemoveBrickEndReply>('POST', volumePath(argv.volname, `/remove-brick/${action}`), body);
      for (const w of action === 'commit' ? r.warnings : []) process.stderr.write(`warning: ${w}\n`);
      const list = r.bricks.map((b) => formatBrick(b, false)).join(' ');
      out(r, action === 'commit'
        ? `${label}: success\nRemoved ${list}. Their directories and any files left in them stay on disk, out of the volume: ` +
          'check them for files that were not moved (copy those in through a mount) before reusing the directories.\n'
        : `${label}: success: ${list} stay in the volume; ${r.warnings.join('; ')}\n`);
    });
  },
};
