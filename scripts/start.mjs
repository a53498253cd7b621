#!/usr/bin/env node
// `npm start`: a demo volume mounted with FUSE on this host, from a fresh clone.
// Installs and builds what is missing (scripts/prepare.mjs), starts a management daemon
// (state under .demo/), creates and starts a 3-brick distribute volume "demo" with bricks
// under .demo/bricks, mounts it at ./mnt and waits. Ctrl-C (or SIGTERM) unmounts every mount
// of the daemon's volumes on this host, stops every started volume and the daemon, and names
// whatever is left.
// Only Node built-ins here: this runs before `npm ci` may have happened.
// Environment (a test runs a second demo beside a user's): BRICKFS_DEMO_PORT (7007),
// BRICKFS_DEMO_DIR (.demo), BRICKFS_DEMO_MNT (./mnt), BRICKFS_DEMO_BRICK_PORT_BASE (the
// daemon's default), BRICKFS_DEMO_SKIP_PREPARE=1 (no install or build: a built checkout).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { prepare } from './prepare.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const demo = path.resolve(repo, process.env.BRICKFS_DEMO_DIR ?? '.demo');
const mnt = path.resolve(repo, process.env.BRICKFS_DEMO_MNT ?? 'mnt');
const brickPortBase = process.env.BRICKFS_DEMO_BRICK_PORT_BASE;
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

/** The mounts on this host of the daemon at `port`: each mount process follows its daemon (`--watch HOST:PORT[,...]/VOL`). */
function mountsOfDaemon() {
  const local = new Set(['localhost', '127.0.0.1', '::1', os.hostname(), ...Object.values(os.networkInterfaces()).flat().map((i) => i.address)]);
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const w = argv.indexOf('--watch');
    if (!argv.includes('mount') || w < 0 || !argv[w + 1]) continue;
    const spec = argv[w + 1];
    const servers = spec.slice(0, spec.lastIndexOf('/')).split(',');
    const ours = servers.some((s) => {
      const m = /^\[?(.*?)\]?:(\d+)$/.exec(s);
      return m && Number(m[2]) === port && local.has(m[1]);
    });
    // The mount point is the positional argument after the volfile copy.
    const dir = argv[argv.indexOf('--volfile') + 2];
    if (ours && dir) out.push({ pid: Number(pid), dir, volume: spec.slice(spec.lastIndexOf('/') + 1) });
  }
  return out;
}

/** Processes still running with the demo directory on their command line (bricks, self-heal, rebalance). */
function leftUnder(dir) {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.startsWith(dir))) out.push(`${pid} ${argv.filter(Boolean).slice(1).join(' ')}`);
    } catch { /* gone */ }
  }
  return out;
}

async function main() {
  if (process.env.BRICKFS_DEMO_SKIP_PREPARE !== '1') prepare(say);

  if (await portAnswers(port)) {
    throw new Error(`port ${port} is taken (a brickfs daemon already running?); stop it or set BRICKFS_DEMO_PORT`);
  }
  fs.mkdirSync(path.join(demo, 'bricks'), { recursive: true });
  fs.mkdirSync(mnt, { recursive: true });
  say(`starting the management daemon on port ${port} (state in .demo/state)`);
  const daemonLog = fs.openSync(path.join(demo, 'daemon.log'), 'a');
  const daemon = spawn(process.execPath, [bin, 'daemon', '--port', String(port), '--state', path.join(demo, 'state'), ...(brickPortBase ? ['--brick-port-base', brickPortBase] : [])], {
    cwd: repo, stdio: ['ignore', daemonLog, daemonLog], detached: true, // Ctrl-C reaches us, not it: we stop the volume first
  });
  for (let i = 0; i < 100 && !(await portAnswers(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await portAnswers(port))) throw new Error('the daemon did not come up; see .demo/daemon.log');

  let stopping = false;
  // Everything the demo daemon runs on this host, mounts first (they need the bricks to
  // unmount cleanly), then every started volume (bricks, self-heal, rebalance), then the daemon.
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const problems = [];
    for (const m of mountsOfDaemon()) {
      say(`unmounting ${m.dir} (volume ${m.volume})`);
      const r = brickfs(['umount', m.dir], { quiet: true });
      if (r.status !== 0) problems.push(`mount ${m.dir} (pid ${m.pid}): ${r.stderr.trim()}`);
    }
    const info = brickfs(['volume', 'info', '--json'], { quiet: true });
    const volumes = info.status === 0 ? JSON.parse(info.stdout).volumes : [];
    if (info.status !== 0) problems.push(`the daemon did not list its volumes: ${info.stderr.trim()}`);
    for (const v of volumes.filter((x) => x.status === 'started')) {
      say(`stopping volume ${v.name}`);
      const r = brickfs(['volume', 'stop', v.name], { quiet: true });
      if (r.status !== 0) problems.push(`volume ${v.name}: ${r.stderr.trim()}`);
    }
    // The daemon stops its host's self-heal daemon once no replicated volume is started, on
    // the store's change, after `volume stop` has answered; a daemon stopped before that
    // would leave it healing (it outlives its daemon, as bricks do).
    for (let i = 0; i < 100 && leftUnder(demo).some((l) => l.includes('/shd/main.js')); i++) await sleep(100);
    say('stopping the management daemon');
    daemon.kill('SIGTERM');
    const exited = daemon.exitCode !== null || await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      daemon.once('exit', () => { clearTimeout(timer); resolve(true); });
    });
    if (!exited) problems.push(`the daemon (pid ${daemon.pid}) did not exit within 10 s`);
    const left = leftUnder(demo);
    if (left.length) problems.push(`still running with ${demo} on their command line:\n    ${left.join('\n    ')}`);
    if (problems.length) {
      process.stderr.write(`npm start: left behind:\n  ${problems.join('\n  ')}\n`);
      process.exit(1);
    }
    say('everything the demo ran is stopped (volumes stay defined in the state directory)');
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
