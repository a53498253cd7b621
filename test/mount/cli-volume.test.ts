// The whole path as a user types it: daemon → volume create over 3 bricks → start → mount
// → 300 files → umount → remount, files spread over all bricks as plain files.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { mountRunFile } from '../../client/mount-table.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { killStateProcesses, reserveBrickPortBase } from '../helpers/daemon.js';
import { BIN, cli, eventually, freePort, portOpen, shOk, spawnOwned, tmpDir, type Owner } from '../helpers/proc.js';

interface Daemon {
  server: string;
  state: string;
}

async function startDaemon(t: Owner & { teardown(fn: () => unknown): void }, root: string): Promise<Daemon> {
  const port = await freePort();
  const state = path.join(root, 'state');
  // Reserved like every other test's (below Linux's ephemeral ports, where a client socket's
  // source port could take a brick's; a random base up to 40000 once collided in CI).
  const base = reserveBrickPortBase(t);
  // Bricks run detached from the daemon: a test that ends without stopping its volume leaves them.
  t.teardown(() => killStateProcesses(state));
  spawnOwned(t, process.execPath, [BIN, 'daemon', '--port', String(port), '--state', state, '--brick-port-base', String(base)], path.join(root, 'daemon.log'));
  await eventually(() => portOpen(port), 10_000, 'daemon');
  return { server: `localhost:${port}`, state };
}

test('create, start, mount, write, umount, remount from the CLI; status shows every brick', async (t) => {
  const root = tmpDir(t);
  const d = await startDaemon(t, root);
  const bricks = [1, 2, 3].map((i) => path.join(root, `b${i}`));
  const s = ['--server', d.server];
  t.teardown(() => cli([...s, 'volume', 'stop', 'v3']));
  const created = await cli([...s, 'volume', 'create', 'v3', ...bricks.map((b) => `localhost:${b}`), '--force']);
  t.is(created.code, 0, created.stderr);
  const started = await cli([...s, 'volume', 'start', 'v3']);
  t.is(started.code, 0, started.stderr);
  const status = await cli([...s, 'volume', 'status', 'v3', '--json']);
  t.is(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout) as unknown;
  const text = JSON.stringify(st);
  for (const b of bricks) t.true(text.includes(b), `status lacks ${b}`);
  t.notRegex(text, /"online":\s*false/);

  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));
  const m = await cli([...s, 'mount', `${d.server}:/v3`, mnt]);
  t.is(m.code, 0, m.stderr);
  t.true(isMountPoint(mnt));
  await shOk(t, `mkdir ${mnt}/data && for i in $(seq 1 300); do echo "file $i" > ${mnt}/data/f$i; done`);
  const counts = bricks.map((b) => fs.readdirSync(path.join(b, 'data')).length);
  t.is(counts.reduce((a, b) => a + b, 0), 300);
  for (const c of counts) t.true(c > 50, `uneven: ${counts.join(',')}`);
  t.is(fs.readFileSync(path.join(bricks.find((b) => fs.existsSync(path.join(b, 'data', 'f7')))!, 'data', 'f7'), 'utf8'), 'file 7\n');

  t.is((await cli(['umount', mnt])).code, 0);
  t.false(isMountPoint(mnt));
  await eventually(() => !fs.existsSync(mountRunFile(mnt, 'vol')), 5000, 'the volfile copy of the ended mount removed');
  t.true(fs.existsSync(mountRunFile(mnt, 'log')), 'its log is kept');
  t.is((await cli([...s, 'mount', `${d.server}:/v3`, mnt])).code, 0);
  t.is((await shOk(t, `ls ${mnt}/data | wc -l`)).trim(), '300');
  t.is(await shOk(t, `cat ${mnt}/data/f300`), 'file 300\n');
  // The volfile the client used is the one `volume volfile` prints.
  const vf = await cli([...s, 'volume', 'volfile', 'v3']);
  t.regex(vf.stdout, /type cluster\/distribute/);
});

test('mount of a volume that does not exist or is not started fails clearly; nothing stays mounted', async (t) => {
  const root = tmpDir(t);
  const d = await startDaemon(t, root);
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));
  const missing = await cli(['mount', `${d.server}:/nosuch`, mnt]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nosuch.*(does not exist|not exist)/i);
  t.false(isMountPoint(mnt));
  const c = await cli(['--server', d.server, 'volume', 'create', 'idle', `localhost:${path.join(root, 'b1')}`, '--force']);
  t.is(c.code, 0, c.stderr);
  const stopped = await cli(['mount', `${d.server}:/idle`, mnt]);
  t.is(stopped.code, 1);
  t.regex(stopped.stderr, /not started/i);
  t.false(isMountPoint(mnt));
  const typo = await cli(['mount', 'no-colon-here', mnt]);
  t.is(typo.code, 2);
  t.regex(typo.stderr, /HOST\[:PORT\]:\/VOLUME/);
  const noDaemon = await cli(['mount', `localhost:${await freePort()}:/x`, mnt]);
  t.is(noDaemon.code, 1);
  t.regex(noDaemon.stderr, /cannot reach the management daemon/);
});

test('backup-volfile-servers: a mount whose server is down gets the volfile from a backup; a refusal is final; bad lists are exit 2', async (t) => {
  const root = tmpDir(t);
  const d = await startDaemon(t, root);
  const port = d.server.split(':')[1]!;
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));
  const c = await cli(['--server', d.server, 'volume', 'create', 'bk', `localhost:${path.join(root, 'b1')}`, '--force']);
  t.is(c.code, 0, c.stderr);
  t.is((await cli(['--server', d.server, 'volume', 'start', 'bk'])).code, 0);
  const dead = await freePort();

  for (const bad of ['127.0.0.1::localhost', 'localhost/http', 'localhost/70000']) {
    const r = await cli(['mount', `localhost:${dead}:/bk`, mnt, '-o', `backup-volfile-servers=${bad}`]);
    t.is(r.code, 2, `${bad}: ${r.stderr}`);
    t.regex(r.stderr, /backup-volfile-servers/, bad);
  }
  const withVolfile = await cli(['mount', '--volfile', path.join(root, 'x.vol'), mnt, '-o', 'backup-volfile-servers=localhost']);
  t.is(withVolfile.code, 2);
  t.regex(withVolfile.stderr, /backup-volfile-servers needs a volume from a daemon: brickfs mount HOST:\/VOLUME DIR/);

  // Every server down: exit 1 naming each.
  const none = await cli(['mount', `localhost:${dead}:/bk`, mnt, '-o', `backup-volfile-servers=127.0.0.1`]);
  t.is(none.code, 1, none.stderr);
  t.regex(none.stderr, new RegExp(`no volfile server of volume bk could serve it \\(cannot reach the management daemon at localhost:${dead} \\(ECONNREFUSED\\); cannot reach the management daemon at 127\\.0\\.0\\.1:${dead} \\(ECONNREFUSED\\)\\)`));
  // The live server refuses (no such volume): the backups are not asked, the refusal is the answer.
  const missing = await cli(['mount', `${d.server}:/nosuch`, mnt, '-o', `backup-volfile-servers=127.0.0.1/${dead}`]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /nosuch.*does not exist/);
  t.false(isMountPoint(mnt));

  // The first server down, the backup (with its port) up: mounted, saying where from.
  const m = await cli(['mount', `localhost:${dead}:/bk`, mnt, '-o', `log-level=info,backup-volfile-servers=127.0.0.1/${port}`]);
  t.is(m.code, 0, m.stderr);
  t.regex(m.stderr, new RegExp(`volfile server localhost:${dead} cannot serve; volume bk from 127\\.0\\.0\\.1:${port}`));
  t.true(isMountPoint(mnt));
  fs.writeFileSync(path.join(mnt, 'a'), 'via the backup\n');
  t.is(fs.readFileSync(path.join(root, 'b1', 'a'), 'utf8'), 'via the backup\n');
  // It follows the server that served it first, then the others round the list.
  t.regex(fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8'), new RegExp(`following bk at 127\\.0\\.0\\.1:${port} \\(then localhost:${dead}\\)`));
});
