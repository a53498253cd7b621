// mount(8)'s helper for `mount -t brickfs` and fstab lines: /sbin/mount.brickfs (put in place
// by `brickfs install`) runs bin/mount.brickfs.js, which runs this. mount(8) calls it as
//   mount.brickfs SPEC DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
// (mount(8), "EXTERNAL HELPERS"). It drops the options that are mount(8)'s own business and
// runs `brickfs mount SPEC DIR -o OPTIONS`, which returns once the mount answers and leaves
// nothing mounted when it fails. Exit codes are mount(8)'s, which it passes on: 0 mounted,
// 1 the command line was wrong, 32 the mount failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseVolumeSource } from '../lib/mgmt/client.js';
import { KNOWN_O } from './cli/commands/mount.js';

const HELPER_EXIT = { ok: 0, usage: 1, failed: 32 } as const;

/** The brickfs CLI of this checkout: the mount runs through it as `brickfs mount` runs. */
const BRICKFS_BIN = fileURLToPath(new URL('../../bin/brickfs.js', import.meta.url));

/**
 * Options that speak to mount(8), the boot and systemd, not to the filesystem (mount(8) keeps
 * some of them back from helpers, not all): they are dropped. `_netdev` orders the mount
 * after the network at boot; `nofail` keeps a failed mount from failing the boot.
 */
const MOUNT8_ONLY = new Set(['defaults', '_netdev', 'nofail', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', 'silent', 'loud']);

const USAGE = `usage: mount.brickfs HOST[:PORT]:/VOLUME DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS]
  (mount(8) runs it for: mount -t brickfs HOST:/VOLUME DIR -o OPTIONS, and for fstab lines such as
   localhost:/demo  /mnt/demo  brickfs  defaults,_netdev  0 0)
  HOST:VOLUME (gluster's form) works too. OPTIONS: those of brickfs mount (${KNOWN_O.join(', ')})
  plus mount(8)'s own (${[...MOUNT8_ONLY].join(', ')}, x-*, comment=), which are dropped.
  -s ignores unknown options, -f checks everything but mounts nothing, -v says what it runs,
  -n is accepted (brickfs keeps no mtab), -N mounts in another mount namespace (a pid or a file).`;

export class HelperUsageError extends Error {}

export interface HelperArgs {
  spec: string;
  dir: string;
  /** What goes to `brickfs mount -o`, after mount(8)'s own options are dropped. */
  options: string[];
  sloppy: boolean;
  fake: boolean;
  verbose: boolean;
  namespace?: string;
  /** Notes for the user: options dropped as unknown under -s. */
  notes: string[];
}

function isMount8Only(opt: string): boolean {
  const key = opt.split('=', 1)[0]!;
  return MOUNT8_ONLY.has(key) || /^x-/i.test(key) || key === 'comment';
}

/** Parses mount(8)'s helper command line; throws HelperUsageError with what was wrong. */
export function parseHelperArgs(argv: readonly string[]): HelperArgs {
  const positional: string[] = [];
  const raw: string[] = [];
  const out: HelperArgs = { spec: '', dir: '', options: [], sloppy: false, fake: false, verbose: false, notes: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (flag: string, rest: string): string => {
      if (rest) return rest;
      const v = argv[++i];
      if (v === undefined) throw new HelperUsageError(`${flag} needs a value`);
      return v;
    };
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    // Flags may come bundled (-fv) and take their value attached (-orw) or next (-o rw).
    for (let j = 1; j < a.length; j++) {
      const f = a[j]!;
      if (f === 's') out.sloppy = true;
      else if (f === 'f') out.fake = true;
      else if (f === 'v') out.verbose = true;
      else if (f === 'n') { /* brickfs writes no mtab: /etc/mtab is the kernel's table */ }
      else if (f === 'o') { raw.push(...value('-o', a.slice(j + 1)).split(',')); break; }
      else if (f === 't') { value('-t', a.slice(j + 1)); break; }
      else if (f === 'N') { out.namespace = value('-N', a.slice(j + 1)); break; }
      else throw new HelperUsageError(`unknown flag -${f}`);
    }
  }
  if (positional.length !== 2) throw new HelperUsageError(positional.length < 2 ? 'give the volume and the mount point' : `too many arguments: ${positional.slice(2).join(' ')}`);
  [out.spec, out.dir] = positional as [string, string];
  try {
    parseVolumeSource(out.spec);
  } catch (e) {
    throw new HelperUsageError((e as Error).message);
  }
  for (const opt of raw.filter(Boolean)) {
    if (opt === 'remount') throw new HelperUsageError('a brickfs mount cannot be remounted with other options: umount it and mount it again');
    if (isMount8Only(opt)) continue;
    if (!KNOWN_O.includes(opt.split('=', 1)[0]!)) {
      if (!out.sloppy) throw new HelperUsageError(`unknown mount option "${opt}" (-s ignores unknown options)`);
      out.notes.push(`ignoring unknown mount option "${opt}" (-s)`);
      continue;
    }
    out.options.push(opt);
  }
  return out;
}

/** The command that mounts: `brickfs mount SPEC DIR -o ...`, entered into the namespace of -N. */
export function mountCommand(a: HelperArgs): string[] {
  const cmd = [process.execPath, BRICKFS_BIN, 'mount', a.spec, a.dir, ...(a.options.length ? ['-o', a.options.join(',')] : [])];
  if (a.namespace === undefined) return cmd;
  const ns = /^\d+$/.test(a.namespace) ? `/proc/${a.namespace}/ns/mnt` : a.namespace;
  return ['nsenter', `--mount=${ns}`, '--', ...cmd];
}

/** Runs the helper; resolves with its exit code (mount(8)'s codes). */
export async function helperMain(argv: readonly string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return HELPER_EXIT.ok;
  }
  let a: HelperArgs;
  try {
    a = parseHelperArgs(argv);
  } catch (e) {
    if (!(e instanceof HelperUsageError)) throw e;
    process.stderr.write(`mount.brickfs: ${e.message}\n${USAGE}\n`);
    return HELPER_EXIT.usage;
  }
  for (const n of a.notes) process.stderr.write(`mount.brickfs: ${n}\n`);
  if (a.namespace === undefined && !fs.statSync(a.dir, { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write(`mount.brickfs: mount point ${a.dir} does not exist or is not a directory; create it with mkdir -p ${a.dir}\n`);
    return HELPER_EXIT.failed;
  }
  const cmd = mountCommand(a);
  if (a.verbose) process.stderr.write(`mount.brickfs: ${a.fake ? 'would run' : 'running'}: ${cmd.join(' ')}\n`);
  if (a.fake) return HELPER_EXIT.ok;
  const code = await new Promise<number>((resolve) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (e) => {
      process.stderr.write(`mount.brickfs: cannot run ${cmd[0]}: ${e.message}\n`);
      resolve(-1);
    });
    child.on('exit', (c, signal) => resolve(signal ? -1 : c ?? -1));
  });
  if (code === 0) {
    if (a.verbose) process.stderr.write(`mount.brickfs: ${a.spec} mounted on ${a.dir}\n`);
    return HELPER_EXIT.ok;
  }
  // brickfs said what was wrong above; this line says what it meant for the mount.
  process.stderr.write(`mount.brickfs: ${a.spec} was not mounted on ${a.dir}${code === 2 ? ' (the options above were refused)' : ''}\n`);
  return code === 2 ? HELPER_EXIT.usage : HELPER_EXIT.failed;
}
