import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { RebalanceStartRequest, RebalanceStatusReply } from '../../../../lib/mgmt/api.js';
import { parseRebalanceArgs } from '../../../../lib/mgmt/args.js';
import { REBALANCE_THROTTLES } from '../../../../lib/mgmt/rebalance.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { UsageError } from '../../../../lib/errors.js';
import { formatRebalance } from '../../format.js';
import { watch } from '../../live.js';

interface RebalanceArgs extends GlobalArgs {
  volname: string;
  words: string[];
  'fix-layout': boolean;
  throttle?: string;
  json: boolean;
  watch: boolean;
  interval: number;
}

export const command: CommandModule<GlobalArgs, RebalanceArgs> = {
  command: 'rebalance <volname> [words..]',
  describe: 'Spread files over every brick after add-brick: start, status or stop the rebalance process',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume rebalance VOL start|status|stop [--fix-layout] [--throttle lazy|normal|aggressive] [--json]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('words', { type: 'string', array: true, default: [], describe: 'start | status | stop (gluster\'s "fix-layout start" too)' })
    .option('fix-layout', { type: 'boolean', default: false, describe: 'start: only give directories layouts over every brick; move no file' })
    .option('throttle', { type: 'string', choices: [...REBALANCE_THROTTLES], describe: 'start: how hard to push (default normal)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the status object (docs/mgmt-api.md)' })
    .option('watch', { type: 'boolean', default: false, describe: 'With status: show it again every --interval seconds until no node runs (in place on a terminal)' })
    .option('interval', { type: 'number', default: 2, describe: 'Seconds between two looks with --watch' })
    .example('$0 volume rebalance demo start', 'move files to the bricks their names hash to now')
    .example('$0 volume rebalance demo start --fix-layout', 'new files may land on new bricks; existing ones stay')
    .example('$0 volume rebalance demo start --throttle lazy', 'leave more of the disks to users')
    .example('$0 volume rebalance demo status', 'progress: files moved, rate, time left')
    .example('$0 volume rebalance demo status --watch', 'follow it until every node is done')
    .example('$0 volume rebalance demo stop', 'stop after the file in hand; `start` later resumes')
    .epilog('The rebalance runs as a process on every host with bricks of the volume, each moving the files of its own bricks; '
      + 'it outlives the CLI and the daemons. status shows a row per host and their total, from any host of the pool. '
      + 'A stopped rebalance resumes where it stopped when started again over the same bricks.') as unknown as Argv<RebalanceArgs>,
  handler: async (argv: ArgumentsCamelCase<RebalanceArgs>) => {
    await labelled(`volume rebalance: ${argv.volname}`, async () => {
      const { action, fixLayout, throttle } = parseRebalanceArgs(argv.volname, (argv.words ?? []).map(String), {
        fixLayout: argv['fix-layout'], throttle: argv.throttle,
      });
      if (argv.watch && (action !== 'status' || argv.json)) throw new UsageError(`--watch follows status, without --json: brickfs volume rebalance ${argv.volname} status --watch`);
      if (!(argv.interval > 0)) throw new UsageError(`--interval is seconds, more than 0: brickfs volume rebalance ${argv.volname} status --watch --interval 2`);
      const api = MgmtApi.fromArgs(argv);
      if (argv.watch) {
        await watch(async () => {
          const r = await api.json<RebalanceStatusReply>('GET', volumePath(argv.volname, '/rebalance/status'));
          return { text: formatRebalance(r), done: r.state !== 'running' };
        }, { intervalMs: argv.interval * 1000 });
        return;
      }
      let reply: RebalanceStatusReply;
      if (action === 'start') {
        const body: RebalanceStartRequest = { fixLayout, ...(throttle ? { throttle } : {}) };
        reply = await api.json<RebalanceStatusReply>('POST', volumePath(argv.volname, '/rebalance/start'), body);
      } else if (action === 'stop') {
        reply = await api.json<RebalanceStatusReply>('POST', volumePath(argv.volname, '/rebalance/stop'), {});
      } else {
        reply = await api.json<RebalanceStatusReply>('GET', volumePath(argv.volname, '/rebalance/status'));
      }
      if (argv.json) {
        process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
      } else if (action === 'start') {
        const nodes = reply.nodes?.length ?? 1;
        const where = nodes > 1 ? ` on ${nodes} nodes` : '';
        const proc = reply.pid !== null ? ` (pid ${reply.pid}${nodes > 1 ? ' here' : ''})` : reply.alive ? '' : `, and already ${reply.state}`;
        process.stdout.write(`volume rebalance: ${argv.volname}: success: rebalance ${reply.resumed ? 'resumed' : 'started'}${where}${proc}; ` +
          `\`brickfs volume rebalance ${argv.volname} status\` shows its progress\n`);
      } else {
        process.stdout.write(formatRebalance(reply));
        if (action === 'stop') process.stdout.write(`volume rebalance: ${argv.volname}: success: stopped; \`start\` resumes it\n`);
      }
    });
  },
};
