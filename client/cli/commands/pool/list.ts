import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { PoolReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';
import { formatPoolList } from '../../format.js';

interface ListArgs extends GlobalArgs {
  json: boolean;
}

export const command: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  describe: 'Every member of the pool, this host included (as localhost)',
  builder: (y: Argv<GlobalArgs>) => y
    .option('json', { type: 'boolean', default: false, describe: 'Print {"pool": [...]} (schema in docs/cli.md)' })
    .example('$0 pool list', 'UUID, hostname and state of every member'),
  handler: async (argv: ArgumentsCamelCase<ListArgs>) => {
    await labelled('pool list', async () => {
      const pool = await MgmtApi.fromArgs(argv).json<PoolReply>('GET', '/v1/peers');
      process.stdout.write(argv.json ? `${JSON.stringify({ pool: [...pool.peers, pool.self] }, null, 2)}\n` : formatPoolList(pool));
    });
  },
};
