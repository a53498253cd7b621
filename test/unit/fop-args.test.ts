// The fop table's argument specs (lib/fops.ts) as protocol/server applies them: what every
// fop accepts, and every way of getting one field wrong that it refuses, naming the field.
import test from 'ava';
import { FOP_NAMES, FOPS } from '../../lib/fops.js';
import { argsProblem, MAX_PATH_BYTES } from '../../lib/rpc/args.js';
import { mutations, sampleFields } from '../helpers/arg-samples.js';

test('every fop accepts its args with every optional field, and without the optional ones', (t) => {
  for (const fop of FOP_NAMES) {
    const fields = FOPS[fop].args;
    t.is(argsProblem(fields, sampleFields(fields)), undefined, fop);
    const required = Object.fromEntries(Object.entries(sampleFields(fields)).filter(([k]) => !(fields as Record<string, { optional?: boolean }>)[k]!.optional));
    t.is(argsProblem(fields, required), undefined, `${fop} without optional fields`);
  }
});

test('every fop refuses each field of the wrong kind, missing, unknown or too long, naming it', (t) => {
  let n = 0;
  for (const fop of FOP_NAMES) {
    for (const m of mutations(FOPS[fop].args)) {
      const p = argsProblem(FOPS[fop].args, m.args);
      t.truthy(p, `${fop}: ${m.what} accepted`);
      t.true(p?.message.startsWith(m.field), `${fop}: ${m.what}: ${p?.message}`);
      n++;
    }
  }
  t.true(n > 200, `${n} bad requests`);
});

test('paths are absolute, without NUL and bounded; numbers are what their kind says', (t) => {
  const lookup = FOPS.lookup.args;
  t.regex(argsProblem(lookup, { path: 'relative' })!.message, /args\.path must be an absolute path/);
  t.regex(argsProblem(lookup, { path: '/a\0b' })!.message, /NUL/);
  t.regex(argsProblem(lookup, { path: '/' + 'a'.repeat(MAX_PATH_BYTES) })!.message, /longer than/);
  t.is(argsProblem(lookup, { path: '/' + 'a'.repeat(MAX_PATH_BYTES) })!.code, 'ENAMETOOLONG');
  t.is(argsProblem(lookup, { path: 'relative' })!.code, 'EINVAL');
  // '..' is the brick's to refuse (EPERM, as it would a symlink leading out): a valid shape.
  t.is(argsProblem(lookup, { path: '/../etc/passwd' }), undefined);
  const read = FOPS.read.args;
  t.regex(argsProblem(read, { fd: 1, offset: 1.5, size: 1 })!.message, /args\.offset/);
  t.regex(argsProblem(read, { fd: 1, offset: 2 ** 53, size: 1 })!.message, /args\.offset/);
  t.is(argsProblem(read, { fd: 1, offset: 2 ** 40, size: 1 }), undefined);
  t.regex(argsProblem(FOPS.setattr.args, { path: '/f', attrs: { uid: -1 } })!.message, /args\.attrs\.uid/);
  t.is(argsProblem(FOPS.setattr.args, { path: '/f', attrs: { atimeMs: -1.5e12, atimeNow: true } }), undefined);
  t.regex(argsProblem(FOPS.mknod.args, { path: '/f', mode: 1, rdev: 0, xattrs: { ['n'.repeat(256)]: Buffer.alloc(1) } })!.message, /args\.xattrs has a key of 256 bytes/);
  t.regex(argsProblem(FOPS.entrylk.args, { path: '/', name: 'f', owner: 'o', cmd: 'steal' })!.message, /args\.cmd must be one of lock, trylock, unlock/);
});

test('a field whose value is undefined is absent (msgpack carries a spread-in undefined as such)', (t) => {
  t.is(argsProblem(FOPS.unlink.args, { path: '/f', dataOnly: undefined, whatever: undefined }), undefined);
  t.regex(argsProblem(FOPS.unlink.args, { path: undefined })!.message, /args\.path is missing/);
  t.regex(argsProblem(FOPS.unlink.args, { path: '/f', dataOnly: null })!.message, /args\.dataOnly must be a boolean/);
});

test('an own property named like an Object method is unknown, not a field', (t) => {
  t.regex(argsProblem(FOPS.readdir.args, JSON.parse('{"path":"/","constructor":1}'))!.message, /args\.constructor is not an argument/);
  t.regex(argsProblem(FOPS.readdir.args, JSON.parse('{"path":"/","__proto__":{"x":1}}'))!.message, /args\.__proto__ is not an argument/);
});
