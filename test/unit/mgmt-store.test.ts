import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { allocatePorts, portFree } from '../../brick/mgmt/bricks.js';
import { MgmtError } from '../../brick/mgmt/errors.js';
import { brickBaseId, VOLUMES_PREFIX, VolumeStore, type VolumeDef } from '../../brick/mgmt/store.js';
import { FileConfigStore } from '../../brick/mgmt/store/file.js';
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

type Teardown = { teardown(fn: () => unknown): void };

/** A volume store over a file configuration store in dir, both closed when the test ends. */
async function open(t: Teardown, dir: string): Promise<VolumeStore> {
  const config = new FileConfigStore(dir);
  t.teardown(() => config.close());
  const s = await VolumeStore.open(dir, config);
  t.teardown(() => s.close());
  return s;
}

test('volumes survive reopening the store; no temporary files remain', async (t) => {
  const dir = tmpDir(t);
  const c1 = new FileConfigStore(dir);
  const s1 = await VolumeStore.open(dir, c1);
  await s1.put(volume('a', ['/srv/a0', '/srv/a1']));
  await s1.put(volume('b', ['/srv/b0']));
  await s1.remove('b');
  await s1.close();
  await c1.close();
  t.deepEqual(fs.readdirSync(dir), ['config-store.json']);
  const s2 = await open(t, dir);
  t.deepEqual(s2.list().map((v) => v.name), ['a']);
  t.deepEqual(s2.get('a'), volume('a', ['/srv/a0', '/srv/a1']));
});

test('an old state directory: its volumes.json is moved into the configuration store, once', async (t) => {
  const dir = tmpDir(t);
  const old = [volume('a', ['/srv/a0']), { ...volume('b', ['/srv/b0', '/srv/b1']), status: 'started' as const, version: 4 }];
  fs.writeFileSync(path.join(dir, 'volumes.json'), `${JSON.stringify({ format: 1, volumes: old }, null, 2)}\n`);
  const c1 = new FileConfigStore(dir);
  const s1 = await VolumeStore.open(dir, c1);
  t.deepEqual(s1.list(), old);
  t.false(fs.existsSync(path.join(dir, 'volumes.json')));
  t.true(fs.existsSync(path.join(dir, 'volumes.json.migrated')), 'the old file stays as a backup');
  t.deepEqual((await c1.list(VOLUMES_PREFIX)).map((kv) => kv.key), [`${VOLUMES_PREFIX}a`, `${VOLUMES_PREFIX}b`]);
  const b = s1.get('b')!;
  b.version += 1;
  await s1.put(b);
  await s1.close();
  await c1.close();
  const s2 = await open(t, dir);
  t.deepEqual(s2.list().map((v) => [v.name, v.version]), [['a', 1], ['b', 5]]);
});

test('a volume changed elsewhere since it was read is refused with 409, not overwritten', async (t) => {
  const dir = tmpDir(t);
  const config = new FileConfigStore(dir);
  t.teardown(() => config.close());
  const s = await VolumeStore.open(dir, config);
  await s.put(volume('a', ['/srv/a0']));
  // Stop following changes: this store now holds a copy another daemon is about to outdate.
  await s.close();
  const kv = (await config.get(`${VOLUMES_PREFIX}a`))!;
  t.true(await config.putIf(kv.key, JSON.stringify({ ...volume('a', ['/srv/a0']), version: 9 }), kv.revision));
  const stale = s.get('a')!;
  stale.status = 'started';
  const e = await t.throwsAsync(s.put(stale));
  t.true(e instanceof MgmtError && e.status === 409, String(e));
  t.regex(e!.message, /changed by another management daemon/);
  t.is(JSON.parse((await config.get(kv.key))!.value).version, 9);
});

test('get() hands out copies: changing one does not change the store', async (t) => {
  const s = await open(t, tmpDir(t));
  await s.put(volume('a', ['/srv/a0']));
  s.get('a')!.status = 'started';
  t.is(s.get('a')!.status, 'created');
});

test('a damaged volumes.json is reported with what to do', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'volumes.json'), '{"format": 1, "volumes": [');
  const config = new FileConfigStore(dir);
  t.teardown(() => config.close());
  const e1 = await t.throwsAsync(VolumeStore.open(dir, config));
  t.regex(e1!.message, /not valid JSON.*move it away/);
  fs.writeFileSync(path.join(dir, 'volumes.json'), '{"format": 7}');
  t.regex((await t.throwsAsync(VolumeStore.open(dir, config)))!.message, /damaged/);
});

test('brick ids: GlusterFS-like names, unique across volumes', async (t) => {
  t.is(brickBaseId('localhost', '/srv/b1'), 'localhost-srv-b1');
  t.is(brickBaseId('::1', '/srv/b 1'), '__1-srv-b_1');
  const s = await open(t, tmpDir(t));
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
