import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../../../../lib/errors.js';
import type { DetachReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';

interface DetachArgs extends GlobalArgs {
  host: string;
  word?: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, DetachArgs> = {
  command: 'detach <host> [word]',
  describe: 'Take a member out of the pool (refused while it holds bricks, unless "force")',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 peer detach HOST[:PORT]|UUID [force] [--json]')
    .positional('host', { type: 'string', demandOption: true, describe: 'The member as `peer status` shows it: HOST, HOST:PORT, or its UUID' })
    .positional('word', { type: 'string', describe: '"force": detach even while volumes have bricks on it' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"peer", "warnings"} (schema in docs/cli.md)' })
    .example('$0 peer detach 10.0.0.3', 'take 10.0.0.3 out of the pool')
    .example('$0 peer detach 10.0.0.3 force', 'even though volumes still have bricks there'),
  handler: async (argv: ArgumentsCamelCase<DetachArgs>) => {
    await labelled('peer detach', async () => {
      if (argv.word !== undefined && argv.word !== 'force') {
        throw new UsageError(`unexpected "${argv.word}": the only word after the host is "force" (brickfs peer detach HOST force)`);
      }
      const host = String(argv.host);
      if (host.trim() === '') throw new UsageError('give the member to detach: brickfs peer detach HOST');
      const path = `/v1/peers/${encodeURIComponent(host)}${argv.word === 'force' ? '?force=true' : ''}`;
      const reply = await MgmtApi.fromArgs(argv).json<DetachReply>('DELETE', path);
      for (const w of reply.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(argv.json ? `${JSON.stringify(reply, null, 2)}\n` : 'peer detach: success\n');
    });
  },
};
