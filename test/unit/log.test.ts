// lib/log.ts over pino: JSON lines when stderr is a file (what a log file gets), readable lines
// on a terminal, the level applying to loggers made before it was set, O_APPEND kept.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatLogText, parseLogLines } from '../../lib/log.js';
import { findStatedump } from '../../lib/statedump.js';
import { REPO } from '../helpers/proc.js';

const LOG_JS = path.join(REPO, 'dist', 'lib', 'log.js');
const STATEDUMP_JS = path.join(REPO, 'dist', 'lib', 'statedump.js');
const SCRIPT = `
const { Logger } = await import(${JSON.stringify(LOG_JS)});
const { writeStatedump } = await import(${JSON.stringify(STATEDUMP_JS)});
const log = new Logger('part');
log.warn('one "quoted" warning');
log.info('hidden at warn');
Logger.setLevel(process.argv.at(-1));
log.info('shown after setLevel');
log.debug('debug line');
writeStatedump({ graph: 1 });
log.error('last line before exit');
process.exit(3);
`;

function tmp(t: { teardown(f: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('to a file: one JSON record per line, synchronous up to process.exit, the level set later applies', (t) => {
  const file = path.join(tmp(t), 'x.log');
  fs.writeFileSync(file, 'an older line\n');
  const fd = fs.openSync(file, 'a');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT, 'info'], { stdio: ['ignore', 'ignore', fd], env: { ...process.env, BRICKFS_LOG: 'warn' } });
  fs.closeSync(fd);
  t.is(r.status, 3);
  const text = fs.readFileSync(file, 'utf8');
  const records = parseLogLines(text);
  t.deepEqual(records.map((x) => [x.level, x.name, x.msg]), [
    ['error', undefined, 'an older line'],
    ['warn', 'part', 'one "quoted" warning'],
    ['info', 'part', 'shown after setLevel'],
    ['info', 'statedump', 'statedump'],
    ['error', 'part', 'last line before exit'],
  ]);
  t.is(records[1]!.pid, r.pid);
  t.regex(records[1]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.deepEqual(findStatedump(text), { graph: 1 });
  t.regex(formatLogText(text), /^\[\d{4}-[^\]]*Z\] WARN: \[part\] one "quoted" warning$/m);
});

test('BRICKFS_LOG=debug lets debug lines through; an unknown value means warn', (t) => {
  const dir = tmp(t);
  const run = (env: string): string[] => {
    const file = path.join(dir, `${env}.log`);
    const fd = fs.openSync(file, 'a');
    spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT.replace("Logger.setLevel(process.argv.at(-1));", '')], { stdio: ['ignore', 'ignore', fd], env: { ...process.env, BRICKFS_LOG: env } });
    fs.closeSync(fd);
    return parseLogLines(fs.readFileSync(file, 'utf8')).map((x) => x.msg);
  };
  t.true(run('debug').includes('debug line'));
  t.deepEqual(run('loud'), ['one "quoted" warning', 'statedump', 'last line before exit']);
});

test('on a terminal: human-readable lines, not JSON', (t) => {
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) return t.pass('no script(1) here');
  const dir = tmp(t);
  const js = path.join(dir, 'x.mjs');
  fs.writeFileSync(js, SCRIPT);
  const r = spawnSync('script', ['-qc', `${process.execPath} ${js} info`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, BRICKFS_LOG: 'warn' } });
  // eslint-disable-next-line no-control-regex
  const plain = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
  t.regex(plain, /^\[\d{4}-[^\]]*Z\] WARN: \[part\] one "quoted" warning\r?$/m);
  t.regex(plain, /ERROR: \[part\] last line before exit/);
  t.notRegex(plain, /"level":/);
});
