import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { brickGraph } from '../../../../brick/mgmt/volgen.js';
import type { VolumeReply } from '../../../../lib/mgmt/api.js';
import { validateVolumeOptionKey } from '../../../../lib/mgmt/args.js';
import { parseVolfile } from '../../../../lib/volfile/parse.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';
import { effectiveOptions, type EffectiveOption } from '../../effective-options.js';

interface GetArgs extends GlobalArgs {
  volname: string;
  key: string;
  json: boolean;
}

/** `--json` output. */
export interface VolumeGetReply {
  volume: string;
  options: EffectiveOption[];
}

export const command: CommandModule<GlobalArgs, GetArgs> = {
  command: 'get <volname> <key>',
  describe: 'Show the value in effect of a volume option, or of every option with "all" (as `gluster volume get`)',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('key', { type: 'string', demandOption: true, describe: 'Option name (as for `volume set`), or all' })
    .option('json', { type: 'boolean', default: false, describe: 'Print {"volume", "options": [{"key", "value", "set"}]}' })
    .example('$0 volume get demo all', 'every option, set or default')
    .example('$0 volume get demo performance.nl-cache-timeout', 'one option'),
  handler: async (argv: ArgumentsCamelCase<GetArgs>) => {
    await labelled(`volume get: ${argv.volname}`, async () => {
      if (argv.key !== 'all') validateVolumeOptionKey(argv.key);
      const api = MgmtApi.fromArgs(argv);
      const vol = (await api.json<VolumeReply>('GET', volumePath(argv.volname))).volume;
      const client = parseVolfile((await api.text(volumePath(argv.volname, '/volfile?state=any'))).text);
      const brick = brickGraph({ name: vol.name, options: vol.options, bricks: [] }, { host: 'localhost', port: 0, path: '/brick' });
      const rows = effectiveOptions(vol.options, client, brick).filter((r) => argv.key === 'all' || r.key === argv.key);
      if (argv.json) {
        const out: VolumeGetReply = { volume: vol.name, options: rows };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      const width = Math.max(6, ...rows.map((r) => r.key.length)) + 2;
      const lines = [`${'Option'.padEnd(width)}Value`, `${'------'.padEnd(width)}-----`, ...rows.map((r) => `${r.key.padEnd(width)}${r.value}`)];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  },
};
