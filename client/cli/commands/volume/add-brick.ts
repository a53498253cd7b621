import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { AddBrickReply } from '../../../../lib/mgmt/api.js';
import { parseAddBrickArgs } from '../../../../lib/mgmt/args.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface AddBrickArgs extends GlobalArgs {
  volname: string;
  bricks: string[];
  force: boolean;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, AddBrickArgs> = {
  command: 'add-brick <volname> [bricks..]',
  describe: 'Grow a volume by whole replica/stripe sets of bricks (then rebalance to move files onto them)',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume add-brick VOL [replica N] HOST[:PORT]:/abs/path... [force]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('bricks', { type: 'string', array: true, default: [], describe: '[replica N] HOST[:PORT]:/abs/path... [force]' })
    .option('force', { type: 'boolean', default: false, describe: 'Use bricks that are non-empty, inside another brick or already in a volume (also the word "force" at the end)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the reply {volume, added, warnings} (docs/mgmt-api.md)' })
    .example('$0 volume add-brick demo localhost:/srv/b3', 'distribute volume: one more brick')
    .example('$0 volume add-brick r replica 2 localhost:/srv/b5 localhost:/srv/b6', 'replica 2 volume: one more replica pair')
    .example('$0 volume add-brick demo localhost:/srv/b3 && $0 volume rebalance demo start', 'then move files onto the new brick')
    .epilog('The brick count must be a multiple of the bricks per set (replica count x stripe count); each that many '
      + 'consecutive new bricks form one set. "replica N" may only repeat the volume\'s replica count: changing it with '
      + 'add-brick is not supported yet. New bricks take part in the layout of new directories at once; existing files '
      + 'move only with `brickfs volume rebalance VOL start`.') as unknown as Argv<AddBrickArgs>,
  handler: async (argv: ArgumentsCamelCase<AddBrickArgs>) => {
    await labelled(`volume add-brick: ${argv.volname}`, async () => {
      // Validated here too so a mistyped command exits 2 without asking the daemon.
      const req = parseAddBrickArgs(argv.volname, argv.bricks.map(String), argv.force);
      const reply = await MgmtApi.fromArgs(argv).json<AddBrickReply>('POST', volumePath(argv.volname, '/add-brick'), req);
      for (const w of reply.warnings) process.stderr.write(`warning: ${w}\n`);
      if (argv.json) {
        process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
        return;
      }
      process.stdout.write(`volume add-brick: ${argv.volname}: success\n`);
      if (reply.volume.status === 'started') {
        process.stdout.write(`Existing files stay where they are; move some onto the new bricks with \`brickfs volume rebalance ${argv.volname} start\`\n`);
      }
    });
  },
};
