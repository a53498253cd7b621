import test from 'ava';
import { brickVolfile, clientVolfile, listenHostFor, type VolgenInput } from '../../brick/mgmt/volgen.js';
import { parseVolfile } from '../../lib/volfile/parse.js';

const vol: VolgenInput = {
  name: 'demo',
  version: 3,
  bricks: [
    { host: 'localhost', port: 7100, path: '/srv/b0' },
    { host: '127.0.0.1', port: 7101, path: '/srv/b1' },
    { host: 'localhost', port: 7102, path: '/data/b2' },
  ],
  options: {},
};

test('client volfile: one protocol/client per brick, distribute on top', (t) => {
  const decls = parseVolfile(clientVolfile(vol));
  t.deepEqual(decls.map((d) => [d.name, d.type]), [
    ['demo-client-0', 'protocol/client'],
    ['demo-client-1', 'protocol/client'],
    ['demo-client-2', 'protocol/client'],
    ['demo-dht', 'cluster/distribute'],
  ]);
  t.deepEqual(decls[1]!.options, { 'remote-host': '127.0.0.1', 'remote-port': '7101', 'remote-subvolume': '/srv/b1' });
  t.deepEqual(decls[3]!.subvolumes, ['demo-client-0', 'demo-client-1', 'demo-client-2']);
  t.is(decls.at(-1)!.name, 'demo-dht', 'the last volume is the top');
});

test('client volfile: ping-timeout only when set, on every client', (t) => {
  const without = parseVolfile(clientVolfile(vol));
  t.true(without.every((d) => !('ping-timeout' in d.options)));
  const withIt = parseVolfile(clientVolfile({ ...vol, options: { 'network.ping-timeout': '10' } }));
  const clients = withIt.filter((d) => d.type === 'protocol/client');
  t.is(clients.length, 3);
  t.true(clients.every((d) => d.options['ping-timeout'] === '10'));
  t.false('ping-timeout' in withIt.at(-1)!.options, 'not on distribute');
});

test('client volfile: a single brick still has distribute on top', (t) => {
  const decls = parseVolfile(clientVolfile({ ...vol, bricks: [vol.bricks[0]!] }));
  t.deepEqual(decls.map((d) => d.type), ['protocol/client', 'cluster/distribute']);
});

test('brick volfile: posix → locks named by the brick path → server', (t) => {
  const decls = parseVolfile(brickVolfile(vol, vol.bricks[2]!));
  t.deepEqual(decls.map((d) => [d.name, d.type, d.subvolumes]), [
    ['demo-posix', 'storage/posix', []],
    ['/data/b2', 'features/locks', ['demo-posix']],
    ['demo-server', 'protocol/server', ['/data/b2']],
  ]);
  t.deepEqual(decls[0]!.options, { directory: '/data/b2' });
  t.deepEqual(decls[2]!.options, { 'listen-port': '7102', 'listen-host': '0.0.0.0' });
});

test('brick volfile: IPv6 brick hosts listen on every address', (t) => {
  t.is(listenHostFor('::1'), '::');
  t.is(listenHostFor('localhost'), '0.0.0.0');
  const decls = parseVolfile(brickVolfile(vol, { host: '::1', port: 7200, path: '/srv/v6' }));
  t.is(decls[2]!.options['listen-host'], '::');
});

test('volfiles carry a comment header with the version, ignored by the parser', (t) => {
  const text = clientVolfile(vol);
  t.regex(text, /^# Client volfile of volume demo, version 3/);
  t.notThrows(() => parseVolfile(text));
});

test('volgen is pure: same input, same text', (t) => {
  t.is(clientVolfile(vol), clientVolfile(structuredClone(vol)));
  t.is(brickVolfile(vol, vol.bricks[0]!), brickVolfile(structuredClone(vol), vol.bricks[0]!));
});
