// diagnostics.brick-log-level and diagnostics.client-log-level (GlusterFS's keys): `volume set`
// changes the level of a running volume's bricks and mounts at once, in either vocabulary
// (DEBUG, WARNING... or debug, warn...); a value that is no level is exit 2.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountRunFile } from '../../client/mount-table.js';
import { formatLogText } from '../../lib/log.js';
import { runCli, runCliOk } from '../helpers/cli.js';
import { mountVolume } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { eventually, tmpDir } from '../helpers/proc.js';
import { helloOf, RawBrickClient } from '../helpers/wire.js';

test('diagnostics.brick-log-level and diagnostics.client-log-level apply to running bricks and mounts, and back', async (t) => {
  const d = await startDaemon(t);
  const dir = tmpDir(t, 'brickfs-loglevel-');
  await runCliOk(t, ['volume', 'create', 'lv', `localhost:${path.join(dir, 'b1')}`, '--force'], { server: d.server });
  await runCliOk(t, ['volume', 'start', 'lv'], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'lv']));
  const mnt = await mountVolume(t, d.server, 'lv', tmpDir(t, 'brickfs-loglevel-mnt-'));
  const brickLog = (): string => {
    const logs = path.join(d.stateDir, 'logs', 'bricks');
    return formatLogText(fs.readdirSync(logs).filter((f) => f.endsWith('.log')).map((f) => fs.readFileSync(path.join(logs, f), 'utf8')).join(''));
  };
  const mountLog = (): string => formatLogText(fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8'));
  const brick = helloOf(path.join(d.stateDir, 'vols', 'lv', 'client.vol'));
  /** Opens and closes a session: protocol/server logs each new connection at debug. */
  const connect = async (): Promise<void> => {
    const c = await RawBrickClient.connect(brick.port, brick.subvolume, { credentials: brick.credentials });
    c.close();
  };
  const connectionLines = (): number => brickLog().split('\n').filter((l) => / is connection \S+ on /.test(l)).length;

  await connect();
  t.is(connectionLines(), 0, 'no debug lines at the default level');

  await runCliOk(t, ['volume', 'set', 'lv', 'diagnostics.brick-log-level', 'DEBUG'], { server: d.server });
  await eventually(async () => /log level debug \(the volume's\)/.test(brickLog()), 10_000, 'the brick took the volume\'s level');
  await connect();
  await eventually(async () => connectionLines() > 0, 5000, 'a debug line for the new connection');

  await runCliOk(t, ['volume', 'set', 'lv', 'diagnostics.brick-log-level', 'warn'], { server: d.server });
  await eventually(async () => /log level warn \(the volume's\)/.test(brickLog()), 10_000, 'back to warn');
  const before = connectionLines();
  await connect();
  await new Promise((r) => setTimeout(r, 500));
  t.is(connectionLines(), before, 'no debug line at warn');

  await runCliOk(t, ['volume', 'set', 'lv', 'diagnostics.client-log-level', 'DEBUG'], { server: d.server });
  await eventually(async () => /log level debug \(the volume's\)/.test(mountLog()), 15_000, 'the mount took the volume\'s level');
  fs.writeFileSync(path.join(mnt, 'f'), 'still served\n');
  t.is(fs.readFileSync(path.join(mnt, 'f'), 'utf8'), 'still served\n');

  const bad = await runCli(['volume', 'set', 'lv', 'diagnostics.brick-log-level', 'LOUD'], { server: d.server });
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /DEBUG, INFO, WARNING, ERROR/);
});
