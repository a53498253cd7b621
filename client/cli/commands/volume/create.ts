import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { CreateReply } from '../../../../lib/mgmt/api.js';
import { parseCreateArgs } from '../../../../lib/mgmt/args.js';
import { labelled, MgmtApi, type GlobalArgs } from '../../api.js';

interface CreateArgs extends GlobalArgs {
  volname: string;
  bricks: string[];
  force: boolean;
}

export const command: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create <volname> [bricks..]',
  describe: 'Define a volume over bricks (HOST[:PORT]:/abs/path...): distribute, replicated with "replica N", striped with "stripe N"',
  builder: (y: Argv<GlobalArgs>) => y
    .usage('$0 volume create VOL [replica N] [stripe N] HOST[:PORT]:/abs/path... [--force]')
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name: letters, digits, _ and -' })
    .positional('bricks', { type: 'string', array: true, default: [], describe: '[replica N] [stripe N] HOST[:PORT]:/abs/path...' })
    .option('force', { type: 'boolean', default: false, describe: 'Use bricks that are non-empty, inside another brick or already in a volume' })
    .example('$0 volume create demo localhost:/srv/b1 localhost:/srv/b2', 'two bricks')
    .example('$0 volume create demo localhost:7200:/srv/b1', 'choose the brick port')
    .example('$0 volume create demo localhost:/srv/old --force', 'a brick that holds files')
    .example('$0 volume create s stripe 2 localhost:/srv/b1 localhost:/srv/b2', 'files cut in blocks, spread over both bricks')
    .example('$0 volume create ds stripe 2 localhost:/srv/b1 localhost:/srv/b2 localhost:/srv/b3 localhost:/srv/b4',
      'distributed-stripe: b1+b2 and b3+b4 are the two stripe sets (each N consecutive bricks form one set)')
    .example('$0 volume create r replica 2 localhost:/srv/b1 localhost:/srv/b2 localhost:/srv/b3 localhost:/srv/b4',
      'distributed-replicate: b1+b2 and b3+b4 are replica pairs, files hashed over the pairs')
    .example('$0 volume create sr stripe 2 replica 2 localhost:/srv/b1 localhost:/srv/b2 localhost:/srv/b3 localhost:/srv/b4',
      'striped-replicate: replica pairs b1+b2 and b3+b4 are the two stripe children')
    .epilog('Brick order matters, as in GlusterFS: with "replica R", each R consecutive bricks form one replica set; '
      + 'with "stripe S", each S consecutive sets below (bricks, or replica sets) form one stripe set; files are '
      + 'hashed over what is left when there is more than one. The brick count must be a multiple of R x S. '
      + 'Block size: `brickfs volume set VOL cluster.stripe-block-size SIZE` (default 128KiB).'),
  handler: async (argv: ArgumentsCamelCase<CreateArgs>) => {
    await labelled(`volume create: ${argv.volname}`, async () => {
      // Validated here too so a mistyped command exits 2 without asking the daemon.
      const req = parseCreateArgs(argv.volname, argv.bricks.map(String), argv.force);
      const reply = await MgmtApi.fromArgs(argv).json<CreateReply>('POST', '/v1/volumes', req);
      for (const w of reply.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`volume create: ${argv.volname}: success: please start the volume to access data\n`);
    });
  },
};
