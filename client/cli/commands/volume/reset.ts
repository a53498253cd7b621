import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { VolumeReply } from '../../../../lib/mgmt/api.js';
import { validateVolumeOptionKey } from '../../../../lib/mgmt/args.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface ResetArgs extends GlobalArgs {
  volname: string;
  key?: string;
}

export const command: CommandModule<GlobalArgs, ResetArgs> = {
  command: 'reset <volname> [key]',
  describe: 'Put a volume option back to its default, or every option without a key (as `gluster volume reset`)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('key', { type: 'string', describe: 'Option name (as for `volume set`); every option when left out' })
    .example('$0 volume reset demo performance.read-ahead-page-count', 'back to the default page count')
    .example('$0 volume reset demo', 'every option back to its default'),
  handler: async (argv: ArgumentsCamelCase<ResetArgs>) => {
    await labelled(`volume reset: ${argv.volname}`, async () => {
      if (argv.key !== undefined) validateVolumeOptionKey(argv.key);
      const sub = argv.key === undefined ? '/options' : `/options/${encodeURIComponent(argv.key)}`;
      await MgmtApi.fromArgs(argv).json<VolumeReply>('DELETE', volumePath(argv.volname, sub));
      process.stdout.write('volume reset: success\n');
    });
  },
};
