import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreEvent } from '../../brick/mgmt/config-store.js';
import { FileConfigStore } from '../../brick/mgmt/store/file.js';
import { FsError } from '../../lib/errors.js';
import { eventually, tmpDir } from '../helpers/proc.js';

const FILE_JS = fileURLToPath(new URL('../../brick/mgmt/store/file.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function store(t: { teardown(fn: () => unknown): void }, dir: string): FileConfigStore {
  const s = new FileConfigStore(dir);
  t.teardown(() => s.close());
  return s;
}

/** Opens the store in another process; resolves with what it printed ("opened" or the error code). */
function openElsewhere(dir: string): Promise<string> {
  const code = `import(${JSON.stringify(FILE_JS)}).then(async (m) => {
    const s = new m.FileConfigStore(${JSON.stringify(dir)});
    try { await s.ready(); console.log('opened'); } catch (e) { console.log(e.code ?? e.message); }
    await s.close();
  });`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}

test('putIf and removeIf succeed only on the revision read; revisions grow globally', async (t) => {
  const s = store(t, tmpDir(t));
  t.true(await s.putIf('/a', '1', 0));
  t.false(await s.putIf('/a', '2', 0), 'present: expected 0 fails');
  const a = (await s.get('/a'))!;
  t.is(a.value, '1');
  t.true(a.revision > 0);
  t.true(await s.putIf('/b', 'x', 0));
  const b = (await s.get('/b'))!;
  t.true(b.revision > a.revision);
  t.false(await s.putIf('/a', '2', a.revision + 100));
  t.true(await s.putIf('/a', '2', a.revision));
  const a2 = (await s.get('/a'))!;
  t.true(a2.revision > b.revision);
  t.false(await s.removeIf('/a', a.revision), 'stale revision');
  t.false(await s.removeIf('/nothing', 0));
  t.true(await s.removeIf('/a', a2.revision));
  t.is(await s.get('/a'), undefined);
});

test('list returns the keys under a prefix in key order', async (t) => {
  const s = store(t, tmpDir(t));
  for (const k of ['/v/b', '/v/a', '/w/a', '/v/c/d']) t.true(await s.putIf(k, k, 0));
  t.deepEqual((await s.list('/v/')).map((v) => v.key), ['/v/a', '/v/b', '/v/c/d']);
  t.deepEqual((await s.list('/none/')), []);
});

test('data and revisions survive reopening; the file is written whole', async (t) => {
  const dir = tmpDir(t);
  const s1 = new FileConfigStore(dir);
  t.true(await s1.putIf('/k', 'v', 0));
  t.true(await s1.putIf('/gone', 'v', 0));
  t.true(await s1.removeIf('/gone', (await s1.get('/gone'))!.revision));
  const before = (await s1.get('/k'))!;
  await s1.close();
  t.false(fs.existsSync(path.join(dir, 'config-store.lock')), 'lock file removed at close');
  t.deepEqual(fs.readdirSync(dir).sort(), ['config-store.json']);
  const s2 = store(t, dir);
  t.deepEqual(await s2.get('/k'), before);
  t.is(await s2.get('/gone'), undefined);
  t.true(await s2.putIf('/n', 'v', 0));
  t.true((await s2.get('/n'))!.revision > before.revision + 1, 'the counter continues across a restart');
});

test('a damaged file is reported with what to do', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'config-store.json'), '{"format": 1,');
  const s = new FileConfigStore(dir);
  t.regex((await t.throwsAsync(s.get('/x')))!.message, /not valid JSON.*move it away/);
  await s.close();
  fs.writeFileSync(path.join(dir, 'config-store.json'), '{"format": 2}');
  const s2 = new FileConfigStore(dir);
  t.regex((await t.throwsAsync(s2.ready()))!.message, /damaged/);
  await s2.close();
  t.false(fs.existsSync(path.join(dir, 'config-store.lock')), 'a failed open leaves no lock file');
});

test('watches see puts and removes under their prefix, in revision order, until closed', async (t) => {
  const s = store(t, tmpDir(t));
  const seen: StoreEvent[] = [];
  const w = await s.watch('/v/', (e) => seen.push(e));
  await s.putIf('/v/a', '1', 0);
  await s.putIf('/other', 'x', 0);
  const rev = (await s.get('/v/a'))!.revision;
  await s.putIf('/v/a', '2', rev);
  await s.removeIf('/v/a', (await s.get('/v/a'))!.revision);
  await w.close();
  await s.putIf('/v/b', '3', 0);
  t.deepEqual(seen.map((e) => [e.key, e.value]), [['/v/a', '1'], ['/v/a', '2'], ['/v/a', undefined]]);
  t.true(seen.every((e, i) => i === 0 || e.revision > seen[i - 1]!.revision));
});

test('two handles in one process share one store: a change by one is seen and refused by the other', async (t) => {
  const dir = tmpDir(t);
  const a = store(t, dir);
  const b = store(t, dir);
  const seen: string[] = [];
  await b.watch('/', (e) => seen.push(`${e.key}=${e.value}`));
  t.true(await a.putIf('/k', '1', 0));
  t.false(await b.putIf('/k', '2', 0));
  t.is((await b.get('/k'))!.value, '1');
  t.deepEqual(seen, ['/k=1']);
  const results = await Promise.all([a.putIf('/race', 'a', 0), b.putIf('/race', 'b', 0)]);
  t.deepEqual(results.filter(Boolean).length, 1, 'exactly one of two racing writers wins');
});

test('a key put with a lease goes when the lease is revoked', async (t) => {
  const s = store(t, tmpDir(t));
  const lease = await s.lease(5000);
  t.true(await s.putIf('/peers/me', 'up', 0, lease));
  t.true(await s.putIf('/plain', 'stays', 0));
  const seen: StoreEvent[] = [];
  await s.watch('/peers/', (e) => seen.push(e));
  await lease.revoke();
  t.is(await s.get('/peers/me'), undefined);
  t.is((await s.get('/plain'))!.value, 'stays');
  t.deepEqual(seen.map((e) => [e.key, e.value]), [['/peers/me', undefined]]);
  await t.throwsAsync(s.putIf('/peers/again', 'x', 0, lease), { code: 'ENOENT' });
});

test('a lease no longer renewed (its handle closed) expires after its ttl and takes its keys', async (t) => {
  const dir = tmpDir(t);
  const holder = new FileConfigStore(dir);
  const other = store(t, dir);
  const lease = await holder.lease(1000);
  t.true(await holder.putIf('/peers/h', 'up', 0, lease));
  await sleep(1500);
  t.truthy(await other.get('/peers/h'), 'renewed while its handle is open');
  const gone = new Promise<StoreEvent>((resolve) => { void other.watch('/peers/', resolve); });
  const closedAt = Date.now();
  await holder.close();
  const e = await gone;
  t.is(e.value, undefined);
  t.true(Date.now() - closedAt >= 600, 'not before the ttl (less what was left since the last renewal)');
  t.is(await other.get('/peers/h'), undefined);
});

// Serial: the stall stops every other test's timers too.
test.serial('a renewal that finds the deadline passed loses the lease (the event loop stalled)', async (t) => {
  const s = store(t, tmpDir(t));
  const lease = await s.lease(150);
  t.true(await s.putIf('/peers/slow', 'up', 0, lease));
  const lost = new Promise<void>((resolve) => lease.onLost(resolve));
  const until = Date.now() + 400;
  while (Date.now() < until) { /* stall the event loop past the ttl */ }
  await lost;
  // The holder hears of the loss first; the lease's keys go with the store's next write.
  await eventually(async () => (await s.get('/peers/slow')) === undefined, 5000, 'the lost lease\'s key to go');
});

test('leased keys do not survive a restart', async (t) => {
  const dir = tmpDir(t);
  const s1 = new FileConfigStore(dir);
  const lease = await s1.lease(60_000);
  await s1.putIf('/peers/x', 'up', 0, lease);
  await s1.putIf('/vol', 'def', 0);
  await s1.close();
  const s2 = store(t, dir);
  t.is(await s2.get('/peers/x'), undefined);
  t.is((await s2.get('/vol'))!.value, 'def');
});

test('lock: waiters queue in order; a lock held past waitMs is EBUSY', async (t) => {
  const dir = tmpDir(t);
  const a = store(t, dir);
  const b = store(t, dir);
  const l1 = await a.lock('volume-op', 1000);
  const order: string[] = [];
  const w1 = b.lock('volume-op', 2000).then((l) => { order.push('b'); return l; });
  const w2 = a.lock('volume-op', 2000).then((l) => { order.push('a2'); return l; });
  const e = await t.throwsAsync(b.lock('volume-op', 50));
  t.true(e instanceof FsError);
  t.is((e as FsError).code, 'EBUSY');
  t.true(await Promise.race([w1.then(() => true), sleep(50).then(() => false)]) === false, 'still waiting while held');
  await l1.release();
  const l2 = await w1;
  t.deepEqual(order, ['b']);
  await l2.release();
  await l2.release(); // a second release changes nothing
  const l3 = await w2;
  t.deepEqual(order, ['b', 'a2']);
  const other = await b.lock('other-name', 0);
  await other.release();
  await l3.release();
});

test('closing a handle releases the locks it holds', async (t) => {
  const dir = tmpDir(t);
  const a = new FileConfigStore(dir);
  const b = store(t, dir);
  await a.lock('op', 0);
  const waiting = b.lock('op', 2000);
  await a.close();
  await (await waiting).release();
  t.pass();
});

test('a second process cannot open the same directory; a dead owner\'s lock file is taken over', async (t) => {
  const dir = tmpDir(t);
  const s = new FileConfigStore(dir);
  await s.ready();
  t.is(await openElsewhere(dir), 'EBUSY');
  await s.close();
  t.is(await openElsewhere(dir), 'opened');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  fs.writeFileSync(path.join(dir, 'config-store.lock'), `${dead}\n`);
  const s2 = store(t, dir);
  await s2.ready();
  t.true(await s2.putIf('/k', 'v', 0));
});

test('a closed handle refuses calls', async (t) => {
  const s = new FileConfigStore(tmpDir(t));
  await s.close();
  await t.throwsAsync(s.get('/k'), { message: /closed/ });
});
