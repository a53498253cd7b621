import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../api.js';
import { command as addBrick } from './volume/add-brick.js';
import { command as create } from './volume/create.js';
import { command as del } from './volume/delete.js';
import { command as get } from './volume/get.js';
import { command as heal } from './volume/heal.js';
import { command as info } from './volume/info.js';
import { command as list } from './volume/list.js';
import { command as profile } from './volume/profile.js';
import { command as rebalance } from './volume/rebalance.js';
import { command as removeBrick } from './volume/remove-brick.js';
import { command as reset } from './volume/reset.js';
import { command as set } from './volume/set.js';
import { command as start } from './volume/start.js';
import { command as statedump } from './volume/statedump.js';
import { command as status } from './volume/status.js';
import { command as stop } from './volume/stop.js';
import { command as top } from './volume/top.js';
import { command as volfile } from './volume/volfile.js';

/** `brickfs volume ...`, one file per subcommand. */
export const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'volume',
  describe: 'Create, start, stop, inspect, change, grow and shrink volumes',
  builder: (y: Argv<GlobalArgs>) => y
    .command(create)
    .command(start)
    .command(stop)
    .command(del)
    .command(info)
    .command(list)
    .command(status)
    .command(statedump)
    .command(volfile)
    .command(set)
    .command(reset)
    .command(get)
    .command(addBrick)
    .command(rebalance)
    .command(removeBrick)
    .command(heal)
    .command(profile)
    .command(top)
    .demandCommand(1, 'give a volume command: create, start, stop, delete, info, list, status, statedump, volfile, set, reset, get, add-brick, rebalance, remove-brick, heal, profile or top')
    .example('$0 volume create demo localhost:/srv/b1 localhost:/srv/b2', 'define a volume')
    .example('$0 volume start demo', 'start its bricks'),
  handler: () => undefined,
};
