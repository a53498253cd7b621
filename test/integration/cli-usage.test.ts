// The CLI's answers to what users get wrong or do on the way (issue 25): a reader that goes
// away (EPIPE), mistyped commands and option keys, heal of a volume without replicas, option
// values printed one way, and a checkout installed but never built.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, runCliOk } from '../helpers/cli.js';
import { startDaemon } from '../helpers/daemon.js';
import { BIN, REPO, sh, shOk, tmpDir } from '../helpers/proc.js';

test('a reader that goes away (`| true`, as `| head -1` after its line) ends the command quietly, with its own exit code', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-cli-epipe-');
  await runCliOk(t, ['volume', 'create', 'v', `localhost:${root}/b1`, '--force'], { server: d.server });
  // `true` exits at once, long before node has written: every write of the CLI meets a closed pipe.
  for (const args of ['volume get v all', 'volume info v', 'volume set help', 'volume volfile v']) {
    const r = await sh(`node ${BIN} --server ${d.server} ${args} | true; echo "exit \${PIPESTATUS[0]}" >&2`);
    t.is(r.stderr, 'exit 0\n', args);
  }
  const failed = await sh(`node ${BIN} --server ${d.server} volume info nosuch | true; echo "exit \${PIPESTATUS[0]}" >&2`);
  t.regex(failed.stderr, /no volume|nosuch/i);
  t.regex(failed.stderr, /exit 1\n$/);
  t.notRegex(failed.stderr, /EPIPE|at .*\.js:\d+/);
});

test('a mistyped command gets the nearest one, a mistyped option key the nearest key and where to read them all; exit 2', async (t) => {
  const cmd = await runCli(['volum', 'info']);
  t.is(cmd.code, 2);
  t.is(cmd.stderr.split('\n')[0], 'brickfs: unknown command "volum"; did you mean volume?');
  const sub = await runCli(['volume', 'inof', 'demo']);
  t.is(sub.code, 2);
  t.is(sub.stderr.split('\n')[0], 'brickfs: unknown command "inof"; did you mean info?');
  const key = await runCli(['volume', 'set', 'demo', 'performance.nl-cach-timeout', '3']);
  t.is(key.code, 2);
  t.is(key.stderr.split('\n')[0], 'brickfs: volume set: demo: failed: unknown volume option "performance.nl-cach-timeout"; did you mean performance.nl-cache-timeout? (every option: brickfs volume set help)');
  t.true(key.stderr.length < 2000, `a short answer, not every option (${key.stderr.length} bytes)`);
  const help = await runCli(['volume', 'set', 'help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Option: performance\.nl-cache-timeout\nDefault Value: \d+\nDescription: /);
  t.regex(help.stdout, /Option: server\.root-squash\nDefault Value: off\n/);
  const half = await runCli(['volume', 'set', 'demo', 'server.root-squash']);
  t.is(half.code, 2);
  t.regex(half.stderr, /give an option and its value: brickfs volume set demo KEY VALUE/);
});

test('heal of a volume without replicas says so (gluster\'s words) and fails; volume info prints booleans as volume get does', async (t) => {
  const d = await startDaemon(t);
  const root = tmpDir(t, 'brickfs-cli-heal-');
  await runCliOk(t, ['volume', 'create', 'dist', `localhost:${root}/b1`, `localhost:${root}/b2`, '--force'], { server: d.server });
  await runCliOk(t, ['volume', 'start', 'dist'], { server: d.server });
  t.teardown(() => d.cli(['volume', 'stop', 'dist']));
  for (const words of [['info'], [], ['full']]) {
    const r = await d.cli(['volume', 'heal', 'dist', ...words]);
    t.is(r.code, 1, words.join(' '));
    t.regex(r.stderr, /Volume dist is not of type replicate/);
  }
  await runCliOk(t, ['volume', 'set', 'dist', 'server.root-squash', 'true'], { server: d.server });
  await runCliOk(t, ['volume', 'set', 'dist', 'performance.write-behind', 'disable'], { server: d.server });
  const info = await runCliOk(t, ['volume', 'info', 'dist'], { server: d.server });
  t.regex(info, /^server\.root-squash: on$/m);
  t.regex(info, /^performance\.write-behind: off$/m);
  t.regex(await runCliOk(t, ['volume', 'get', 'dist', 'server.root-squash'], { server: d.server }), /^server\.root-squash\s+on$/m);
  t.regex(await runCliOk(t, ['volume', 'get', 'dist', 'performance.write-behind'], { server: d.server }), /^performance\.write-behind\s+off$/m);
});

test('a checkout installed but never built: the first brickfs command builds it, then runs', async (t) => {
  t.timeout(120_000);
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-unbuilt-'));
  t.teardown(() => fs.rmSync(copy, { recursive: true, force: true }));
  // The tracked sources as a clone has them, the addons npm ci's postinstall builds, its node_modules.
  await shOk(t, `cd ${REPO} && git ls-files -co --exclude-standard | grep -v '^node_modules$' | tar -cf - -T - | tar -xf - -C ${copy}`);
  for (const addon of ['brick-sys', 'fuse-ll']) fs.cpSync(path.join(REPO, 'native', addon, 'build'), path.join(copy, 'native', addon, 'build'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(copy, 'node_modules'));
  t.false(fs.existsSync(path.join(copy, 'dist')));
  const r = await sh(`node ${copy}/bin/brickfs.js volume --help`, { timeoutMs: 110_000 });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /building on first use/);
  t.regex(r.stdout, /brickfs volume create/);
  const again = await sh(`node ${copy}/bin/brickfs.js --version`);
  t.is(again.code, 0);
  t.is(again.stderr, '', 'built once');
});
