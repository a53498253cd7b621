// What a mount is given: the volume spec in brickfs's and gluster's forms, and mount(8)'s
// helper command line (mount(8), "EXTERNAL HELPERS").
import test from 'ava';
import { HelperUsageError, mountCommand, parseHelperArgs } from '../../client/mount-helper.js';
import { parseVolumeSource } from '../../lib/mgmt/client.js';
import { UsageError } from '../../lib/errors.js';

test('volume spec: HOST[:PORT]:/VOL and gluster\'s HOST[:PORT]:VOL, IPv6 in brackets', (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['localhost:/demo', 'localhost', 7007, 'demo'],
    ['localhost:demo', 'localhost', 7007, 'demo'],
    ['10.0.0.1:7008:/demo', '10.0.0.1', 7008, 'demo'],
    ['10.0.0.1:7008:demo', '10.0.0.1', 7008, 'demo'],
    ['[::1]:/v.1', '::1', 7007, 'v.1'],
    ['[::1]:v_1', '::1', 7007, 'v_1'],
    ['[fe80::1]:7010:v-1', 'fe80::1', 7010, 'v-1'],
  ];
  for (const [spec, host, port, volume] of cases) t.deepEqual(parseVolumeSource(spec), { server: { host, port }, volume }, spec);
  for (const bad of ['demo', '[::1]', 'localhost:', 'localhost:/', 'localhost:/a/b', ':/demo', 'h:99999:/v']) {
    t.throws(() => parseVolumeSource(bad), { instanceOf: UsageError }, bad);
  }
  t.throws(() => parseVolumeSource('demo'), { message: /"demo" is not HOST\[:PORT\]:\/VOLUME or HOST\[:PORT\]:VOLUME \(for example: localhost:\/demo\)/ });
});

test('helper command line: spec and dir first, flags bundled or apart, option values attached or next', (t) => {
  const a = parseHelperArgs(['h:/v', '/mnt/x', '-sfnv', '-o', 'rw,_netdev,defaults,x-systemd.automount,comment=a,nofail,noatime,frob', '-t', 'brickfs']);
  t.like(a, { spec: 'h:/v', dir: '/mnt/x', sloppy: true, fake: true, verbose: true });
  t.deepEqual(a.options, ['rw', 'noatime']);
  t.deepEqual(a.notes, ['ignoring unknown mount option "frob" (-s)']);
  const b = parseHelperArgs(['-orw,log-level=info', '-N', '1234', '--', 'h:v', '/mnt/y']);
  t.deepEqual(b.options, ['rw', 'log-level=info']);
  t.deepEqual(mountCommand(b).slice(0, 3), ['nsenter', '--mount=/proc/1234/ns/mnt', '--']);
  t.deepEqual(mountCommand(b).slice(-5), ['mount', 'h:v', '/mnt/y', '-o', 'rw,log-level=info']);
  t.deepEqual(mountCommand(parseHelperArgs(['h:v', '/m', '-o', '_netdev'])).slice(-3), ['mount', 'h:v', '/m'], 'no -o when nothing is left');
  for (const [argv, why] of [
    [['h:/v'], /give the volume and the mount point/],
    [['h:/v', '/m', 'extra'], /too many arguments: extra/],
    [['h:/v', '/m', '-o'], /-o needs a value/],
    [['h:/v', '/m', '-x'], /unknown flag -x/],
    [['h:/v', '/m', '-o', 'frob'], /unknown mount option "frob" \(-s ignores unknown options\)/],
    [['h:/v', '/m', '-o', 'suid'], /unknown mount option "suid"/],
    [['h:/v', '/m', '-o', 'remount'], /cannot be remounted/],
  ] as const) {
    t.throws(() => parseHelperArgs(argv), { instanceOf: HelperUsageError, message: why }, argv.join(' '));
  }
});
