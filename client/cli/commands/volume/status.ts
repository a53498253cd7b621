import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { StatusListReply, VolumeStatusInfo } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { formatStatus } from '../../format.js';

interface StatusArgs extends GlobalArgs {
  volname?: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status [volname]',
  describe: 'Show each brick: host, path, port, pid and whether it is online',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', describe: 'Volume name (default: every volume)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"volumes": [...]} (schema in docs/cli.md)' })
    .example('$0 volume status demo', 'bricks of volume demo')
    .example('$0 volume status --json', 'every volume, machine-readable'),
  handler: async (argv: ArgumentsCamelCase<StatusArgs>) => {
    await labelled(`volume status${argv.volname ? `: ${argv.volname}` : ''}`, async () => {
      const api = MgmtApi.fromArgs(argv);
      const out: StatusListReply = argv.volname
        ? { volumes: [await api.json<VolumeStatusInfo>('GET', volumePath(argv.volname, '/status'))] }
        : await api.json<StatusListReply>('GET', '/v1/status');
      process.stdout.write(argv.json ? `${JSON.stringify(out, null, 2)}\n` : formatStatus(out.volumes));
    });
  },
};
