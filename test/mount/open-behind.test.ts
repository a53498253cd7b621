// performance/open-behind under a real mount (in the generated graph by default): small files
// read back whole with one readfile each, an open-then-unlinked file reads on, and the same
// read-back on a replica set, where readfile goes through replicate's changelog check.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute, xlatorStatedump } from '../helpers/cluster.js';
import { eventually, shOk } from '../helpers/proc.js';
import { startReplicated } from '../helpers/replica.js';


/** Writes n small files of assorted sizes (0 to ~20 KiB) under dir; their contents by name. */
function writeSmallFiles(dir: string, n: number): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const name = `f${i}`;
    const data = crypto.randomBytes((i * 997) % 20_000);
    fs.writeFileSync(path.join(dir, name), data);
    files.set(name, data);
  }
  return files;
}

/** Reads every file back as cat does (open, read to the end, close) and compares. */
function readBack(t: import('ava').ExecutionContext, dir: string, files: Map<string, Buffer>): void {
  let bad = 0;
  for (const [name, data] of files) if (!fs.readFileSync(path.join(dir, name)).equals(data)) bad++;
  t.is(bad, 0, 'every file reads back as written');
}

test('200 small files read back intact, each by readfile with no real open', async (t) => {
  const vol = await startDistribute(t, 2);
  t.true(vol.volfile.includes('type performance/open-behind'), 'open-behind is in the generated graph');
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'small');
  const files = writeSmallFiles(dir, 200);
  const before = await xlatorStatedump(mnt, 'performance/open-behind');
  readBack(t, dir, files);
  // cat itself, over a few of them.
  const catted = await shOk(t, `cat ${[...files.keys()].slice(0, 20).map((n) => path.join(dir, n)).join(' ')} | sha256sum`);
  const expected = crypto.createHash('sha256').update(Buffer.concat([...files.values()].slice(0, 20))).digest('hex');
  t.is(catted.split(' ')[0], expected);
  const after = await xlatorStatedump(mnt, 'performance/open-behind');
  const n = (d: Record<string, unknown>, k: string): number => d[k] as number;
  t.true(n(after, 'openedBehind') - n(before, 'openedBehind') >= 200, JSON.stringify(after));
  t.true(n(after, 'readfiles') - n(before, 'readfiles') >= 150, `most reads went by path: ${JSON.stringify(after)}`);
  t.true(n(after, 'localReleases') - n(before, 'localReleases') >= 150, `most closes answered locally: ${JSON.stringify(after)}`);
});

test('a file opened for reading, then unlinked through the mount, still reads through the open fd', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const file = path.join(mnt, 'doomed');
  const data = crypto.randomBytes(50_000);
  fs.writeFileSync(file, data);
  const fh = await fs.promises.open(file, 'r');
  t.teardown(() => fh.close().catch(() => undefined));
  fs.unlinkSync(file);
  t.false(fs.existsSync(file));
  const buf = Buffer.alloc(data.length + 10);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  t.is(bytesRead, data.length);
  t.true(buf.subarray(0, bytesRead).equals(data), 'the unlinked file reads as it was');
  await fh.close();
  const dump = await xlatorStatedump(mnt, 'performance/open-behind');
  t.true(((dump.realOpens as Record<string, number>).namespace ?? 0) >= 1, JSON.stringify(dump));
});

test('a renamed file open behind reads by its new name', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const data = crypto.randomBytes(3000);
  fs.writeFileSync(path.join(mnt, 'old'), data);
  const fh = await fs.promises.open(path.join(mnt, 'old'), 'r');
  t.teardown(() => fh.close().catch(() => undefined));
  fs.renameSync(path.join(mnt, 'old'), path.join(mnt, 'new'));
  const buf = Buffer.alloc(4096);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  t.true(buf.subarray(0, bytesRead).equals(data));
});

test('a file longer than one read is opened for real after its first reads and reads back intact', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  // Longer than read-ahead's window above (4 pages of 1 MiB): reads past it are sent after
  // the real open is back.
  const data = crypto.randomBytes(12 * 1024 ** 2 + 777);
  fs.writeFileSync(path.join(mnt, 'big'), data);
  t.true(fs.readFileSync(path.join(mnt, 'big')).equals(data));
  // Without kernel readahead each read(2) below is one FUSE read, in order (with it, the
  // kernel reads the whole file ahead at once, before the real open is back).
  const bdi = `/sys/class/bdi/${(await shOk(t, `mountpoint -d ${mnt}`)).trim()}/read_ahead_kb`;
  fs.writeFileSync(bdi, '0');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  const fh = await fs.promises.open(path.join(mnt, 'big'), 'r');
  t.teardown(() => fh.close().catch(() => undefined));
  const chunk = 128 * 1024;
  const at = async (offset: number): Promise<void> => {
    const buf = Buffer.alloc(chunk);
    const { bytesRead } = await fh.read(buf, 0, chunk, offset);
    t.true(buf.subarray(0, bytesRead).equals(data.subarray(offset, offset + chunk)), `bytes at ${offset}`);
  };
  await at(0);
  await at(chunk);
  // The second read by path started the real open; the reads after it go through its fd.
  await eventually(async () => ((await xlatorStatedump(mnt, 'performance/open-behind')).realOpens as Record<string, number>).sequential! >= 1, 5000, 'a real open');
  for (let off = 2 * chunk; off < data.length; off += chunk) await at(off);
  const dump = await xlatorStatedump(mnt, 'performance/open-behind');
  t.true((dump.readsByFd as number) >= 1, JSON.stringify(dump));
});

test('replica 2: small files read back intact', async (t) => {
  const vol = await startReplicated(t, 2);
  t.true(vol.volfile.includes('type performance/open-behind'));
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'small');
  const files = writeSmallFiles(dir, 60);
  readBack(t, dir, files);
  const dump = await xlatorStatedump(mnt, 'performance/open-behind');
  t.true((dump.readfiles as number) >= 50, JSON.stringify(dump));
  t.true((dump.realOpens as Record<string, number>).enosys! < 10, `replicate answered by path, not ENOSYS: ${JSON.stringify(dump)}`);
});
