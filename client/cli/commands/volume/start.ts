import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../../../../lib/errors.js';
import type { StartStopReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface StartArgs extends GlobalArgs {
  volname: string;
  force?: string;
}

export const command: CommandModule<GlobalArgs, StartArgs> = {
  command: 'start <volname> [force]',
  describe: 'Start the brick processes of a volume',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('force', { type: 'string', describe: 'The word "force": also restart dead bricks of a started volume' })
    .example('$0 volume start demo', 'start every brick of volume demo')
    .example('$0 volume start demo force', 'restart the bricks of demo that are down'),
  handler: async (argv: ArgumentsCamelCase<StartArgs>) => {
    await labelled(`volume start: ${argv.volname}`, async () => {
      if (argv.force !== undefined && argv.force !== 'force') {
        throw new UsageError(`expected "force" after the volume name, got "${argv.force}"; for example: brickfs volume start ${argv.volname} force`);
      }
      await MgmtApi.fromArgs(argv).json<StartStopReply>('POST', volumePath(argv.volname, '/start'), { force: argv.force === 'force' });
      process.stdout.write(`volume start: ${argv.volname}: success\n`);
    });
  },
};
