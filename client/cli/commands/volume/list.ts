import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { VolumeListReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';

export const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  describe: 'Print the name of every volume, one per line (as `gluster volume list`)',
  builder: (y: Argv<GlobalArgs>) => y.example('$0 volume list', 'every volume name'),
  handler: async (argv: ArgumentsCamelCase<GlobalArgs>) => {
    await labelled('volume list', async () => {
      const { volumes } = await MgmtApi.fromArgs(argv).json<VolumeListReply>('GET', '/v1/volumes');
      // gluster prints this line, not an empty output, when there is nothing to list.
      process.stdout.write(volumes.length ? volumes.map((v) => `${v.name}\n`).join('') : 'No volumes present in cluster\n');
    });
  },
};
