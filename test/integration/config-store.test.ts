// The configuration store (brick/mgmt/config-store.ts): one conformance suite run against
// both backends, the embedded file store (brick/mgmt/store/file.ts) and etcd
// (brick/mgmt/store/etcd.ts) against a real etcd started by test/helpers/etcd.ts on free
// loopback ports (never 2379/2380, where Debian's packaged etcd may run). Each test works under its
// own key prefix (etcd) or state directory (file). The etcd half also covers what only a
// remote store has: the lease expiring on the server, and etcd dying under the client.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsError } from '../../lib/errors.js';
import type { ConfigStore, StoreEvent, StoreLease } from '../../brick/mgmt/config-store.js';
import { EtcdConfigStore, EtcdLease } from '../../brick/mgmt/store/etcd.js';
import { parseStoreUrl } from '../../brick/mgmt/store/url.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { CleanupScope, eventually, freePort, sleep } from '../helpers/proc.js';

// ---------------------------------------------------------------------------------------
// The two backends behind one harness

interface Opened {
  store: ConfigStore;
  /** Another client of the same store (another daemon of the pool, or another handle). */
  peer(): Promise<ConfigStore>;
}

interface Backend {
  name: 'file' | 'etcd';
  open(t: ExecutionContext): Promise<Opened>;
  /**
   * Makes a lease go the way a holder's death does: etcd stops renewing it and lets the
   * server expire it; the file store (one process: its leases die with it) revokes it.
   */
  expire(lease: StoreLease): Promise<void>;
  /** How long after expire() its keys may still be there. */
  expiryMs: number;
}

type FileStoreCtor = new (dir: string) => ConfigStore;

/** The file backend, while another change may still be bringing it: undefined when absent. */
async function loadFileStore(): Promise<FileStoreCtor | undefined> {
  const spec = '../../brick/mgmt/store/file.js';
  try {
    const m = (await import(spec)) as { FileConfigStore?: FileStoreCtor };
    return m.FileConfigStore;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

const FileConfigStore = await loadFileStore();

const fileBackend: Backend | undefined = FileConfigStore && {
  name: 'file',
  async open(t) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-cfg-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const mk = async (): Promise<ConfigStore> => {
      const s = new FileConfigStore(dir);
      t.teardown(() => s.close());
      return s;
    };
    return { store: await mk(), peer: mk };
  },
  async expire(lease) {
    await lease.revoke();
  },
  expiryMs: 2000,
};

/** One etcd for the conformance tests (each test under its own prefix). */
const shared = new CleanupScope();
let sharedEtcd: Promise<EtcdServer> | undefined;
let prefixes = 0;
test.after.always(() => shared.runAll());

const etcdBackend: Backend = {
  name: 'etcd',
  async open(t) {
    sharedEtcd ??= startEtcd(shared);
    const { endpoint } = await sharedEtcd;
    const prefix = `conformance/${process.pid}-${++prefixes}/`;
    const mk = async (): Promise<ConfigStore> => {
      const s = new EtcdConfigStore([endpoint], { prefix });
      t.teardown(() => s.close());
      return s;
    };
    return { store: await mk(), peer: mk };
  },
  async expire(lease) {
    (lease as EtcdLease).stopRenewing();
  },
  // TTL (etcd may raise it to its minimum) plus its expiry sweep and a slow machine.
  expiryMs: 8000,
};

const backends: Array<{ name: string; b?: Backend }> = [
  { name: 'file', b: fileBackend },
  { name: 'etcd', b: etcdBackend },
];

// ---------------------------------------------------------------------------------------
// The conformance suite

for (const { name, b } of backends) {
  const it = (title: string, fn: (t: ExecutionContext, b: Backend) => Promise<void>): void => {
    if (!b) {
      test.todo(`[${name}] ${title} (brick/mgmt/store/${name}.ts is not there yet)`);
      return;
    }
    test(`[${name}] ${title}`, (t) => fn(t, b));
  };

  it('putIf with 0 creates an absent key, and only once', async (t, b) => {
    const { store } = await b.open(t);
    t.is(await store.get('k'), undefined);
    t.true(await store.putIf('k', 'v1', 0));
    const got = await store.get('k');
    t.like(got, { key: 'k', value: 'v1' });
    t.true(got!.revision > 0);
    t.false(await store.putIf('k', 'v2', 0), 'a second create finds the key there');
    t.is((await store.get('k'))!.value, 'v1');
  });

  it('putIf refuses a stale revision and takes the current one', async (t, b) => {
    const { store } = await b.open(t);
    t.true(await store.putIf('k', 'a', 0));
    const r1 = (await store.get('k'))!.revision;
    t.true(await store.putIf('k', 'b', r1));
    const r2 = (await store.get('k'))!.revision;
    t.true(r2 > r1);
    t.false(await store.putIf('k', 'stale', r1), 'written over a revision since replaced');
    t.is((await store.get('k'))!.value, 'b');
    t.true(await store.putIf('k', 'c', r2));
    t.like(await store.get('k'), { value: 'c' });
    t.true((await store.get('k'))!.revision > r2);
  });

  it('removeIf removes only at the current revision', async (t, b) => {
    const { store } = await b.open(t);
    t.true(await store.putIf('k', 'a', 0));
    const r1 = (await store.get('k'))!.revision;
    t.true(await store.putIf('k', 'b', r1));
    const r2 = (await store.get('k'))!.revision;
    t.false(await store.removeIf('k', r1), 'stale');
    t.like(await store.get('k'), { value: 'b' });
    t.true(await store.removeIf('k', r2));
    t.is(await store.get('k'), undefined);
    t.false(await store.removeIf('k', r2), 'already gone');
    t.false(await store.removeIf('never', 0));
    t.true(await store.putIf('k', 'again', 0), 'created anew after removal');
  });

  it('list gives every key under a prefix, in key order, with revisions', async (t, b) => {
    const { store } = await b.open(t);
    for (const k of ['vol/b', 'vol/a/2', 'volx', 'vol/a/10', 'peers/1', 'vol/a/1']) t.true(await store.putIf(k, `=${k}`, 0));
    const vol = await store.list('vol/');
    t.deepEqual(vol.map((v) => v.key), ['vol/a/1', 'vol/a/10', 'vol/a/2', 'vol/b']);
    t.deepEqual(vol.map((v) => v.value), vol.map((v) => `=${v.key}`));
    for (const v of vol) t.is(v.revision, (await store.get(v.key))!.revision);
    t.deepEqual((await store.list('vol/a/1')).map((v) => v.key), ['vol/a/1', 'vol/a/10']);
    t.deepEqual((await store.list('')).map((v) => v.key), ['peers/1', 'vol/a/1', 'vol/a/10', 'vol/a/2', 'vol/b', 'volx']);
    t.deepEqual(await store.list('nothing/'), []);
  });

  it('watch sees puts and removals under its prefix, in order, from now on', async (t, b) => {
    const { store, peer } = await b.open(t);
    const other = await peer();
    t.true(await store.putIf('w/before', 'x', 0));
    const seen: StoreEvent[] = [];
    const w = await store.watch('w/', (e) => seen.push(e));
    t.true(await store.putIf('w/a', '1', 0));
    const ra = (await store.get('w/a'))!.revision;
    t.true(await other.putIf('w/a', '2', ra), 'a change by another client');
    t.true(await store.putIf('elsewhere', 'x', 0));
    const ra2 = (await store.get('w/a'))!.revision;
    t.true(await store.removeIf('w/a', ra2));
    const rb = (await store.get('w/before'))!.revision;
    t.true(await other.removeIf('w/before', rb));
    await eventually(() => seen.length >= 4, 10_000, 'four watch events');
    await sleep(200);
    t.deepEqual(seen.map((e) => [e.key, e.value]), [['w/a', '1'], ['w/a', '2'], ['w/a', undefined], ['w/before', undefined]]);
    for (let i = 1; i < seen.length; i++) t.true(seen[i].revision > seen[i - 1].revision, 'revisions increase');
    t.is(seen[0].revision, ra);
    t.is(seen[1].revision, ra2);
    await w.close();
    t.true(await store.putIf('w/after', 'x', 0));
    await sleep(300);
    t.is(seen.length, 4, 'nothing after close');
  });

  it('a key put with a lease goes when the lease is revoked', async (t, b) => {
    const { store } = await b.open(t);
    const seen: StoreEvent[] = [];
    await store.watch('alive/', (e) => seen.push(e));
    const lease = await store.lease(10_000);
    t.truthy(lease.id);
    let lost = false;
    lease.onLost(() => { lost = true; });
    t.true(await store.putIf('alive/me', 'pid', 0, lease));
    t.true(await store.putIf('config', 'stays', 0));
    await lease.revoke();
    await eventually(async () => (await store.get('alive/me')) === undefined, 5000, 'the leased key to go');
    t.like(await store.get('config'), { value: 'stays' });
    await eventually(() => seen.some((e) => e.key === 'alive/me' && e.value === undefined), 5000, 'the removal event');
    t.false(lost, 'a revoked lease is not lost');
    const err = await t.throwsAsync(store.putIf('alive/again', 'pid', 0, lease));
    t.true(err instanceof FsError && err.code === 'ENOENT', String(err));
  });

  it("a key put with a lease goes when the lease's holder stops renewing it", async (t, b) => {
    const { store, peer } = await b.open(t);
    const other = await peer();
    const lease = await store.lease(2000);
    let lost = 0;
    lease.onLost(() => { lost++; });
    t.true(await store.putIf('alive/me', 'pid', 0, lease));
    // Renewed past its ttl while the holder lives.
    await sleep(2500);
    t.like(await other.get('alive/me'), { value: 'pid' }, 'kept alive beyond one ttl');
    const stopped = Date.now();
    await b.expire(lease);
    await eventually(async () => (await other.get('alive/me')) === undefined, b.expiryMs, 'the leased key to expire');
    t.log(`${b.name}: gone ${Date.now() - stopped} ms after renewal stopped`);
    if (b.name === 'etcd') {
      t.true(Date.now() - stopped >= 1000, 'etcd, not the client, removed it: not before the ttl');
      await eventually(() => lost === 1, 5000, 'onLost');
      await sleep(500);
      t.is(lost, 1, 'onLost is called once');
    }
  });

  it('two contenders for one key: exactly one wins each round', async (t, b) => {
    const { store, peer } = await b.open(t);
    const other = await peer();
    for (let round = 0; round < 10; round++) {
      const key = `race/${round}`;
      const won = await Promise.all([store.putIf(key, 'A', 0), other.putIf(key, 'B', 0)]);
      t.is(won.filter(Boolean).length, 1, `create round ${round}: ${won}`);
      t.is((await store.get(key))!.value, won[0] ? 'A' : 'B');
      // Both read the same revision and update from it.
      const r = (await store.get(key))!.revision;
      const upd = await Promise.all([store.putIf(key, 'A2', r), other.putIf(key, 'B2', r)]);
      t.is(upd.filter(Boolean).length, 1, `update round ${round}: ${upd}`);
      t.is((await other.get(key))!.value, upd[0] ? 'A2' : 'B2');
    }
  });

  it('lock: a second taker waits and gets it on release; EBUSY after waitMs while held', async (t, b) => {
    const { store, peer } = await b.open(t);
    const other = await peer();
    const first = await store.lock('volume-op', 1000);
    let secondHeld = false;
    const second = other.lock('volume-op', 20_000).then((l) => { secondHeld = true; return l; });
    await sleep(500);
    t.false(secondHeld, 'waits while the first holds it');
    const released = Date.now();
    await first.release();
    const l2 = await second;
    t.true(Date.now() - released < 5000, 'handed over soon after release');
    // Now held by the second: a third taker gives up after its wait.
    const t0 = Date.now();
    const err = await t.throwsAsync(store.lock('volume-op', 400));
    const waited = Date.now() - t0;
    t.true(err instanceof FsError && err.code === 'EBUSY', String(err));
    t.true(waited >= 350, `waited ${waited} ms`);
    t.true(waited < 5000, `waited ${waited} ms`);
    // Other names are other locks.
    const unrelated = await store.lock('other-op', 0);
    await unrelated.release();
    t.deepEqual(await store.list(''), [], 'a lock is not one of the keys');
    await l2.release();
    const again = await store.lock('volume-op', 0);
    await again.release();
  });
}

// ---------------------------------------------------------------------------------------
// etcd only

test('[etcd] etcd killed: every operation fails with a clear error within a bound, the lease is lost', async (t) => {
  const server = await startEtcd(t);
  const opTimeoutMs = 2000;
  const store = new EtcdConfigStore([server.endpoint], { prefix: 'killed/', opTimeoutMs });
  t.teardown(() => store.close());
  t.true(await store.putIf('k', 'v', 0));
  const r = (await store.get('k'))!.revision;
  const lease = await store.lease(2000);
  let lostAt = 0;
  lease.onLost(() => { lostAt = Date.now(); });
  t.true(await store.putIf('alive/me', 'pid', 0, lease));
  const events: StoreEvent[] = [];
  await store.watch('', (e) => events.push(e));
  const held = await store.lock('op', 1000);

  await server.kill();
  const killedAt = Date.now();
  const bound = opTimeoutMs + 3000;
  const ops: Array<[string, () => Promise<unknown>]> = [
    ['get', () => store.get('k')],
    ['list', () => store.list('')],
    ['putIf', () => store.putIf('k', 'v2', r)],
    ['removeIf', () => store.removeIf('k', r)],
    ['watch', () => store.watch('x/', () => undefined)],
    ['lease', () => store.lease(5000)],
    ['lock', () => store.lock('op2', 1000)],
  ];
  for (const [what, op] of ops) {
    const t0 = Date.now();
    const err = await t.throwsAsync(op(), undefined, what);
    const took = Date.now() - t0;
    t.log(`${what}: ${took} ms: ${err?.message}`);
    t.true(err instanceof FsError, `${what}: ${String(err)}`);
    t.true(['ENOTCONN', 'ETIMEDOUT'].includes((err as FsError).code), `${what}: ${(err as FsError).code}`);
    t.true(err!.message.includes(server.endpoint), `${what} names the store: ${err?.message}`);
    t.true(took < bound, `${what} took ${took} ms`);
  }
  await eventually(() => lostAt > 0, 6000, 'the lease to be reported lost');
  t.log(`lease lost ${lostAt - killedAt} ms after the kill`);
  t.true(lostAt - killedAt < 4000, `lost ${lostAt - killedAt} ms after the kill (ttl 2 s)`);
  // Releasing and closing never hang on a dead store.
  const t1 = Date.now();
  await held.release().catch(() => undefined);
  await store.close();
  t.true(Date.now() - t1 < 2 * bound, `release and close took ${Date.now() - t1} ms`);
  t.is(events.length, 0);
});

test('[etcd] etcd frozen (SIGSTOP): calls time out within the bound, and work again once it runs', async (t) => {
  const server = await startEtcd(t);
  const opTimeoutMs = 1000;
  const store = new EtcdConfigStore([server.endpoint], { prefix: 'frozen/', opTimeoutMs });
  t.teardown(() => store.close());
  t.true(await store.putIf('k', 'v', 0));
  server.proc.kill('SIGSTOP');
  t.teardown(() => { server.proc.kill('SIGCONT'); });
  // kill() returns before every thread of etcd has stopped; a request sent at once may still
  // be answered. Stopped means state T in /proc.
  await eventually(() => fs.readFileSync(`/proc/${server.proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('T') || undefined, 5000, 'etcd to stop');
  for (const [what, op] of [
    ['get', () => store.get('k')],
    ['putIf', () => store.putIf('k', 'v2', 0)],
  ] as Array<[string, () => Promise<unknown>]>) {
    const t0 = Date.now();
    const err = await t.throwsAsync(op());
    const took = Date.now() - t0;
    t.log(`${what}: ${took} ms: ${err?.message}`);
    t.true(err instanceof FsError && ['ETIMEDOUT', 'ENOTCONN'].includes(err.code), String(err));
    t.true(took < opTimeoutMs + 2000, `${what} took ${took} ms`);
  }
  server.proc.kill('SIGCONT');
  const back = await eventually(() => store.get('k'), 15_000, 'the store to answer again');
  t.like(back, { value: 'v' });
});

test('[etcd] an etcd that never answers: calls fail in the bound, not hang', async (t) => {
  // A port nobody listens on (connection refused) behaves like a dead member.
  const port = await freePort();
  const store = new EtcdConfigStore([`127.0.0.1:${port}`], { opTimeoutMs: 1000 });
  t.teardown(() => store.close());
  const t0 = Date.now();
  const err = await t.throwsAsync(store.get('k'));
  t.true(err instanceof FsError && err.code === 'ENOTCONN', String(err));
  t.regex(err!.message, new RegExp(`etcd://127\\.0\\.0\\.1:${port}/brickfs/`));
  t.true(Date.now() - t0 < 3000);
});

test('[etcd] the lock of a holder whose lease expires passes to the next taker', async (t) => {
  sharedEtcd ??= startEtcd(shared);
  const { endpoint } = await sharedEtcd;
  const prefix = `crashed-holder/${process.pid}/`;
  const a = new EtcdConfigStore([endpoint], { prefix, lockTtlMs: 2000 });
  const b = new EtcdConfigStore([endpoint], { prefix, lockTtlMs: 2000 });
  t.teardown(() => b.close());
  t.teardown(() => a.close());
  await a.lock('op', 0);
  // The holder hangs: its client stops (no revoke, no renewal) and the lock's lease runs out.
  const before = Date.now();
  const hung = a as unknown as { leases: Set<EtcdLease> };
  for (const l of hung.leases) l.stopRenewing();
  const l = await b.lock('op', 15_000);
  t.log(`taken ${Date.now() - before} ms after the holder stopped`);
  t.true(Date.now() - before >= 1000);
  await l.release();
});

// ---------------------------------------------------------------------------------------
// parseStoreUrl

test('parseStoreUrl: file paths and file: URLs', (t) => {
  t.deepEqual(parseStoreUrl('/var/lib/brickfs'), { kind: 'file', dir: '/var/lib/brickfs' });
  t.deepEqual(parseStoreUrl('file:/var/lib/brickfs'), { kind: 'file', dir: '/var/lib/brickfs' });
  t.deepEqual(parseStoreUrl('file:///var/lib/brick%20fs'), { kind: 'file', dir: '/var/lib/brick fs' });
  t.deepEqual(parseStoreUrl('state'), { kind: 'file', dir: path.resolve('state') });
  t.throws(() => parseStoreUrl(''), { message: /empty/ });
  t.throws(() => parseStoreUrl('http://h:2379'), { message: /unknown scheme http/ });
  t.throws(() => parseStoreUrl('localhost:2379'), { message: /unknown scheme/ });
});

test('parseStoreUrl: etcd endpoints and prefix', (t) => {
  t.deepEqual(parseStoreUrl('etcd://h1:2379,h2:2379'), { kind: 'etcd', endpoints: ['h1:2379', 'h2:2379'], prefix: 'brickfs/' });
  t.deepEqual(parseStoreUrl('etcd://h1'), { kind: 'etcd', endpoints: ['h1:2379'], prefix: 'brickfs/' });
  t.deepEqual(parseStoreUrl('etcd://10.0.0.1:12379,[::1]:2379,[fe80::1]/pools/blue/'), {
    kind: 'etcd', endpoints: ['10.0.0.1:12379', '[::1]:2379', '[fe80::1]:2379'], prefix: 'pools/blue/',
  });
  t.deepEqual(parseStoreUrl('ETCD://h:1/p'), { kind: 'etcd', endpoints: ['h:1'], prefix: 'p/' });
  t.throws(() => parseStoreUrl('etcd://'), { message: /empty/ });
  t.throws(() => parseStoreUrl('etcd://h1,,h2'), { message: /empty/ });
  t.throws(() => parseStoreUrl('etcd://h:99999'), { message: /out of range/ });
  t.throws(() => parseStoreUrl('etcd://user@h:1'), { message: /HOST:PORT/ });
  t.throws(() => parseStoreUrl('etcd:h:1'), { message: /etcd:\/\// });
  t.throws(() => parseStoreUrl('etcd://h:1/a/../b'), { message: /\.\./ });
});
