// `brickfs completion`: yargs' bash completion script, and that it completes commands and
// subcommands when bash runs it.
import test from 'ava';
import { BIN, cli, shOk } from '../helpers/proc.js';

test('brickfs completion prints a bash function that completes commands and subcommands', async (t) => {
  const r = await cli(['completion'], { env: { SHELL: '/bin/bash' } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^_brickfs_yargs_completions\(\)$/m, 'a bash function');
  t.regex(r.stdout, /^complete .*-F _brickfs_yargs_completions brickfs$/m, 'registered for brickfs');
  // The script as bash runs it, brickfs being this build.
  const complete = (words: string[]): Promise<string> => shOk(t, [
    `brickfs() { SHELL=/bin/bash ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; }`,
    `eval "$(brickfs completion)"`,
    `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}`,
    '_brickfs_yargs_completions',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n'));
  t.deepEqual((await complete(['brickfs', 'vol'])).trim().split('\n'), ['volume']);
  t.deepEqual((await complete(['brickfs', 'volume', 'st'])).trim().split('\n').sort(), ['start', 'statedump', 'status', 'stop']);
});
