import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { StartStopReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface StopArgs extends GlobalArgs {
  volname: string;
}

export const command: CommandModule<GlobalArgs, StopArgs> = {
  command: 'stop <volname>',
  describe: 'Stop the brick processes of a volume (mounts lose access)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .example('$0 volume stop demo', 'stop every brick of volume demo'),
  handler: async (argv: ArgumentsCamelCase<StopArgs>) => {
    await labelled(`volume stop: ${argv.volname}`, async () => {
      await MgmtApi.fromArgs(argv).json<StartStopReply>('POST', volumePath(argv.volname, '/stop'), {});
      process.stdout.write(`volume stop: ${argv.volname}: success\n`);
    });
  },
};
