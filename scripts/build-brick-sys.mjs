#!/usr/bin/env node
// Builds native/brick-sys (the system calls of brick/xlators/storage/sys.ts that Node lacks:
// mknod, openat2, the *at() calls, a caller's credentials per thread) with the node-gyp bundled in npm. It
// needs only a C compiler, make and Node's headers: no extra Debian package. Unlike
// native/fuse-ll there is no fallback, so a failed build fails this script (exit 1).
// Idempotent: rebuilds only when brick_sys.c or binding.gyp is newer than the addon; run by
// postinstall after build-fuse-ll.mjs. --force rebuilds.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtAddon, nodeGypRebuild } from './node-gyp.mjs';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'brick-sys');
const { out, fresh } = builtAddon(dir, 'brick_sys', ['brick_sys.c', 'binding.gyp']);
if (fresh) process.exit(0);

console.log('build-brick-sys: building the brick system-call addon…');
try {
  nodeGypRebuild(dir, 'build-brick-sys');
} catch (err) {
  fs.rmSync(out, { force: true });
  console.error(`build-brick-sys: the build failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  console.error('build-brick-sys: it needs gcc/g++, make and Node headers; fix the error above, then run `node scripts/build-brick-sys.mjs`');
  process.exit(1);
}
if (!fs.existsSync(out)) {
  console.error('build-brick-sys: build finished but brick_sys.node is missing');
  process.exit(1);
}
console.log('build-brick-sys: done');
