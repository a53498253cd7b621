#!/usr/bin/env node
// Builds native/fuse-ll (the low-level libfuse binding of client/fuse/lowlevel-bridge.ts)
// with the node-gyp bundled in npm, against fuse-shared-library's libfuse 2 headers and
// library. The library is copied next to the addon under its soname (libfuse.so.2) and the
// addon carries rpath $ORIGIN, so it loads on a machine without a system libfuse 2.
// Idempotent; run by postinstall after build-fuse-native.mjs. --force rebuilds.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { nodeGypRebuild } from './node-gyp.mjs';

const require = createRequire(import.meta.url);
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'fuse-ll');
const release = path.join(dir, 'build', 'Release');
const out = path.join(release, 'fuse_ll.node');
/** The libfuse 2 fuse-native links (fuse-shared-library's). */
const { lib } = require('fuse-shared-library');

const sources = ['fuse_ll.c', 'binding.gyp'].map((f) => fs.statSync(path.join(dir, f)).mtimeMs);
const fresh = fs.existsSync(out) && fs.statSync(out).mtimeMs >= Math.max(...sources);
if (fresh && fs.existsSync(path.join(release, 'libfuse.so.2')) && process.argv[2] !== '--force') process.exit(0);

console.log('build-fuse-ll: building the low-level FUSE binding…');
nodeGypRebuild(dir, 'build-fuse-ll');
if (!fs.existsSync(out)) {
  console.error('build-fuse-ll: build finished but fuse_ll.node is missing');
  process.exit(1);
}
fs.copyFileSync(lib, path.join(release, 'libfuse.so.2'));
console.log('build-fuse-ll: done');
