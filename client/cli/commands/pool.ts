import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../api.js';
import { command as list } from './pool/list.js';

/** `brickfs pool list`. */
export const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'pool',
  describe: 'Show the trusted storage pool',
  builder: (y: Argv<GlobalArgs>) => y
    .command(list)
    .demandCommand(1, 'give a pool command: list')
    .example('$0 pool list', 'every member of the pool, this host as localhost'),
  handler: () => undefined,
};
