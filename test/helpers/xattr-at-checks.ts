// The xattr checks of test/unit/brick-sys-at.test.ts, in a module of their own so a child
// process (without the kernel's *xattrat calls) can run them without loading ava.
import fs from 'node:fs';
import * as sys from '../../brick/xlators/storage/sys.js';

/** The xattr checks, run here and in a child without the *xattrat calls. Returns what they saw. */
export function xattrChecks(dir: string): Record<string, unknown> {
  const fd = sys.openat2(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY);
  const code = (fn: () => unknown): unknown => {
    try {
      return fn();
    } catch (e) {
      return (e as NodeJS.ErrnoException).code;
    }
  };
  try {
    sys.setxattrat(fd, 'f', 'user.a', Buffer.from('one'));
    sys.setxattrat(fd, 'f', 'trusted.b', new Uint8Array([0, 0, 0, 7]));
    return {
      a: sys.getxattrat(fd, 'f', 'user.a')?.toString(),
      b: [...sys.getxattrat(fd, 'f', 'trusted.b')!],
      missing: sys.getxattrat(fd, 'f', 'user.none'),
      list: sys.listxattrat(fd, 'f').filter((n) => !n.startsWith('security.')).sort(),
      create: code(() => sys.setxattrat(fd, 'f', 'user.a', Buffer.from('x'), sys.XATTR_CREATE)),
      replace: code(() => sys.setxattrat(fd, 'f', 'user.new', Buffer.from('x'), sys.XATTR_REPLACE)),
      removed: code(() => sys.removexattrat(fd, 'f', 'user.a')) ?? sys.listxattrat(fd, 'f').includes('user.a'),
      removeAgain: code(() => sys.removexattrat(fd, 'f', 'user.a')),
      noEntry: code(() => sys.getxattrat(fd, 'nothing', 'user.a')),
      // The root of the fd itself ('.'), and a symlink's own xattrs (trusted.*: user.* is refused on links).
      self: code(() => { sys.setxattrat(fd, '.', 'user.self', Buffer.from('d')); return sys.getxattrat(fd, '.', 'user.self')?.toString(); }),
      link: code(() => { sys.setxattrat(fd, 'link', 'trusted.l', Buffer.from('l')); return sys.getxattrat(fd, 'link', 'trusted.l')?.toString(); }),
      linkUser: code(() => sys.setxattrat(fd, 'link', 'user.l', Buffer.from('l'))),
      notName: code(() => sys.getxattrat(fd, 'sub/f', 'user.a')),
    };
  } finally {
    fs.closeSync(fd);
  }
}

