// Distribute's shortcuts past lookups, and what keeps them right. rmdir removes every copy
// but the hashed one, then the hashed one, without listing the directory first: a copy that
// holds only stale link files is emptied of them, and a copy that holds anything else fails
// the rmdir with every copy still there. A setattr of a directory this client knows goes to
// every copy without a lookup. A rename of a file goes where the lookup before it found it,
// and follows it when a rebalance moved it since.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import { mountVolfile, startDistribute, startVolume, xlatorStatedump, type TestVolume } from '../helpers/cluster.js';
import { sh, shOk, sleep } from '../helpers/proc.js';

/** The index of the brick holding name (a regular file) under dir, if exactly one does. */
function brickOf(vol: TestVolume, rel: string): number {
  const at = vol.bricks.map((b, i) => (fs.existsSync(path.join(b.dir, rel)) ? i : -1)).filter((i) => i >= 0);
  if (at.length !== 1) throw new Error(`${rel} is on bricks ${at.join(',')}`);
  return at[0]!;
}

/** A directory copy's gfid and layout xattrs, hex ('' when missing). */
async function dirXattrs(dir: string): Promise<string> {
  const r = await sh(`getfattr -e hex -n trusted.brickfs.gfid ${dir} 2>/dev/null | grep = ; getfattr -e hex -n trusted.brickfs.layout ${dir} 2>/dev/null | grep =`);
  return r.stdout;
}

test('rmdir of a directory that holds a file fails ENOTEMPTY and leaves every copy, gfid and layout in place, whichever brick holds the file', async (t) => {
  const vol = await startDistribute(t, 2);
  const m = await mountVolfile(t, vol.volfilePath);
  // Names hashing to each brick: a directory of that name has its hashed copy there.
  await shOk(t, `for i in $(seq 0 15); do touch ${m}/n$i; done`);
  const names = Array.from({ length: 16 }, (_, i) => `n${i}`);
  const on = [0, 1].map((b) => names.find((n) => brickOf(vol, n) === b));
  t.truthy(on[0] && on[1], `names on both bricks: ${on.join(' ')}`);
  await shOk(t, `rm ${m}/n*`);
  for (const hashed of [0, 1]) {
    const d = on[hashed]!;
    await shOk(t, `mkdir ${m}/${d}`);
    const before = await Promise.all(vol.bricks.map((b) => dirXattrs(path.join(b.dir, d))));
    t.true(before.every((x) => x.includes('gfid=') && x.includes('layout=')), before.join('|'));
    // The file on the hashed copy: the other copy is removed first, then made again.
    fs.writeFileSync(path.join(vol.bricks[hashed]!.dir, d, 'keep'), 'k');
    const r = await sh(`rmdir ${m}/${d}`);
    t.not(r.code, 0);
    t.regex(r.stderr, /not empty/i);
    const after = await Promise.all(vol.bricks.map((b) => dirXattrs(path.join(b.dir, d))));
    t.deepEqual(after.map((x) => x.split('\n')[0]), before.map((x) => x.split('\n')[0]), `${d}: every copy there, same gfid`);
    t.true(after.every((x) => x.includes('layout=')), after.join('|'));
    // The directory works on both bricks: files land on each.
    await shOk(t, `for i in $(seq 0 15); do echo $i > ${m}/${d}/f$i; done`);
    t.is((await shOk(t, `cat ${m}/${d}/f7 && ls ${m}/${d} | wc -l`)).trim(), '7\n17');
    t.true(vol.bricks.every((b) => fs.readdirSync(path.join(b.dir, d)).some((n) => n.startsWith('f'))), 'files on both bricks');
    await shOk(t, `rm -f ${m}/${d}/f*`);
    fs.unlinkSync(path.join(vol.bricks[hashed]!.dir, d, 'keep'));
    await shOk(t, `rmdir ${m}/${d}`);
    t.false(vol.bricks.some((b) => fs.existsSync(path.join(b.dir, d))), `${d} gone from every brick`);
  }
});

test('rmdir of a directory whose copies hold only stale link files removes them and the directory', async (t) => {
  const vol = await startDistribute(t, 2);
  const m = await mountVolfile(t, vol.volfilePath);
  // Renames within a directory leave link files on the new names' hashed bricks.
  await shOk(t, `mkdir ${m}/d && for i in $(seq 0 15); do echo $i > ${m}/d/a$i; mv ${m}/d/a$i ${m}/d/b$i; done`);
  const linkfiles = vol.bricks.flatMap((b) => fs.readdirSync(path.join(b.dir, 'd')).filter((n) => (fs.statSync(path.join(b.dir, 'd', n)).mode & 0o1000) !== 0));
  t.true(linkfiles.length > 0, 'some renames made link files');
  // The data goes behind brickfs' back: the link files are stale.
  for (const b of vol.bricks) {
    for (const n of fs.readdirSync(path.join(b.dir, 'd'))) {
      if ((fs.statSync(path.join(b.dir, 'd', n)).mode & 0o1000) === 0) fs.unlinkSync(path.join(b.dir, 'd', n));
    }
  }
  t.is(await shOk(t, `ls -A ${m}/d`), '');
  await shOk(t, `rmdir ${m}/d`);
  t.false(vol.bricks.some((b) => fs.existsSync(path.join(b.dir, 'd'))), 'gone from every brick');
  t.is((await sh(`ls ${m}/d`)).code, 2);
});

test('a setattr of a directory this mount knows goes to every copy without a lookup; a directory replaced by a file behind its back: the file takes the change', async (t) => {
  // A change made on the bricks themselves reaches no cache through the bricks' invalidations:
  // only md-cache's timeout bounds it, 1 s here (60 s by default while the bricks push them).
  const vol = await startDistribute(t, 2, { set: { 'performance.md-cache-timeout': '1' } });
  const m = await mountVolfile(t, vol.volfilePath);
  const known = async (): Promise<number> => (await xlatorStatedump(m, 'cluster/distribute')).knownDirFops as number;
  await shOk(t, `touch ${m}/e`);
  const eHashed = brickOf(vol, 'e');
  await shOk(t, `rm ${m}/e && mkdir ${m}/d ${m}/e`);
  const before = await known();
  await shOk(t, `chmod 700 ${m}/d && touch -m -d '2001-02-03 04:05:06' ${m}/d`);
  t.true(await known() >= before + 2, 'sent without a lookup');
  for (const b of vol.bricks) {
    const st = fs.statSync(path.join(b.dir, 'd'));
    t.is(st.mode & 0o777, 0o700);
    t.is(st.mtime.getFullYear(), 2001);
  }
  // e goes from every brick and comes back as a file on one, behind brickfs' back.
  for (const b of vol.bricks) fs.rmdirSync(path.join(b.dir, 'e'));
  fs.writeFileSync(path.join(vol.bricks[eHashed]!.dir, 'e'), 'file');
  // Past the kernel's and md-cache's 1 s, the kernel looks e up again and sees a file (the
  // inode it had is a directory's, which it would refuse to change into a file: EIO); the
  // layout distribute keeps for e is still there.
  await sleep(2200);
  await shOk(t, `chmod 640 ${m}/e`);
  t.is(fs.statSync(path.join(vol.bricks[eHashed]!.dir, 'e')).mode & 0o777, 0o640, 'the file took the mode');
  t.false(fs.existsSync(path.join(vol.bricks[1 - eHashed]!.dir, 'e')));
});

test('a rename right after the file moved to the other brick (a link file where it was) renames the data and leaves no stray link file', async (t) => {
  const vol = await startDistribute(t, 2);
  const m = await mountVolfile(t, vol.volfilePath);
  await shOk(t, `mkdir ${m}/d`);
  for (let i = 0; i < 6; i++) {
    const f = `d/f${i}`;
    // The lookup of this write leaves where f is in distribute's memory, and f in the kernel's.
    await shOk(t, `echo data${i} > ${m}/${f}`);
    const from = brickOf(vol, f);
    const to = 1 - from;
    // A rebalance's migration, done by hand: the data to the other brick, a link file to it here.
    const gfid = xattr.getAttributeSync(path.join(vol.bricks[from]!.dir, f), 'trusted.brickfs.gfid')!;
    fs.renameSync(path.join(vol.bricks[from]!.dir, f), path.join(vol.bricks[to]!.dir, f));
    const link = path.join(vol.bricks[from]!.dir, f);
    fs.writeFileSync(link, '');
    fs.chmodSync(link, 0o1000);
    xattr.setAttributeSync(link, 'trusted.brickfs.linkto', Buffer.from(`tv-client-${to}`));
    xattr.setAttributeSync(link, 'trusted.brickfs.gfid', gfid);
    await shOk(t, `mv ${m}/${f} ${m}/d/g${i}`);
  }
  t.is(await shOk(t, `cat ${m}/d/g*`), 'data0\ndata1\ndata2\ndata3\ndata4\ndata5\n');
  t.is((await sh(`ls ${m}/d/f0`)).code, 2);
  for (let i = 0; i < 6; i++) {
    const copies = vol.bricks.map((b) => path.join(b.dir, 'd', `g${i}`)).filter((p) => fs.existsSync(p));
    const data = copies.filter((p) => (fs.statSync(p).mode & 0o1000) === 0);
    t.is(data.length, 1, `g${i}: one data file`);
    t.is(fs.readFileSync(data[0]!, 'utf8'), `data${i}\n`);
    for (const l of copies.filter((p) => p !== data[0])) {
      const target = xattr.getAttributeSync(l, 'trusted.brickfs.linkto')!.toString();
      t.is(path.join(vol.bricks[Number(target.slice(-1))]!.dir, 'd', `g${i}`), data[0], `g${i}: the link file points at the data`);
    }
    t.false(vol.bricks.some((b) => fs.existsSync(path.join(b.dir, 'd', `f${i}`))), `f${i} gone, link file too`);
  }
});

/**
 * Renames over names whose data lives on another subvolume (a link file on their hashed
 * one), on a volume of distribute over sets of `width` bricks (replica or stripe sets).
 * Each name t<i> is first renamed from t<i>.pre: for about half, the data stays on
 * t<i>.pre's set and t<i>'s hashed set gets a link file. Then a<i> (made here: distribute
 * knows its gfid) replaces each t<i>: every mix of "the new name hashes where the data is or
 * not" and "the old target is reached through a link file or not". On the bricks: one set
 * holds t<i>'s data, every link file points at it with its gfid, nothing is left of the old
 * data; a fresh mount reads every new content.
 */
async function renameOverLinkedTargets(t: ExecutionContext, vol: TestVolume, width: number): Promise<void> {
  const m = await mountVolfile(t, vol.volfilePath);
  const n = 40;
  await shOk(t, `mkdir ${m}/d && for i in $(seq 1 ${n}); do echo old$i > ${m}/d/t$i.pre && mv ${m}/d/t$i.pre ${m}/d/t$i; done`);
  const isLink = (p: string): boolean => (fs.statSync(p).mode & 0o1000) !== 0;
  const linked = vol.bricks.flatMap((b) => fs.readdirSync(path.join(b.dir, 'd')).filter((f) => isLink(path.join(b.dir, 'd', f))));
  t.true(linked.length >= 5 * width, `some targets are reached through a link file: ${linked.join(' ')}`);
  await shOk(t, `for i in $(seq 1 ${n}); do echo new$i > ${m}/d/a$i && mv -f ${m}/d/a$i ${m}/d/t$i; done`);
  const sets = vol.bricks.length / width;
  for (let i = 1; i <= n; i++) {
    // What each set holds of t<i>, as its first brick has it; every brick of a set agrees.
    const held = Array.from({ length: sets }, (_, s) => {
      const copies = vol.bricks.slice(s * width, (s + 1) * width).map((b) => path.join(b.dir, 'd', `t${i}`));
      const kinds = copies.map((p) => (!fs.existsSync(p) ? 'none' : isLink(p) ? 'link' : 'data'));
      t.true(kinds.every((k) => k === kinds[0]), `t${i}: set ${s} is one thing on every brick: ${kinds.join(' ')}`);
      return { kind: kinds[0]!, first: copies[0]! };
    });
    const data = held.flatMap((h, s) => (h.kind === 'data' ? [s] : []));
    t.is(data.length, 1, `t${i}: one set holds data, the old data is gone`);
    const gfid = xattr.getAttributeSync(held[data[0]!]!.first, 'trusted.brickfs.gfid')!;
    held.forEach((h, s) => {
      if (h.kind !== 'link') return;
      const target = xattr.getAttributeSync(h.first, 'trusted.brickfs.linkto')!.toString();
      // Distribute's children are named VOL-client-K, VOL-replicate-K or VOL-stripe-K, K the set.
      t.is(Number(target.slice(target.lastIndexOf('-') + 1)), data[0], `t${i}: the link file on set ${s} (${target}) points at the data`);
      t.deepEqual(xattr.getAttributeSync(h.first, 'trusted.brickfs.gfid'), gfid, `t${i}: the link file has the file's gfid`);
    });
    t.false(vol.bricks.some((b) => fs.existsSync(path.join(b.dir, 'd', `a${i}`))), `a${i} gone`);
  }
  const fresh = await mountVolfile(t, vol.volfilePath);
  t.is(await shOk(t, `for i in $(seq 1 ${n}); do cat ${fresh}/d/t$i; done`), Array.from({ length: n }, (_, i) => `new${i + 1}\n`).join(''));
}

test('a rename over a name whose data lives on the other brick (a link file on its hashed one) removes that data; the new name\'s link file carries the file\'s gfid', async (t) => {
  await renameOverLinkedTargets(t, await startDistribute(t, 2), 1);
});

test('the same on 2 x 2 replicate: each replica reports the link file its rename replaced', async (t) => {
  await renameOverLinkedTargets(t, await startVolume(t, 4, { replica: 2 }), 2);
});

test('the same on distribute over two stripe sets of 2: the stripe reports the link file its rename replaced', async (t) => {
  await renameOverLinkedTargets(t, await startVolume(t, 4, { stripe: 2 }), 2);
});
