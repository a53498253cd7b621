// mount -o writeback-cache: the kernel's writeback cache (docs/performance.md, "The kernel's
// writeback cache"). The kernel grants it; what a process writes lands on the bricks by
// close(); appends, partial pages of write-only files and another mount's changes behave as
// on a mount without it, and as on ext4 where the kernel decides.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isMountPoint, mountStatedump, mountVolfile, startDistribute } from '../helpers/cluster.js';
import { cli, eventually, sh, shOk, tmpDir } from '../helpers/proc.js';

const WB = 'writeback-cache';

test('the kernel grants the writeback cache when asked, and only then', async (t) => {
  const vol = await startDistribute(t, 2);
  const plain = await mountVolfile(t, vol.volfilePath);
  const wb = await mountVolfile(t, vol.volfilePath, undefined, WB);
  t.is((await mountStatedump(plain)).fuse.writebackCache, false);
  t.is((await mountStatedump(wb)).fuse.writebackCache, true);
});

test('a bad value of writeback-cache is a usage error naming the values, and mounts nothing', async (t) => {
  const vol = await startDistribute(t, 1);
  const mnt = tmpDir(t, 'brickfs-wb-mnt-');
  const r = await cli(['mount', '--volfile', vol.volfilePath, mnt, '-o', 'writeback-cache=maybe']);
  t.is(r.code, 2);
  t.regex(r.stderr, /writeback-cache\[=on\|off\]/);
  t.false(isMountPoint(mnt));
});

test('random small writes, appends and a write-only file: the same bytes as on ext4, on the bricks once closed', async (t) => {
  const vol = await startDistribute(t, 2);
  const mnt = await mountVolfile(t, vol.volfilePath, undefined, WB);
  const local = tmpDir(t, 'brickfs-wb-ext4-');
  // Every user reaches both (mkdtemp's directories are 0700).
  fs.chmodSync(local, 0o777);
  fs.chmodSync(path.dirname(vol.volfilePath), 0o755);
  fs.chmodSync(mnt, 0o777);
  // Random 4 KiB and odd-sized writes into a file, appends with O_APPEND, and a mode 0200 file
  // written by its (unprivileged) owner: the kernel reads partial pages, which the bricks
  // must serve through a write-only open.
  const script = (d: string): string => [
    `cd ${d}`,
    'dd if=/dev/zero of=r bs=64k count=4 status=none',
    'for o in 7 3 60 1 33 12; do printf "%04d-block" $o | dd of=r bs=4096 seek=$o conv=notrunc status=none; done',
    'printf abc | dd of=r bs=1 seek=5000 conv=notrunc status=none',
    'echo one > a && echo two >> a && printf three >> a',
    'setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "umask 077; printf first > w && chmod 200 w && printf xy | dd of=w bs=1 seek=2 conv=notrunc status=none && printf end >> w"',
    'stat -c "%n %s %a %U" r a w',
  ].join(' && ');
  const onExt4 = await shOk(t, script(local));
  const onMount = await shOk(t, script(mnt));
  t.is(onMount, onExt4.replaceAll(local, mnt));
  for (const n of ['r', 'a', 'w']) {
    const want = crypto.createHash('sha256').update(fs.readFileSync(path.join(local, n))).digest('hex');
    // What the bricks hold: the file on whichever brick has it.
    const onBrick = vol.bricks.map((b) => path.join(b.dir, n)).find((p) => fs.existsSync(p) && fs.statSync(p).size > 0)!;
    t.is(crypto.createHash('sha256').update(fs.readFileSync(onBrick)).digest('hex'), want, `${n} on the brick`);
  }
});

test('two mounts with the writeback cache: size, content, mode and names changed on one show on the other within seconds', async (t) => {
  const vol = await startDistribute(t, 2);
  const a = await mountVolfile(t, vol.volfilePath, undefined, WB);
  const b = await mountVolfile(t, vol.volfilePath, undefined, WB);
  await shOk(t, `mkdir ${a}/u && echo one > ${a}/u/f && touch ${a}/u/m ${a}/u/gone && chmod 644 ${a}/u/m`);
  // b caches it all, pages included.
  await shOk(t, `ls ${b}/u && stat ${b}/u/f ${b}/u/m ${b}/u/gone >/dev/null && cat ${b}/u/f`);
  await shOk(t, `echo two-longer > ${a}/u/f && chmod 600 ${a}/u/m && echo new > ${a}/u/new && rm ${a}/u/gone`);
  await eventually(async () => (await sh(`stat -c %s ${b}/u/f`)).stdout.trim() === '11', 3000, 'new size seen on b');
  t.is(await shOk(t, `cat ${b}/u/f`), 'two-longer\n');
  await eventually(async () => (await sh(`stat -c %a ${b}/u/m`)).stdout.trim() === '600', 3000, 'chmod seen on b');
  await eventually(async () => (await sh(`cat ${b}/u/new`)).stdout === 'new\n', 3000, 'new file seen on b');
  await eventually(async () => (await sh(`test -e ${b}/u/gone`)).code !== 0, 3000, 'unlink seen on b');
  // And back: b appends to a file a has open and cached.
  await shOk(t, `echo base > ${a}/u/log && cat ${b}/u/log`);
  await shOk(t, `echo appended-on-b >> ${b}/u/log`);
  await eventually(async () => (await sh(`cat ${a}/u/log`)).stdout === 'base\nappended-on-b\n', 3000, 'b\'s append seen on a');
});
