// The POSIX conformance suite for one volume shape: one mount per test file, one test per
// scenario of test/posix/scenarios.ts, each run on a local ext4 directory and then on the
// mount, in directories of the same name. The mount's observations must equal ext4's,
// step by step, except where KNOWN_DIFFERENCES excuses a step (logged as such).
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountVolfile, startVolume, unmountQuietly, type TestVolume, type VolumeShape } from '../helpers/cluster.js';
import { describe, makeScratch, openUp, removeTree, runScenario, type Observation, type Scenario, type Scratch } from '../helpers/posix.js';
import { CleanupScope } from '../helpers/proc.js';
import { KNOWN_DIFFERENCES, SCENARIOS } from './scenarios.js';

/** Scenarios running at once in one test file (ava starts all of a file's tests together). */
const PARALLEL = 3;

function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Compares a scenario's observations on the mount with ext4's, excusing known differences. */
export function compare(t: ExecutionContext, shape: string, sc: Scenario, got: Observation[], want: Observation[]): void {
  for (const o of want) {
    if (sc.steps[o.step].setup && o.code !== 0) t.fail(`a setup step failed on ext4 (the scenario is broken): ${describe(o)}`);
  }
  const differing: string[] = [];
  const excused = got.map((g, i) => {
    const w = want[i];
    if (describe(g) === describe(w)) return g;
    const k = KNOWN_DIFFERENCES.find((d) => d.scenario === sc.id && (!d.shapes || d.shapes.includes(shape))
      && (!d.as || d.as === g.as) && (d.step === undefined || g.run.includes(d.step)));
    if (k) {
      t.log(`known difference (${k.reason}):\n  ext4:  ${describe(w)}\n  mount: ${describe(g)}`);
      return w;
    }
    differing.push(`  ext4:  ${describe(w).replace(/\n/g, '\n         ')}\n  mount: ${describe(g).replace(/\n/g, '\n         ')}`);
    return g;
  });
  // BRICKFS_POSIX_LOG=1 shows every observation (what the kernel and brickfs answered).
  if (process.env.BRICKFS_POSIX_LOG) t.log(`observations on the mount:\n${got.map(describe).join('\n')}`);
  if (differing.length) t.log(`${differing.length} of ${want.length} steps differ:\n${differing.join('\n')}`);
  t.deepEqual(excused.map(describe), want.map(describe));
}

/** Registers the suite's tests for one volume shape, titled `${shape} › ${scenario title}`. */
export function posixSuite(shape: string, bricks: number, opts: VolumeShape): void {
  const scope = new CleanupScope();
  let ctx: { vol: TestVolume; mnt: string; scratch: Scratch } | undefined;
  const limit = limiter(PARALLEL);

  test.before(async () => {
    const scratch = makeScratch(scope);
    const vol = await startVolume(scope, bricks, { ...opts, pingTimeoutS: 10 });
    // Bricks may hold trees deeper than PATH_MAX (the ENAMETOOLONG scenario), which the
    // temp dir's fs.rmSync cannot remove: rm -rf them first (this runs after the unmount).
    if (!process.env.BRICKFS_KEEP_TMP) {
      scope.teardown(async () => {
        for (const b of vol.bricks) await b.kill();
        for (const b of vol.bricks) removeTree(b.dir);
      });
    }
    // The volume's root is the bricks' directories: 1777 like /tmp, so that every user can
    // create in it (set on the bricks, not through the mount: that is what the scenarios test).
    for (const b of vol.bricks) fs.chmodSync(b.dir, 0o1777);
    // The mount sits in the volume's temp dir (mode 0700): others must be able to reach it.
    const mnt = await mountVolfile(scope, vol.volfilePath);
    openUp(mnt);
    ctx = { vol, mnt, scratch };
  });
  test.after.always(() => scope.runAll());

  for (const sc of SCENARIOS) {
    test(`${shape} › ${sc.title}`, (t) => limit(async () => {
      const { mnt, scratch } = ctx!;
      const want = await runScenario(sc, scratch.ext4, scratch, 'ext4');
      const got = await runScenario(sc, mnt, scratch, 'mount');
      compare(t, shape, sc, got, want);
    }));
  }

  // Not comparable with ext4 directly: ext4 has one mount. What is compared with ext4 is which
  // names are one file; what is asserted of brickfs is that a second mount of the volume, and a
  // remount, give every name the st_ino the first mount gave it.
  test(`${shape} › st_ino identical on two mounts and after a remount`, (t) => limit(async () => {
    const { vol, mnt, scratch } = ctx!;
    const names = ['f', 'h', 'd', 'd/g', 'd/h2', 'l', 'p'];
    const make = (dir: string): void => {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'f'), 'f\n');
      fs.linkSync(path.join(dir, 'f'), path.join(dir, 'h'));
      fs.mkdirSync(path.join(dir, 'd'));
      fs.writeFileSync(path.join(dir, 'd/g'), 'g\n');
      fs.linkSync(path.join(dir, 'f'), path.join(dir, 'd/h2'));
      fs.symlinkSync('f', path.join(dir, 'l'));
      fs.writeFileSync(path.join(dir, 'p'), 'p\n');
    };
    // Unsigned: node's bigint stat reads st_ino as signed 64 bits.
    const inos = (dir: string): Record<string, string> =>
      Object.fromEntries(names.map((n) => [n, String(BigInt.asUintN(64, fs.lstatSync(path.join(dir, n), { bigint: true }).ino))]));
    /** The same inode numbers as classes: which names are one file. */
    const classes = (m: Record<string, string>): Record<string, number> => {
      const seen: string[] = [];
      return Object.fromEntries(Object.entries(m).map(([n, i]) => [n, seen.includes(i) ? seen.indexOf(i) : seen.push(i) - 1]));
    };
    const local = path.join(scratch.ext4, 'st-ino');
    make(local);
    const ext4 = inos(local);
    const dir = path.join(mnt, 'st-ino');
    make(dir);
    const first = inos(dir);
    const again = inos(dir);
    const mnt2 = await mountVolfile(t, vol.volfilePath);
    const second = inos(path.join(mnt2, 'st-ino'));
    await unmountQuietly(mnt2);
    await mountVolfile(t, vol.volfilePath, mnt2);
    const remount = inos(path.join(mnt2, 'st-ino'));
    await unmountQuietly(mnt2);
    t.deepEqual(inos(local), ext4, 'ext4: st_ino stable across two looks');
    // One comparison, so that a failure shows every part at once.
    t.deepEqual(
      { 'names that are one file': classes(first), 'first mount, asked again': again, 'second mount': second, remount },
      { 'names that are one file': classes(ext4), 'first mount, asked again': first, 'second mount': first, remount: first },
    );
  }));
}
