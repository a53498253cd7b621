import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { VolumeReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface DeleteArgs extends GlobalArgs {
  volname: string;
}

export const command: CommandModule<GlobalArgs, DeleteArgs> = {
  command: 'delete <volname>',
  describe: 'Forget a stopped volume (the files in its brick directories stay)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .example('$0 volume stop demo && $0 volume delete demo', 'remove volume demo'),
  handler: async (argv: ArgumentsCamelCase<DeleteArgs>) => {
    await labelled(`volume delete: ${argv.volname}`, async () => {
      await MgmtApi.fromArgs(argv).json<VolumeReply>('DELETE', volumePath(argv.volname));
      process.stdout.write(`volume delete: ${argv.volname}: success\n`);
    });
  },
};
