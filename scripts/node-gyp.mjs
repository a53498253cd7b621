// Runs the node-gyp bundled with npm (no global install needed) for the native builds of
// postinstall: scripts/build-fuse-native.mjs and scripts/build-fuse-ll.mjs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** `node-gyp rebuild` in dir; exits the process with a message when node-gyp is missing. */
export function nodeGypRebuild(dir, who) {
  const gyp = [
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ].find((p) => fs.existsSync(p));
  if (!gyp) {
    console.error(`${who}: node-gyp (bundled with npm) not found`);
    process.exit(1);
  }
  const nodedir = path.resolve(path.dirname(process.execPath), '..');
  const args = [gyp, 'rebuild', '--loglevel=warn'];
  if (fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
  execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * The addon a native build makes (DIR/build/Release/NAME.node) and whether it is newer than
 * every source it is built from; --force on the command line counts as not fresh.
 */
export function builtAddon(dir, name, sources) {
  const out = path.join(dir, 'build', 'Release', `${name}.node`);
  const newest = Math.max(...sources.map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
  const fresh = process.argv[2] !== '--force' && fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest;
  return { out, fresh };
}
