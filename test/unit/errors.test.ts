// FsError's code is an errno name, whatever produced the error: a Node system error, a
// number, or a peer's wire error with a code this side does not know.
import test from 'ava';
import { constants } from 'node:os';
import fs from 'node:fs';
import { Errno, errnoCode, FsError } from '../../lib/errors.js';

test('every errno Node knows on Linux is an errno name with its number; aliases fold into one', (t) => {
  for (const [name, n] of Object.entries(constants.errno)) {
    if (name.startsWith('WSA')) continue;
    const code = errnoCode(name);
    t.truthy(code, name);
    t.is(Errno[code!], n, name);
  }
  t.is(errnoCode('EOPNOTSUPP'), 'ENOTSUP');
  t.is(errnoCode('EWOULDBLOCK'), 'EAGAIN');
  for (const name of ['ENXIO', 'EOVERFLOW', 'EMFILE', 'ENFILE', 'EDQUOT', 'ENODEV', 'ETXTBSY', 'ESHUTDOWN', 'EHOSTDOWN']) t.is(errnoCode(name) as string | undefined, name);
  t.is(errnoCode('ERR_INVALID_ARG_TYPE'), undefined);
  t.is(errnoCode('toString'), undefined);
});

test('FsError.from: a Node system error by its code, else its number; a refused argument EINVAL; else EIO', (t) => {
  const e = t.throws(() => fs.readFileSync('/nonexistent/brickfs'))!;
  t.like(FsError.from(e), { code: 'ENOENT', errno: 2 });
  t.like(FsError.from(Object.assign(new Error('x'), { code: 'EOPNOTSUPP', errno: -95 })), { code: 'ENOTSUP', errno: 95 });
  t.like(FsError.from(Object.assign(new Error('x'), { code: 'ESHUTDOWN', errno: -108 })), { code: 'ESHUTDOWN', errno: 108 });
  t.like(FsError.from(Object.assign(new Error('x'), { code: 'ERR_SOMETHING', errno: -122 })), { code: 'EDQUOT', errno: 122 });
  t.like(FsError.from(Object.assign(new Error('x'), { errno: -4095 })), { code: 'EIO', errno: 5 });
  t.like(FsError.from('a string'), { code: 'EIO', errno: 5 });
  // An argument refused before the call was made is the caller's EINVAL.
  t.like(FsError.from(t.throws(() => fs.readFileSync('/a\0b'))), { code: 'EINVAL' });
  t.like(FsError.from(Object.assign(new TypeError('getxattrat: attr must not contain null bytes'), { code: 'ERR_INVALID_ARG_VALUE' })), { code: 'EINVAL' });
  t.like(FsError.from(Object.assign(new RangeError('too big'), { code: 'ERR_OUT_OF_RANGE' })), { code: 'EINVAL' });
});

test('FsError.fromWire: an unknown code becomes an errno name by number, else EIO', (t) => {
  t.like(FsError.fromWire({ errno: 2, code: 'ENOENT', message: 'm' }), { code: 'ENOENT', errno: 2, message: 'm' });
  t.like(FsError.fromWire({ errno: 75, code: 'E_FROM_THE_FUTURE', message: 'm' }), { code: 'EOVERFLOW', errno: 75 });
  const unknown = FsError.fromWire({ errno: 9999, code: 'EWHAT', message: 'm' });
  t.like(unknown, { code: 'EIO', errno: 5 });
  t.regex(unknown.message, /EWHAT/);
  // The code wins over a number that disagrees: errno always matches code.
  t.like(FsError.fromWire({ errno: 5, code: 'EAGAIN', message: 'm' }), { code: 'EAGAIN', errno: 11 });
  t.like(FsError.fromWire({ errno: 'x', code: 7, message: null } as never), { code: 'EIO', errno: 5 });
});
