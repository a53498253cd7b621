// Striped volumes as a user makes them: daemon → `volume create ... stripe N` → start →
// mount → data. One stripe set (stripe on top) and two sets (distribute over stripes).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { VolumeListReply } from '../../lib/mgmt/api.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import { runCliJson, runCliOk, testTlsVolume } from '../helpers/cli.js';
import { mountVolume } from '../helpers/cluster.js';
import { startDaemon } from '../helpers/daemon.js';
import { shOk, tmpDir } from '../helpers/proc.js';

/** KiB allocated to a file (du counts allocated blocks, so holes do not count). */
async function duKiB(t: Parameters<typeof shOk>[0], file: string): Promise<number> {
  return Number((await shOk(t, `du -k ${file}`)).split('\t')[0]);
}

test('stripe 2: volfile, block size option, 64 MiB round trip split in halves; old files keep their block size', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-stripe-cli-');
  const [b1, b2] = ['b1', 'b2'].map((b) => path.join(root, b)) as [string, string];
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 's']));
  await cli(['volume', 'create', 's', 'stripe', '2', `localhost:${b1}`, `localhost:${b2}`, '--force']);
  const info = (await runCliJson<VolumeListReply>(t, ['volume', 'info', 's', '--json'], { server: d.server })).volumes[0]!;
  t.like(info, { type: 'stripe', stripeCount: 2 });
  t.regex(await cli(['volume', 'info', 's']), /Type: Stripe\n[^]*Number of Bricks: 1 x 2 = 2\n/);
  const vf = parseVolfile(await cli(['volume', 'volfile', 's']));
  t.deepEqual(vf.map((x) => [x.name, x.type]), [['s-client-0', 'protocol/client'], ['s-client-1', 'protocol/client'], ['s-stripe-0', 'cluster/stripe'], ['s-quick-read', 'performance/quick-read'], ['s-open-behind', 'performance/open-behind'], ['s-write-behind', 'performance/write-behind'], ['s-io-cache', 'performance/io-cache'], ['s-read-ahead', 'performance/read-ahead'], ['s-nl-cache', 'performance/nl-cache'], ['s-readdir-ahead', 'performance/readdir-ahead'], ['s-md-cache', 'performance/md-cache']]);

  // Bad block sizes are usage errors; nothing changes.
  for (const bad of ['5000', '1KiB', 'huge']) {
    const r = await d.cli(['volume', 'set', 's', 'cluster.stripe-block-size', bad]);
    t.is(r.code, 2, `${bad}: ${r.stderr}`);
  }
  await cli(['volume', 'start', 's']);
  let mnt = await mountVolume(t, d.server, 's', fs.mkdtempSync(path.join(root, 'mnt-')));
  const src = path.join(root, 'src');
  await shOk(t, `head -c ${64 << 20} /dev/urandom > ${src} && cp ${src} ${mnt}/big && cp ${src} ${mnt}/old`);
  const want = await shOk(t, `sha256sum < ${src}`);
  t.is(await shOk(t, `sha256sum < ${mnt}/big`), want);
  // Both bricks hold about half of the blocks, as sparse files of the full size.
  for (const b of [b1, b2]) {
    const kib = await duKiB(t, path.join(b, 'big'));
    t.true(Math.abs(kib - 32 * 1024) < 2 * 1024, `${b}/big: ${kib} KiB allocated, expected about 32 MiB`);
    t.true(fs.statSync(path.join(b, 'big')).size >= (64 << 20) - 128 * 1024);
  }

  // A new block size applies to files created from now on (a new volfile, a new mount);
  // files that exist keep theirs and read back the same.
  await cli(['volume', 'set', 's', 'cluster.stripe-block-size', '64KiB']);
  const vf2 = await cli(['volume', 'volfile', 's']);
  t.regex(vf2, /type cluster\/stripe\n\s+option block-size 65536\n/);
  t.regex(vf2, new RegExp(`version ${2 + testTlsVolume().versions}\\b`));
  await runCliOk(t, ['umount', mnt]);
  mnt = await mountVolume(t, d.server, 's', fs.mkdtempSync(path.join(root, 'mnt-')));
  await shOk(t, `cp ${src} ${mnt}/new`);
  t.is(await shOk(t, `sha256sum < ${mnt}/old`), want);
  t.is(await shOk(t, `sha256sum < ${mnt}/new`), want);
  const geometry = async (f: string): Promise<string> => /=0x([0-9a-f]+)/.exec(await shOk(t, `getfattr -e hex -n trusted.brickfs.stripe ${f}`))![1]!;
  t.is((await geometry(path.join(b2, 'old'))).slice(8, 16), (128 * 1024).toString(16).padStart(8, '0'));
  t.is((await geometry(path.join(b2, 'new'))).slice(8, 16), (64 * 1024).toString(16).padStart(8, '0'));
  await runCliOk(t, ['umount', mnt]);
  await cli(['volume', 'stop', 's']);
});

test('stripe 2 over 4 bricks: distribute over two stripe sets of consecutive bricks; files land on both', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-stripe-cli-');
  const bricks = [0, 1, 2, 3].map((i) => path.join(root, `b${i}`));
  const cli = (args: string[]): Promise<string> => runCliOk(t, args, { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'ds']));
  await cli(['volume', 'create', 'ds', 'stripe', '2', ...bricks.map((b) => `localhost:${b}`), '--force']);
  t.regex(await cli(['volume', 'info', 'ds']), /Type: Distributed-Stripe\n[^]*Number of Bricks: 2 x 2 = 4\n/);
  const vf = parseVolfile(await cli(['volume', 'volfile', 'ds']));
  t.deepEqual(vf.slice(4).map((x) => [x.name, x.type, x.subvolumes]), [
    ['ds-stripe-0', 'cluster/stripe', ['ds-client-0', 'ds-client-1']],
    ['ds-stripe-1', 'cluster/stripe', ['ds-client-2', 'ds-client-3']],
    ['ds-dht', 'cluster/distribute', ['ds-stripe-0', 'ds-stripe-1']],
    ['ds-quick-read', 'performance/quick-read', ['ds-dht']],
    ['ds-open-behind', 'performance/open-behind', ['ds-quick-read']],
    ['ds-write-behind', 'performance/write-behind', ['ds-open-behind']],
    ['ds-io-cache', 'performance/io-cache', ['ds-write-behind']],
    ['ds-read-ahead', 'performance/read-ahead', ['ds-io-cache']],
    ['ds-nl-cache', 'performance/nl-cache', ['ds-read-ahead']],
    ['ds-readdir-ahead', 'performance/readdir-ahead', ['ds-nl-cache']],
    ['ds-md-cache', 'performance/md-cache', ['ds-readdir-ahead']],
  ]);
  t.deepEqual(vf.slice(0, 4).map((x) => x.options['remote-subvolume']), bricks, 'clients in brick order');
  await cli(['volume', 'start', 'ds']);
  const mnt = await mountVolume(t, d.server, 'ds', fs.mkdtempSync(path.join(root, 'mnt-')));
  const src = path.join(root, 'src');
  await shOk(t, `head -c ${300 * 1024} /dev/urandom > ${src} && mkdir ${mnt}/d && for i in $(seq 1 40); do cp ${src} ${mnt}/d/f$i; done`);
  const want = await shOk(t, `sha256sum < ${src}`);
  t.is((await shOk(t, `cat ${mnt}/d/f* | sha256sum`)), await shOk(t, `for i in $(seq 1 40); do cat ${src}; done | sha256sum`));
  t.is(await shOk(t, `sha256sum < ${mnt}/d/f7`), want);
  const names = bricks.map((b) => fs.readdirSync(path.join(b, 'd')).sort());
  // The two bricks of a set hold the same names; the sets split the files between them.
  t.deepEqual(names[0], names[1]);
  t.deepEqual(names[2], names[3]);
  t.is(names[0]!.length + names[2]!.length, 40);
  t.true(names[0]!.length >= 5 && names[2]!.length >= 5, `uneven: ${names[0]!.length} / ${names[2]!.length}`);
  // Within a set, the data is striped: 300 KiB in 128 KiB blocks is 3 blocks, 2 on the first brick, 1 on the second.
  const f = names[2]![0]!;
  t.is(fs.statSync(path.join(bricks[2]!, 'd', f)).size, 300 * 1024);
  t.is(fs.statSync(path.join(bricks[3]!, 'd', f)).size, 256 * 1024);
  t.true(await duKiB(t, path.join(bricks[3]!, 'd', f)) <= 132, 'the second brick holds only block 1');
  await runCliOk(t, ['umount', mnt]);
  await cli(['volume', 'stop', 'ds']);
});
