import test from 'ava';
import { brickVolfile, clientGraph, clientVolfile, listenHostFor, volumeType, type VolgenInput } from '../../brick/mgmt/volgen.js';
import { Stripe } from '../../client/xlators/cluster/stripe/index.js';
import { graphFromVolfile } from '../../lib/graph.js';
import { VOLUME_OPTIONS } from '../../lib/mgmt/volume-options.js';
import { parseVolfile } from '../../lib/volfile/parse.js';
import '../../client/xlators/index.js';

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

test('client volfile: one protocol/client per brick, distribute over them, md-cache on top', (t) => {
  const decls = parseVolfile(clientVolfile(vol));
  t.deepEqual(decls.map((d) => [d.name, d.type]), [
    ['demo-client-0', 'protocol/client'],
    ['demo-client-1', 'protocol/client'],
    ['demo-client-2', 'protocol/client'],
    ['demo-dht', 'cluster/distribute'],
    ['demo-md-cache', 'performance/md-cache'],
  ]);
  t.deepEqual(decls[1]!.options, { 'remote-host': '127.0.0.1', 'remote-port': '7101', 'remote-subvolume': '/srv/b1' });
  t.deepEqual(decls[3]!.subvolumes, ['demo-client-0', 'demo-client-1', 'demo-client-2']);
  t.deepEqual(decls[4]!.subvolumes, ['demo-dht']);
  t.is(decls.at(-1)!.name, 'demo-md-cache', 'the last volume is the top');
});

test('replica 2 over 4 bricks: consecutive pairs are replica sets, distribute over them', (t) => {
  const v = { ...vol, name: 'r', bricks: [0, 1, 2, 3].map((i) => ({ host: 'localhost', port: 7300 + i, path: `/srv/r${i}` })), replicaCount: 2 };
  const decls = parseVolfile(clientVolfile(v));
  t.deepEqual(decls.slice(4).map((d) => [d.name, d.type, d.subvolumes]), [
    ['r-replicate-0', 'cluster/replicate', ['r-client-0', 'r-client-1']],
    ['r-replicate-1', 'cluster/replicate', ['r-client-2', 'r-client-3']],
    ['r-dht', 'cluster/distribute', ['r-replicate-0', 'r-replicate-1']],
    ['r-md-cache', 'performance/md-cache', ['r-dht']],
  ]);
  t.is(volumeType(v), 'distributed-replicate');
  t.is(volumeType({ ...v, bricks: v.bricks.slice(0, 2) }), 'replicate');
  const q = parseVolfile(clientVolfile({ ...v, options: { 'cluster.quorum-type': 'none' } }));
  t.true(q.filter((d) => d.type === 'cluster/replicate').every((d) => d.options['quorum-type'] === 'none'));
  t.notThrows(() => graphFromVolfile(clientVolfile(v)));
});

test('stripe 2 replica 2: replica pairs are the stripe children, no distribute', (t) => {
  const v = { ...vol, name: 'sr', bricks: [0, 1, 2, 3].map((i) => ({ host: 'localhost', port: 7400 + i, path: `/srv/sr${i}` })), replicaCount: 2, stripeCount: 2 };
  const decls = parseVolfile(clientVolfile(v));
  t.deepEqual(decls.slice(4).map((d) => [d.name, d.type, d.subvolumes]), [
    ['sr-replicate-0', 'cluster/replicate', ['sr-client-0', 'sr-client-1']],
    ['sr-replicate-1', 'cluster/replicate', ['sr-client-2', 'sr-client-3']],
    ['sr-stripe-0', 'cluster/stripe', ['sr-replicate-0', 'sr-replicate-1']],
    ['sr-md-cache', 'performance/md-cache', ['sr-stripe-0']],
  ]);
  t.is(volumeType(v), 'striped-replicate');
  t.notThrows(() => graphFromVolfile(clientVolfile(v)));
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
  t.deepEqual(decls.map((d) => d.type), ['protocol/client', 'cluster/distribute', 'performance/md-cache']);
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

const four: VolgenInput = {
  name: 'ds',
  bricks: [0, 1, 2, 3].map((i) => ({ host: 'localhost', port: 7200 + i, path: `/srv/s${i}` })),
  options: {},
};

test('stripe N over N bricks: cluster/stripe is the top, no distribute', (t) => {
  const vol = { ...four, name: 's', bricks: four.bricks.slice(0, 2), stripeCount: 2 };
  const decls = parseVolfile(clientVolfile(vol));
  t.deepEqual(decls.map((d) => [d.name, d.type, d.subvolumes]), [
    ['s-client-0', 'protocol/client', []],
    ['s-client-1', 'protocol/client', []],
    ['s-stripe-0', 'cluster/stripe', ['s-client-0', 's-client-1']],
    ['s-md-cache', 'performance/md-cache', ['s-stripe-0']],
  ]);
  t.deepEqual(decls[2]!.options, {}, 'default block size unless set');
  t.is(volumeType(vol), 'stripe');
  t.notThrows(() => graphFromVolfile(clientVolfile(vol)));
});

test('stripe 2 over 4 bricks: consecutive pairs are stripe sets, distribute over the sets', (t) => {
  const vol = { ...four, stripeCount: 2 };
  const decls = parseVolfile(clientVolfile(vol));
  t.deepEqual(decls.slice(4).map((d) => [d.name, d.type, d.subvolumes]), [
    ['ds-stripe-0', 'cluster/stripe', ['ds-client-0', 'ds-client-1']],
    ['ds-stripe-1', 'cluster/stripe', ['ds-client-2', 'ds-client-3']],
    ['ds-dht', 'cluster/distribute', ['ds-stripe-0', 'ds-stripe-1']],
    ['ds-md-cache', 'performance/md-cache', ['ds-dht']],
  ]);
  t.is(volumeType(vol), 'distributed-stripe');
  t.is(volumeType(four), 'distribute');
  t.is(graphFromVolfile(clientVolfile(vol)).top.name, 'ds-md-cache');
  t.throws(() => clientGraph({ ...four, stripeCount: 3 }), { instanceOf: RangeError });
});

test('cluster.stripe-block-size lands on every cluster/stripe, and only there', (t) => {
  const decls = parseVolfile(clientVolfile({ ...four, stripeCount: 2, options: { 'cluster.stripe-block-size': '65536', 'network.ping-timeout': '9' } }));
  t.true(decls.filter((d) => d.type === 'cluster/stripe').every((d) => d.options['block-size'] === '65536'));
  t.true(decls.filter((d) => d.type !== 'cluster/stripe').every((d) => !('block-size' in d.options)));
  t.true(decls.filter((d) => d.type === 'protocol/client').every((d) => d.options['ping-timeout'] === '9'));
  // On a volume without stripe sets the option has nowhere to go.
  t.false(clientVolfile({ ...four, options: { 'cluster.stripe-block-size': '65536' } }).includes('block-size'));
});

test('the volume option and the translator accept the same block sizes', (t) => {
  const vol = VOLUME_OPTIONS['cluster.stripe-block-size']!.spec;
  const xl = Stripe.options['block-size'];
  t.deepEqual([vol.type, vol.min, vol.max, vol.multipleOf], [xl.type, xl.min, xl.max, xl.multipleOf]);
});
