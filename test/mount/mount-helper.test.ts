// Running brickfs as a service: `brickfs install` into a temporary root, mount(8)'s helper
// run as mount(8) runs it (and, with the helper in /sbin for the test's time, `mount -t
// brickfs` and an fstab line through `mount -T`), a plain `umount` ending the mount process.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mountRunFile } from '../../client/mount-table.js';
import { requestStatedump } from '../../lib/statedump.js';
import { isMountPoint, unmountQuietly } from '../helpers/cluster.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { BIN, eventually, REPO, tmpDir, type RunResult } from '../helpers/proc.js';

/** Runs a command with its arguments (no shell); resolves with exit code and output, never throws. */
function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether a command is on the PATH. */
function have(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether pid is a running process (a zombie waiting for its reaper has exited). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** `brickfs install --prefix` into a fresh temporary root; returns the root. */
async function installInto(t: ExecutionContext, root: string): Promise<string> {
  const prefix = path.join(root, 'prefix');
  const r = await run(process.execPath, [BIN, 'install', '--prefix', prefix]);
  t.is(r.code, 0, r.stderr);
  return prefix;
}

/** A started 2-brick volume on a test daemon. */
async function volume(t: ExecutionContext, root: string, name: string): Promise<{ d: TestDaemon; bricks: string[] }> {
  const d = await startDaemon(t);
  const bricks = [1, 2].map((i) => path.join(root, `b${i}`));
  const c = await d.cli(['volume', 'create', name, ...bricks.map((b) => `localhost:${b}`), '--force']);
  t.is(c.code, 0, c.stderr);
  const s = await d.cli(['volume', 'start', name]);
  t.is(s.code, 0, s.stderr);
  return { d, bricks };
}

function mountDir(t: ExecutionContext, root: string, name = 'mnt'): string {
  const mnt = path.join(root, name);
  fs.mkdirSync(mnt);
  t.teardown(() => unmountQuietly(mnt));
  return mnt;
}

/** The /proc/mounts line of a mount point: [source, type, options]. */
function procMount(dir: string): string[] | undefined {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === dir);
  return line?.split(' ').filter((_f, i) => i === 0 || i === 2 || i === 3);
}

/** Unmounts with plain umount(8) and checks the mount process exits and says why in its log. */
async function plainUmount(t: ExecutionContext, mnt: string): Promise<void> {
  const pid = Number(fs.readFileSync(mountRunFile(mnt, 'pid'), 'utf8').trim());
  t.true(running(pid), 'the mount process runs');
  const u = await run('umount', [mnt]);
  t.is(u.code, 0, u.stderr);
  t.false(isMountPoint(mnt));
  await eventually(() => !running(pid), 10_000, `mount process ${pid} gone after umount`);
  t.false(fs.existsSync(mountRunFile(mnt, 'pid')), 'its pidfile is removed');
  t.regex(fs.readFileSync(mountRunFile(mnt, 'log'), 'utf8'), new RegExp(`${mnt} was unmounted from outside \\(umount\\); mount process ${pid} exits`));
}

test('brickfs install --prefix: the command, mount.brickfs, a unit systemd accepts, logrotate; --uninstall removes only its own files', async (t) => {
  const root = tmpDir(t);
  const prefix = await installInto(t, root);
  const file = (rel: string): string => path.join(prefix, rel);
  for (const [rel, script] of [['usr/local/sbin/brickfs', 'brickfs.js'], ['sbin/mount.brickfs', 'mount.brickfs.js']] as const) {
    t.is(fs.statSync(file(rel)).mode & 0o777, 0o755, rel);
    t.true(fs.readFileSync(file(rel), 'utf8').includes(`exec ${process.execPath} ${path.join(REPO, 'bin', script)} "$@"`), rel);
  }
  // The installed command runs this checkout.
  const help = await run(file('usr/local/sbin/brickfs'), ['install', '--help']);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /--uninstall/);

  const unitFile = file('etc/systemd/system/brickfsd.service');
  const unit = fs.readFileSync(unitFile, 'utf8');
  const keys = new Map(unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.is(keys.get('ExecStart'), `${process.execPath} ${path.join(REPO, 'bin', 'brickfs.js')} daemon --detach --state /var/lib/brickfs $BRICKFSD_OPTIONS`);
  t.is(keys.get('Type'), 'forking');
  t.is(keys.get('PIDFile'), '/var/lib/brickfs/daemon.pid');
  t.is(keys.get('KillMode'), 'process');
  t.is(keys.get('EnvironmentFile'), '-/etc/default/brickfsd');
  t.is(keys.get('WantedBy'), 'multi-user.target');
  t.deepEqual(unit.split('\n').filter((l) => /^\[/.test(l)), ['[Unit]', '[Service]', '[Install]']);
  if (have('systemd-analyze')) {
    const analyze = await run('systemd-analyze', ['verify', unitFile]);
    t.is(`${analyze.code} ${analyze.stdout}${analyze.stderr}`.trim(), '0', 'systemd-analyze verify finds nothing to say');
  } else {
    t.log('no systemd-analyze here: the unit was only parsed');
  }

  const rotate = fs.readFileSync(file('etc/logrotate.d/brickfs'), 'utf8');
  // The logs and, beside them, the span files of diagnostics.trace.
  t.regex(rotate, /^\/var\/lib\/brickfs\/logs\/\*\.log \/var\/lib\/brickfs\/logs\/\*\.spans\.jsonl \/var\/lib\/brickfs\/logs\/bricks\/\*\.log \/var\/lib\/brickfs\/logs\/bricks\/\*\.spans\.jsonl \/run\/brickfs\/mounts\/\*\.log \/run\/brickfs\/mounts\/\*\.spans\.jsonl \{$/m);
  t.regex(rotate, /^\s+copytruncate$/m);
  if (have('logrotate')) {
    const lr = await run('logrotate', ['--debug', '--state', path.join(root, 'logrotate.status'), file('etc/logrotate.d/brickfs')]);
    t.is(lr.code, 0, lr.stderr);
    t.notRegex(lr.stderr, /error/i);
  } else {
    t.log('no logrotate here: its file was only parsed');
  }

  // Installing again replaces its own files; a file someone else put there stops it before it writes anything.
  t.is((await run(process.execPath, [BIN, 'install', '--prefix', prefix])).code, 0);
  fs.writeFileSync(file('etc/logrotate.d/brickfs'), '# the admin\'s own\n');
  fs.rmSync(unitFile);
  const refused = await run(process.execPath, [BIN, 'install', '--prefix', prefix]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /install: failed: .*etc\/logrotate\.d\/brickfs exists and was not put there by brickfs install; move it away first/);
  t.false(fs.existsSync(unitFile), 'nothing written');

  const un = await run(process.execPath, [BIN, 'install', '--uninstall', '--prefix', prefix]);
  t.is(un.code, 0, un.stderr);
  t.regex(un.stdout, /removed .*sbin\/mount\.brickfs/);
  t.regex(un.stderr, /left .*etc\/logrotate\.d\/brickfs alone/);
  t.false(fs.existsSync(file('sbin/mount.brickfs')));
  t.false(fs.existsSync(file('usr/local/sbin/brickfs')));
  t.is(fs.readFileSync(file('etc/logrotate.d/brickfs'), 'utf8'), '# the admin\'s own\n');

  const relative = await run(process.execPath, [BIN, 'install', '--prefix', prefix, '--state', 'var/lib/x']);
  t.is(relative.code, 2);
  t.regex(relative.stderr, /--state must be an absolute path/);
});

test.serial('mount.brickfs run as mount(8) runs it: mounts (HOST:/VOL and gluster\'s HOST:VOL), serves, and a plain umount ends the mount process', async (t) => {
  const root = tmpDir(t);
  const prefix = await installInto(t, root);
  const { d, bricks } = await volume(t, root, 'svc');
  const mnt = mountDir(t, root);
  const helper = path.join(prefix, 'sbin', 'mount.brickfs');

  const m = await run(helper, [`${d.server}:/svc`, mnt, '-n', '-o', 'rw,_netdev,noatime,nodev,noexec,dirsync,x-systemd.automount,attribute-timeout=2']);
  t.is(m.code, 0, m.stderr);
  // Usable as soon as the helper returns, and a FUSE mount as any: type fuse.brickfs, the kernel flags given.
  t.deepEqual(procMount(mnt)?.slice(0, 2), ['127.0.0.1:/svc', 'fuse.brickfs']);
  for (const flag of ['noatime', 'noexec', 'dirsync', 'nosuid', 'nodev']) t.regex(procMount(mnt)![2]!, new RegExp(`(^|,)${flag}(,|$)`));
  fs.writeFileSync(path.join(mnt, 'hello'), 'through mount.brickfs\n');
  t.is(fs.readFileSync(path.join(mnt, 'hello'), 'utf8'), 'through mount.brickfs\n');
  t.is(bricks.filter((b) => fs.existsSync(path.join(b, 'hello'))).length, 1, 'the file is on one brick');

  // logrotate's copytruncate: the mount's and the bricks' logs are emptied in place and the
  // processes' next lines land at their start (they append), not after a hole of NULs.
  const status = JSON.parse((await d.cli(['volume', 'status', 'svc', '--json'])).stdout) as { volumes: Array<{ bricks: Array<{ pid: number }> }> };
  const brickLogs = fs.readdirSync(path.join(d.stateDir, 'logs', 'bricks')).map((f) => path.join(d.stateDir, 'logs', 'bricks', f));
  t.is(brickLogs.length, 2);
  const mountPid = Number(fs.readFileSync(mountRunFile(mnt, 'pid'), 'utf8').trim());
  for (const [pid, log] of [[mountPid, mountRunFile(mnt, 'log')], ...status.volumes[0]!.bricks.map((b, i) => [b.pid, brickLogs[i]!] as const)] as const) {
    t.true(fs.statSync(log).size > 0, log);
    fs.truncateSync(log, 0);
    await requestStatedump(pid, log);
    t.regex(fs.readFileSync(log, 'utf8'), /^\{"level":"info","time":"\d{4}-[^\n]*"name":"statedump","statedump":\{/, `${log}: the first line after truncation is at offset 0`);
  }
  await plainUmount(t, mnt);

  // gluster's form, no slash; -v says what it runs.
  const g = await run(helper, [`${d.server}:svc`, mnt, '-v', '-o', 'ro,exec,atime,sync']);
  t.is(g.code, 0, g.stderr);
  t.regex(g.stderr, /mount\.brickfs: running: .*brickfs\.js mount 127\.0\.0\.1:\d+:svc .* -o ro,exec,atime,sync/);
  t.regex(procMount(mnt)![2]!, /(^|,)sync(,|$)/);
  t.is(fs.readFileSync(path.join(mnt, 'hello'), 'utf8'), 'through mount.brickfs\n');
  t.regex(procMount(mnt)![2]!, /^ro,/);
  t.throws(() => fs.writeFileSync(path.join(mnt, 'no'), 'x'), { code: 'EROFS' });
  await plainUmount(t, mnt);

  // brickfs mount takes gluster's form too.
  const b = await run(process.execPath, [BIN, 'mount', `${d.server}:svc`, mnt]);
  t.is(b.code, 0, b.stderr);
  t.is(fs.readFileSync(path.join(mnt, 'hello'), 'utf8'), 'through mount.brickfs\n');
  await plainUmount(t, mnt);
});

test.serial('mount.brickfs failures: exit codes of mount(8), a clear message, nothing left mounted', async (t) => {
  const root = tmpDir(t);
  const prefix = await installInto(t, root);
  const { d } = await volume(t, root, 'svc');
  const mnt = mountDir(t, root);
  const helper = path.join(prefix, 'sbin', 'mount.brickfs');

  const missing = await run(helper, [`${d.server}:/nosuch`, mnt, '-o', 'rw,_netdev']);
  t.is(missing.code, 32);
  t.regex(missing.stderr, /volume nosuch does not exist/);
  t.regex(missing.stderr, new RegExp(`mount\\.brickfs: ${d.server}:/nosuch was not mounted on ${mnt}`));
  t.false(isMountPoint(mnt));

  const noDir = await run(helper, [`${d.server}:/svc`, path.join(root, 'absent')]);
  t.is(noDir.code, 32);
  t.regex(noDir.stderr, /mount point .*absent does not exist or is not a directory; create it with mkdir -p/);

  // Usage: mount(8)'s code 1, with the helper's usage.
  for (const [args, why] of [
    [[`${d.server}:/svc`], /give the volume and the mount point/],
    [['just-a-name', mnt], /"just-a-name" is not HOST\[:PORT\]:\/VOLUME or HOST\[:PORT\]:VOLUME/],
    [[`${d.server}:/svc`, mnt, '-o', 'rw,frobnicate'], /unknown mount option "frobnicate" \(-s ignores unknown options\)/],
    [[`${d.server}:/svc`, mnt, '-Q'], /unknown flag -Q/],
    [[`${d.server}:/svc`, mnt, '-o', 'remount,ro'], /cannot be remounted with other options: umount it and mount it again/],
    [[`${d.server}:/svc`, mnt, '-o', 'suid'], /unknown mount option "suid"/],
  ] as const) {
    const r = await run(helper, args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, why);
    t.regex(r.stderr, /usage: mount\.brickfs HOST\[:PORT\]:\/VOLUME DIR/);
  }
  // A value brickfs mount refuses is a usage error too.
  const badValue = await run(helper, [`${d.server}:/svc`, mnt, '-o', 'attribute-timeout=soon']);
  t.is(badValue.code, 1);
  t.regex(badValue.stderr, /attribute-timeout needs a number of seconds/);
  t.false(isMountPoint(mnt));

  // -f checks and mounts nothing; -s drops what it does not know, saying so.
  const fake = await run(helper, [`${d.server}:/svc`, mnt, '-sfv', '-o', 'rw,frobnicate,backup-volfile-servers=127.0.0.2']);
  t.is(fake.code, 0, fake.stderr);
  t.regex(fake.stderr, /ignoring unknown mount option "frobnicate" \(-s\)/);
  t.regex(fake.stderr, /would run: .* -o rw,backup-volfile-servers=127\.0\.0\.2$/m);
  t.false(isMountPoint(mnt));

  // A mount point already served is refused, and the mount there stays.
  t.is((await run(helper, [`${d.server}:/svc`, mnt])).code, 0);
  const again = await run(helper, [`${d.server}:/svc`, mnt]);
  t.is(again.code, 32);
  t.regex(again.stderr, /is already mounted/);
  t.true(isMountPoint(mnt));
  fs.writeFileSync(path.join(mnt, 'still'), 'served\n');
});

/**
 * Puts this checkout's helper at /sbin/mount.brickfs, where mount(8) looks, until the test
 * ends; whatever was there is put back then. Undefined when not root.
 */
function helperInSbin(t: ExecutionContext, prefix: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const target = '/sbin/mount.brickfs';
  const saved = `${target}.saved-by-brickfs-test-${process.pid}`;
  if (fs.existsSync(target)) fs.renameSync(target, saved);
  fs.copyFileSync(path.join(prefix, 'sbin', 'mount.brickfs'), `${target}.tmp-${process.pid}`);
  fs.chmodSync(`${target}.tmp-${process.pid}`, 0o755);
  fs.renameSync(`${target}.tmp-${process.pid}`, target);
  t.teardown(() => {
    fs.rmSync(target, { force: true });
    if (fs.existsSync(saved)) fs.renameSync(saved, target);
  });
  return target;
}

test.serial('mount -t brickfs and an fstab line (mount -T FILE DIR, mount -a -T FILE) go through /sbin/mount.brickfs', async (t) => {
  const root = tmpDir(t);
  const prefix = await installInto(t, root);
  if (!helperInSbin(t, prefix)) {
    t.log('not root: mount(8) cannot be given a helper in /sbin');
    t.pass();
    return;
  }
  const { d } = await volume(t, root, 'svc');
  const mnt = mountDir(t, root);

  const m = await run('mount', ['-t', 'brickfs', '-o', 'noatime', `${d.server}:/svc`, mnt]);
  t.is(m.code, 0, m.stderr);
  t.deepEqual(procMount(mnt)?.slice(0, 2), ['127.0.0.1:/svc', 'fuse.brickfs']);
  fs.writeFileSync(path.join(mnt, 'f'), 'mount -t brickfs\n');
  await plainUmount(t, mnt);

  // mount(8) itself refuses a missing volume with the helper's code and message.
  const missing = await run('mount', ['-t', 'brickfs', `${d.server}:/nosuch`, mnt]);
  t.is(missing.code, 32);
  t.regex(missing.stderr, /volume nosuch does not exist/);
  t.false(isMountPoint(mnt));

  // An fstab line as an operator writes it: gluster's form, _netdev, backup volfile servers.
  const fstab = path.join(root, 'fstab');
  fs.writeFileSync(fstab, `# brickfs\n${d.server}:svc ${mnt} brickfs defaults,_netdev,nofail,backup-volfile-servers=127.0.0.2:127.0.0.3,x-systemd.mount-timeout=30 0 0\n`);
  const f = await run('mount', ['-T', fstab, mnt]);
  t.is(f.code, 0, f.stderr);
  t.is(fs.readFileSync(path.join(mnt, 'f'), 'utf8'), 'mount -t brickfs\n');
  t.deepEqual(procMount(mnt)?.slice(0, 2), ['127.0.0.1:/svc', 'fuse.brickfs']);
  // The backup volfile servers reached the mount process.
  t.regex(fs.readFileSync(`/proc/${fs.readFileSync(mountRunFile(mnt, 'pid'), 'utf8').trim()}/cmdline`, 'utf8').replace(/\0/g, ' '), /--watch 127\.0\.0\.1:\d+,127\.0\.0\.2:\d+,127\.0\.0\.3:\d+\/svc/);
  await plainUmount(t, mnt);

  // mount -a over the same file: every line of it, as at boot.
  const all = await run('mount', ['-a', '-T', fstab]);
  t.is(all.code, 0, all.stderr);
  t.is(fs.readFileSync(path.join(mnt, 'f'), 'utf8'), 'mount -t brickfs\n');
  await plainUmount(t, mnt);
});
