// A management daemon started on a state directory written before the configuration store
// (volumes.json) serves the volumes defined there, and keeps them across restarts.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { VolumeListReply } from '../../lib/mgmt/api.js';
import { runCliJson } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { tmpDir } from '../helpers/proc.js';

test('a daemon on an old state directory sees the volumes of its volumes.json', async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-mgmt-'));
  const brick = path.join(tmpDir(t, 'brickfs-bricks-'), 'b0');
  fs.mkdirSync(brick);
  const old = {
    format: 1,
    volumes: [{
      name: 'legacy', id: 'id-legacy', type: 'distribute', status: 'created', version: 3,
      bricks: [{ host: 'localhost', path: brick, port: 29999, id: 'localhost-legacy-b0' }],
      options: { 'network.ping-timeout': '7' }, createdAt: new Date(0).toISOString(),
    }],
  };
  fs.writeFileSync(path.join(stateDir, 'volumes.json'), `${JSON.stringify(old, null, 2)}\n`);
  const d = await startDaemon(t, { stateDir });
  const info = async (): Promise<VolumeListReply> => runCliJson<VolumeListReply>(t, ['volume', 'info', '--json'], { server: d.server });
  const v = (await info()).volumes;
  t.deepEqual(v.map((x) => [x.name, x.version, x.options, x.bricks.map((b) => b.path)]), [['legacy', 3, { 'network.ping-timeout': '7' }, [brick]]]);
  t.false(fs.existsSync(path.join(stateDir, 'volumes.json')));
  t.true(fs.existsSync(path.join(stateDir, 'volumes.json.migrated')));
  const set = await d.cli(['volume', 'set', 'legacy', 'network.ping-timeout', '9']);
  t.is(set.code, 0, set.stderr);
  await d.restart();
  const after = (await info()).volumes;
  t.deepEqual(after.map((x) => [x.name, x.version, x.options['network.ping-timeout']]), [['legacy', 4, '9']]);
});
