#!/usr/bin/env node
// Rebuilds fuse-native from its own sources with two fixes brickfs depends on:
//  1. utimens hands JavaScript the atime twice, so mtime is lost (touch -d, tar x, cp -a).
//  2. libfuse 2 ignores a change of only atime or only mtime unless flag_utime_omit_ok is set.
//  3. UTIME_NOW and UTIME_OMIT are passed on as meaningless millisecond values; they become
//     the current time and an explicit "omit" sentinel (2^53-1).
//  4. getxattr of a name outside user.* is answered ENODATA in the FUSE thread. The kernel
//     asks security.capability before every write(2); waking Node for it cost ~145 us
//     per write. Only user.* attributes pass through a brickfs mount (client/fuse/bridge.ts).
// The build lands in node_modules/fuse-native/build/Release, which fuse-native's loader
// (node-gyp-build) prefers over its prebuilt binary. Idempotent; run by postinstall.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { nodeGypRebuild } from './node-gyp.mjs';

const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('fuse-native/package.json'));
const src = path.join(dir, 'fuse-native.c');
const out = path.join(dir, 'build', 'Release', 'fuse.node');
const MARK = '/* brickfs-patched v3 */';

let c = fs.readFileSync(src, 'utf8');
if (!c.includes(MARK)) {
  const fixes = [
    ['FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)', 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
    // Without this flag libfuse 2 drops a setattr that sets only one of the times
    // (futimens with UTIME_OMIT: tar x, touch -m, touch -a).
    ['if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;', 'if (implemented[op_utimens]) { ops.utimens = fuse_native_utimens; ops.flag_utime_omit_ok = 1; }'],
    [
      'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n',
      'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n' +
        '  if (ts->tv_nsec == UTIME_OMIT) return 9007199254740991ULL;\n' +
        '  if (ts->tv_nsec == UTIME_NOW) { struct timespec now; clock_gettime(CLOCK_REALTIME, &now); ts = &now; return (now.tv_sec * 1000) + (now.tv_nsec / 1000000); }\n',
    ],
    [
      'FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {\n',
      'FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {\n' +
        '  if (strncmp(name, "user.", 5) != 0) return -ENODATA;\n',
    ],
  ];
  // A build patched by an earlier version of this script already has some of the fixes.
  for (const [from, to] of fixes) {
    if (c.includes(to)) continue;
    if (!c.includes(from)) {
      console.error(`build-fuse-native: fuse-native.c does not contain the expected text:\n  ${from}\nIts version changed; update scripts/build-fuse-native.mjs.`);
      process.exit(1);
    }
    c = c.replace(from, to);
  }
  c = `${MARK}\n#include <sys/stat.h>\n#include <time.h>\n#include <string.h>\n#include <errno.h>\n${c.replace(/^\/\* brickfs-patched v\d+ \*\/\n/, '')}`;
  fs.writeFileSync(src, c);
  fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });
}
if (fs.existsSync(out) && process.argv[2] !== '--force') process.exit(0);

console.log('build-fuse-native: building patched fuse-native (utimens mtime fix)…');
nodeGypRebuild(dir, 'build-fuse-native');
if (!fs.existsSync(out)) {
  console.error('build-fuse-native: build finished but fuse.node is missing');
  process.exit(1);
}
console.log('build-fuse-native: done');
