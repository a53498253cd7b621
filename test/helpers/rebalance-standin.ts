// STAND-IN for the rebalance process, for the management daemon's supervision tests only
// (spawn, status, stop, resume, death, adoption after a daemon restart). It moves no file:
// it speaks the command line and status file of lib/mgmt/rebalance.ts and pretends to work
// through `files` files at `perSecond` files a second. A test can change those two by
// writing {"files": N, "perSecond": R} to standin.json next to the status file before
// starting it. The real program is dist/client/rebalance/main.js.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RebalanceStatus } from '../../lib/mgmt/rebalance.js';

const { values } = parseArgs({
  options: {
    volfile: { type: 'string' },
    status: { type: 'string' },
    checkpoint: { type: 'string' },
    throttle: { type: 'string', default: 'normal' },
    'fix-layout': { type: 'boolean', default: false },
    resume: { type: 'boolean', default: false },
    subvols: { type: 'string' },
    node: { type: 'string' },
    'no-settle': { type: 'boolean', default: false },
    settle: { type: 'boolean', default: false },
  },
  strict: true,
});
if (!values.volfile || !values.status || !values.checkpoint) {
  process.stderr.write('rebalance-standin: --volfile, --status and --checkpoint are required\n');
  process.exit(2);
}
const statusFile = values.status;
const checkpoint = values.checkpoint;
let control = { files: 1000, perSecond: 20 };
try {
  control = { ...control, ...JSON.parse(fs.readFileSync(path.join(path.dirname(statusFile), 'standin.json'), 'utf8')) };
} catch { /* defaults */ }

// The checkpoint holds one line per file "done", so a resumed run starts after them.
const done = values.resume && fs.existsSync(checkpoint) ? fs.readFileSync(checkpoint, 'utf8').split('\n').filter(Boolean).length : 0;
if (!values.resume) fs.writeFileSync(checkpoint, '');
const started = Date.now();
let scanned = done;

function status(state: RebalanceStatus['state']): RebalanceStatus {
  const elapsedS = (Date.now() - started) / 1000;
  const moved = scanned - done;
  const rate = elapsedS > 0 ? moved / elapsedS : 0;
  return {
    mode: values['fix-layout'] ? 'fix-layout' : 'migrate',
    state,
    startedAt: new Date(started).toISOString(),
    updatedAt: new Date().toISOString(),
    ...(state === 'running' ? {} : { finishedAt: new Date().toISOString() }),
    elapsedS,
    dirsScanned: 1,
    dirsFixed: 1,
    filesScanned: scanned,
    filesMoved: moved,
    filesFailed: 0,
    filesSkipped: 0,
    bytesMoved: moved * 4096,
    filesTotal: control.files,
    rateFilesPerS: rate,
    rateBytesPerS: rate * 4096,
    etaS: rate > 0 ? (control.files - scanned) / rate : null,
    resumed: values.resume === true,
  };
}

function write(state: RebalanceStatus['state']): void {
  const tmp = `${statusFile}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(status(state))}\n`);
  fs.renameSync(tmp, statusFile);
}

process.on('SIGTERM', () => {
  write('stopped');
  process.exit(0);
});

write('running');
const timer = setInterval(() => {
  const target = Math.min(control.files, done + Math.floor(((Date.now() - started) / 1000) * control.perSecond));
  if (target > scanned) fs.appendFileSync(checkpoint, `file-${target}\n`.repeat(target - scanned));
  scanned = target;
  if (scanned >= control.files) {
    clearInterval(timer);
    write('completed');
    process.exit(0);
  }
  write('running');
}, 100);
