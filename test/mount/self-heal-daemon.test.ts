// The self-heal daemon (glustershd) as a user meets it: a replica 3 volume from the CLI, a
// brick process killed, files written through a mount, the brick started again with
// `volume start VOL force`, and `volume heal VOL info` drains to zero by itself, no
// `volume heal` run, leaving the brick identical to the others. With
// cluster.self-heal-daemon off nothing heals by itself until `volume heal` is run.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { SelfHealStatus, StatusListReply, VolumeStatusInfo } from '../../lib/mgmt/api.js';
import { runCliJson, runCliOk } from '../helpers/cli.js';
import { unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { eventually, shOk, sleep, tmpDir } from '../helpers/proc.js';
import { brickTree } from '../helpers/replica.js';


interface Setup {
  d: TestDaemon;
  bricks: string[];
  mnt: string;
  cli(args: string[]): Promise<string>;
  status(): Promise<VolumeStatusInfo>;
  /** Sum of `Number of entries` over every brick of `volume heal r3 info`; null while a brick's index cannot be read. */
  pending(): Promise<number | null>;
}

/** A started replica 3 volume r3 made through the CLI (options set before the start), mounted. */
async function replica3(t: ExecutionContext, options: Record<string, string> = {}): Promise<Setup> {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-shd-');
  const bricks = ['b1', 'b2', 'b3'].map((b) => path.join(root, b));
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'r3']));
  await cli(['volume', 'create', 'r3', 'replica', '3', ...bricks.map((b) => `localhost:${b}`), '--force']);
  await cli(['volume', 'set', 'r3', 'network.ping-timeout', '5']);
  for (const [k, v] of Object.entries(options)) await cli(['volume', 'set', 'r3', k, v]);
  await cli(['volume', 'start', 'r3']);
  const mnt = fs.mkdtempSync(path.join(root, 'mnt-'));
  t.teardown(() => unmountQuietly(mnt));
  await cli(['mount', `${d.server}:/r3`, mnt]);
  const status = async (): Promise<VolumeStatusInfo> => (await runCliJson<StatusListReply>(t, ['volume', 'status', 'r3', '--json'], { server: d.server })).volumes[0]!;
  const pending = async (): Promise<number | null> => {
    const counts = [...(await cli(['volume', 'heal', 'r3', 'info'])).matchAll(/^Number of entries: (\S+)$/gm)].map((m) => m[1]!);
    if (counts.length !== 3) t.fail(`heal info lists ${counts.length} bricks, not 3`);
    return counts.includes('-') ? null : counts.reduce((n, c) => n + Number(c), 0);
  };
  return { d, bricks, mnt, cli, status, pending };
}

/** Kills brick i (SIGKILL), writes through the mount while it is away, and returns once heal info lists entries. */
async function killAndWrite(t: ExecutionContext, s: Setup, i: number): Promise<void> {
  await shOk(t, `mkdir ${s.mnt}/docs && for i in $(seq 1 30); do echo "v1 $i" > ${s.mnt}/docs/f$i; done && head -c 1000000 /dev/urandom > ${s.mnt}/blob`);
  const pid = (await s.status()).bricks[i]!.pid!;
  process.kill(pid, 'SIGKILL');
  await sleep(300);
  await shOk(t, `for i in $(seq 1 30); do echo "v2 $i" >> ${s.mnt}/docs/f$i; done && rm ${s.mnt}/docs/f1 && mkdir ${s.mnt}/later && echo x > ${s.mnt}/later/x && chmod 700 ${s.mnt}/docs/f2 && head -c 100000 /dev/urandom >> ${s.mnt}/blob`);
  const info = await s.cli(['volume', 'heal', 'r3', 'info']);
  t.regex(info, new RegExp(`Brick localhost:${s.bricks[i]}\nStatus: Transport endpoint is not connected\nNumber of entries: -\n`), 'the dead brick is named HOST:/path, its index unreadable');
  t.regex(info, new RegExp(`Brick localhost:${s.bricks[0]}\n[^]*?/docs/f2 \\(pending on: localhost:${s.bricks[i]}\\)\n[^]*?Status: Connected\nNumber of entries: [1-9]`), 'a live brick lists what the dead one missed');
}

test('the self-heal daemon heals a brick that comes back: heal info drains to 0 without `volume heal`', async (t) => {
  t.timeout(240_000);
  const s = await replica3(t);
  const shd = await eventually(async () => {
    const st = await s.status();
    return st.selfHeal?.length === 1 && st.selfHeal[0]!.online ? st.selfHeal[0]! : undefined;
  }, 15_000, 'the self-heal daemon online in volume status') as SelfHealStatus;
  t.is(shd.host, 'localhost');
  t.regex(await s.cli(['volume', 'status', 'r3']), new RegExp(`\nSelf-heal Daemon on localhost +N/A +Y +${shd.pid}\n`));

  await killAndWrite(t, s, 2);
  await s.cli(['volume', 'start', 'r3', 'force']);
  const started = Date.now();
  await eventually(async () => (await s.pending()) === 0, 30_000, 'heal info at 0 entries with no `volume heal` run');
  t.log(`heal info drained ${Date.now() - started} ms after \`volume start r3 force\``);
  const [a, b, c] = s.bricks.map(brickTree);
  t.deepEqual(c, a, 'the healed brick holds what the others hold');
  t.deepEqual(b, a);
  t.false('docs/f1' in c!);
  t.true('later/x' in c!);

  // A self-heal daemon that dies is started again by the management daemon, which goes on.
  process.kill(shd.pid!, 'SIGKILL');
  const again = await eventually(async () => {
    const st = (await s.status()).selfHeal?.[0];
    return st?.online && st.pid !== shd.pid ? st : undefined;
  }, 15_000, 'a new self-heal daemon') as SelfHealStatus;
  t.not(again.pid, shd.pid);
});

test('cluster.self-heal-daemon off: nothing heals by itself; `volume heal` does', async (t) => {
  t.timeout(240_000);
  const s = await replica3(t, { 'cluster.self-heal-daemon': 'off' });
  const st = await s.status();
  t.is(st.selfHeal, undefined, 'no self-heal daemon line while it is off');
  t.false(fs.existsSync(path.join(s.d.stateDir, 'run', 'shd.pid')), 'no self-heal daemon runs for the volume');
  t.notRegex(await s.cli(['volume', 'status', 'r3']), /Self-heal Daemon/);

  await killAndWrite(t, s, 2);
  await s.cli(['volume', 'start', 'r3', 'force']);
  await eventually(async () => (await s.status()).bricks.every((b) => b.online), 15_000, 'brick back online');
  // Longer than the reconnect backoff and a crawl would take with the daemon on.
  const back = Date.now();
  while (Date.now() - back < 10_000) {
    const n = await s.pending();
    t.true(n === null || n > 0, `entries still pending ${Date.now() - back} ms after the brick came back (${n})`);
    await sleep(500);
  }
  await s.cli(['volume', 'heal', 'r3']);
  t.is(await s.pending(), 0);
  const [a, , c] = s.bricks.map(brickTree);
  t.deepEqual(c, a);

  // Turned on, the daemon starts for the volume.
  await s.cli(['volume', 'set', 'r3', 'cluster.self-heal-daemon', 'on']);
  await eventually(async () => (await s.status()).selfHeal?.[0]?.online, 15_000, 'the self-heal daemon online once turned on');
});
