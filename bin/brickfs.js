#!/usr/bin/env node
// The brickfs command: a shim over the compiled CLI in dist/. A checkout that was installed
// (`npm ci`) but never built gets built here, once, on first use: the sources and TypeScript
// are there, and nothing else would tell the user to run `npm run build`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const entry = new URL('../dist/client/cli/index.js', import.meta.url);

if (!fs.existsSync(entry)) {
  if (!fs.existsSync(new URL('../node_modules/.bin/tsc', import.meta.url))) {
    process.stderr.write('brickfs: not built, and TypeScript is not installed: run `npm ci --include=dev && npm run build` in ' + repo + '\n');
    process.exit(1);
  }
  process.stderr.write('brickfs: building on first use (npm run build)...\n');
  // The build's output goes to stderr: stdout is the command's.
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || !fs.existsSync(entry)) {
    process.stderr.write(`brickfs: the build failed (exit ${r.status ?? r.signal}); fix it, then run \`npm run build\` in ${repo}\n`);
    process.exit(1);
  }
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
