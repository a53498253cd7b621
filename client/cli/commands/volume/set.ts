import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../../../../lib/errors.js';
import type { SetOptionRequest, VolumeReply } from '../../../../lib/mgmt/api.js';
import { validateVolumeOption, VOLUME_SET_HELP } from '../../../../lib/mgmt/args.js';
import { VOLUME_OPTIONS } from '../../../../lib/mgmt/volume-options.js';
import { labelled, MgmtApi, volumePath, type GlobalArgs } from '../../api.js';

interface SetArgs extends GlobalArgs {
  volname: string;
  key?: string;
  value?: string;
}

/** `volume set help`: every option, its default and what it does, in gluster's layout. */
export function volumeSetHelp(): string {
  return Object.entries(VOLUME_OPTIONS).map(([key, { spec }]) => {
    const def = spec.default === undefined || spec.default === '' ? '(none)' : spec.type === 'bool' ? (spec.default ? 'on' : 'off') : String(spec.default);
    return `Option: ${key}\nDefault Value: ${def}\nDescription: ${spec.description}\n`;
  }).join('\n');
}

export const command: CommandModule<GlobalArgs, SetArgs> = {
  command: 'set <volname> [key] [value]',
  describe: 'Change a volume option; `volume set help` lists every option with its default and description',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('volname', { type: 'string', demandOption: true, describe: 'Volume name' })
    .positional('key', { type: 'string', describe: 'Option name' })
    .positional('value', { type: 'string', describe: 'New value' })
    .example('$0 volume set help', 'this help, with every option, its default and what it does')
    .example('$0 volume set demo network.ping-timeout 10', 'declare a brick down after 10 s without an answer')
    .example('$0 volume set s cluster.stripe-block-size 64KiB', 'striped volume: cut files created from now on in 64 KiB blocks')
    // yargs reads a trailing `help` as --help: gluster's `volume set help` shows this, with every option.
    .epilogue(`Volume options:\n\n${volumeSetHelp()}`) as unknown as Argv<SetArgs>,
  handler: async (argv: ArgumentsCamelCase<SetArgs>) => {
    if (argv.key === undefined || argv.value === undefined) {
      throw new UsageError(`give an option and its value: brickfs volume set ${argv.volname} KEY VALUE (every option: ${VOLUME_SET_HELP})`);
    }
    const key = argv.key;
    await labelled(`volume set: ${argv.volname}`, async () => {
      const value = validateVolumeOption(key, String(argv.value));
      const body: SetOptionRequest = { value };
      await MgmtApi.fromArgs(argv).json<VolumeReply>('PUT', volumePath(argv.volname, `/options/${encodeURIComponent(key)}`), body);
      process.stdout.write('volume set: success\n');
    });
  },
};
