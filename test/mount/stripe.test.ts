// cluster/stripe on a real mount: two real bricks striped with 64 KiB blocks. Data round
// trips byte for byte, holes and truncation behave as on a local file, and the bricks
// really hold alternate blocks as sparse files.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { decodeGeometry, XATTR_STRIPE } from '../../client/xlators/cluster/stripe/blocks.js';
import { mountVolfile, startStripe, type TestVolume } from '../helpers/cluster.js';
import { randomFileOps } from '../helpers/file-model.js';
import { CleanupScope, eventually, sh, shOk, tmpDir } from '../helpers/proc.js';

const B = 64 * 1024;
let vol: TestVolume;
let mnt: string;
let scratch: string;

const scope = new CleanupScope();
test.after.always(() => scope.runAll());

test.before(async () => {
  vol = await startStripe(scope, 2, { blockSize: '64KiB', pingTimeoutS: 5 });
  mnt = await mountVolfile(scope, vol.volfilePath);
  scratch = tmpDir(scope);
});

/** An xattr of a brick file, as hex (getfattr prints NAME=0x...). */
async function xattrHex(t: Parameters<typeof shOk>[0], file: string, name: string): Promise<string> {
  const out = await shOk(t, `getfattr -e hex -n ${name} ${file}`);
  return /=0x([0-9a-f]+)/.exec(out)?.[1] ?? '';
}

const sha = async (p: string): Promise<string> => crypto.createHash('sha256').update(await fsp.readFile(p)).digest('hex');

/** The bytes [off, off+len) of a brick's copy, reading a missing tail as zeros (a hole). */
async function brickRange(file: string, off: number, len: number): Promise<Buffer> {
  const out = Buffer.alloc(len);
  const fh = await fsp.open(file, 'r');
  try {
    await fh.read(out, 0, len, off);
  } finally {
    await fh.close();
  }
  return out;
}

test('files of 0, 1, B-1, B, B+1, 10B+7 bytes and 64 MiB round-trip byte for byte', async (t) => {
  await fsp.mkdir(`${mnt}/rt`);
  for (const size of [0, 1, B - 1, B, B + 1, 10 * B + 7, 64 << 20]) {
    const src = path.join(scratch, `rt-${size}`);
    await shOk(t, `head -c ${size} /dev/urandom > ${src} && cp ${src} ${mnt}/rt/f-${size}`);
    // A fresh open: the kernel drops cached pages, so these bytes come through the stripe.
    t.is(await sha(`${mnt}/rt/f-${size}`), await sha(src), `size ${size}`);
    t.is((await fsp.stat(`${mnt}/rt/f-${size}`)).size, size);
    t.is((await shOk(t, `ls -l ${mnt}/rt/f-${size} | awk '{print $5}'`)).trim(), String(size), 'readdir size');
  }
});

test('data is split over both children: each brick holds its own blocks, sparse', async (t) => {
  await fsp.mkdir(`${mnt}/split`);
  const size = 10 * B + 7;
  const src = path.join(scratch, 'split-src');
  await shOk(t, `head -c ${size} /dev/urandom > ${src} && cp ${src} ${mnt}/split/f`);
  const data = await fsp.readFile(src);
  const copies = vol.bricks.map((b) => path.join(b.dir, 'split', 'f'));
  // Block i lives on child i mod 2 at offset i*B; the other child's copy has a hole there.
  for (let i = 0; i * B < size; i++) {
    const len = Math.min(B, size - i * B);
    const want = data.subarray(i * B, i * B + len);
    t.true((await brickRange(copies[i % 2]!, i * B, len)).equals(want), `block ${i} on child ${i % 2}`);
    t.true((await brickRange(copies[(i + 1) % 2]!, i * B, len)).equals(Buffer.alloc(len)), `block ${i} is a hole on child ${(i + 1) % 2}`);
  }
  // cmp agrees, on a byte range: block 3 on brick 1.
  await shOk(t, `cmp -n ${B} -i ${3 * B}:${3 * B} ${src} ${copies[1]}`);
  t.is(fs.statSync(copies[0]!).size, size, 'child 0 holds the last block');
  t.is(fs.statSync(copies[1]!).size, 10 * B, 'child 1 ends with block 9');
  // Sparse: each copy allocates about its half (du counts allocated blocks).
  for (const c of copies) {
    const kib = Number((await shOk(t, `du -k ${c}`)).split('\t')[0]);
    t.true(kib >= 5 * 64 - 8 && kib <= 6 * 64 + 8, `${c}: ${kib} KiB allocated for about half of ${size >> 10} KiB`);
  }
  // Every copy carries the geometry, with its own index.
  const g = await Promise.all(copies.map(async (c) => decodeGeometry(Buffer.from(await xattrHex(t, c, XATTR_STRIPE), 'hex'))));
  t.deepEqual(g, [{ blockSize: B, count: 2, index: 0 }, { blockSize: B, count: 2, index: 1 }]);
  // A file smaller than a block: data on child 0 only, an empty copy on child 1.
  await fsp.writeFile(`${mnt}/split/small`, 'tiny');
  t.is(fs.readFileSync(path.join(vol.bricks[0]!.dir, 'split', 'small'), 'utf8'), 'tiny');
  t.is(fs.statSync(path.join(vol.bricks[1]!.dir, 'split', 'small')).size, 0);
});

test('holes read as zeros; truncate up and down', async (t) => {
  const f = `${mnt}/holes`;
  const ref = path.join(scratch, 'holes-ref');
  // One byte far into the file (block 5, on child 1); nothing before it.
  for (const p of [f, ref]) await shOk(t, `printf 'X' | dd of=${p} bs=1 seek=${5 * B + 3} conv=notrunc status=none`);
  t.is((await fsp.stat(f)).size, 5 * B + 4);
  t.true((await fsp.readFile(f)).equals(await fsp.readFile(ref)));
  t.is(fs.statSync(path.join(vol.bricks[0]!.dir, 'holes')).size, 0, 'child 0 got no data, only the empty copy');
  // Data in block 2 (child 0) only: block 1 is past the end of child 1's copy, yet inside
  // the file, so it is a hole that reads as zeros, not an end of file.
  const h2 = `${mnt}/holes2`;
  await shOk(t, `printf 'Y' | dd of=${h2} bs=1 seek=${2 * B} conv=notrunc status=none`);
  t.is(fs.statSync(path.join(vol.bricks[1]!.dir, 'holes2')).size, 0);
  const want = Buffer.alloc(2 * B + 1);
  want[2 * B] = 'Y'.charCodeAt(0);
  t.true((await fsp.readFile(h2)).equals(want));
  // Grow: zeros to the new size.
  for (const p of [f, ref]) await shOk(t, `truncate -s ${12 * B + 5} ${p}`);
  t.is((await fsp.stat(f)).size, 12 * B + 5);
  t.true((await fsp.readFile(f)).equals(await fsp.readFile(ref)));
  // Fill with data, shrink into the middle of a block, grow again: the cut part reads as zeros.
  const src = path.join(scratch, 'holes-src');
  await shOk(t, `head -c ${12 * B + 5} /dev/urandom > ${src} && cp ${src} ${f} && cp ${src} ${ref}`);
  for (const p of [f, ref]) await shOk(t, `truncate -s ${B + 1} ${p} && truncate -s ${3 * B + 9} ${p}`);
  t.is((await fsp.stat(f)).size, 3 * B + 9);
  t.true((await fsp.readFile(f)).equals(await fsp.readFile(ref)));
  t.true((await fsp.readFile(f)).subarray(B + 1).equals(Buffer.alloc(2 * B + 8)));
  // Shrink to zero and below a block.
  for (const p of [f, ref]) await shOk(t, `truncate -s 0 ${p}`);
  t.is((await fsp.stat(f)).size, 0);
  t.is((await fsp.readFile(f)).length, 0);
  for (const b of vol.bricks) t.is(fs.statSync(path.join(b.dir, 'holes')).size, 0);
});

test('O_APPEND (>>) appends at the end of the file, across block boundaries', async (t) => {
  const f = `${mnt}/append`;
  const ref = path.join(scratch, 'append-ref');
  const chunks = [B - 3, 10, B, 1, 2 * B + 17, 5].map((n, i) => {
    const p = path.join(scratch, `append-${i}`);
    fs.writeFileSync(p, crypto.randomBytes(n));
    return p;
  });
  // The first >> creates the file (O_CREAT|O_APPEND); the rest append to it.
  for (const c of chunks) await shOk(t, `cat ${c} >> ${f} && cat ${c} >> ${ref}`);
  await shOk(t, `echo tail >> ${f} && echo tail >> ${ref}`);
  t.is((await fsp.stat(f)).size, (await fsp.stat(ref)).size);
  t.is(await sha(f), await sha(ref));
});

test('seeded random pwrite/pread/truncate against a local reference file', async (t) => {
  for (const seed of [1, 2]) {
    const m = await randomFileOps({
      target: `${mnt}/model-${seed}`, reference: path.join(scratch, `model-${seed}`),
      seed, ops: 300, maxSize: 12 * B, maxWrite: 3 * B, checkEvery: 10,
    });
    t.is(m, undefined, m && `seed ${seed}, op ${m.op}: ${m.what}\nlast ops: ${m.log.slice(-8).join('; ')}`);
  }
});

test('fio random writes verify (crc32c) on the mount', async (t) => {
  await fsp.mkdir(`${mnt}/fio`);
  const r = await sh(`fio --name=v --directory=${mnt}/fio --rw=randwrite --bs=4k --size=32M --verify=crc32c --do_verify=1 --ioengine=psync --verify_state_save=0`, { cwd: scratch, timeoutMs: 110_000 });
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.notRegex(r.stdout + r.stderr, /verify:.*bad|crc32c: verify failed/i);
});

test('rename, link, chmod, chown, xattrs and unlink act on every child', async (t) => {
  await fsp.mkdir(`${mnt}/meta`);
  const src = path.join(scratch, 'meta-src');
  await shOk(t, `head -c ${3 * B + 100} /dev/urandom > ${src} && cp ${src} ${mnt}/meta/a`);
  const on = (rel: string): string[] => vol.bricks.map((b) => path.join(b.dir, 'meta', rel));
  await shOk(t, `chmod 640 ${mnt}/meta/a && chown 1234:5678 ${mnt}/meta/a && touch -d '2004-05-06 07:08:09' ${mnt}/meta/a`);
  for (const c of on('a')) t.is((await shOk(t, `stat -c '%a %u %g %Y' ${c}`)).trim(), `640 1234 5678 ${Date.UTC(2004, 4, 6, 7, 8, 9) / 1000}`, c);
  t.is((await shOk(t, `stat -c '%a %u %g %Y %s' ${mnt}/meta/a`)).trim(), `640 1234 5678 ${Date.UTC(2004, 4, 6, 7, 8, 9) / 1000} ${3 * B + 100}`);
  // The same gfid on every copy.
  const gfids = await Promise.all(on('a').map((c) => xattrHex(t, c, 'trusted.brickfs.gfid')));
  t.is(gfids[0], gfids[1]);
  t.regex(gfids[0]!, /^[0-9a-f]{32}$/);
  await shOk(t, `setfattr -n user.tag -v striped ${mnt}/meta/a`);
  for (const c of on('a')) t.is(await shOk(t, `getfattr --only-values -n user.tag ${c}`), 'striped');
  await shOk(t, `mv ${mnt}/meta/a ${mnt}/meta/b`);
  for (const c of on('a')) t.false(fs.existsSync(c), c);
  for (const c of on('b')) t.true(fs.existsSync(c), c);
  t.is(await sha(`${mnt}/meta/b`), await sha(src));
  await shOk(t, `ln ${mnt}/meta/b ${mnt}/meta/hard && ln -s b ${mnt}/meta/soft && mkdir ${mnt}/meta/dir`);
  for (const c of on('hard')) t.is(fs.statSync(c).nlink, 2, c);
  for (const c of on('soft')) t.is(fs.readlinkSync(c), 'b', c);
  for (const c of on('dir')) t.true(fs.statSync(c).isDirectory(), c);
  t.is(await sha(`${mnt}/meta/soft`), await sha(src));
  await shOk(t, `rm ${mnt}/meta/b ${mnt}/meta/hard ${mnt}/meta/soft && rmdir ${mnt}/meta/dir`);
  for (const b of vol.bricks) t.deepEqual(fs.readdirSync(path.join(b.dir, 'meta')), [], b.dir);
  t.deepEqual(await fsp.readdir(`${mnt}/meta`), []);
});

test('a stripe child that is down: ENOTCONN at once, never a hang; back when it returns', async (t) => {
  const v = await startStripe(t, 2, { blockSize: '64KiB', pingTimeoutS: 3, name: 'down' });
  const m = await mountVolfile(t, v.volfilePath);
  const src = path.join(tmpDir(t), 'src');
  await shOk(t, `head -c ${3 * B} /dev/urandom > ${src} && cp ${src} ${m}/f && mkdir ${m}/d`);
  await v.bricks[1]!.kill('SIGKILL');
  const started = Date.now();
  for (const cmd of [`cat ${m}/f`, `touch ${m}/new`, `mkdir ${m}/d2`, `rm ${m}/f`, `chmod 600 ${m}/f`]) {
    const r = await sh(cmd, { timeoutMs: 20_000 });
    t.not(r.code, 0, cmd);
    t.regex(r.stderr, /Transport endpoint is not connected/, cmd);
  }
  t.true(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  // Nothing was half-done on the live child.
  t.false(fs.existsSync(path.join(v.bricks[0]!.dir, 'new')));
  t.false(fs.existsSync(path.join(v.bricks[0]!.dir, 'd2')));
  t.true(fs.existsSync(path.join(v.bricks[0]!.dir, 'f')));
  await v.bricks[1]!.start();
  await eventually(async () => (await sh(`sha256sum < ${m}/f`)).stdout === (await sh(`sha256sum < ${src}`)).stdout, 15_000, 'reconnect');
  await shOk(t, `touch ${m}/new && mkdir ${m}/d2`);
  for (const b of v.bricks) t.true(fs.existsSync(path.join(b.dir, 'new')) && fs.existsSync(path.join(b.dir, 'd2')), b.dir);
});
