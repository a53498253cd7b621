import test from 'ava';
import { DATA_PATH_GLIBC_TUNABLES, DATA_PATH_NODE_FLAGS, spawnDataPath } from '../../lib/data-path-process.js';

interface Probe {
  execArgv: string[];
  tunables: string | undefined;
}

/** What a child started by spawnDataPath sees of its heap and its malloc tunables. */
async function probe(env?: NodeJS.ProcessEnv): Promise<Probe> {
  const script = "process.stdout.write(JSON.stringify({ execArgv: process.execArgv, tunables: process.env.GLIBC_TUNABLES }))";
  const child = spawnDataPath(['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], ...(env ? { env } : {}) });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  await new Promise((resolve) => child.on('close', resolve));
  return JSON.parse(out) as Probe;
}

test('a data-path process gets the malloc tunables and starts with the larger heap', async (t) => {
  const { execArgv, tunables } = await probe();
  t.is(tunables, DATA_PATH_GLIBC_TUNABLES);
  // With -e, node lists the script among its own options; the flags come first.
  t.deepEqual(execArgv.slice(0, DATA_PATH_NODE_FLAGS.length), [...DATA_PATH_NODE_FLAGS]);
});

test('a GLIBC_TUNABLES the user set is kept', async (t) => {
  const { tunables } = await probe({ ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  t.is(tunables, 'glibc.malloc.arena_max=2');
});
