#!/usr/bin/env node
// Builds native/fuse-ll (the low-level libfuse 3 binding of client/fuse/lowlevel-bridge.ts)
// with the node-gyp bundled in npm, against the system's libfuse 3 (Debian: libfuse3-dev to
// build, libfuse3-3 to run; fuse3 depends on the latter). Without libfuse 3's headers it
// builds nothing and says so: mounts then use fuse-native (client/fuse/bridge.ts), slower.
// Idempotent; run by postinstall after build-fuse-native.mjs. --force rebuilds.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtAddon, nodeGypRebuild } from './node-gyp.mjs';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'fuse-ll');
const { out, fresh } = builtAddon(dir, 'fuse_ll', ['fuse_ll.c', 'binding.gyp']);
if (fresh) process.exit(0);

/** Where Debian's libfuse3-dev puts the headers binding.gyp names. */
const HEADER = '/usr/include/fuse3/fuse_lowlevel.h';
if (!fs.existsSync(HEADER)) {
  fs.rmSync(out, { force: true });
  console.warn(`build-fuse-ll: ${HEADER} is missing: install the Debian package libfuse3-dev, then run`);
  console.warn('build-fuse-ll: `node scripts/build-fuse-ll.mjs`; until then mounts use fuse-native (slower)');
  process.exit(0);
}

console.log('build-fuse-ll: building the low-level FUSE binding…');
nodeGypRebuild(dir, 'build-fuse-ll');
if (!fs.existsSync(out)) {
  console.error('build-fuse-ll: build finished but fuse_ll.node is missing');
  process.exit(1);
}
console.log('build-fuse-ll: done');
