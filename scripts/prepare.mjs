#!/usr/bin/env node
// What a fresh clone lacks before it can run, installed and built: the Debian packages FUSE
// needs, the npm dependencies (devDependencies too: TypeScript and ava), the native addons,
// and the TypeScript build. Each step is skipped when done. `npm start` and `npm test` run it
// first; `node scripts/prepare.mjs` runs it alone.
// Only Node built-ins here: this runs before `npm ci` may have happened.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: repo, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
}

function missingDebianPackages() {
  const missing = [];
  const has = (file) => fs.existsSync(file);
  if (!has('/usr/lib/x86_64-linux-gnu/libfuse.so.2') && !has('/lib/x86_64-linux-gnu/libfuse.so.2') && !has('/usr/lib/aarch64-linux-gnu/libfuse.so.2')) missing.push('libfuse2');
  if (spawnSync('sh', ['-c', 'command -v fusermount || command -v fusermount3']).status !== 0) missing.push('fuse3');
  // native/fuse-ll builds against libfuse 3 (without it mounts fall back to fuse-native).
  if (!has('/usr/include/fuse3/fuse_lowlevel.h')) missing.push('libfuse3-dev');
  return missing;
}

/** The npm packages every step below needs: a runtime one built natively, and the build and test tools. */
const NEEDED_MODULES = ['fuse-native', 'typescript', 'ava'];

/** Installs and builds what is missing; say(msg) tells the user what it does. */
export function prepare(say) {
  const missing = missingDebianPackages();
  if (missing.length) {
    if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(' ')}; install them with: sudo apt-get install ${missing.join(' ')}`);
    say(`installing ${missing.join(' ')} (apt-get)`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!fs.existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing: this host cannot mount FUSE filesystems');
  // `npm ci --omit=dev` (or NODE_ENV=production) leaves TypeScript and ava out: they are needed here.
  if (NEEDED_MODULES.some((m) => !fs.existsSync(path.join(repo, 'node_modules', m)))) {
    say('installing npm dependencies (npm ci --include=dev)');
    run('npm', ['ci', '--include=dev']);
  }
  // Idempotent; builds native/fuse-ll if libfuse3-dev arrived after npm ci.
  run(process.execPath, [path.join(repo, 'scripts', 'build-fuse-ll.mjs')]);
  // Idempotent; a checkout from before native/brick-sys existed has node_modules but not it.
  run(process.execPath, [path.join(repo, 'scripts', 'build-brick-sys.mjs')]);
  say('building (tsc)');
  run('npm', ['run', '--silent', 'build']);
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    prepare((msg) => process.stdout.write(`==> ${msg}\n`));
  } catch (e) {
    process.stderr.write(`prepare: ${e.message}\n`);
    process.exit(1);
  }
}
