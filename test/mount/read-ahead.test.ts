// performance/read-ahead under a real mount (it is in the generated graph by default): a
// multi-MiB file read back sequentially is intact, and a region changed through a second fd
// is seen by the fd that had read ahead over it.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute, xlatorStatedump } from '../helpers/cluster.js';
import { eventually, shOk } from '../helpers/proc.js';

const MiB = 1024 ** 2;

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** Reads fh from `from` to its end with 1 MiB reads; the hash of the bytes and where it ended. */
async function readToEnd(fh: fs.promises.FileHandle, from: number): Promise<{ hash: string; bytes: Buffer }> {
  const buf = Buffer.alloc(MiB);
  const parts: Buffer[] = [];
  for (let pos = from; ;) {
    const { bytesRead } = await fh.read(buf, 0, MiB, pos);
    if (bytesRead === 0) break;
    parts.push(Buffer.from(buf.subarray(0, bytesRead)));
    pos += bytesRead;
  }
  const bytes = Buffer.concat(parts);
  return { hash: sha256(bytes), bytes };
}


/** The kernel's readahead window of the mount at mnt, in KiB (what the bridge raises to 4096 as root). */
async function windowKb(t: ExecutionContext, mnt: string): Promise<{ get: () => number; set: (kb: number) => void }> {
  const file = `/sys/class/bdi/${(await shOk(t, `mountpoint -d ${mnt}`)).trim()}/read_ahead_kb`;
  return { get: () => Number(fs.readFileSync(file, 'utf8')), set: (kb) => fs.writeFileSync(file, `${kb}\n`) };
}

test('with the kernel\'s default window (128 KiB reads) a multi-MiB file reads back intact through read-ahead\'s pages; a change through a second fd is seen by the first', async (t) => {
  const vol = await startDistribute(t, 2);
  t.true(vol.volfile.includes('type performance/read-ahead'), 'read-ahead is in the generated graph');
  const mnt = await mountVolfile(t, vol.volfilePath);
  // As a mount without root (or through libfuse 2) has it: the kernel sends 128 KiB reads.
  const win = await windowKb(t, mnt);
  await eventually(async () => win.get() === 4096, 5000, 'the bridge raised the window');
  win.set(128);
  const file = path.join(mnt, 'big');
  const content = crypto.randomBytes(6 * MiB + 12_345);
  await fs.promises.writeFile(file, content);

  const reader = await fs.promises.open(file, 'r');
  t.teardown(() => reader.close().catch(() => undefined));
  const whole = await readToEnd(reader, 0);
  t.is(whole.bytes.length, content.length);
  t.is(whole.hash, sha256(content));
  const dump = await xlatorStatedump(mnt, 'performance/read-ahead') as Record<string, number>;
  t.true(dump.prefetches > 0 && dump.hits > 0, `read-ahead answered reads: ${JSON.stringify(dump)}`);

  // Read the first 2 MiB again, so read-ahead holds the pages after them for this fd. A
  // fresh open drops the kernel's cached pages of the file: these reads reach the mount.
  const head = Buffer.alloc(2 * MiB);
  await (await fs.promises.open(file, 'r')).close();
  t.is((await reader.read(head, 0, MiB, 0)).bytesRead, MiB);
  t.is((await reader.read(head, MiB, MiB, MiB)).bytesRead, MiB);
  t.true(head.equals(content.subarray(0, 2 * MiB)));

  // Overwrite a region just ahead of the reader through a second fd, at once (pages older
  // than 1 s are not served anyway); its ends are not page aligned, and another fresh open
  // drops what the kernel cached, so the reads after it reach the mount.
  const writer = await fs.promises.open(file, 'r+');
  t.teardown(() => writer.close().catch(() => undefined));
  const at = 2 * MiB + 256 * 1024 + 100;
  const fresh = crypto.randomBytes(200 * 1024 + 37);
  t.is((await writer.write(fresh, 0, fresh.length, at)).bytesWritten, fresh.length);
  const expected = Buffer.from(content);
  fresh.copy(expected, at);
  await (await fs.promises.open(file, 'r')).close();

  // The first fd, read on from where it stopped, sees the new bytes (the writer is still open).
  const rest = await readToEnd(reader, 2 * MiB);
  t.is(rest.hash, sha256(expected.subarray(2 * MiB)));
  t.true(rest.bytes.subarray(at - 2 * MiB, at - 2 * MiB + fresh.length).equals(fresh), 'the region written');
  await writer.close();
  // And from the start.
  await (await fs.promises.open(file, 'r')).close();
  t.is((await readToEnd(reader, 0)).hash, sha256(expected));
  t.true((await xlatorStatedump(mnt, 'performance/read-ahead') as Record<string, number>).invalidations > 0);
});

test('with the window the bridge raises, the kernel reads ahead itself (1 MiB reads) and read-ahead leaves the fd to it', async (t) => {
  const vol = await startDistribute(t, 1);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const win = await windowKb(t, mnt);
  await eventually(async () => win.get() === 4096, 5000, 'the bridge raised the window');
  const file = path.join(mnt, 'big');
  const content = crypto.randomBytes(8 * MiB + 4321);
  await fs.promises.writeFile(file, content);
  const reader = await fs.promises.open(file, 'r');
  t.teardown(() => reader.close().catch(() => undefined));
  t.is((await readToEnd(reader, 0)).hash, sha256(content));
  const dump = await xlatorStatedump(mnt, 'performance/read-ahead') as Record<string, number>;
  t.true(dump.kernelReadsAhead > 0, JSON.stringify(dump));
  t.is(dump.prefetches, 0, 'nothing fetched ahead of the kernel\'s own readahead');
});

test("the kernel's readahead window for the mount is raised to 4 MiB, and stays raised after FUSE_INIT", async (t) => {
  const vol = await startDistribute(t, 1);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dev = (await shOk(t, `mountpoint -d ${mnt}`)).trim();
  const kb = (): number => Number(fs.readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8'));
  // Set before the kernel has our INIT answer, the window falls back to 128 KiB, and the
  // kernel then cuts sequential reads into 256 KiB requests.
  await eventually(async () => kb() === 4096, 5000, 'read_ahead_kb 4096');
  await new Promise((r) => setTimeout(r, 300));
  t.is(kb(), 4096);
});
