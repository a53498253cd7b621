// A change to a replicated file racing its migration (rebalance), made deterministic: the
// change reaches one replica of the old location before the move and is held on its way to
// the other until the move is over, so the other answers "moved" (ESTALE, or ENOENT for a
// path) while the first answers success. The change is held on the replica the copy is read
// from (known: the path's hash picks it among the sources), so the copy lacks it; for an
// append also on the other one, so the copy has it and doing it again would double it.
// docs/replicate.md, "A change racing a rebalance". Real bricks, the real rebalance process;
// no FUSE.
import { ROOT_FRAME } from '../../lib/frame.js';
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { prepareGraph } from '../../client/graph-switch.js';
import { Distribute } from '../../client/xlators/cluster/distribute/index.js';
import '../../client/xlators/index.js';
import type { FopName } from '../../lib/fops.js';
import { Fd } from '../../lib/inode.js';
import { nameHash } from '../../lib/hash.js';
import { startVolume, type TestVolume } from '../helpers/cluster.js';
import { eventually } from '../helpers/proc.js';
import { census, rebalanceToEnd, writeClientVolfile } from '../helpers/rebalance.js';
import { holdFop } from '../helpers/replica.js';

const { O_WRONLY, O_APPEND } = fs.constants;
const REPLICA = 2;

async function distributeOf(t: ExecutionContext, volfile: string, name: string): Promise<Distribute> {
  const graph = await prepareGraph(fs.readFileSync(volfile, 'utf8'), name, { readyTimeoutMs: 5000 });
  t.teardown(() => graph.fini());
  return [...graph.byName.values()].find((x): x is Distribute => x instanceof Distribute)!;
}

interface Race {
  vol: TestVolume;
  newVol: string;
  /** The writer: a client on the grown volume (its own connections). */
  dht: Distribute;
  path: string;
  /** Replica set (distribute child) holding the file before the move. */
  from: number;
  /** Replica set it hashes to on the grown volume. */
  to: number;
}

/** A 2×2 volume grown to 3×2 by hand, and a file of `content` that the rebalance will move. */
async function grownVolume(t: ExecutionContext, content: string): Promise<Race> {
  const vol = await startVolume(t, 6, { replica: REPLICA });
  const oldVol = writeClientVolfile(path.join(vol.root, 'old.vol'), vol.bricks.slice(0, 4), { replica: REPLICA });
  const newVol = writeClientVolfile(path.join(vol.root, 'new.vol'), vol.bricks, { replica: REPLICA, dht: { 'layout-epoch': '1' } });
  const old = await distributeOf(t, oldVol, 'old');
  const names = Array.from({ length: 8 }, (_, i) => `/f-${i}`);
  for (const p of names) {
    const fd = Fd.forPath(p, O_WRONLY);
    await old.call('create', { path: p, mode: 0o644, flags: fd.flags, fd }, ROOT_FRAME);
    await old.call('write', { fd, offset: 0, data: Buffer.from(content) }, ROOT_FRAME);
    await old.call('release', { fd }, ROOT_FRAME);
  }
  const dht = await distributeOf(t, newVol, 'writer');
  const homes = census(vol.bricks).data;
  for (const p of names) {
    const from = Math.floor(homes.get(p)![0]! / REPLICA);
    const to = await dht.hashedChild(p, ROOT_FRAME);
    if (to !== from) return { vol, newVol, dht, path: p, from, to };
  }
  throw new Error('no file of the old layout hashes elsewhere on the grown one');
}

/** An fd of the writer's on path, as a mount's would be (it follows the file when the rebalance moves it). */
async function openFd(dht: Distribute, p: string, flags: number): Promise<Fd> {
  const fd = Fd.forPath(p, flags);
  await dht.call('open', { path: p, flags, fd }, ROOT_FRAME);
  return fd;
}

function brickFile(r: Race, set: number, replica: number): string {
  return path.join(r.vol.bricks[set * REPLICA + replica]!.dir, r.path.slice(1));
}

/**
 * The race: `change` starts with `fop` held on the way to `held` (a replica index of the old
 * set), once it shows on the other replica (`landed`) a rebalance runs to its end, then the
 * held fop goes (to a file moved away). Returns what the change answered and the runs' status.
 */
async function race(
  t: ExecutionContext, r: Race, fop: FopName, held: number,
  change: () => Promise<unknown>, landed: (otherCopy: string) => boolean,
): Promise<{ runs: Array<Awaited<ReturnType<typeof rebalanceToEnd>>> }> {
  const hold = holdFop(r.dht.children[r.from]!.children[held]!, fop);
  const pending = change().then(() => undefined, (e: Error) => e);
  await eventually(() => hold.held() === 1 && landed(brickFile(r, r.from, 1 - held)), 10_000, `${fop} done on one replica and held on the other`);
  const runs = [await rebalanceToEnd(t, r.newVol, r.vol.root, ['--throttle', 'aggressive'])];
  hold.release();
  t.is(await pending, undefined, `${fop} failed`);
  // A move the race kept from finishing (a file whose copies differed) is done by a second run.
  if (census(r.vol.bricks).data.get(r.path)?.some((b) => Math.floor(b / REPLICA) === r.from)) {
    runs.push(await rebalanceToEnd(t, r.newVol, r.vol.root, ['--throttle', 'aggressive']));
  }
  const holders = census(r.vol.bricks).data.get(r.path) ?? [];
  t.deepEqual(holders.map((b) => Math.floor(b / REPLICA)), [r.to, r.to], `${r.path} is on bricks ${holders.join(',')}`);
  return { runs };
}

/** The replica the mover reads a file's data from when no copy is blamed (replicate's pickReader). */
function copySource(p: string): number {
  return nameHash(p) % REPLICA;
}

test.serial('an overwrite done on one old replica and held on the other (the one the mover copies from) is not lost when the file moves', async (t) => {
  const r = await grownVolume(t, 'line 0\nline 1\n');
  const fd = await openFd(r.dht, r.path, O_WRONLY);
  await race(t, r, 'write', copySource(r.path),
    () => r.dht.call('write', { fd, offset: 0, data: Buffer.from('LINE') }, ROOT_FRAME),
    (other) => fs.readFileSync(other, 'utf8').startsWith('LINE'));
  await r.dht.call('release', { fd }, ROOT_FRAME);
  for (const i of [0, 1]) t.is(fs.readFileSync(brickFile(r, r.to, i), 'utf8'), 'LINE 0\nline 1\n', `new replica ${i}`);
});

for (const [heldOn, doubled] of [['the replica the copy is read from', 'lost'], ['the other replica', 'doubled']] as const) {
  test.serial(`an append done on one old replica and held on ${heldOn} is not ${doubled} when the file moves`, async (t) => {
    const r = await grownVolume(t, 'line 0\n');
    const held = doubled === 'lost' ? copySource(r.path) : 1 - copySource(r.path);
    const fd = await openFd(r.dht, r.path, O_WRONLY | O_APPEND);
    const { runs } = await race(t, r, 'write', held,
      () => r.dht.call('write', { fd, offset: 7, data: Buffer.from('line 1\n') }, ROOT_FRAME),
      (other) => fs.readFileSync(other, 'utf8') === 'line 0\nline 1\n');
    // The same fd follows the file to its new place.
    await r.dht.call('write', { fd, offset: 14, data: Buffer.from('line 2\n') }, ROOT_FRAME);
    await r.dht.call('release', { fd }, ROOT_FRAME);
    for (const i of [0, 1]) t.is(fs.readFileSync(brickFile(r, r.to, i), 'utf8'), 'line 0\nline 1\nline 2\n', `new replica ${i}`);
    t.true(runs.every((s) => s.state === 'completed'), JSON.stringify(runs));
  });
}

test.serial('a truncate done on one old replica and held on the other (the one the mover copies from) is not lost when the file moves', async (t) => {
  const r = await grownVolume(t, 'line 0\nline 1\n');
  const fd = await openFd(r.dht, r.path, O_WRONLY);
  await race(t, r, 'ftruncate', copySource(r.path),
    () => r.dht.call('ftruncate', { fd, size: 7 }, ROOT_FRAME),
    (other) => fs.statSync(other).size === 7);
  await r.dht.call('release', { fd }, ROOT_FRAME);
  for (const i of [0, 1]) t.is(fs.readFileSync(brickFile(r, r.to, i), 'utf8'), 'line 0\n', `new replica ${i}`);
});

test.serial('a chmod done on one old replica and held on the other (the one the mover copies from) is not lost when the file moves', async (t) => {
  const r = await grownVolume(t, 'line 0\n');
  // The mover takes the attributes from the first source (replicate's attrReplica): replica 0.
  await race(t, r, 'setattr', 0,
    () => r.dht.call('setattr', { path: r.path, attrs: { mode: 0o600 } }, ROOT_FRAME),
    (other) => (fs.statSync(other).mode & 0o777) === 0o600);
  for (const i of [0, 1]) t.is(fs.statSync(brickFile(r, r.to, i)).mode & 0o777, 0o600, `new replica ${i}`);
});
