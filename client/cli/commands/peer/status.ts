import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { PoolReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';
import { formatPeerStatus } from '../../format.js';

interface StatusArgs extends GlobalArgs {
  json: boolean;
}

export const command: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'Show the other members of the pool and whether each is connected',
  builder: (y: Argv<GlobalArgs>) => y
    .option('json', { type: 'boolean', default: false, describe: 'Print {"peers": [...]} (schema in docs/cli.md)' })
    .example('$0 peer status', 'as gluster prints it')
    .example('$0 peer status --json', 'machine-readable'),
  handler: async (argv: ArgumentsCamelCase<StatusArgs>) => {
    await labelled('peer status', async () => {
      const pool = await MgmtApi.fromArgs(argv).json<PoolReply>('GET', '/v1/peers');
      process.stdout.write(argv.json ? `${JSON.stringify({ peers: pool.peers }, null, 2)}\n` : formatPeerStatus(pool.peers));
    });
  },
};
