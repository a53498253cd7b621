import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../api.js';
import { command as detach } from './peer/detach.js';
import { command as probe } from './peer/probe.js';
import { command as status } from './peer/status.js';

/** `brickfs peer ...`, one file per subcommand (gluster's words). */
export const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'peer',
  describe: 'Add daemons of other hosts to this trusted storage pool, remove them, show them',
  builder: (y: Argv<GlobalArgs>) => y
    .command(probe)
    .command(detach)
    .command(status)
    .demandCommand(1, 'give a peer command: probe HOST[:PORT], detach HOST [force] or status')
    .example('$0 peer probe 10.0.0.2', 'add the daemon of host 10.0.0.2 (same --store etcd://...) to the pool')
    .example('$0 peer status', 'the other members and whether they are connected'),
  handler: () => undefined,
};
