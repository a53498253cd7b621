import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface VolfileArgs extends GlobalArgs {
  volname: string;
}

export const command: CommandModule<GlobalArgs, VolfileArgs> = {
  command: 'volfile <volname>',
  describe: 'Print the client volfile of a volume',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .example('$0 volume volfile demo > demo.vol && $0 mount --volfile demo.vol /mnt/demo', 'mount from a saved volfile'),
  handler: async (argv: ArgumentsCamelCase<VolfileArgs>) => {
    await labelled(`volume volfile: ${argv.volname}`, async () => {
      // state=any: printing is fine before start; only mounts need a started volume.
      const r = await MgmtApi.fromArgs(argv).text(volumePath(argv.volname, '/volfile?state=any'));
      process.stdout.write(r.text);
    });
  },
};
