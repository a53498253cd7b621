// Two mounts of one volume: caches (kernel and md-cache) stay coherent within their
// timeouts. And lookup-optimize: a miss on the hashed brick is final only when allowed.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute } from '../helpers/cluster.js';
import { eventually, sh, shOk } from '../helpers/proc.js';

test('a change on one mount is seen on the other within the cache timeouts', async (t) => {
  const vol = await startDistribute(t, 2);
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
  const vol = await startDistribute(t, 2);
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

/** Moves a file's data, on the bricks themselves, to a brick that is not its hashed one. */
function misplace(vol: Awaited<ReturnType<typeof startDistribute>>, rel: string): void {
  const from = vol.bricks.find((b) => fs.existsSync(path.join(b.dir, rel)))!;
  const to = vol.bricks.find((b) => b !== from)!;
  fs.renameSync(path.join(from.dir, rel), path.join(to.dir, rel));
}

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
