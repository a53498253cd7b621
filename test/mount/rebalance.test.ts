// The rebalance engine on real bricks and real FUSE mounts: a volume grown by hand (more
// brick processes, a client volfile at a higher layout epoch) is rebalanced by the real
// rebalance process while a reader and an appending writer work through a mount.
import test, { type ExecutionContext } from 'ava';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from '../../lib/prng.js';
import { mountVolfile, startVolume, type TestBrick } from '../helpers/cluster.js';
import { census, rebalanceToEnd, startRebalance, stagedLeftovers, statusWhen, writeClientVolfile } from '../helpers/rebalance.js';

/** Deterministic content per file: sizes from empty to a few hundred KiB, some with holes. */
function contentOf(name: string, seed: number): Buffer {
  const rand = mulberry32(seed);
  const size = [0, 10, 4096, 70_000, 300_000][seed % 5]!;
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 1 + Math.floor(rand() * 64)) b[i] = Math.floor(rand() * 256);
  b.write(name.slice(0, Math.min(name.length, size)));
  return b;
}

interface Tree {
  files: Map<string, Buffer>;
}

/** Writes files in nested directories through a mount; returns what each should hold. */
async function populate(mnt: string, count: number): Promise<Tree> {
  const files = new Map<string, Buffer>();
  await fsp.mkdir(path.join(mnt, 'a/b'), { recursive: true });
  await fsp.mkdir(path.join(mnt, 'c'), { recursive: true });
  const dirs = ['', 'a', 'a/b', 'c'];
  for (let i = 0; i < count; i++) {
    const rel = `/${dirs[i % dirs.length]}${dirs[i % dirs.length] ? '/' : ''}f-${i}`;
    const data = contentOf(rel, i);
    await fsp.writeFile(path.join(mnt, rel), data);
    files.set(rel, data);
  }
  // A renamed file has a link file on its new hashed brick; a symlink and a hard link pair.
  await fsp.rename(path.join(mnt, 'c/f-3'), path.join(mnt, 'c/renamed-3'));
  files.set('/c/renamed-3', files.get('/c/f-3')!);
  files.delete('/c/f-3');
  await fsp.symlink('f-0', path.join(mnt, 'sym'));
  await fsp.link(path.join(mnt, 'f-4'), path.join(mnt, 'hard-4'));
  files.set('/hard-4', files.get('/f-4')!);
  return { files };
}

/** Reads every file through a mount in a loop until stopped; collects any error or wrong content. */
function readerLoop(mnt: string, files: Map<string, Buffer>): { stop: () => Promise<{ rounds: number; errors: string[] }> } {
  let running = true;
  const errors: string[] = [];
  let rounds = 0;
  const done = (async () => {
    while (running) {
      for (const [rel, want] of files) {
        if (!running) break;
        try {
          const got = await fsp.readFile(path.join(mnt, rel));
          if (!got.equals(want)) errors.push(`${rel}: content differs (${got.length} vs ${want.length} bytes)`);
        } catch (e) {
          errors.push(`${rel}: ${(e as Error).message}`);
        }
      }
      rounds++;
    }
  })();
  return { stop: async () => { running = false; await done; return { rounds, errors }; } };
}

/** Appends numbered lines to several files, each through one fd kept open, until stopped. */
function appenderLoop(files: string[]): { stop: () => Promise<{ lines: number[]; errors: string[] }> } {
  let running = true;
  const errors: string[] = [];
  const lines = files.map(() => 0);
  const done = (async () => {
    const fhs = await Promise.all(files.map((f) => fsp.open(f, 'a')));
    try {
      while (running && errors.length === 0) {
        for (let i = 0; i < fhs.length; i++) {
          try {
            await fhs[i]!.write(`line ${lines[i]}\n`);
            lines[i]!++;
          } catch (e) {
            errors.push(`${files[i]}: ${(e as Error).message}`);
          }
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await Promise.all(fhs.map((fh) => fh.close()));
    }
  })();
  return { stop: async () => { running = false; await done; return { lines, errors }; } };
}

function expectedLines(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += `line ${i}\n`;
  return s;
}

/** After a full rebalance: each file once, on its right brick, no link files but the hard link's, nothing staged. */
function assertPlacedOnce(t: ExecutionContext, bricks: readonly TestBrick[], files: Map<string, Buffer>, bricksPerSet = 1): void {
  const c = census(bricks);
  for (const rel of files.keys()) {
    const holders = c.data.get(rel) ?? [];
    t.is(holders.length, bricksPerSet, `${rel} is on bricks ${holders.join(',')}`);
  }
  const sets = new Set<number>();
  for (const holders of c.data.values()) for (const b of holders) sets.add(Math.floor(b / bricksPerSet));
  t.is(sets.size, bricks.length / bricksPerSet, `files on ${sets.size} of ${bricks.length / bricksPerSet} subvolumes`);
  // Only a hard link's second name may keep a link file (hard links are not moved).
  const stray = c.links.filter((l) => l.path !== '/hard-4' && l.path !== '/f-4');
  t.deepEqual(stray, [], 'stale link files left');
  t.deepEqual(stagedLeftovers(bricks), [], 'staged copies left');
}

async function assertContent(t: ExecutionContext, mnt: string, files: Map<string, Buffer>): Promise<void> {
  for (const [rel, want] of files) {
    const got = await fsp.readFile(path.join(mnt, rel));
    t.true(got.equals(want), `${rel} content after rebalance`);
  }
  t.is(await fsp.readlink(path.join(mnt, 'sym')), 'f-0');
}

async function growAndRebalance(t: ExecutionContext, opts: { replica?: number; before: number; after: number }): Promise<void> {
  const r = opts.replica ?? 1;
  const vol = await startVolume(t, opts.after, { replica: opts.replica });
  const oldVol = writeClientVolfile(path.join(vol.root, 'old.vol'), vol.bricks.slice(0, opts.before), { replica: opts.replica });
  const newVol = writeClientVolfile(path.join(vol.root, 'new.vol'), vol.bricks, { replica: opts.replica, dht: { 'layout-epoch': '1' } });
  const oldMnt = await mountVolfile(t, oldVol);
  const tree = await populate(oldMnt, 120);
  // Files appended to during the rebalance, created under the old layout so some must move.
  const logs = Array.from({ length: 8 }, (_, i) => `/a/log-${i}`);
  for (const l of logs) await fsp.writeFile(path.join(oldMnt, l), '');
  const logHomes = census(vol.bricks).data;
  const homeOf = (m: Map<string, number[]>, l: string): string => (m.get(l) ?? []).join(',');
  const logsBefore = new Map(logs.map((l) => [l, homeOf(logHomes, l)]));
  for (const b of vol.bricks.slice(opts.before)) t.deepEqual(census([b]).data.size, 0, 'new bricks start empty');

  const mnt = await mountVolfile(t, newVol);
  // Before any rebalance the grown client finds every file (hashed brick, link file, then everyone).
  await assertContent(t, mnt, tree.files);
  // New directories use every brick at once.
  await fsp.mkdir(path.join(mnt, 'fresh'));
  for (let i = 0; i < 40; i++) await fsp.writeFile(path.join(mnt, `fresh/n-${i}`), `new ${i}\n`);
  const fresh = census(vol.bricks);
  const freshSets = new Set([...fresh.data].filter(([p]) => p.startsWith('/fresh/')).flatMap(([, b]) => b.map((x) => Math.floor(x / r))));
  t.is(freshSets.size, opts.after / r, 'files of a new directory land on every subvolume, new ones included');
  for (let i = 0; i < 40; i++) tree.files.set(`/fresh/n-${i}`, Buffer.from(`new ${i}\n`));

  const reader = readerLoop(mnt, tree.files);
  const appender = appenderLoop(logs.map((l) => path.join(mnt, l)));
  await new Promise((res) => setTimeout(res, 200));
  const status = await rebalanceToEnd(t, newVol, vol.root, ['--throttle', 'aggressive']);
  await new Promise((res) => setTimeout(res, 200));
  const read = await reader.stop();
  const appended = await appender.stop();

  t.is(status.state, 'completed', JSON.stringify(status));
  t.is(status.filesFailed, 0, status.error);
  t.true(status.filesMoved > 20, `moved ${status.filesMoved}`);
  t.true(status.bytesMoved > 0);
  t.deepEqual(read.errors, [], 'reader saw errors or wrong data during the rebalance');
  t.true(read.rounds >= 1);
  t.deepEqual(appended.errors, [], 'appender saw errors');
  const logsAfter = census(vol.bricks).data;
  t.true(logs.some((l) => homeOf(logsAfter, l) !== logsBefore.get(l)), 'no appended file was moved: the test did not race a migration');
  for (const [i, l] of logs.entries()) {
    t.true(appended.lines[i]! > 10, `${l}: only ${appended.lines[i]} lines appended`);
    t.is(await fsp.readFile(path.join(mnt, l), 'utf8'), expectedLines(appended.lines[i]!), `${l}: appended lines lost`);
    tree.files.set(l, Buffer.from(expectedLines(appended.lines[i]!)));
  }
  assertPlacedOnce(t, vol.bricks, tree.files, r);
  await assertContent(t, mnt, tree.files);
}

test('distribute 2 → 4: rebalance moves files while a reader and an appender run, leaving each file once', async (t) => {
  await growAndRebalance(t, { before: 2, after: 4 });
});

test('distributed-replicate 2×2 → 3×2: rebalance moves both copies of each file', async (t) => {
  await growAndRebalance(t, { replica: 2, before: 4, after: 6 });
});

test('a stopped rebalance resumes where it stopped and completes', async (t) => {
  const vol = await startVolume(t, 4);
  const oldVol = writeClientVolfile(path.join(vol.root, 'old.vol'), vol.bricks.slice(0, 2));
  const newVol = writeClientVolfile(path.join(vol.root, 'new.vol'), vol.bricks, { dht: { 'layout-epoch': '1' } });
  const oldMnt = await mountVolfile(t, oldVol);
  const tree = await populate(oldMnt, 200);
  const first = startRebalance(t, newVol, vol.root, ['--throttle', 'lazy']);
  await statusWhen(first, (s) => s.filesMoved >= 5, 'some files moved');
  first.proc.kill('SIGTERM');
  t.is(await first.exited, 0);
  const stopped = first.status()!;
  t.is(stopped.state, 'stopped');
  t.true(stopped.filesTotal! > stopped.filesScanned, 'stopped before the end');
  const second = await rebalanceToEnd(t, newVol, vol.root, ['--throttle', 'aggressive', '--resume']);
  t.is(second.state, 'completed');
  t.true(second.resumed);
  t.is(second.filesFailed, 0, second.error);
  const mnt = await mountVolfile(t, newVol);
  assertPlacedOnce(t, vol.bricks, tree.files);
  await assertContent(t, mnt, tree.files);
});

test('remove-brick drain: a decommissioned subvolume is emptied onto the others', async (t) => {
  const vol = await startVolume(t, 3);
  const all = writeClientVolfile(path.join(vol.root, 'all.vol'), vol.bricks);
  const mnt0 = await mountVolfile(t, all);
  const tree = await populate(mnt0, 90);
  t.true((census([vol.bricks[1]!]).data.size) > 0, 'the brick to drain holds files');
  const draining = writeClientVolfile(path.join(vol.root, 'drain.vol'), vol.bricks, { dht: { 'layout-epoch': '1', 'decommissioned-bricks': 'tv-client-1' } });
  const mnt = await mountVolfile(t, draining);
  const status = await rebalanceToEnd(t, draining, vol.root, ['--throttle', 'aggressive']);
  t.is(status.state, 'completed');
  t.is(status.filesFailed, 0, status.error);
  const left = census([vol.bricks[1]!]);
  // Only the hard-linked pair may stay (hard links are not moved: they count as skipped, and a commit is refused until they are gone or forced).
  t.deepEqual([...left.data.keys()].filter((p) => p !== '/f-4' && p !== '/hard-4'), [], 'files left on the drained brick');
  await assertContent(t, mnt, tree.files);
  // After the commit the volume is the two remaining bricks, with the same layout epoch.
  const after = writeClientVolfile(path.join(vol.root, 'after.vol'), [vol.bricks[0]!, vol.bricks[2]!], { dht: { 'layout-epoch': '1' } });
  const mnt2 = await mountVolfile(t, after);
  const kept = new Map([...tree.files].filter(([p]) => p !== '/f-4' && p !== '/hard-4'));
  await assertContent(t, mnt2, kept);
});
