// stripe 2 over replica pairs (`volume create VOL stripe 2 replica 2 b1 b2 b3 b4`): data is
// split over the pairs, copied within each pair, and survives a killed brick.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startVolume } from '../helpers/cluster.js';
import { shOk, sleep, tmpDir } from '../helpers/proc.js';
import { runHeal } from '../../client/heal.js';

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('stripe over replica pairs: split, copied, survives a killed brick and heals', async (t) => {
  const vol = await startVolume(t, 4, { name: 'sr', stripe: 2, replica: 2, blockSize: '64KiB', pingTimeoutS: 5 });
  const mnt = await mountVolfile(t, vol.volfilePath);
  const scratch = tmpDir(t);
  await shOk(t, `head -c 3000000 /dev/urandom > ${scratch}/a && cp ${scratch}/a ${mnt}/a`);
  const [b0, b1, b2, b3] = vol.bricks.map((b) => path.join(b.dir, 'a'));
  t.is(sha(b0!), sha(b1!), 'pair 1 holds identical copies');
  t.is(sha(b2!), sha(b3!), 'pair 2 holds identical copies');
  t.not(sha(b0!), sha(b2!), 'the pairs hold different blocks');
  await vol.bricks[1]!.kill('SIGKILL');
  await sleep(300);
  await shOk(t, `head -c 1000000 /dev/urandom >> ${scratch}/a && cat ${scratch}/a > ${mnt}/a && echo more > ${mnt}/b`);
  t.is(await shOk(t, `sha256sum < ${mnt}/a`), await shOk(t, `sha256sum < ${scratch}/a`));
  await vol.bricks[1]!.start();
  await sleep(3500);
  await runHeal(vol.volfile, { op: 'index' });
  t.is(sha(b0!), sha(b1!), 'the killed brick is healed');
  t.is(fs.readFileSync(path.join(vol.bricks[1]!.dir, 'b'), 'utf8'), 'more\n');
  t.is(await shOk(t, `sha256sum < ${mnt}/a`), await shOk(t, `sha256sum < ${scratch}/a`));
});
