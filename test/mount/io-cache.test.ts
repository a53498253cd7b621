// performance/io-cache under real mounts (in the generated graph by default). Opens reply
// without keep_cache, so the kernel drops a file's pages at every open and reads it again
// from the mount: those reads are what io-cache answers. Own writes are read back at once;
// another mount's change shows at once through a brick upcall, or without upcalls within
// cache-timeout (1 s) plus the kernel's attribute timeout.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute, xlatorStatedump } from '../helpers/cluster.js';
import { eventually, sleep } from '../helpers/proc.js';

const MiB = 1024 ** 2;

const ioc = async (mnt: string): Promise<Record<string, number>> => await xlatorStatedump(mnt, 'performance/io-cache') as Record<string, number>;

test('a file read again after the kernel dropped its pages comes from io-cache; writes through the mount are read back at once', async (t) => {
  const vol = await startDistribute(t, 2);
  t.true(vol.volfile.includes('type performance/io-cache'), 'io-cache is in the generated graph');
  const mnt = await mountVolfile(t, vol.volfilePath);
  const file = path.join(mnt, 'f');
  const content = crypto.randomBytes(3 * MiB + 777);
  await fs.promises.writeFile(file, content);
  // Right after a write of its own io-cache passes reads by until it knows the new attributes.
  await sleep(1200);
  t.true((await fs.promises.readFile(file)).equals(content));
  const filled = await ioc(mnt);
  t.true(filled.misses > 0 && filled.cachedBytes >= content.length, `filled: ${JSON.stringify(filled)}`);
  // A new open drops the kernel's pages of the file: this read reaches the mount again.
  t.true((await fs.promises.readFile(file)).equals(content), 'the same bytes from the cache');
  const hit = await ioc(mnt);
  t.true(hit.hits > filled.hits, `answered from the cache: ${JSON.stringify(hit)}`);
  t.is(hit.misses, filled.misses, 'nothing missed');

  // A write through this mount, not page aligned, read back at once through a new open and an fd open before it.
  const early = await fs.promises.open(file, 'r');
  t.teardown(() => early.close().catch(() => undefined));
  const writer = await fs.promises.open(file, 'r+');
  const patch = crypto.randomBytes(200_000);
  await writer.write(patch, 0, patch.length, MiB + 5);
  await writer.close();
  const expected = Buffer.from(content);
  patch.copy(expected, MiB + 5);
  t.true((await fs.promises.readFile(file)).equals(expected), 'the new bytes');
  const part = Buffer.alloc(patch.length);
  await early.read(part, 0, part.length, MiB + 5);
  t.true(part.equals(patch), 'through an fd opened before the write');
  // Cached again once the attributes settle, and still the new bytes.
  await sleep(1200);
  await fs.promises.readFile(file);
  t.true((await fs.promises.readFile(file)).equals(expected));
  // Truncated and rewritten shorter (O_TRUNC).
  const shorter = crypto.randomBytes(100_000);
  await fs.promises.writeFile(file, shorter);
  t.true((await fs.promises.readFile(file)).equals(shorter), 'after O_TRUNC');
  t.true((await ioc(mnt)).invalidations > 0);
});

/**
 * b caches a file, a rewrites it with the same size (only the mtime tells), b must see the new
 * bytes within `withinMs`. `set`/`o`: volume options and mount options of the variant.
 */
async function changeSeenOnOtherMount(t: import('ava').ExecutionContext, set: Record<string, string>, o: string | undefined, withinMs: number): Promise<Record<string, number>> {
  const vol = await startDistribute(t, 2, { set });
  const a = await mountVolfile(t, vol.volfilePath, undefined, o);
  const b = await mountVolfile(t, vol.volfilePath, undefined, o);
  const first = crypto.randomBytes(300_000);
  await fs.promises.writeFile(path.join(a, 'shared'), first);
  await sleep(1200);
  const onB = path.join(b, 'shared');
  t.true((await fs.promises.readFile(onB)).equals(first));
  t.true((await fs.promises.readFile(onB)).equals(first));
  const before = await ioc(b);
  t.true(before.hits > 0, `b reads from its cache: ${JSON.stringify(before)}`);
  const second = crypto.randomBytes(first.length);
  const w = await fs.promises.open(path.join(a, 'shared'), 'r+');
  await w.write(second, 0, second.length, 0);
  await w.close();
  const changedAt = Date.now();
  await eventually(async () => (await fs.promises.readFile(onB)).equals(second), withinMs, 'the change seen on b');
  t.log(`seen on b after ${Date.now() - changedAt} ms`);
  const after = await ioc(b);
  t.true(after.invalidations > before.invalidations, 'b dropped its stale pages');
  return after;
}

test('without upcalls, a change made through another mount is seen after cache-timeout', async (t) => {
  // cache-timeout (1 s) + the kernel's attribute timeout (1 s) + md-cache's (1 s), with slack for a busy machine.
  await changeSeenOnOtherMount(t, { 'features.cache-invalidation': 'off' }, undefined, 6000);
});

test('with upcalls, a change made through another mount is seen at once, even with every cache at 600 s', async (t) => {
  const set = { 'performance.cache-refresh-timeout': '60', 'performance.md-cache-timeout': '600', 'performance.nl-cache-timeout': '600' };
  const dump = await changeSeenOnOtherMount(t, set, 'attribute-timeout=600,entry-timeout=600,negative-timeout=600', 3000);
  t.true(dump.upcallInvalidations > 0, 'told by the brick');
});
