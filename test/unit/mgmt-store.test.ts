import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { allocatePorts, portFree } from '../../brick/mgmt/bricks.js';
import { brickBaseId, VolumeStore, type VolumeDef } from '../../brick/mgmt/store.js';
import { tmpDir } from '../helpers/proc.js';
import net from 'node:net';

function volume(name: string, paths: string[]): VolumeDef {
  return {
    name,
    id: `id-${name}`,
    type: 'distribute',
    status: 'created',
    version: 1,
    bricks: paths.map((p, i) => ({ host: 'localhost', path: p, port: 7100 + i, id: brickBaseId('localhost', p) })),
    options: {},
    createdAt: new Date(0).toISOString(),
  };
}

test('volumes survive reopening the store; no temporary files remain', async (t) => {
  const dir = tmpDir(t);
  const s1 = await VolumeStore.open(dir);
  await s1.put(volume('a', ['/srv/a0', '/srv/a1']));
  await s1.put(volume('b', ['/srv/b0']));
  await s1.remove('b');
  const s2 = await VolumeStore.open(dir);
  t.deepEqual(s2.list().map((v) => v.name), ['a']);
  t.deepEqual(s2.get('a'), volume('a', ['/srv/a0', '/srv/a1']));
  t.deepEqual(fs.readdirSync(dir), ['volumes.json']);
});

test('get() hands out copies: changing one does not change the store', async (t) => {
  const s = await VolumeStore.open(tmpDir(t));
  await s.put(volume('a', ['/srv/a0']));
  s.get('a')!.status = 'started';
  t.is(s.get('a')!.status, 'created');
});

test('a damaged volumes.json is reported with what to do', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'volumes.json'), '{"format": 1, "volumes": [');
  const e1 = await t.throwsAsync(VolumeStore.open(dir));
  t.regex(e1!.message, /not valid JSON.*move it away/);
  fs.writeFileSync(path.join(dir, 'volumes.json'), '{"format": 7}');
  t.regex((await t.throwsAsync(VolumeStore.open(dir)))!.message, /damaged/);
});

test('brick ids: GlusterFS-like names, unique across volumes', async (t) => {
  t.is(brickBaseId('localhost', '/srv/b1'), 'localhost-srv-b1');
  t.is(brickBaseId('::1', '/srv/b 1'), '__1-srv-b_1');
  const s = await VolumeStore.open(tmpDir(t));
  await s.put(volume('a', ['/srv/b1']));
  t.is(s.uniqueBrickId('localhost', '/srv/b1'), 'localhost-srv-b1-2');
  t.is(s.uniqueBrickId('localhost', '/srv/b1', new Set(['localhost-srv-b1-2'])), 'localhost-srv-b1-3');
  t.is(s.uniqueBrickId('localhost', '/srv/b2'), 'localhost-srv-b2');
});

test('port allocation skips used and busy ports', async (t) => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '0.0.0.0', () => r()));
  t.teardown(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  t.false(await portFree(port));
  const got = await allocatePorts(3, port, new Set([port + 1]));
  t.false(got.includes(port));
  t.false(got.includes(port + 1));
  t.is(got.length, 3);
  t.true(got.every((p) => p > port + 1));
});
