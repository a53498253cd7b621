// `npm start` (scripts/start.mjs) on its own port, state directory and mount point: Ctrl-C
// stops everything its daemon runs, including volumes and mounts made beside the demo.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { killStateProcesses, reserveBrickPortBase } from '../helpers/daemon.js';
import { pidAlive } from '../../brick/mgmt/bricks.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { runCliOk } from '../helpers/cli.js';
import { eventually, freePort, portOpen, REPO, tmpDir } from '../helpers/proc.js';
import { useTestTls } from '../helpers/tls.js';

/** Pids of processes with an argument under dir. */
function processesUnder(dir: string): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(dir));
    } catch {
      return false;
    }
  });
}

test('Ctrl-C on npm start unmounts every mount of its daemon, stops every volume, then the daemon', async (t) => {
  const root = tmpDir(t, 'brickfs-npm-start-');
  const demo = path.join(root, 'demo');
  const mnt = path.join(root, 'mnt');
  const other = path.join(root, 'mnt-other');
  fs.mkdirSync(other);
  const port = await freePort();
  const server = `127.0.0.1:${port}`;
  // Under BRICKFS_TEST_TLS=1 the CLI helper puts the volumes made below under TLS: the demo's
  // daemon, and the bricks it starts, need this run's certificate directory from the start.
  useTestTls();
  const env = {
    ...process.env,
    BRICKFS_DEMO_PORT: String(port),
    BRICKFS_DEMO_DIR: demo,
    BRICKFS_DEMO_MNT: mnt,
    BRICKFS_DEMO_BRICK_PORT_BASE: String(reserveBrickPortBase(t)),
    BRICKFS_DEMO_SKIP_PREPARE: '1',
    BRICKFS_RUN_DIR: path.join(root, 'run'),
  };
  const p = spawn(process.execPath, [path.join(REPO, 'scripts', 'start.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (p.exitCode === null) p.kill('SIGKILL');
    for (const dir of [mnt, other]) await unmountQuietly(dir);
    killStateProcesses(path.join(demo, 'state'));
    for (const pid of processesUnder(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
  });
  await eventually(() => out.includes('The demo volume is mounted') || p.exitCode !== null, 90_000, 'the demo mounted');
  t.true(out.includes('The demo volume is mounted'), out);
  t.true(isMountPoint(mnt));

  // Made by hand on the demo daemon: a mounted replica volume and a started one nobody mounts.
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server, env: { BRICKFS_RUN_DIR: env.BRICKFS_RUN_DIR } });
  await cli(['volume', 'create', 'rep', 'replica', '2', `localhost:${demo}/bricks/r1`, `localhost:${demo}/bricks/r2`, '--force']);
  await cli(['volume', 'start', 'rep']);
  await cli(['volume', 'create', 'idle', `localhost:${demo}/bricks/i1`, '--force']);
  await cli(['volume', 'start', 'idle']);
  await cli(['mount', `${server}:/rep`, other]);
  fs.writeFileSync(path.join(other, 'f'), 'x');
  // The daemon, 3 + 2 + 1 bricks, a self-heal daemon and two mount processes.
  const before = processesUnder(root);
  t.true(before.length >= 9, `processes under ${root}: ${before.join(' ')}`);

  p.kill('SIGINT');
  t.is(await exited, 0, out);
  t.false(isMountPoint(mnt), 'the demo mount is gone');
  t.false(isMountPoint(other), 'the mount of the other volume is gone');
  t.false(await portOpen(port), 'the daemon is gone');
  t.deepEqual(before.filter(pidAlive), [], 'no brick, self-heal daemon or mount process is left');
  t.regex(out, /unmounting .*mnt-other \(volume rep\)/);
  t.regex(out, /stopping volume idle/);
  t.regex(out, /everything the demo ran is stopped/);
});
