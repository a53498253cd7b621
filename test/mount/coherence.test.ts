// Two mounts of one volume: caches (kernel and md-cache) stay coherent within their
// timeouts, and at once when the bricks push invalidations (features.cache-invalidation).
// And lookup-optimize: a miss on the hashed brick is final only when allowed.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute } from '../helpers/cluster.js';
import { eventually, sh, shOk, sleep } from '../helpers/proc.js';

/**
 * The bricks push no invalidations here: only the caches' timeouts bound what the other mount
 * misses (1 s each without the pushes; with them, md-cache and nl-cache keep 60 s, and the
 * tests further down show the pushes).
 */
const TIMEOUTS_ONLY = { set: { 'features.cache-invalidation': 'off' } };

test('a change on one mount is seen on the other within the cache timeouts', async (t) => {
  const vol = await startDistribute(t, 2, TIMEOUTS_ONLY);
  const a = await mountVolfile(t, vol.volfilePath);
  const b = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `mkdir ${a}/shared && echo one > ${a}/shared/f`);
  t.is(await shOk(t, `cat ${b}/shared/f`), 'one\n');
  // Make b cache the attributes, then change them on a.
  await shOk(t, `stat ${b}/shared/f`);
  const changedAt = Date.now();
  await shOk(t, `chmod 600 ${a}/shared/f && echo two-longer > ${a}/shared/f && echo new > ${a}/shared/g && rm ${a}/shared/f`);
  // kernel attribute/entry timeout (1 s) + md-cache-timeout (1 s), with slack for a busy machine.
  await eventually(async () => (await sh(`test -e ${b}/shared/f`)).code !== 0, 4000, 'unlink seen on b');
  await eventually(async () => (await sh(`cat ${b}/shared/g`)).stdout === 'new\n', 4000, 'new file seen on b');
  t.true(Date.now() - changedAt < 4000);
  await shOk(t, `echo x > ${b}/shared/h && chmod 640 ${b}/shared/h`);
  await eventually(async () => (await sh(`stat -c %a ${a}/shared/h`)).stdout.trim() === '640', 4000, 'mode seen on a');
});

test('nl-cache: a name another mount creates in a directory this mount made is found within the timeout', async (t) => {
  const vol = await startDistribute(t, 2, TIMEOUTS_ONLY);
  const a = await mountVolfile(t, vol.volfilePath);
  const b = await mountVolfile(t, vol.volfilePath);
  // a made the directory, so a knows it empty and answers lookups in it from memory.
  await shOk(t, `mkdir ${a}/nl && ls ${a}/nl`);
  await shOk(t, `echo from-b > ${b}/nl/new`);
  // nl-cache-timeout (1 s) + the kernel's entry timeout (1 s), with slack for a busy machine.
  await eventually(async () => (await sh(`cat ${a}/nl/new`)).stdout === 'from-b\n', 4000, 'name made on b seen on a');
  // And a's own creates are never answered ENOENT.
  t.is(await shOk(t, `echo mine > ${a}/nl/own && cat ${a}/nl/own`), 'mine\n');
});

/** Every cache 10 minutes long: only an invalidation from the bricks can make a change show. */
const LONG_CACHES = { 'performance.md-cache-timeout': '600', 'performance.nl-cache-timeout': '600' };
const LONG_KERNEL = 'attribute-timeout=600,entry-timeout=600,negative-timeout=600';

/**
 * Two mounts with every cache 600 s long; b caches what a then changes (a size, a mode, a new
 * name in a listed directory, an unlink, a rename). Returns what b sees of each change.
 */
async function changeOnA(t: ExecutionContext, invalidation: 'on' | 'off') {
  const vol = await startDistribute(t, 2, { set: { ...LONG_CACHES, 'features.cache-invalidation': invalidation } });
  const a = await mountVolfile(t, vol.volfilePath, undefined, LONG_KERNEL);
  const b = await mountVolfile(t, vol.volfilePath, undefined, LONG_KERNEL);
  await shOk(t, `mkdir ${a}/u && echo one > ${a}/u/f && touch ${a}/u/m ${a}/u/gone ${a}/u/r && chmod 644 ${a}/u/m`);
  // b caches it all: attributes and entries (kernel, md-cache), the listing (nl-cache), a miss
  // (nl-cache, and the kernel's negative entry).
  await shOk(t, `ls ${b}/u && stat ${b}/u/f ${b}/u/m ${b}/u/gone ${b}/u/r >/dev/null && cat ${b}/u/f && ! test -e ${b}/u/new`);
  await shOk(t, `echo two-longer > ${a}/u/f && chmod 600 ${a}/u/m && echo new > ${a}/u/new && rm ${a}/u/gone && mv ${a}/u/r ${a}/u/r2`);
  return {
    size: async () => (await sh(`stat -c %s ${b}/u/f`)).stdout.trim(),
    content: async () => (await sh(`cat ${b}/u/f`)).stdout,
    mode: async () => (await sh(`stat -c %a ${b}/u/m`)).stdout.trim(),
    created: async () => (await sh(`cat ${b}/u/new`)).stdout,
    unlinked: async () => (await sh(`test -e ${b}/u/gone`)).code !== 0,
    renamed: async () => (await sh(`test -e ${b}/u/r2 && ! test -e ${b}/u/r`)).code === 0,
  };
}

/** How long b gets to see a's changes: far below every cache timeout (600 s). */
const UPCALL_DEADLINE_MS = 3000;

test('cache invalidation: with 600 s caches, a change on one mount shows on the other within seconds', async (t) => {
  const seen = await changeOnA(t, 'on');
  await eventually(async () => (await seen.size()) === '11', UPCALL_DEADLINE_MS, 'new size seen on b');
  t.is(await seen.content(), 'two-longer\n');
  await eventually(async () => (await seen.mode()) === '600', UPCALL_DEADLINE_MS, 'chmod seen on b');
  await eventually(async () => (await seen.created()) === 'new\n', UPCALL_DEADLINE_MS, 'new file seen on b');
  await eventually(seen.unlinked, UPCALL_DEADLINE_MS, 'unlink seen on b');
  await eventually(seen.renamed, UPCALL_DEADLINE_MS, 'rename seen on b');
});

test('cache invalidation off (control): the same changes stay hidden from the other mount by its caches', async (t) => {
  const seen = await changeOnA(t, 'off');
  await sleep(UPCALL_DEADLINE_MS);
  t.is(await seen.size(), '4', 'b still has the old size');
  t.is(await seen.mode(), '644', 'b still has the old mode');
  t.is(await seen.created(), '', 'b still believes the name does not exist');
  t.false(await seen.unlinked(), 'b still has the unlinked name');
  t.false(await seen.renamed(), 'b still has the old name');
});

/** Moves a file's data, on the bricks themselves, to a brick that is not its hashed one. */
function misplace(vol: Awaited<ReturnType<typeof startDistribute>>, rel: string): void {
  const from = vol.bricks.find((b) => fs.existsSync(path.join(b.dir, rel)))!;
  const to = vol.bricks.find((b) => b !== from)!;
  fs.renameSync(path.join(from.dir, rel), path.join(to.dir, rel));
}

test('appends from two mounts at once to one file: every line lands, none overwrites another', async (t) => {
  // O_APPEND is the bricks' on a mount without the writeback cache: each append lands at the
  // file's end as the brick sees it. (With -o writeback-cache the kernel appends at the size it
  // keeps, and two mounts overwrite each other's lines: why the option is off by default.)
  const vol = await startDistribute(t, 2);
  const a = await mountVolfile(t, vol.volfilePath);
  const b = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `touch ${a}/log`);
  const appends = (mnt: string, tag: string): string => `for i in $(seq 200); do echo ${tag}$i >> ${mnt}/log; done`;
  await Promise.all([shOk(t, appends(a, 'A')), shOk(t, appends(b, 'B'))]);
  const lines = (await shOk(t, `cat ${a}/log`)).split('\n').filter(Boolean);
  t.is(lines.length, 400);
  t.deepEqual(new Set(lines).size, 400, 'no line written twice');
  t.deepEqual(lines.filter((l) => l.startsWith('A')), Array.from({ length: 200 }, (_, i) => `A${i + 1}`), 'a\'s lines in order');
  t.deepEqual(lines.filter((l) => l.startsWith('B')), Array.from({ length: 200 }, (_, i) => `B${i + 1}`), 'b\'s lines in order');
});

test('lookup-optimize off: a file away from its hashed brick (no link file) is still found', async (t) => {
  const vol = await startDistribute(t, 2);
  const m = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `mkdir ${m}/d && echo data > ${m}/d/stray`);
  misplace(vol, 'd/stray');
  const off = vol.volfile.replace('type cluster/distribute\n', 'type cluster/distribute\n    option lookup-optimize off\n');
  const offPath = path.join(vol.root, 'off.vol');
  fs.writeFileSync(offPath, off);
  const m2 = await mountVolfile(t, offPath);
  t.is(await shOk(t, `cat ${m2}/d/stray`), 'data\n');
  // With lookup-optimize on (the default) a settled layout trusts the hashed brick: a lookup
  // of a file put off its hashed brick behind brickfs' back finds nothing, as in GlusterFS.
  const m3 = await mountVolfile(t, vol.volfilePath);
  t.not((await sh(`cat ${m3}/d/stray`)).code, 0);
  // A listing finds it on the brick that has it, and remembers where (readdirplus gives the
  // kernel the entry): opened right after the listing, it reads.
  t.is(await shOk(t, `ls ${m3}/d && cat ${m3}/d/stray`), 'stray\ndata\n');
});
