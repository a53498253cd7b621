// The volume id on a brick root (trusted.brickfs.volume-id): the management daemon writes
// it when it first starts the brick, storage/posix checks it whenever a brick process
// starts, so a directory of one volume is never served as a brick of another (a brick
// path reused by mistake, a volfile pointing at the wrong directory).
import fs from 'node:fs';
import { XATTR_VOLUME_ID } from '../../../lib/fops.js';
import * as sys from './sys.js';

/** A brick directory that carries another volume's id. */
export class VolumeIdMismatchError extends Error {
  constructor(readonly directory: string, readonly found: string, readonly expected: string) {
    super(
      `brick directory ${directory} belongs to another volume (volume id ${found} in ${XATTR_VOLUME_ID}; this volume's id is ${expected}); ` +
      'give this volume an empty directory of its own, or, if that other volume is gone for good, ' +
      `remove the attribute (\`setfattr -x ${XATTR_VOLUME_ID} ${directory}\`) and start again`);
    this.name = 'VolumeIdMismatchError';
  }
}

/** The volume id on the directory open as dirFd (O_PATH), or undefined when it has none. */
export function readVolumeId(dirFd: number): string | undefined {
  return sys.getxattrat(dirFd, '.', XATTR_VOLUME_ID)?.toString('utf8');
}

/**
 * Makes the directory open as dirFd carry volume id `want`: written when it has none, or
 * when it has `replaces` (the id of a volume whose brick this one took over with --force);
 * any other id is a VolumeIdMismatchError. Returns whether it wrote.
 */
export function claimVolumeId(dirFd: number, directory: string, want: string, replaces?: string): boolean {
  const have = readVolumeId(dirFd);
  if (have === want) return false;
  if (have !== undefined && have !== replaces) throw new VolumeIdMismatchError(directory, have, want);
  sys.setxattrat(dirFd, '.', XATTR_VOLUME_ID, Buffer.from(want, 'utf8'), have === undefined ? sys.XATTR_CREATE : sys.XATTR_REPLACE);
  return true;
}

/** claimVolumeId on a directory by path (the daemon's side, before it starts a brick). */
export function claimVolumeIdAt(directory: string, want: string, replaces?: string): boolean {
  const fd = sys.openat2(sys.AT_FDCWD, directory, sys.O_PATH | sys.O_DIRECTORY);
  try {
    return claimVolumeId(fd, directory, want, replaces);
  } finally {
    fs.closeSync(fd);
  }
}

/** The volume id on a directory by path, or undefined (also when it does not exist). */
export function volumeIdAt(directory: string): string | undefined {
  let fd: number;
  try {
    fd = sys.openat2(sys.AT_FDCWD, directory, sys.O_PATH | sys.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    return readVolumeId(fd);
  } finally {
    fs.closeSync(fd);
  }
}
