// The low-level bridge answers readdirplus (libfuse 3): a listing fills the kernel's dentry
// and attribute caches, so `ls -l` asks no lookup per name. Every entry it sends holds a
// kernel reference, counted as a lookup's: the node outlives an unlink while an fd is open,
// and goes once the kernel forgets it.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountStatedump, mountVolfile, startDistribute } from '../helpers/cluster.js';
import { eventually, shOk, sleep } from '../helpers/proc.js';

async function bridgeDump(mnt: string): Promise<{ inodes: number; requests: Record<string, number> }> {
  return (await mountStatedump(mnt)).fuse as { inodes: number; requests: Record<string, number> };
}

/** Drops the kernel's dentries and inodes (every unused one is forgotten): machine-wide, so these tests run serially. */
function dropKernelCaches(): void {
  fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
}

test.serial('ls -l of a listed directory asks no lookup per name and shows every size and mode; forgotten nodes go', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const baseline = (await bridgeDump(mnt)).inodes;
  const dir = path.join(mnt, 'd');
  fs.mkdirSync(dir);
  const n = 40;
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(path.join(dir, `f${i}`), Buffer.alloc(i * 100));
    fs.chmodSync(path.join(dir, `f${i}`), i % 2 ? 0o644 : 0o600);
  }
  dropKernelCaches();
  const before = (await bridgeDump(mnt)).requests;
  const out = await shOk(t, `ls -ln ${dir}`);
  const after = (await bridgeDump(mnt)).requests;
  t.true(after.readdirplus! > before.readdirplus!, 'the listing was a readdirplus');
  // One lookup for d itself; without readdirplus there is one more per file.
  t.true(after.lookup! - before.lookup! < 5, `lookups during ls -l: ${after.lookup! - before.lookup!}`);

  const seen = new Map<string, { mode: string; size: number }>();
  for (const line of out.trim().split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    seen.set(f[f.length - 1]!, { mode: f[0]!, size: Number(f[4]) });
  }
  t.is(seen.size, n);
  for (let i = 0; i < n; i++) {
    t.deepEqual(seen.get(`f${i}`), { mode: i % 2 ? '-rw-r--r--' : '-rw-------', size: i * 100 }, `f${i}`);
  }

  // Every reference the listing gave is forgotten again: no node is left behind.
  fs.rmSync(dir, { recursive: true });
  await eventually(async () => {
    dropKernelCaches();
    const { inodes } = await bridgeDump(mnt);
    if (inodes > baseline) throw new Error(`${inodes} nodes, ${baseline} before`);
    return true;
  }, 10_000, 'the nodes of the removed files to be forgotten');
});

test.serial('a file known only from a listing is still served through an open fd after unlink', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath);
  const dir = path.join(mnt, 'd');
  fs.mkdirSync(dir);
  const content = Buffer.from('still here after unlink\n'.repeat(100));
  fs.writeFileSync(path.join(dir, 'f'), content);
  dropKernelCaches();
  const before = (await bridgeDump(mnt)).requests;
  await shOk(t, `ls -l ${dir} >/dev/null`);
  // The dentry came with the listing: open asks no lookup of f.
  const fh = await fs.promises.open(path.join(dir, 'f'), 'r');
  t.teardown(() => fh.close().catch(() => undefined));
  t.true((await bridgeDump(mnt)).requests.lookup! - before.lookup! < 3);
  fs.unlinkSync(path.join(dir, 'f'));
  // Past the attribute timeout, so fstat asks the mount for the node the listing referenced.
  await sleep(1200);
  t.is((await fh.stat()).size, content.length);
  const buf = Buffer.alloc(content.length);
  await fh.read(buf, 0, buf.length, 0);
  t.true(buf.equals(content));
});
