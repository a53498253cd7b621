// performance/readdir-ahead on a real mount: a walk of a tree, with listings of the
// subdirectories fetched ahead of it, sees every entry with its attributes, also when the
// same mount changed the tree between walks (right after a listing that started prefetches
// of the very directories it then changed); and the prefetches are used.
import test from 'ava';
import fs from 'node:fs';
import { mountVolfile, startDistribute, xlatorStatedump } from '../helpers/cluster.js';
import { eventually, sleep, shOk, tmpDir } from '../helpers/proc.js';

/** Drops the kernel's dentries and inodes, so a walk asks the mount for every listing again. */
function dropKernelCaches(): void {
  fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
}

/** Every entry under root: type, path, mode, and size for non-directories (a directory's size is the brick's own). */
async function walk(t: Parameters<typeof shOk>[0], root: string): Promise<string> {
  return shOk(t, `cd ${root} && find . -mindepth 1 \\( -type d -printf '%y %p %m\\n' \\) -o -printf '%y %p %m %s\\n' | LC_ALL=C sort`);
}

/** Runs a shell script with $R set to the mount and again to a local mirror. */
async function both(t: Parameters<typeof shOk>[0], mnt: string, mirror: string, script: string): Promise<void> {
  await shOk(t, `R=${mnt}; ${script}`);
  await shOk(t, `R=${mirror}; ${script}`);
}

test.serial('walks see every change made through the mount between them; listings are answered from prefetches', async (t) => {
  const vol = await startDistribute(t, 2, { set: { 'performance.readdir-ahead': 'on' } });
  t.true(vol.volfile.includes('type performance/readdir-ahead'));
  const mnt = await mountVolfile(t, vol.volfilePath);
  const mirror = tmpDir(t, 'rda-mirror-');
  await both(t, mnt, mirror, `
    for i in 0 1 2 3 4; do for j in 0 1 2 3; do
      mkdir -p $R/tree/d$i/s$j/deep
      for k in 0 1 2; do head -c $((i * 100 + j * 10 + k)) /dev/zero > $R/tree/d$i/s$j/f$k; done
      echo x > $R/tree/d$i/s$j/deep/leaf
    done; done`);
  const expected = await walk(t, mirror);
  t.is(expected.split('\n').filter(Boolean).length, 1 + 5 + 20 * 6);
  dropKernelCaches();
  t.is(await walk(t, mnt), expected, 'first walk');

  // Each round lists the top first (which prefetches d0..d4), then changes inside them at once,
  // while those listings are held or in flight, then walks.
  const rounds = [
    `ls $R/tree >/dev/null; echo new > $R/tree/d0/s0/new; mkdir $R/tree/d1/s1/newdir; rm $R/tree/d2/s2/f1;
     head -c 999 /dev/zero >> $R/tree/d3/s3/f0; chmod 600 $R/tree/d4/s0/f2; ls $R/tree/d0 >/dev/null; touch $R/tree/d0/s1/f0`,
    `ls $R/tree >/dev/null; mv $R/tree/d0/s0 $R/tree/d1/moved; mv $R/tree/d2/s3/f2 $R/tree/d4/f2-moved; rm -r $R/tree/d3/s1;
     mkdir $R/tree/d3/s1; : > $R/tree/d3/s1/again; ls $R/tree/d1 >/dev/null; truncate -s 5 $R/tree/d1/moved/f2`,
    `ls $R/tree >/dev/null; ls $R/tree/d4 >/dev/null; mv $R/tree/d4 $R/tree/d4-renamed; mv $R/tree/d1 $R/tree/d4;
     ln -s target $R/tree/d4/moved/link; ln $R/tree/d2/s0/f0 $R/tree/d2/s1/hard; chmod 700 $R/tree/d2/s2`,
  ];
  for (const [i, script] of rounds.entries()) {
    await both(t, mnt, mirror, script);
    const want = await walk(t, mirror);
    dropKernelCaches();
    t.is(await walk(t, mnt), want, `walk after round ${i + 1}`);
    // Twice in a row: the second walk is served from the listings the first one prefetched.
    t.is(await walk(t, mnt), want, `second walk after round ${i + 1}`);
  }
  const dump = await xlatorStatedump(mnt, 'performance/readdir-ahead');
  t.truthy(dump, 'readdir-ahead is in the mount\'s graph');
  t.true((dump.hits as number) + (dump.waited as number) > 20, `listings answered from prefetches: ${JSON.stringify(dump)}`);
  t.true((dump.dropped as number) > 0, 'own changes dropped prefetched listings');
});

/**
 * Another mount's change to a directory whose listing this mount holds: a brick's push drops
 * it (features.cache-invalidation, the default); the control without pushes shows the held,
 * stale listing, so the listing really was held and the push is what dropped it.
 */
for (const invalidation of ['on', 'off'] as const) {
  test.serial(`another mount's change to a prefetched directory, cache-invalidation ${invalidation}`, async (t) => {
    const vol = await startDistribute(t, 2, { set: { 'performance.readdir-ahead-cache-timeout': '600', 'features.cache-invalidation': invalidation } });
    const a = await mountVolfile(t, vol.volfilePath);
    const b = await mountVolfile(t, vol.volfilePath);
    await shOk(t, `mkdir -p ${a}/tree/d && touch ${a}/tree/d/old`);
    await shOk(t, `ls ${b}/tree >/dev/null`); // b prefetches tree/d and holds it for 600 s
    await eventually(async () => ((await xlatorStatedump(b, 'performance/readdir-ahead')).held as number) >= 1, 10_000, 'the prefetch of tree/d held on b');
    await shOk(t, `touch ${a}/tree/d/new && rm ${a}/tree/d/old`);
    await sleep(1500); // the push, when there is one, arrives within milliseconds
    const listed = (await shOk(t, `ls ${b}/tree/d`)).trim();
    if (invalidation === 'on') t.is(listed, 'new', 'the push dropped the held listing');
    else t.is(listed, 'old', 'without pushes the held listing answered (once)');
    t.is((await shOk(t, `ls ${b}/tree/d`)).trim(), 'new', 'the next listing is a fresh one either way');
  });
}
