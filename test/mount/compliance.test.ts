// One fop-compliance run per volume shape: the same shell-tool session on the mount and
// on a local directory must leave identical trees (names, types, modes, owners, sizes,
// mtimes, content). Every composition of distribute, replicate and stripe runs it.
import test from 'ava';
import { mountVolfile, startVolume, type VolumeShape } from '../helpers/cluster.js';
import { sh, shOk, tmpDir } from '../helpers/proc.js';

const SHAPES: Array<[string, number, VolumeShape]> = [
  ['distribute 3', 3, {}],
  ['replicate 2', 2, { replica: 2 }],
  ['distribute over replica pairs (2 x 2)', 4, { replica: 2 }],
  ['stripe 2', 2, { stripe: 2, blockSize: '64KiB' }],
  ['distribute over stripe sets (2 x 2)', 4, { stripe: 2, blockSize: '64KiB' }],
  ['stripe over replica pairs (stripe 2 replica 2)', 4, { stripe: 2, replica: 2, blockSize: '64KiB' }],
];

/**
 * The session: ordinary tools doing ordinary things, relative to the current directory. One
 * command per line: under `set -e` a failure inside an `a && b` list does not stop the shell,
 * so a failing tar -c once skipped the untar silently and showed up only as a missing tree.
 */
const SESSION = `set -e; set +o pipefail
mkdir -p src/a/b src/c
for i in $(seq 1 25); do tail -c +$(( i * 7 + 1 )) "$SEED" | head -c $(( i * 9973 % 200000 )) > src/a/f$i; done
for i in $(seq 1 10); do echo "small $i" > src/a/b/s$i; done
ln -s a/b src/link; : > src/empty
find src -exec touch -h -d '2000-01-01 00:00:00' {} +
tar -cf ../t.tar src
mkdir untar
tar -C untar -xf ../t.tar
cp -a src copy
mv copy/a/f1 copy/a/moved; mv copy/c copy/c2; ln copy/a/f2 copy/a/hard; ln -s moved copy/a/soft
chmod 750 copy/a/f3; chown 1234:4321 copy/a/f4
truncate -s 100000 copy/a/f5; truncate -s 7 copy/a/f6; printf 'xyz' >> copy/a/f7
touch -d '2001-02-03 04:05:06' copy/a/f8 copy/a/b
dd if="$SEED" of=copy/a/f9 bs=4096 seek=40 count=3 conv=notrunc status=none
rm -rf src/a/b; rm copy/a/f10
`;

/** Everything that matters about a tree, one line per entry, sorted. */
const DESCRIBE = `find . -path ./t.tar -prune -o -printf '%p %y %m %U:%G %s %TY-%Tm-%Td_%TH:%TM:%TS %l\\n' | sed -E 's/(:[0-9]{2})\\.[0-9]+/\\1/' | grep -v '^\\. ' | sort
find . -type f -print0 | sort -z | xargs -0 sha256sum`;

for (const [name, bricks, shape] of SHAPES) {
  test(`compliance: ${name}`, async (t) => {
    const vol = await startVolume(t, bricks, { ...shape, pingTimeoutS: 10 });
    const mnt = await mountVolfile(t, vol.volfilePath);
    const local = tmpDir(t);
    // Same bytes on both sides: the session reads its data from one random seed file.
    await shOk(t, `head -c 400000 /dev/urandom > ${local}/seed && mkdir ${mnt}/w ${local}/w`);
    await shOk(t, `cd ${local}/w && SEED=${local}/seed && ${SESSION}`);
    const r = await sh(`cd ${mnt}/w && SEED=${local}/seed && ${SESSION}`);
    t.is(r.code, 0, r.stderr);
    // Times set by the session (2000: the source tree, kept by tar and cp -a; 2001: touch -d)
    // must match; times of later changes are "now" on each side and cannot. Directory
    // sizes are the bricks' own business.
    const norm = (x: string): string => x
      .replace(/ (?!200[01]-)\d{4}-\d\d-\d\d_\S+/g, ' recent')
      .replace(/^(\S+ d \S+ \S+ )\d+/gm, '$1-');
    const want = norm(await shOk(t, `cd ${local}/w && ${DESCRIBE}`));
    const got = norm(await shOk(t, `cd ${mnt}/w && ${DESCRIBE}`));
    t.true(want.includes('2000-01-01') && want.includes('2001-02-03'));
    t.is(got, want);
    await shOk(t, `rm -rf ${mnt}/w ${mnt}/t.tar`);
    t.is((await shOk(t, `ls -A ${mnt}`)).trim(), '');
  });
}
