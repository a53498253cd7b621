// The machinery of test/posix/: runs a scenario's shell steps as root and as unprivileged
// users in a directory, and turns what each step did into a normalized observation line,
// so that the same scenario run on a local ext4 directory and on a brickfs mount can be
// compared line by line. Nothing here knows what the kernel answers: every expectation is
// the local file system's answer in the same test.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Owner } from './proc.js';

/** The users steps run as. Numeric ids need no passwd entry. */
export type User = 'root' | 'nobody' | 'u4242';

/**
 * setpriv arguments per user (none for root: the test process is root). A change of all
 * uids from 0 to non-zero drops every capability, so these are plain users.
 */
export const USERS: Record<User, string[]> = {
  root: [],
  nobody: ['--reuid=65534', '--regid=65534', '--clear-groups'],
  // 4242 is also in group 4343 (a supplementary group): chgrp to it is allowed, to 5555 not.
  u4242: ['--reuid=4242', '--regid=4242', '--groups=4242,4343'],
};

/** One shell step of a scenario: `sh -c run` as a user, with the scenario's directory as cwd. */
export interface Step {
  as: User;
  run: string;
  /** A step that must succeed on ext4 (a broken scenario fails loudly instead of comparing two failures). */
  setup?: boolean;
}

export interface Scenario {
  /** Directory name of the scenario (unique). */
  id: string;
  /** Test title (after the shape's name). */
  title: string;
  steps: Step[];
}

/** What one step did, as compared between ext4 and the mount. */
export interface Observation {
  step: number;
  as: User;
  run: string;
  code: number;
  /** errno names found in stderr (or stderr lines with none), in order. */
  errors: string[];
  /** stdout, normalized (paths relative, inode numbers as classes). */
  out: string;
}

/**
 * Shell functions every step has (sh is dash here; keep to POSIX sh):
 *  st PATH...       lstat: name, type, mode, owner, nlink, inode (compared as a class), device numbers
 *  snap PATH...     remembers atime/mtime/ctime (ns) of each path, positionally, then sleeps 50 ms
 *                   (longer than the kernel's coarse clock tick, so a later change always shows)
 *  changed PATH...  for each path (same positions as the last snap, names may differ; - skips one),
 *                   which times changed (snap and changed run as root: the snapshot file is root's)
 *  old PATH...      sets atime and mtime to 2001-09-09 (touch -h: symlinks themselves)
 *  rep C N          the character C N times (long names)
 *  px OP ARGS...    one system call through python3, exits 1 with the errno name on stderr
 */
export const PRELUDE = String.raw`umask 022
rep() { head -c "$2" /dev/zero | tr '\0' "$1"; }
st() { stat -c '%n %F %a %u:%g nlink=%h ino=%i rdev=%t:%T' -- "$@"; }
snap() { i=0; for f; do i=$((i + 1)); stat -c "$i %.9X %.9Y %.9Z" -- "$f"; done > "$SNAP"; sleep 0.05; }
changed() { i=0; for f; do i=$((i + 1)); [ "$f" = - ] || stat -c "$i %n %.9X %.9Y %.9Z" -- "$f"; done | awk 'NR == FNR { a[$1] = $2; m[$1] = $3; c[$1] = $4; next }
  { print $2, "atime:" (("" $3) == ("" a[$1]) ? "same" : "changed"), "mtime:" (("" $4) == ("" m[$1]) ? "same" : "changed"), "ctime:" (("" $5) == ("" c[$1]) ? "same" : "changed") }' "$SNAP" -; }
old() { touch -h -d @1000000000 -- "$@"; }
px() { /usr/bin/python3 "$PX" "$@"; }
`;

/** The python helper behind px: exact errno names for the system calls shell tools wrap in checks of their own. */
const PXOP = String.raw`import errno, os, socket, stat, sys
op, a = sys.argv[1], sys.argv[2:]
try:
    if op == 'rename': os.rename(a[0], a[1])
    elif op == 'link': os.link(a[0], a[1], follow_symlinks=False)
    elif op == 'symlink': os.symlink(a[0], a[1])
    elif op == 'unlink': os.unlink(a[0])
    elif op == 'rmdir': os.rmdir(a[0])
    elif op == 'mkdir': os.mkdir(a[0], int(a[1], 8) if len(a) > 1 else 0o777)
    elif op == 'creat': os.close(os.open(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, int(a[1], 8)))
    elif op == 'mkfifo': os.mkfifo(a[0], int(a[1], 8) if len(a) > 1 else 0o666)
    elif op == 'mknod':
        kind = {'c': stat.S_IFCHR, 'b': stat.S_IFBLK, 'p': stat.S_IFIFO, 'f': stat.S_IFREG, 's': stat.S_IFSOCK}[a[1]]
        dev = os.makedev(int(a[2]), int(a[3])) if len(a) > 3 else 0
        os.mknod(a[0], kind | 0o644, dev)
    elif op == 'sock':
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(a[0])
        s.close()
    elif op == 'truncate': os.truncate(a[0], int(a[1]))
    elif op == 'access':
        print(''.join(c if os.access(a[0], m) else '-' for c, m in (('r', os.R_OK), ('w', os.W_OK), ('x', os.X_OK))))
    else: raise SystemExit('px: unknown op ' + op)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)), file=sys.stderr)
    sys.exit(1)
`;

/** strerror text -> errno name, from the C library's own messages (what coreutils prints). */
const STRERROR: Array<[string, string]> = (() => {
  const json = execFileSync('/usr/bin/python3', ['-c', 'import errno, json, os; print(json.dumps({os.strerror(n): name for n, name in errno.errorcode.items()}))'], { encoding: 'utf8' });
  // Longest first: 'No such device or address' before 'No such device'.
  return Object.entries(JSON.parse(json) as Record<string, string>).sort((a, b) => b[0].length - a[0].length);
})();
const ERRNO_NAMES = new Set(STRERROR.map(([, n]) => n));

/** The errno names in a step's stderr; a line without one is kept as it is (paths made relative). */
export function errnoNames(stderr: string, base: string): string[] {
  const out: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (ERRNO_NAMES.has(line)) { out.push(line); continue; }
    const hit = STRERROR.find(([msg]) => line.includes(msg));
    out.push(hit ? hit[1] : relative(line, base));
  }
  return out;
}

/** Paths made relative to the scenario's directory, long runs of one character (long names) shortened. */
function relative(s: string, base: string): string {
  return s.split(`${base}/`).join('').split(base).join('.').replace(/(.)\1{15,}/g, (run, c: string) => `<${c}*${run.length}>`);
}

/** A scratch directory on the local disk that every user can enter (mkdtemp's are 0700). */
export interface Scratch {
  /** Where scenarios run on ext4. */
  ext4: string;
  /** Snapshots of times (snap/changed), one file per side and scenario. */
  snaps: string;
  /** The px helper. */
  px: string;
}

export function makeScratch(t: Owner): Scratch {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-posix-'));
  // rm -rf, not fs.rmSync: scenarios make trees deeper than PATH_MAX, which rm walks with openat.
  t.teardown(() => removeTree(root));
  fs.chmodSync(root, 0o755);
  const ext4 = path.join(root, 'ext4');
  const snaps = path.join(root, 'snaps');
  fs.mkdirSync(ext4);
  fs.mkdirSync(snaps);
  fs.chmodSync(ext4, 0o1777);
  fs.chmodSync(snaps, 0o1777);
  const px = path.join(root, 'px.py');
  fs.writeFileSync(px, PXOP, { mode: 0o644 });
  // Every directory above must be searchable by others.
  for (let d = root; d !== '/'; d = path.dirname(d)) {
    const m = fs.statSync(d).mode & 0o777;
    if ((m & 0o001) === 0) throw new Error(`${d} is mode ${m.toString(8)}: other users cannot reach the scratch directory`);
  }
  return { ext4, snaps, px };
}

/** Removes a tree however deep (GNU rm works relative to each directory); never throws. */
export function removeTree(dir: string): void {
  try {
    execFileSync('rm', ['-rf', '--one-file-system', dir], { stdio: 'ignore' });
  } catch { /* keep cleaning */ }
}

/** Makes dir and every directory above it searchable by others (the mount under a 0700 temp dir). */
export function openUp(dir: string): void {
  for (let d = path.dirname(path.resolve(dir)); d !== '/'; d = path.dirname(d)) {
    const m = fs.statSync(d).mode & 0o7777;
    if ((m & 0o005) !== 0o005) fs.chmodSync(d, m | 0o055);
  }
}

function run(user: User, script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, args] = user === 'root' ? ['sh', ['-c', script]] : ['setpriv', [...USERS[user], '--', 'sh', '-c', script]];
  return new Promise((resolve) => {
    execFile(cmd, args as string[], { cwd, env, timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
      const code = !e ? 0 : typeof e.code === 'number' ? e.code : e.killed ? 124 : 125;
      resolve({ code, stdout, stderr: e?.killed ? `${stderr}\n(timed out after 30 s)` : stderr });
    });
  });
}

/**
 * Runs a scenario's steps in base/<id> (created here, mode 0777, owned by root) and returns
 * one observation per step. Inode numbers printed as `ino=N` become classes (i1, i2, ...
 * in order of first appearance in this run), so "b is the same file as a" compares, and
 * the numbers themselves do not.
 */
export async function runScenario(sc: Scenario, base: string, scratch: Scratch, side: string): Promise<Observation[]> {
  const dir = path.join(base, sc.id);
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o777);
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C', TZ: 'UTC', HOME: '/',
    SNAP: path.join(scratch.snaps, `${side}-${sc.id}`),
    PX: scratch.px,
  };
  const inodes = new Map<string, string>();
  const obs: Observation[] = [];
  for (const [i, s] of sc.steps.entries()) {
    const r = await run(s.as, `${PRELUDE}${s.run}`, dir, env);
    const out = relative(r.stdout, dir).replace(/\bino=(\d+)/g, (_m, n: string) => {
      if (!inodes.has(n)) inodes.set(n, `i${inodes.size + 1}`);
      return `ino=${inodes.get(n)}`;
    });
    obs.push({ step: i, as: s.as, run: s.run, code: r.code, errors: errnoNames(r.stderr, dir), out: out.trimEnd() });
  }
  return obs;
}

/** One observation as one line (or a few): what t.deepEqual shows in its diff. */
export function describe(o: Observation): string {
  const res = o.code === 0 && o.errors.length === 0 ? 'ok' : `exit ${o.code}${o.errors.length ? ` ${o.errors.join(' ')}` : ''}`;
  return `#${o.step} [${o.as}] ${o.run} => ${res}${o.out ? `\n${o.out}` : ''}`;
}
