import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { OperationError } from '../../../../lib/errors.js';
import type { StatedumpReply } from '../../../../lib/mgmt/api.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface StatedumpArgs extends GlobalArgs {
  volname: string;
  json: boolean;
}

export const command: CommandModule<GlobalArgs, StatedumpArgs> = {
  command: 'statedump <volname>',
  describe: 'Print the state of every brick of a volume: each translator of its graph (as `gluster volume statedump`)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"name", "bricks": [{"host", "path", "dump" | "error"}]}' })
    .example('$0 volume statedump demo', 'open fds, locks, writeback... of each brick'),
  handler: async (argv: ArgumentsCamelCase<StatedumpArgs>) => {
    await labelled(`volume statedump: ${argv.volname}`, async () => {
      const r = await MgmtApi.fromArgs(argv).json<StatedumpReply>('POST', volumePath(argv.volname, '/statedump'));
      if (argv.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      } else {
        for (const b of r.bricks) {
          process.stdout.write(`Brick ${b.host}:${b.path}\n`);
          process.stdout.write(b.dump ? `${JSON.stringify(b.dump, null, 2)}\n` : `  no statedump: ${b.error}\n`);
        }
      }
      // A brick that could not answer makes the command fail (exit 1), after the others are printed.
      const missing = r.bricks.filter((b) => !b.dump).length;
      if (missing) throw new OperationError(`${missing} of ${r.bricks.length} bricks gave no statedump (\`brickfs volume status ${r.name}\` shows which are down)`);
    });
  },
};
