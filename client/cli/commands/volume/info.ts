import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { VolumeListReply, VolumeReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { formatInfo } from '../../format.js';

interface InfoArgs extends GlobalArgs {
  volname?: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, InfoArgs> = {
  command: 'info [volname]',
  describe: 'Show the definition of one volume or of all',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', describe: 'Volume name (default: every volume)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"volumes": [...]} (schema in docs/cli.md)' })
    .example('$0 volume info', 'every volume')
    .example('$0 volume info demo --json', 'volume demo, machine-readable'),
  handler: async (argv: ArgumentsCamelCase<InfoArgs>) => {
    await labelled(`volume info${argv.volname ? `: ${argv.volname}` : ''}`, async () => {
      const api = MgmtApi.fromArgs(argv);
      const out: VolumeListReply = argv.volname
        ? { volumes: [(await api.json<VolumeReply>('GET', volumePath(argv.volname))).volume] }
        : await api.json<VolumeListReply>('GET', '/v1/volumes');
      process.stdout.write(argv.json ? `${JSON.stringify(out, null, 2)}\n` : formatInfo(out.volumes));
    });
  },
};
