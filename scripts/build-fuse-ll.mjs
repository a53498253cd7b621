#!/usr/bin/env node
// Builds native/fuse-ll (the low-level libfuse binding of client/fuse/lowlevel-bridge.ts)
// with the node-gyp bundled in npm, against fuse-shared-library's libfuse 2 headers and
// library. The library is copied next to the addon under its soname (libfuse.so.2) and the
// addon carries rpath $ORIGIN, so it loads on a machine without a system libfuse 2.
// Idempotent; run by postinstall after build-fuse-native.mjs. --force rebuilds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'fuse-ll');
const release = path.join(dir, 'build', 'Release');
const out = path.join(release, 'fuse_ll.node');
const lib = path.join(path.dirname(require.resolve('fuse-shared-library-linux/package.json')), 'libfuse', 'lib', 'libfuse.so');

const fresh = fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(path.join(dir, 'fuse_ll.c')).mtimeMs;
if (fresh && fs.existsSync(path.join(release, 'libfuse.so.2')) && process.argv[2] !== '--force') process.exit(0);

const gyp = [
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
].find((p) => fs.existsSync(p));
if (!gyp) {
  console.error('build-fuse-ll: node-gyp (bundled with npm) not found');
  process.exit(1);
}
const nodedir = path.resolve(path.dirname(process.execPath), '..');
const args = [gyp, 'rebuild', '--loglevel=warn'];
if (fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
console.log('build-fuse-ll: building the low-level FUSE binding…');
execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
if (!fs.existsSync(out)) {
  console.error('build-fuse-ll: build finished but fuse_ll.node is missing');
  process.exit(1);
}
fs.copyFileSync(lib, path.join(release, 'libfuse.so.2'));
console.log('build-fuse-ll: done');
