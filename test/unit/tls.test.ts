// auth.ssl-allow's name lists (lib/tls.ts) and the TLS options as `volume set` takes them;
// a certificate directory that lacks a file is refused naming it.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../lib/errors.js';
import { validateVolumeOption } from '../../lib/mgmt/args.js';
import { loadTls, NameList, secureAccess, TlsConfigError } from '../../lib/tls.js';

test('auth.ssl-allow: comma-separated names with * and ? as fnmatch, nothing else special', (t) => {
  const l = new NameList('host1.example.com, client-*, node?');
  t.true(l.matches('host1.example.com'));
  t.false(l.matches('host1xexample.com'), 'a dot is a dot');
  t.true(l.matches('client-'));
  t.true(l.matches('client-42.example.com'));
  t.true(l.matches('node7'));
  t.false(l.matches('node17'));
  t.false(l.matches('evil.host1.example.com'));
  t.false(l.matches(''));
  t.true(new NameList('*').matches(''), '* lets in every certificate of the CA, one without a name too');
  t.false(new NameList('').matches('anything'));
  t.true(new NameList('a(b)+[c]').matches('a(b)+[c]'), 'regex characters are literal');
});

test('volume set takes client.ssl, server.ssl as switches and auth.ssl-allow as a name list', (t) => {
  t.is(validateVolumeOption('server.ssl', 'on'), 'on');
  t.is(validateVolumeOption('client.ssl', 'off'), 'off');
  t.throws(() => validateVolumeOption('server.ssl', 'maybe'), { instanceOf: UsageError });
  t.is(validateVolumeOption('auth.ssl-allow', 'host1, client-*'), 'host1, client-*');
  t.throws(() => validateVolumeOption('auth.ssl-allow', 'a\nb'), { instanceOf: UsageError, message: /common names/ });
});

test('a certificate directory without one of its files is refused naming the file; secure-access is the file\'s presence', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickfs-tls-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'brickfs.pem'), 'x');
  fs.writeFileSync(path.join(dir, 'brickfs.key'), 'x');
  const e = t.throws(() => loadTls(dir), { instanceOf: TlsConfigError });
  t.regex(e!.message, /brickfs\.ca .*ENOENT.*docs\/security\.md/);
  t.false(secureAccess(dir));
  fs.writeFileSync(path.join(dir, 'secure-access'), '');
  t.true(secureAccess(dir));
});
