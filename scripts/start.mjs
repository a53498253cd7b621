#!/usr/bin/env node
// `npm start`: a demo volume mounted with FUSE on this host, from a fresh clone.
// Installs and builds what is missing (scripts/prepare.mjs), starts a management daemon
// (state under .demo/), creates and starts a 3-brick distribute volume "demo" with bricks
// under .demo/bricks, mounts it at ./mnt and waits. Ctrl-C unmounts, stops the volume and the daemon.
// Only Node built-ins here: this runs before `npm ci` may have happened.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from './prepare.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const demo = path.join(repo, '.demo');
const mnt = path.join(repo, 'mnt');
const port = Number(process.env.BRICKFS_DEMO_PORT ?? 7007);
const server = `localhost:${port}`;
const bin = path.join(repo, 'bin', 'brickfs.js');

function say(msg) {
  process.stdout.write(`\x1b[1m==>\x1b[0m ${msg}\n`);
}

function brickfs(args, { quiet = false } = {}) {
  const r = spawnSync(process.execPath, [bin, '--server', server, ...args], { cwd: repo, encoding: 'utf8' });
  if (!quiet && r.stdout) process.stdout.write(r.stdout);
  return r;
}

function portAnswers(p) {
  return new Promise((resolve) => {
    const c = net.connect(p, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

async function main() {
  prepare(say);

  if (await portAnswers(port)) {
    throw new Error(`port ${port} is taken (a brickfs daemon already running?); stop it or set BRICKFS_DEMO_PORT`);
  }
  fs.mkdirSync(path.join(demo, 'bricks'), { recursive: true });
  fs.mkdirSync(mnt, { recursive: true });
  say(`starting the management daemon on port ${port} (state in .demo/state)`);
  const daemonLog = fs.openSync(path.join(demo, 'daemon.log'), 'a');
  const daemon = spawn(process.execPath, [bin, 'daemon', '--port', String(port), '--state', path.join(demo, 'state')], {
    cwd: repo, stdio: ['ignore', daemonLog, daemonLog], detached: true, // Ctrl-C reaches us, not it: we stop the volume first
  });
  for (let i = 0; i < 100 && !(await portAnswers(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await portAnswers(port))) throw new Error('the daemon did not come up; see .demo/daemon.log');

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    say('unmounting and stopping the demo');
    brickfs(['umount', mnt], { quiet: true });
    brickfs(['volume', 'stop', 'demo'], { quiet: true });
    daemon.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (brickfs(['volume', 'info', 'demo'], { quiet: true }).status !== 0) {
    const bricks = [1, 2, 3].map((i) => `localhost:${path.join(demo, 'bricks', `b${i}`)}`);
    say(`creating volume demo over ${bricks.length} bricks`);
    const r = brickfs(['volume', 'create', 'demo', ...bricks, '--force']);
    if (r.status !== 0) throw new Error(`volume create failed: ${r.stderr}`);
  }
  const started = brickfs(['volume', 'start', 'demo'], { quiet: true });
  if (started.status !== 0 && !/already started/.test(started.stderr)) throw new Error(`volume start failed: ${started.stderr}`);
  if (spawnSync('mountpoint', ['-q', mnt]).status === 0) execFileSync('fusermount', ['-uz', mnt]);
  const m = brickfs(['mount', `${server}:/demo`, mnt]);
  if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
  brickfs(['volume', 'status', 'demo']);
  process.stdout.write(`
The demo volume is mounted at ./mnt (3 bricks under .demo/bricks). Try, in another terminal:
  cp -a /etc ./mnt/etc && ls ./mnt/etc | head      # files spread over the bricks
  ls .demo/bricks/*/etc | head                      # ...stored there as plain files
  node bin/brickfs.js volume info demo
  node bin/brickfs.js volume status demo --json
Ctrl-C here unmounts and stops everything.
`);
  await new Promise(() => undefined);
}

main().catch((e) => {
  process.stderr.write(`npm start: ${e.message}\n`);
  process.exit(1);
});
