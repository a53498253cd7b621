// `volume heal VOL info --watch`: plain `== TIME` blocks when stdout is not a terminal, in place
// (log-update) on a pseudo-terminal, ending by itself once nothing is pending.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { StatusListReply } from '../../lib/mgmt/api.js';
import { runCli, runCliJson, runCliOk } from '../helpers/cli.js';
import { unmountQuietly } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { BIN, eventually, shOk, sleep, tmpDir } from '../helpers/proc.js';

test('heal info --watch follows a heal to the end; plain lines off a terminal, redrawn on one', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-heal-watch-');
  const bricks = ['b1', 'b2'].map((b) => path.join(root, b));
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'r2']));
  await cli(['volume', 'create', 'r2', 'replica', '2', ...bricks.map((b) => `localhost:${b}`), '--force']);
  await cli(['volume', 'set', 'r2', 'network.ping-timeout', '5']);
  await cli(['volume', 'set', 'r2', 'cluster.self-heal-daemon', 'off']);
  await cli(['volume', 'start', 'r2']);
  const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
  t.teardown(() => unmountQuietly(mnt));
  await cli(['mount', `${d.server}:/r2`, mnt]);
  await shOk(t, `for i in $(seq 1 5); do echo "v1 $i" > ${mnt}/f$i; done`);

  const usage = await runCli(['volume', 'heal', 'r2', 'full', '--watch'], { server: d.server });
  t.is(usage.code, 2);
  t.regex(usage.stderr, /brickfs volume heal r2 info --watch/);

  const status = await runCliJson<StatusListReply>(t, ['volume', 'status', 'r2', '--json'], { server: d.server });
  const victim = JSON.stringify(status).match(/"pid":\s*(\d+)/g)!.map((m) => Number(m.split(':')[1]))[1]!;
  process.kill(victim, 'SIGKILL');
  await sleep(300);
  await shOk(t, `for i in $(seq 1 5); do echo "v2 $i" >> ${mnt}/f$i; done`);

  const w = spawn(process.execPath, [BIN, '--server', d.server, 'volume', 'heal', 'r2', 'info', '--watch', '--interval', '0.5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (w.exitCode === null) w.kill('SIGKILL'); });
  let out = '';
  w.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  w.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => w.once('exit', (code) => resolve(code)));
  await eventually(() => /Number of entries: [1-9]/.test(out), 15_000, 'a report with pending entries');
  await cli(['volume', 'start', 'r2', 'force']);
  await eventually(async () => !JSON.stringify(await runCliJson(t, ['volume', 'status', 'r2', '--json'], { server: d.server })).includes('"online":false'), 15_000, 'brick back online');
  await cli(['volume', 'heal', 'r2']);
  t.is(await Promise.race([exited, sleep(20_000).then(() => 'still running')]), 0, out);
  const blocks = out.split(/^== \d{4}-\d\d-\d\dT[\d:.]+Z\n/m);
  t.is(blocks[0], '', 'every report starts with its == TIME line');
  t.true(blocks.length >= 3, `a report with entries and one without: ${out}`);
  t.deepEqual([...blocks.at(-1)!.matchAll(/^Number of entries: (\S+)$/gm)].map((m) => m[1]), ['0', '0']);
  t.notRegex(out, /\x1b/, 'no escape codes off a terminal'); // eslint-disable-line no-control-regex
  // Each block differs from the one before: an unchanged report is not printed again.
  t.true(blocks.slice(2).every((b, i) => b !== blocks[i + 1]));

  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) return;
  const tty = spawnSync('script', ['-qec', `stty rows 40 cols 120; ${process.execPath} ${BIN} --server ${d.server} volume heal r2 info --watch`, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
  t.is(tty.status, 0, tty.stdout);
  t.regex(tty.stdout, /\x1b\[/, 'escape codes redraw it on a terminal'); // eslint-disable-line no-control-regex
  t.regex(tty.stdout, /nothing left to watch/);
  t.notRegex(tty.stdout, /^== /m);
});
