// performance/quick-read under real mounts (in the generated graph by default): small files
// read after the caches went cold are answered from the content their lookup brought (the
// statedump's hits, and no readfile reaching a brick), on distribute 2 (link files included)
// and on replica 2; this mount's own changes are read back at once; another mount's change
// shows within the timeouts; files above max-file-size read as before.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mountStatedump, mountVolfile, startDistribute, xlatorStatedump, type TestVolume } from '../helpers/cluster.js';
import { eventually, sleep } from '../helpers/proc.js';
import { startReplicated } from '../helpers/replica.js';

// Serial: the tests wait for the 1 s timeouts to pass and count what happened in between;
// eight volumes starting at once on a busy two-vCPU machine made bricks miss their start-up window.
const serial = test.serial;

/** Longer than the kernel's entry and attribute timeouts and md-cache's (1 s each): the next access looks the name up again. */
const COLD_MS = 1300;

function writeSmallFiles(dir: string, n: number, maxBytes = 20_000): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const data = crypto.randomBytes((i * 997) % maxBytes);
    fs.writeFileSync(path.join(dir, `f${i}`), data);
    files.set(`f${i}`, data);
  }
  return files;
}

function readBack(t: ExecutionContext, dir: string, files: Map<string, Buffer>): void {
  let bad = 0;
  for (const [name, data] of files) if (!fs.readFileSync(path.join(dir, name)).equals(data)) bad++;
  t.is(bad, 0, 'every file reads back as written');
}

async function qrDump(mnt: string): Promise<Record<string, number>> {
  return await xlatorStatedump(mnt, 'performance/quick-read') as Record<string, number>;
}

/** Every file read after the caches went cold: the reads are answered from the lookups' content. */
async function coldReadsAreHits(t: ExecutionContext, vol: TestVolume, n: number): Promise<string> {
  t.true(vol.volfile.includes('type performance/quick-read'), 'quick-read is in the generated graph');
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'small');
  const files = writeSmallFiles(dir, n);
  readBack(t, dir, files);
  await sleep(COLD_MS);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  const before = await qrDump(mnt);
  const ob = await xlatorStatedump(mnt, 'performance/open-behind') as Record<string, number>;
  readBack(t, dir, files);
  const after = await qrDump(mnt);
  const ob2 = await xlatorStatedump(mnt, 'performance/open-behind') as Record<string, number>;
  // Most reads were answered here: each of them a readfile that open-behind sent down and
  // that went no further. Without quick-read doing its job, hits stay at 0.
  const hits = after.hits! - before.hits!;
  t.true(hits >= n * 0.8, `reads answered from the lookups' content: ${JSON.stringify(after)}`);
  t.true(ob2.readfiles! - ob.readfiles! >= hits, 'every hit was a read by path that reached quick-read');
  t.true(after.bytes! > 0 && after.entries! > 0, JSON.stringify(after));
  return mnt;
}

// io-cache (above open-behind) would answer the second pass from the pages the first one
// filled, before quick-read sees it: off here, so the counters are quick-read's alone. And
// md-cache keeps attributes 1 s, not the 60 s it keeps them while the bricks push
// invalidations: these tests count what lookups that reach quick-read do, and md-cache would
// answer the lookups of names this mount made or listed (the reads then miss and go down as
// one readfile each, the same one round trip; the last test covers that default).
const NO_IO_CACHE = { 'performance.io-cache': 'off', 'performance.md-cache-timeout': '1' };

serial('distribute 2: 100 small files read cold are answered from their lookups, intact', async (t) => {
  await coldReadsAreHits(t, await startDistribute(t, 2, { set: NO_IO_CACHE }), 100);
});

serial('replica 2: 60 small files read cold are answered from their lookups, intact', async (t) => {
  await coldReadsAreHits(t, await startReplicated(t, 2, 1, { set: NO_IO_CACHE }), 60);
});

serial('without quick-read the same reads go to the bricks (the counters above mean something)', async (t) => {
  const vol = await startDistribute(t, 2, { set: { 'performance.quick-read': 'off' } });
  t.false(vol.volfile.includes('performance/quick-read'));
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'small');
  const files = writeSmallFiles(dir, 30);
  await sleep(COLD_MS);
  const before = await xlatorStatedump(mnt, 'performance/open-behind') as Record<string, number>;
  readBack(t, dir, files);
  const after = await xlatorStatedump(mnt, 'performance/open-behind') as Record<string, number>;
  t.true(after.readfiles! - before.readfiles! >= 25, `reads by path went down: ${JSON.stringify(after)}`);
  t.false(Object.values((await mountStatedump(mnt)).xlators).some((x) => x.type === 'performance/quick-read'));
});

/** This mount's changes of a file whose content quick-read holds, each read back at once. */
async function ownChangesReadBack(t: ExecutionContext, vol: TestVolume): Promise<void> {
  const mnt = await mountVolfile(t, vol.volfilePath);
  const f = path.join(mnt, 'f');
  const expectRead = (want: Buffer, what: string): void => {
    t.true(fs.readFileSync(f).equals(want), what);
  };
  /** Reads the file cold, so quick-read holds its content, then makes the change and reads it back at once. */
  const afterCold = async (what: string, change: () => Buffer): Promise<void> => {
    await sleep(COLD_MS);
    fs.readFileSync(f);
    const want = change();
    expectRead(want, what);
  };
  let cur = crypto.randomBytes(3000);
  fs.writeFileSync(f, cur);
  const filled = (await qrDump(mnt)).fills!;
  await afterCold('overwrite, same size', () => {
    cur = crypto.randomBytes(3000);
    fs.writeFileSync(f, cur);
    return cur;
  });
  t.true((await qrDump(mnt)).fills! > filled, 'the cold read filled the cache');
  await afterCold('in-place write through an O_RDWR fd', () => {
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from('PATCH'), 0, 5, 100);
    fs.closeSync(fd);
    cur = Buffer.from(cur);
    cur.write('PATCH', 100);
    return cur;
  });
  await afterCold('append', () => {
    const more = crypto.randomBytes(500);
    fs.appendFileSync(f, more);
    cur = Buffer.concat([cur, more]);
    return cur;
  });
  await afterCold('truncate', () => {
    fs.truncateSync(f, 1000);
    cur = cur.subarray(0, 1000);
    return cur;
  });
  await afterCold('rename over it', () => {
    const other = crypto.randomBytes(1234);
    fs.writeFileSync(path.join(mnt, 'other'), other);
    fs.renameSync(path.join(mnt, 'other'), f);
    cur = other;
    return cur;
  });
  await afterCold('unlink and create again', () => {
    fs.unlinkSync(f);
    cur = crypto.randomBytes(777);
    fs.writeFileSync(f, cur);
    return cur;
  });
  await afterCold('grown past max-file-size', () => {
    cur = crypto.randomBytes(100_000);
    fs.writeFileSync(f, cur);
    return cur;
  });
  await sleep(COLD_MS);
  expectRead(cur, 'a file above max-file-size reads back cold');
}

serial('distribute 2: this mount\'s writes, truncates, renames and unlinks are read back at once', async (t) => {
  await ownChangesReadBack(t, await startDistribute(t, 2));
});

serial('replica 2: this mount\'s writes, truncates, renames and unlinks are read back at once', async (t) => {
  await ownChangesReadBack(t, await startReplicated(t, 2));
});

serial('a change made through another mount is seen within the timeouts', async (t) => {
  const vol = await startDistribute(t, 2);
  const a = await mountVolfile(t, vol.volfilePath);
  const b = await mountVolfile(t, vol.volfilePath);
  fs.writeFileSync(path.join(a, 'shared'), 'version one');
  await sleep(COLD_MS);
  t.is(fs.readFileSync(path.join(b, 'shared'), 'utf8'), 'version one');
  t.true((await qrDump(b)).entries! >= 1, 'b holds the content');
  const changedAt = Date.now();
  fs.writeFileSync(path.join(a, 'shared'), 'version two');
  // The kernel's entry and attribute timeouts, md-cache's and quick-read's (1 s each), with
  // slack for a busy machine.
  await eventually(() => fs.readFileSync(path.join(b, 'shared'), 'utf8') === 'version two', 4000, 'b reads the new content');
  t.true(Date.now() - changedAt < 4000);
});

serial('prefetch: another mount\'s change of a prefetched file is seen at once with every cache 60 s or longer', async (t) => {
  // Every cache long, so only the brick's upcall can make b see the change in time: a
  // prefetched content that outlived it would be read for a minute.
  const vol = await startDistribute(t, 2, { set: { ...NO_IO_CACHE, 'performance.quick-read-cache-timeout': '60', 'performance.md-cache-timeout': '600' } });
  const a = await mountVolfile(t, vol.volfilePath);
  const b = await mountVolfile(t, vol.volfilePath, undefined, 'attribute-timeout=600,entry-timeout=600');
  const files = writeSmallFiles(path.join(a, 'walk'), 8);
  await sleep(COLD_MS);
  t.is(fs.readdirSync(path.join(b, 'walk')).length, 8);
  // f0 is empty (no read reaches the mount): f1 is the first read.
  t.true(fs.readFileSync(path.join(b, 'walk', 'f1')).equals(files.get('f1')!));
  await eventually(async () => (await qrDump(b)).prefetches! >= 6, 4000, 'b fetched the other files ahead');
  // Same size, other bytes: only the content (and the times) tell.
  const changed = Buffer.from(files.get('f3')!).fill(0x5a);
  fs.writeFileSync(path.join(a, 'walk', 'f3'), changed);
  await eventually(() => fs.readFileSync(path.join(b, 'walk', 'f3')).equals(changed), 4000, 'b reads a\'s content, not what it prefetched');
});

serial('files above max-file-size, and a max-file-size set by volume set, read right', async (t) => {
  const vol = await startDistribute(t, 2, { set: { 'performance.quick-read-max-file-size': '4KiB', 'performance.md-cache-timeout': '1' } });
  t.regex(vol.volfile, /option max-file-size 4096/);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'mixed');
  const sizes = [0, 1, 4095, 4096, 4097, 65_536, 300_000];
  const files = new Map(sizes.map((s) => [`s${s}`, crypto.randomBytes(s)]));
  fs.mkdirSync(dir);
  for (const [n, d] of files) fs.writeFileSync(path.join(dir, n), d);
  await sleep(COLD_MS);
  const before = await qrDump(mnt);
  readBack(t, dir, files);
  const d = await qrDump(mnt);
  t.is(d.fills! - before.fills!, 4, `only the files of at most 4 KiB are fetched: ${JSON.stringify(d)}`);
  // The empty file is never read (the kernel knows its size): three hits.
  t.true(d.hits! >= 3, JSON.stringify(d));
});

serial('distribute 2: a file found through its link file is answered with the content from the brick that holds it', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'moved');
  const before = writeSmallFiles(dir, 20, 8000);
  // Renamed files whose new name hashes to the other brick keep their data where it was and
  // get a link file on the new name's brick.
  const files = new Map<string, Buffer>();
  for (const [n, d] of before) {
    fs.renameSync(path.join(dir, n), path.join(dir, `renamed-${n}`));
    files.set(`renamed-${n}`, d);
  }
  const linkfiles = vol.bricks.flatMap((b) => fs.readdirSync(path.join(b.dir, 'moved'))
    .filter((n) => (fs.statSync(path.join(b.dir, 'moved', n)).mode & 0o7777) === 0o1000));
  t.true(linkfiles.length >= 3, `some renames made link files: ${linkfiles.join(' ')}`);
  // A fresh mount knows nothing of where they live.
  const fresh = await mountVolfile(t, vol.volfilePath);
  const freshDir = path.join(fresh, 'moved');
  readBack(t, freshDir, files);
  const d = await qrDump(fresh);
  t.true(d.hits! >= files.size * 0.8, JSON.stringify(d));
});

/**
 * A walker's pattern: list a directory, then (the kernel's entries expired) read its files
 * one by one. Returns the quick-read counters that moved during the reads.
 */
async function listThenRead(t: ExecutionContext, vol: TestVolume, n: number): Promise<Record<string, number>> {
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'walk');
  const files = writeSmallFiles(dir, n);
  await sleep(COLD_MS);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  t.is(fs.readdirSync(dir).length, n);
  await sleep(COLD_MS);
  const before = await qrDump(mnt);
  readBack(t, dir, files);
  const after = await qrDump(mnt);
  return { prefetches: after.prefetches! - before.prefetches!, prefetchHits: after.prefetchHits! - before.prefetchHits!, hits: after.hits! - before.hits! };
}

serial('prefetch, distribute 2: files of a listed directory read one by one are fetched ahead, intact', async (t) => {
  const moved = await listThenRead(t, await startDistribute(t, 2, { set: NO_IO_CACHE }), 40);
  // The first lookup fetches the next 16, each prefetched lookup that answers keeps them coming.
  t.true(moved.prefetchHits! >= 30, `lookups answered by prefetch: ${JSON.stringify(moved)}`);
  t.true(moved.hits! >= 35, `reads answered here: ${JSON.stringify(moved)}`);
});

serial('prefetch, replica 2: the same, with the changelog check deciding which copy is trusted', async (t) => {
  const moved = await listThenRead(t, await startReplicated(t, 2, 1, { set: NO_IO_CACHE }), 40);
  t.true(moved.prefetchHits! >= 30, `lookups answered by prefetch: ${JSON.stringify(moved)}`);
});

serial('prefetch off (performance.quick-read-prefetch-files 0): every lookup goes down (the counters above mean something)', async (t) => {
  const moved = await listThenRead(t, await startDistribute(t, 2, { set: { ...NO_IO_CACHE, 'performance.quick-read-prefetch-files': '0' } }), 40);
  t.like(moved, { prefetches: 0, prefetchHits: 0 });
  t.true(moved.hits! >= 35, 'quick-read itself still answers the reads');
});

serial('prefetch with md-cache answering the lookups (its default): the reads of a listed directory drive it, intact', async (t) => {
  const vol = await startDistribute(t, 2, { set: { 'performance.io-cache': 'off' } });
  t.regex(vol.volfile, /option md-cache-timeout 60/);
  const moved = await listThenRead(t, vol, 40);
  // No lookup reaches quick-read: the first read misses and fetches the next 16, and each
  // read of prefetched content fetches on.
  t.true(moved.prefetchHits! >= 30, `reads answered by prefetch: ${JSON.stringify(moved)}`);
  t.true(moved.hits! >= 35, `reads answered here: ${JSON.stringify(moved)}`);
});
