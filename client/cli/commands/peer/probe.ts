import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { ProbeReply, ProbeRequest } from '../../../../lib/mgmt/api.js';
import { parseServer } from '../../../../lib/mgmt/client.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';

interface ProbeArgs extends GlobalArgs {
  host: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, ProbeArgs> = {
  command: 'probe <host>',
  describe: 'Add the management daemon at HOST[:PORT] to this pool (both must use the same --store etcd://...)',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 peer probe HOST[:PORT] [--json]')
    .positional('host', { type: 'string', demandOption: true, describe: 'HOST[:PORT] of the other daemon (PORT: its management port, default 7007)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"result", "message", "peer"} (schema in docs/cli.md)' })
    .example('$0 peer probe 10.0.0.2', 'the daemon of 10.0.0.2 on port 7007')
    .example('$0 peer probe node3.example.com:7008', 'a daemon on another port')
    .epilog('The daemon asked (--server) contacts the other one, checks that it uses the same configuration store '
      + '(the pool id in etcd), and records both as members. Probing this host, or a member, succeeds and changes nothing.'),
  handler: async (argv: ArgumentsCamelCase<ProbeArgs>) => {
    await labelled('peer probe', async () => {
      // Checked here too so a mistyped host exits 2 without asking the daemon.
      const addr = parseServer(String(argv.host));
      const req: ProbeRequest = { host: addr.host, port: addr.port };
      const reply = await MgmtApi.fromArgs(argv).json<ProbeReply>('POST', '/v1/peers', req);
      process.stdout.write(argv.json ? `${JSON.stringify(reply, null, 2)}\n` : `peer probe: success${reply.message ? `. ${reply.message}` : ''}\n`);
    });
  },
};
