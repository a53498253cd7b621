// scripts/passthrough-mount.sh: a local directory mounted through the FUSE bridge with
// storage/posix directly below (no bricks), the floor benchmarks compare brickfs against.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { runCliOk } from '../helpers/cli.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { REPO, sh, shOk, tmpDir } from '../helpers/proc.js';

const SCRIPT = path.join(REPO, 'scripts', 'passthrough-mount.sh');

test('passthrough-mount.sh serves a local directory both ways and unmounts clean', async (t) => {
  const root = tmpDir(t);
  const dir = path.join(root, 'made', 'dir');
  const mnt = path.join(root, 'mnt');
  t.teardown(() => unmountQuietly(mnt));
  await shOk(t, `${SCRIPT} ${dir} ${mnt}`);
  t.true(isMountPoint(mnt));
  t.regex(fs.readFileSync('/proc/self/mounts', 'utf8'), new RegExp(` ${mnt} fuse\\.brickfs `));

  // Through the mount into the directory, and the other way.
  const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));
  fs.mkdirSync(path.join(mnt, 'sub'));
  fs.writeFileSync(path.join(mnt, 'sub', 'f'), data);
  t.deepEqual(fs.readFileSync(path.join(dir, 'sub', 'f')), data);
  fs.writeFileSync(path.join(dir, 'g'), 'from below');
  t.is(fs.readFileSync(path.join(mnt, 'g'), 'utf8'), 'from below');
  t.deepEqual(fs.readdirSync(mnt).sort(), ['g', 'sub']);

  await runCliOk(t, ['umount', mnt]);
  t.false(isMountPoint(mnt));
  t.true(fs.existsSync(path.join(dir, 'sub', 'f')), 'unmounting leaves the directory as it was');
});

test('passthrough-mount.sh without two arguments says how to call it (exit 2)', async (t) => {
  const r = await sh(`${SCRIPT} only-one`);
  t.is(r.code, 2);
  t.regex(r.stderr, /usage: .*passthrough-mount\.sh DIR MNT/);
});
