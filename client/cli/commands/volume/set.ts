import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { SetOptionRequest, VolumeReply } from '../../../../lib/mgmt/api.js';
import { validateVolumeOption } from '../../../../lib/mgmt/args.js';
import { VOLUME_OPTIONS } from '../../../../lib/mgmt/volume-options.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface SetArgs extends GlobalArgs {
  volname: string;
  key: string;
  value: string;
}

export const command: CommandModule<GlobalArgs, SetArgs> = {
  command: 'set <volname> <key> <value>',
  describe: `Change a volume option (known: ${Object.keys(VOLUME_OPTIONS).join(', ')})`,
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('key', { type: 'string', demandOption: true, describe: 'Option name' })
    .positional('value', { type: 'string', demandOption: true, describe: 'New value' })
    .example('$0 volume set demo network.ping-timeout 10', 'declare a brick down after 10 s without an answer')
    .example('$0 volume set s cluster.stripe-block-size 64KiB', 'striped volume: cut files created from now on in 64 KiB blocks'),
  handler: async (argv: ArgumentsCamelCase<SetArgs>) => {
    await labelled(`volume set: ${argv.volname}`, async () => {
      const value = validateVolumeOption(argv.key, String(argv.value));
      const body: SetOptionRequest = { value };
      await MgmtApi.fromArgs(argv).json<VolumeReply>('PUT', volumePath(argv.volname, `/options/${encodeURIComponent(argv.key)}`), body);
      process.stdout.write('volume set: success\n');
    });
  },
};
