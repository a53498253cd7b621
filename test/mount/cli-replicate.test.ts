// A replica 3 volume as a user runs it: create → mount → write → kill a brick process →
// more writes → `volume start VOL force` → `volume heal VOL` → identical brick directories.
// The self-heal daemon is off, so what heals is the `volume heal` (the daemon's own healing:
// self-heal-daemon.test.ts).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { runCliJson, runCliOk } from '../helpers/cli.js';
import { unmountQuietly } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { eventually, sh, shOk, sleep, tmpDir } from '../helpers/proc.js';
import { brickTree } from '../helpers/replica.js';


test('replica 3 from the CLI: kill a brick, keep writing, start force, heal, identical bricks', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-rep-cli-');
  const bricks = ['b1', 'b2', 'b3'].map((b) => path.join(root, b));
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'r3']));
  await cli(['volume', 'create', 'r3', 'replica', '3', ...bricks.map((b) => `localhost:${b}`), '--force']);
  t.regex(await cli(['volume', 'info', 'r3']), /Type: Replicate\n[^]*Number of Bricks: 1 x 3 = 3\n/);
  await cli(['volume', 'set', 'r3', 'network.ping-timeout', '5']);
  await cli(['volume', 'set', 'r3', 'cluster.self-heal-daemon', 'off']);
  await cli(['volume', 'start', 'r3']);
  const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
  t.teardown(() => unmountQuietly(mnt));
  await cli(['mount', `${d.server}:/r3`, mnt]);
  await shOk(t, `mkdir ${mnt}/docs && for i in $(seq 1 30); do echo "v1 $i" > ${mnt}/docs/f$i; done && head -c 2000000 /dev/urandom > ${mnt}/blob`);

  const status = await runCliJson<StatusListReply>(t, ['volume', 'status', 'r3', '--json'], { server: d.server });
  const victim = JSON.stringify(status).match(/"pid":\s*(\d+)/g)!.map((m) => Number(m.split(':')[1]))[1]!;
  process.kill(victim, 'SIGKILL');
  await sleep(300);
  await shOk(t, `for i in $(seq 1 30); do echo "v2 $i" >> ${mnt}/docs/f$i; done && rm ${mnt}/docs/f1 && mkdir ${mnt}/later && echo x > ${mnt}/later/x && chmod 700 ${mnt}/docs/f2 && head -c 100000 /dev/urandom >> ${mnt}/blob`);
  t.true(JSON.stringify(await runCliJson(t, ['volume', 'status', 'r3', '--json'], { server: d.server })).includes('"online":false'), 'status shows the killed brick offline');

  await cli(['volume', 'start', 'r3', 'force']);
  await eventually(async () => !JSON.stringify(await runCliJson(t, ['volume', 'status', 'r3', '--json'], { server: d.server })).includes('"online":false'), 15_000, 'brick back online');
  const info = await sh(`node ${path.resolve('bin/brickfs.js')} --server ${d.server} volume heal r3 info`);
  t.regex(info.stdout, /Number of entries: [1-9]/);
  await cli(['volume', 'heal', 'r3']);
  t.deepEqual([...(await cli(['volume', 'heal', 'r3', 'info'])).matchAll(/^Number of entries: (\S+)$/gm)].map((m) => m[1]), ['0', '0', '0'], 'no entries on any brick');
  const [a, b, c] = bricks.map(brickTree);
  t.deepEqual(b, a);
  t.deepEqual(c, a);
  t.false('docs/f1' in b!);
  t.true('later/x' in b!);
});
