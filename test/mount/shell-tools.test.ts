// Ordinary shell tools on a real FUSE mount of a 3-brick distribute volume (real brick
// processes, real sockets). Each test works in its own directory of one shared mount.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startDistribute, type TestVolume } from '../helpers/cluster.js';
import { CleanupScope, eventually, sh, shOk, tmpDir } from '../helpers/proc.js';

let vol: TestVolume;
let mnt: string;
let scratch: string;

const scope = new CleanupScope();
test.after.always(() => scope.runAll());

test.before(async (t) => {
  vol = await startDistribute(scope, 3, { pingTimeoutS: 5 });
  mnt = await mountVolfile(scope, vol.volfilePath);
  scratch = tmpDir(scope);
  // A source tree with nested directories, sizes around 0..300 KiB, a symlink, old mtimes.
  await shOk(t, `set -e; cd ${scratch}; mkdir -p src/a/b/c src/d src/e/f
    for i in $(seq 1 120); do d=$(printf 'src/a src/a/b src/a/b/c src/d src/e/f' | tr ' ' '\\n' | sed -n "$(( i % 5 + 1 ))p")
      head -c $(( (i * 7919) % 300000 )) /dev/urandom > $d/file-$i.bin; done
    : > src/empty; ln -s a/b/c src/link-to-c; chmod 640 src/d/file-3.bin
    touch -d '2003-04-05 06:07:08' src/a/file-5.bin src/d`);
});

/** sha256 of every file, sorted by path, for comparing trees. */
function sums(dir: string): Promise<string> {
  return sh(`cd ${dir} && find . -type f -print0 | sort -z | xargs -0 sha256sum`).then((r) => r.stdout);
}

test('tar extract onto the mount keeps content, modes, mtimes and symlinks', async (t) => {
  await shOk(t, `tar -C ${scratch}/src -cf ${scratch}/src.tar . && mkdir ${mnt}/untar && tar -C ${mnt}/untar -xf ${scratch}/src.tar`);
  t.is(await sums(`${mnt}/untar`), await sums(`${scratch}/src`));
  t.true((await sums(`${mnt}/untar`)).split('\n').length > 100);
  const meta = (d: string): Promise<string> => sh(`cd ${d} && find . -printf '%p %M %TY-%Tm-%Td_%TH:%TM:%TS %l\\n' | sort`).then((r) => r.stdout.replace(/(\d\d:\d\d:\d\d)\.\d+/g, '$1'));
  t.is(await meta(`${mnt}/untar`), await meta(`${scratch}/src`));
  // And back out: tar from the mount matches too.
  await shOk(t, `mkdir ${scratch}/back && tar -C ${mnt}/untar -cf - . | tar -C ${scratch}/back -xf -`);
  t.is(await sums(`${scratch}/back`), await sums(`${scratch}/src`));
});

test('cp -a preserves mtime, mode and symlinks', async (t) => {
  await shOk(t, `cp -a ${scratch}/src ${mnt}/cpa`);
  t.is(await sums(`${mnt}/cpa`), await sums(`${scratch}/src`));
  t.is((await shOk(t, `stat -c '%Y %a' ${mnt}/cpa/a/file-5.bin`)).trim(), `${Date.UTC(2003, 3, 5, 6, 7, 8) / 1000} 644`);
  t.is((await shOk(t, `stat -c '%a' ${mnt}/cpa/d/file-3.bin`)).trim(), '640');
  t.is((await shOk(t, `readlink ${mnt}/cpa/link-to-c`)).trim(), 'a/b/c');
  t.is((await shOk(t, `ls ${mnt}/cpa/link-to-c/ | wc -l`)).trim(), (await shOk(t, `ls ${scratch}/src/a/b/c | wc -l`)).trim());
});

test('touch -d sets mtime (and atime) exactly', async (t) => {
  await shOk(t, `mkdir ${mnt}/touch && touch -d '2001-02-03 04:05:06.5' ${mnt}/touch/f && touch -a -d '2010-01-01 00:00:00' ${mnt}/touch/f`);
  const [mtime, atime] = (await shOk(t, `stat -c '%.3Y %X' ${mnt}/touch/f`)).trim().split(' ');
  t.is(mtime, (Date.UTC(2001, 1, 3, 4, 5, 6, 500) / 1000).toFixed(3));
  t.is(atime, String(Date.UTC(2010, 0, 1) / 1000));
  // touch -m alone must leave atime alone (UTIME_OMIT)
  await shOk(t, `touch -m -d '2020-01-01 00:00:00' ${mnt}/touch/f`);
  t.is((await shOk(t, `stat -c '%Y %X' ${mnt}/touch/f`)).trim(), `${Date.UTC(2020, 0, 1) / 1000} ${Date.UTC(2010, 0, 1) / 1000}`);
});

test('mv, ln, ln -s, chmod, chown, truncate behave as on a local disk', async (t) => {
  const d = `${mnt}/ops`;
  await shOk(t, `mkdir ${d} && echo hello > ${d}/a && mv ${d}/a ${d}/b && cat ${d}/b`);
  t.false(fs.existsSync(`${d}/a`));
  await shOk(t, `ln ${d}/b ${d}/hard && ln -s b ${d}/soft`);
  t.is((await shOk(t, `cat ${d}/hard ${d}/soft`)), 'hello\nhello\n');
  t.is((await shOk(t, `stat -c %h ${d}/hard`)).trim(), '2');
  t.is((await shOk(t, `readlink ${d}/soft`)).trim(), 'b');
  await shOk(t, `chmod 751 ${d}/b && chown 1234:5678 ${d}/b`);
  t.is((await shOk(t, `stat -c '%a %u %g' ${d}/b`)).trim(), '751 1234 5678');
  await shOk(t, `truncate -s 100000 ${d}/b && truncate -s 3 ${d}/hard`);
  // Each name of a hard link is its own kernel inode under libfuse's path API, so the
  // other name's cached size may lag by the attribute timeout; its data never does.
  t.is((await shOk(t, `stat -c %s ${d}/hard`)).trim(), '3');
  t.is((await shOk(t, `cat ${d}/b`)), 'hel');
  await shOk(t, `printf 'abcdef' > ${d}/t && truncate -s 10 ${d}/t`);
  t.is((await shOk(t, `od -An -c ${d}/t | tr -s ' '`)).trim(), 'a b c d e f \\0 \\0 \\0 \\0');
  await shOk(t, `mkdir ${d}/sub && mv ${d}/sub ${d}/sub2 && echo x > ${d}/sub2/x && mv ${d}/b ${d}/sub2/moved`);
  t.is((await shOk(t, `cat ${d}/sub2/moved ${d}/sub2/x`)), 'helx\n');
  // rename replacing an existing file
  await shOk(t, `echo new > ${d}/n && echo old > ${d}/o && mv -f ${d}/n ${d}/o`);
  t.is(await shOk(t, `cat ${d}/o`), 'new\n');
  t.false(fs.existsSync(`${d}/n`));
});

test('a hard link\'s other name shows a write within the 1 s timeouts, though md-cache keeps single names 60 s', async (t) => {
  const d = `${mnt}/hardlag`;
  await shOk(t, `mkdir ${d} && echo one > ${d}/f && ln ${d}/f ${d}/h`);
  t.is((await shOk(t, `stat -c %s ${d}/h`)).trim(), '4', 'h is cached');
  await shOk(t, `echo two-longer >> ${d}/f`);
  // The kernel's attribute timeout (1 s) and md-cache's bound for a file with several names
  // (1 s: a change by one name does not reach the other's entry), with slack.
  await eventually(async () => (await sh(`stat -c %s ${d}/h`)).stdout.trim() === '15', 4000, 'size seen by the other name');
  t.is(await shOk(t, `cat ${d}/h`), 'one\ntwo-longer\n');
});

test('find sees every entry and rm -rf leaves nothing on any brick', async (t) => {
  await shOk(t, `cp -r ${scratch}/src ${mnt}/rmme`);
  const local = (await shOk(t, `cd ${scratch}/src && find . | sort`));
  t.is(await shOk(t, `cd ${mnt}/rmme && find . | sort`), local);
  await shOk(t, `rm -rf ${mnt}/rmme`);
  t.false(fs.existsSync(`${mnt}/rmme`));
  for (const b of vol.bricks) t.false(fs.existsSync(path.join(b.dir, 'rmme')), `left on ${b.dir}`);
});

test('files spread over every brick, stored there as plain files', async (t) => {
  await shOk(t, `mkdir ${mnt}/spread && for i in $(seq 1 300); do echo "content $i" > ${mnt}/spread/f$i; done`);
  let total = 0;
  for (const b of vol.bricks) {
    const names = fs.readdirSync(path.join(b.dir, 'spread'));
    t.true(names.length > 40, `brick ${b.dir} holds only ${names.length} of 300 files`);
    total += names.length;
    for (const n of names) t.is(fs.readFileSync(path.join(b.dir, 'spread', n), 'utf8'), `content ${n.slice(1)}\n`);
  }
  t.is(total, 300, 'each file on exactly one brick');
  t.is((await shOk(t, `ls ${mnt}/spread | wc -l`)).trim(), '300');
  // The directory exists on every brick.
  for (const b of vol.bricks) t.true(fs.statSync(path.join(b.dir, 'spread')).isDirectory());
});

test('rename to a name hashed elsewhere keeps the file readable through a link file', async (t) => {
  await shOk(t, `mkdir ${mnt}/ren && for i in $(seq 1 60); do echo "data $i" > ${mnt}/ren/src$i; done`);
  await shOk(t, `for i in $(seq 1 60); do mv ${mnt}/ren/src$i ${mnt}/ren/dst$i; done`);
  for (let i = 1; i <= 60; i++) t.is(fs.readFileSync(`${mnt}/ren/dst${i}`, 'utf8'), `data ${i}\n`);
  t.is((await shOk(t, `ls ${mnt}/ren | sort | tr '\\n' ' '`)).trim().split(' ').length, 60);
  // Some names moved to another hashed brick: those have a sticky zero-size link file there.
  const links = vol.bricks.flatMap((b) => fs.readdirSync(path.join(b.dir, 'ren')).filter((n) => {
    const st = fs.statSync(path.join(b.dir, 'ren', n));
    return st.size === 0 && (st.mode & 0o7777) === 0o1000;
  }));
  t.true(links.length > 10, `expected link files, found ${links.length}`);
  // Unlinking through the mount removes data and link files alike.
  await shOk(t, `rm ${mnt}/ren/dst*`);
  for (const b of vol.bricks) t.deepEqual(fs.readdirSync(path.join(b.dir, 'ren')), []);
});

test('user xattrs work; brickfs metadata is neither visible nor settable', async (t) => {
  await shOk(t, `mkdir ${mnt}/x && echo 1 > ${mnt}/x/f && setfattr -n user.color -v blue ${mnt}/x/f`);
  t.is((await shOk(t, `getfattr --only-values -n user.color ${mnt}/x/f`)), 'blue');
  const all = await shOk(t, `getfattr -d -m - ${mnt}/x/f ${mnt}/x`);
  t.false(all.includes('trusted.'), all);
  t.true(all.includes('user.color'), all);
  t.not((await sh(`setfattr -n trusted.brickfs.gfid -v 0x00 ${mnt}/x/f`)).code, 0);
  t.not((await sh(`getfattr -n trusted.brickfs.layout ${mnt}/x`)).code, 0);
  await shOk(t, `setfattr -x user.color ${mnt}/x/f`);
  t.not((await sh(`getfattr -n user.color ${mnt}/x/f`)).code, 0);
});

test('df reports the sum of the bricks', async (t) => {
  const size = async (p: string): Promise<number> => {
    const [blocks, bsize] = (await shOk(t, `stat -f -c '%b %S' ${p}`)).trim().split(' ').map(Number);
    return blocks! * bsize!;
  };
  const brickTotal = (await Promise.all(vol.bricks.map((b) => size(b.dir)))).reduce((a, b) => a + b, 0);
  const mounted = await size(mnt);
  t.true(Math.abs(mounted - brickTotal) / brickTotal < 0.01, `mount ${mounted} vs bricks ${brickTotal}`);
});

test('tar extract keeps working while the kernel drops its caches (inode numbers stay stable)', async (t) => {
  await shOk(t, `mkdir ${mnt}/dropping && tar -C ${scratch} -cf ${scratch}/drop.tar src`);
  const dropper = sh('for i in $(seq 1 30); do echo 3 > /proc/sys/vm/drop_caches; sleep 0.1; done');
  const r = await sh(`tar -C ${mnt}/dropping -xf ${scratch}/drop.tar 2>&1`);
  await dropper;
  t.is(r.code, 0, r.stdout + r.stderr);
  t.notRegex(r.stdout, /renamed before its status/);
});
