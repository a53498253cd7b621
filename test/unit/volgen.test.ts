import test from 'ava';
import {
  brickVolfile, clientGraph, clientVolfile, distributeUnits, listenHostFor, serviceVolfile, volumeType, type VolgenInput,
} from '../../brick/mgmt/volgen.js';
import { weightsFromFree } from '../../brick/mgmt/brick-ops.js';
import { Stripe } from '../../client/xlators/cluster/stripe/index.js';
import { IoCache } from '../../client/xlators/performance/io-cache.js';
import { ReadAhead } from '../../client/xlators/performance/read-ahead.js';
import { ReaddirAhead } from '../../client/xlators/performance/readdir-ahead.js';
import { graphFromVolfile } from '../../lib/graph.js';
import { validateVolumeOption } from '../../lib/mgmt/args.js';
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
    ['demo-quick-read', 'performance/quick-read'], ['demo-open-behind', 'performance/open-behind'], ['demo-write-behind', 'performance/write-behind'], ['demo-io-cache', 'performance/io-cache'], ['demo-read-ahead', 'performance/read-ahead'], ['demo-nl-cache', 'performance/nl-cache'], ['demo-readdir-ahead', 'performance/readdir-ahead'], ['demo-md-cache', 'performance/md-cache'],
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
    ['r-quick-read', 'performance/quick-read', ['r-dht']],
    ['r-open-behind', 'performance/open-behind', ['r-quick-read']],
    ['r-write-behind', 'performance/write-behind', ['r-open-behind']],
    ['r-io-cache', 'performance/io-cache', ['r-write-behind']],
    ['r-read-ahead', 'performance/read-ahead', ['r-io-cache']],
    ['r-nl-cache', 'performance/nl-cache', ['r-read-ahead']],
    ['r-readdir-ahead', 'performance/readdir-ahead', ['r-nl-cache']],
    ['r-md-cache', 'performance/md-cache', ['r-readdir-ahead']],
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
    ['sr-quick-read', 'performance/quick-read', ['sr-stripe-0']],
    ['sr-open-behind', 'performance/open-behind', ['sr-quick-read']],
    ['sr-write-behind', 'performance/write-behind', ['sr-open-behind']],
    ['sr-io-cache', 'performance/io-cache', ['sr-write-behind']],
    ['sr-read-ahead', 'performance/read-ahead', ['sr-io-cache']],
    ['sr-nl-cache', 'performance/nl-cache', ['sr-read-ahead']],
    ['sr-readdir-ahead', 'performance/readdir-ahead', ['sr-nl-cache']],
    ['sr-md-cache', 'performance/md-cache', ['sr-readdir-ahead']],
  ]);
  t.is(volumeType(v), 'striped-replicate');
  t.notThrows(() => graphFromVolfile(clientVolfile(v)));
});

test('service volfile: its protocol/clients ask for no invalidation pushes; the mounts\' do', (t) => {
  const clients = (text: string) => parseVolfile(text).filter((d) => d.type === 'protocol/client');
  t.deepEqual(clients(serviceVolfile(vol)).map((d) => d.options.invalidations), ['off', 'off', 'off']);
  t.deepEqual(clients(clientVolfile(vol)).map((d) => d.options.invalidations), [undefined, undefined, undefined]);
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
  t.deepEqual(decls.map((d) => d.type), ['protocol/client', 'cluster/distribute', 'performance/quick-read', 'performance/open-behind', 'performance/write-behind', 'performance/io-cache', 'performance/read-ahead', 'performance/nl-cache', 'performance/readdir-ahead', 'performance/md-cache']);
});

test('brick volfile: posix → locks named by the brick path → server', (t) => {
  const decls = parseVolfile(brickVolfile(vol, vol.bricks[2]!));
  t.deepEqual(decls.map((d) => [d.name, d.type, d.subvolumes]), [
    ['demo-posix', 'storage/posix', []],
    ['/data/b2', 'features/locks', ['demo-posix']],
    ['demo-server', 'protocol/server', ['/data/b2']],
  ]);
  t.deepEqual(decls[0]!.options, { directory: '/data/b2' });
  t.deepEqual(decls[2]!.options, { 'listen-port': '7102', 'listen-host': '127.0.0.1', 'cache-invalidation': 'on' });
});

test('brick volfile: features.cache-invalidation lands on protocol/server, never in the client volfile', (t) => {
  const off = { ...vol, options: { ...vol.options, 'features.cache-invalidation': 'false' } };
  t.is(parseVolfile(brickVolfile(off, vol.bricks[0]!))[2]!.options['cache-invalidation'], 'off');
  t.is(parseVolfile(brickVolfile({ ...vol, options: { ...vol.options, 'features.cache-invalidation': 'true' } }, vol.bricks[0]!))[2]!.options['cache-invalidation'], 'on');
  t.notRegex(clientVolfile(off), /cache-invalidation/);
});

test('brick volfile: storage.writeback-window lands on storage/posix, never in the client volfile', (t) => {
  const set = { ...vol, options: { ...vol.options, 'storage.writeback-window': validateVolumeOption('storage.writeback-window', '16M') } };
  t.deepEqual(parseVolfile(brickVolfile(set, vol.bricks[0]!))[0]!.options, { directory: '/srv/b0', 'writeback-window': String(16 * 1024 * 1024) });
  t.notRegex(clientVolfile(set), /writeback-window/);
  t.throws(() => validateVolumeOption('storage.writeback-window', 'lots'));
});

test('brick volfile: a brick listens on its host\'s address only, never on every address', (t) => {
  t.is(listenHostFor('localhost'), '127.0.0.1');
  t.is(listenHostFor('127.0.0.1'), '127.0.0.1');
  t.is(listenHostFor('192.0.2.7'), '192.0.2.7');
  t.is(listenHostFor('::1'), '::1');
  t.is(listenHostFor('[::1]'), '::1');
  t.is(listenHostFor('Storage1.Example.COM'), 'storage1.example.com');
  const decls = parseVolfile(brickVolfile(vol, { host: '::1', port: 7200, path: '/srv/v6' }));
  t.is(decls[2]!.options['listen-host'], '::1');
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
    ['s-quick-read', 'performance/quick-read', ['s-stripe-0']],
    ['s-open-behind', 'performance/open-behind', ['s-quick-read']],
    ['s-write-behind', 'performance/write-behind', ['s-open-behind']],
    ['s-io-cache', 'performance/io-cache', ['s-write-behind']],
    ['s-read-ahead', 'performance/read-ahead', ['s-io-cache']],
    ['s-nl-cache', 'performance/nl-cache', ['s-read-ahead']],
    ['s-readdir-ahead', 'performance/readdir-ahead', ['s-nl-cache']],
    ['s-md-cache', 'performance/md-cache', ['s-readdir-ahead']],
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
    ['ds-quick-read', 'performance/quick-read', ['ds-dht']],
    ['ds-open-behind', 'performance/open-behind', ['ds-quick-read']],
    ['ds-write-behind', 'performance/write-behind', ['ds-open-behind']],
    ['ds-io-cache', 'performance/io-cache', ['ds-write-behind']],
    ['ds-read-ahead', 'performance/read-ahead', ['ds-io-cache']],
    ['ds-nl-cache', 'performance/nl-cache', ['ds-read-ahead']],
    ['ds-readdir-ahead', 'performance/readdir-ahead', ['ds-nl-cache']],
    ['ds-md-cache', 'performance/md-cache', ['ds-readdir-ahead']],
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

const brick = (slot: number, id = `b${slot}`): VolgenInput['bricks'][number] => ({ host: 'localhost', port: 7500 + slot, path: `/srv/x${slot}`, slot, id });

test('slots name the translators: after a removal the remaining bricks keep their names', (t) => {
  // Bricks stored without slots are named by their index, as before slots existed.
  const fresh = parseVolfile(clientVolfile({ ...vol, bricks: vol.bricks.map((b) => ({ ...b })) }));
  t.deepEqual(fresh.filter((d) => d.type === 'protocol/client').map((d) => d.name), ['demo-client-0', 'demo-client-1', 'demo-client-2']);
  // Slot 1 was removed.
  const dist = parseVolfile(clientVolfile({ name: 'v', bricks: [brick(0), brick(2), brick(3)], options: {}, layoutEpoch: 2 }));
  t.deepEqual(dist.map((d) => d.name), ['v-client-0', 'v-client-2', 'v-client-3', 'v-dht', 'v-quick-read', 'v-open-behind', 'v-write-behind', 'v-io-cache', 'v-read-ahead', 'v-nl-cache', 'v-readdir-ahead', 'v-md-cache']);
  t.deepEqual(dist[3]!.subvolumes, ['v-client-0', 'v-client-2', 'v-client-3']);
  t.is(dist[1]!.options['remote-subvolume'], '/srv/x2');
  // replica 2: the second pair (slots 2, 3) was removed, a third one (slots 4, 5) added.
  const rep = parseVolfile(clientVolfile({ name: 'r', replicaCount: 2, bricks: [0, 1, 4, 5].map((s) => brick(s)), options: {} }));
  t.deepEqual(rep.slice(4).map((d) => [d.name, d.subvolumes]), [
    ['r-replicate-0', ['r-client-0', 'r-client-1']],
    ['r-replicate-2', ['r-client-4', 'r-client-5']],
    ['r-dht', ['r-replicate-0', 'r-replicate-2']],
    ['r-quick-read', ['r-dht']],
    ['r-open-behind', ['r-quick-read']],
    ['r-write-behind', ['r-open-behind']],
    ['r-io-cache', ['r-write-behind']],
    ['r-read-ahead', ['r-io-cache']],
    ['r-nl-cache', ['r-read-ahead']],
    ['r-readdir-ahead', ['r-nl-cache']],
    ['r-md-cache', ['r-readdir-ahead']],
  ]);
  // stripe 2 replica 2: stripe sets are numbered by 4-brick blocks.
  const sr = parseVolfile(clientVolfile({ name: 'sr', replicaCount: 2, stripeCount: 2, bricks: [0, 1, 2, 3, 8, 9, 10, 11].map((s) => brick(s)), options: {} }));
  t.deepEqual(sr.filter((d) => d.type !== 'protocol/client').map((d) => d.name), [
    'sr-replicate-0', 'sr-replicate-1', 'sr-replicate-4', 'sr-replicate-5', 'sr-stripe-0', 'sr-stripe-2', 'sr-dht', 'sr-quick-read', 'sr-open-behind', 'sr-write-behind', 'sr-io-cache', 'sr-read-ahead', 'sr-nl-cache', 'sr-readdir-ahead', 'sr-md-cache',
  ]);
  t.deepEqual(distributeUnits({ name: 'sr', replicaCount: 2, stripeCount: 2, bricks: [0, 1, 2, 3, 8, 9, 10, 11].map((s) => brick(s)), options: {} }), [
    { name: 'sr-stripe-0', bricks: [0, 1, 2, 3] },
    { name: 'sr-stripe-2', bricks: [4, 5, 6, 7] },
  ]);
  t.throws(() => clientGraph({ name: 'v', bricks: [brick(1), brick(1, 'other')], options: {} }), { instanceOf: RangeError, message: /two translators would be named v-client-1/ });
});

test('layout options on cluster/distribute: only when they differ from the defaults', (t) => {
  const base: VolgenInput = { name: 'v', bricks: [0, 1, 2, 3].map((s) => brick(s)), options: {} };
  const dht = (v: VolgenInput): Record<string, string> => parseVolfile(clientVolfile(v)).find((d) => d.type === 'cluster/distribute')!.options;
  t.deepEqual(dht(base), {});
  t.deepEqual(dht({ ...base, layoutEpoch: 0 }), {});
  t.deepEqual(dht({ ...base, layoutEpoch: 3, layoutWeights: [10, 20, 30, 1], removing: { bricks: ['b1'] }, options: { 'cluster.lookup-optimize': 'off' } }), {
    'lookup-optimize': 'off',
    'layout-epoch': '3',
    'layout-weights': '10,20,30,1',
    'decommissioned-bricks': 'v-client-1',
  });
  // Replica sets: the set is decommissioned, named as distribute knows it.
  const rep: VolgenInput = { name: 'r', replicaCount: 2, bricks: [0, 1, 2, 3, 4, 5].map((s) => brick(s)), options: {}, layoutEpoch: 1, removing: { bricks: ['b2', 'b3'] } };
  t.is(dht(rep)['decommissioned-bricks'], 'r-replicate-1');
  t.throws(() => clientVolfile({ ...base, layoutWeights: [1, 2] }), { instanceOf: RangeError, message: /2 layout weights .* for 4 distribute subvolumes/ });
  // The distribute translator accepts what volgen writes.
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...base, layoutEpoch: 2, layoutWeights: [1, 2, 3, 4], removing: { bricks: ['b3'] } })));
  t.notThrows(() => graphFromVolfile(clientVolfile(rep)));
});

test('a replicated volume whose layout changed keeps distribute over a single set', (t) => {
  const one: VolgenInput = { name: 'r', replicaCount: 2, bricks: [2, 3].map((s) => brick(s)), options: {} };
  t.false(clientVolfile(one).includes('cluster/distribute'), 'a fresh replica volume has no distribute');
  const grown = parseVolfile(clientVolfile({ ...one, layoutEpoch: 2 }));
  t.deepEqual(grown.slice(2).map((d) => [d.name, d.subvolumes]), [
    ['r-replicate-1', ['r-client-2', 'r-client-3']],
    ['r-dht', ['r-replicate-1']],
    ['r-quick-read', ['r-dht']],
    ['r-open-behind', ['r-quick-read']],
    ['r-write-behind', ['r-open-behind']],
    ['r-io-cache', ['r-write-behind']],
    ['r-read-ahead', ['r-io-cache']],
    ['r-nl-cache', ['r-read-ahead']],
    ['r-readdir-ahead', ['r-nl-cache']],
    ['r-md-cache', ['r-readdir-ahead']],
  ]);
});

test('layout weights: free GiB when free space differs by more than 10%, else none', (t) => {
  const G = 1024 ** 3;
  t.is(weightsFromFree([100 * G, 105 * G, 109 * G]), undefined, 'within 10%: equal ranges');
  t.deepEqual(weightsFromFree([100 * G, 200 * G]), [100, 200]);
  t.deepEqual(weightsFromFree([0.2 * G, 50 * G]), [1, 50], 'at least 1');
  t.is(weightsFromFree([100 * G]), undefined, 'one subvolume: nothing to weigh');
  // A drained subvolume gets a weight but does not take part in the decision.
  t.is(weightsFromFree([100 * G, 100 * G, 10 * G], [false, false, true]), undefined);
  t.deepEqual(weightsFromFree([100 * G, 300 * G, 10 * G], [false, false, true]), [100, 300, 10]);
  t.is(weightsFromFree([0.3 * G, 0.6 * G]), undefined, 'rounding to the same weight: none');
});

test('performance translators: on by default, `volume set performance.X off` takes one out, their options reach them', (t) => {
  const types = (options: Record<string, string>) => parseVolfile(clientVolfile({ ...vol, options })).map((d) => d.type);
  t.deepEqual(types({}).slice(-8), ['performance/quick-read', 'performance/open-behind', 'performance/write-behind', 'performance/io-cache', 'performance/read-ahead', 'performance/nl-cache', 'performance/readdir-ahead', 'performance/md-cache']);
  t.false(types({ 'performance.open-behind': 'false' }).includes('performance/open-behind'));
  t.true(types({ 'performance.open-behind': 'true' }).includes('performance/open-behind'));
  t.false(types({ 'performance.write-behind': 'false' }).includes('performance/write-behind'));
  t.false(types({ 'performance.read-ahead': 'false' }).includes('performance/read-ahead'));
  t.false(types({ 'performance.io-cache': 'false' }).includes('performance/io-cache'));
  t.false(types({ 'performance.nl-cache': 'false' }).includes('performance/nl-cache'));
  t.false(types({ 'performance.quick-read': 'false' }).includes('performance/quick-read'));
  const noMd = parseVolfile(clientVolfile({ ...vol, options: { 'performance.md-cache': 'false' } }));
  t.is(noMd.at(-1)!.type, 'performance/readdir-ahead', 'the top is whatever is left on');
  const sized = parseVolfile(clientVolfile({ ...vol, options: { 'performance.write-behind-window-size': '4194304', 'performance.write-behind': 'true' } }));
  const wb = sized.find((d) => d.type === 'performance/write-behind')!;
  t.deepEqual(wb.options, { 'cache-size': '4194304' }, 'the switch itself is no translator option');
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: { 'performance.write-behind-window-size': '4194304' } })));
  // write-behind sits on open-behind, or lower when open-behind is off.
  const noOb = parseVolfile(clientVolfile({ ...vol, options: { 'performance.open-behind': 'false' } }));
  t.deepEqual(noOb.find((d) => d.type === 'performance/write-behind')!.subvolumes, ['demo-quick-read']);
  // open-behind sits on quick-read, or on the cluster translators when quick-read is off.
  const noQr = parseVolfile(clientVolfile({ ...vol, options: { 'performance.quick-read': 'false' } }));
  t.deepEqual(noQr.find((d) => d.type === 'performance/open-behind')!.subvolumes, ['demo-dht']);
  // quick-read's options reach it under its own names.
  const qrOpts = { 'performance.quick-read-max-file-size': '131072', 'performance.quick-read-cache-timeout': '3', 'performance.quick-read-cache-size': '1048576' };
  const qr = parseVolfile(clientVolfile({ ...vol, options: qrOpts })).find((d) => d.type === 'performance/quick-read')!;
  t.deepEqual(qr.options, { 'max-file-size': '131072', 'cache-timeout': '3', 'cache-size': '1048576' });
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: qrOpts })));
  // read-ahead sits on write-behind, or lower when write-behind is off.
  const noWb = parseVolfile(clientVolfile({ ...vol, options: { 'performance.write-behind': 'false', 'performance.open-behind': 'false', 'performance.io-cache': 'false', 'performance.quick-read': 'false', 'performance.read-ahead-page-count': '8' } }));
  const ra = noWb.find((d) => d.type === 'performance/read-ahead')!;
  t.deepEqual([ra.subvolumes, ra.options], [['demo-dht'], { 'page-count': '8' }]);
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: { 'performance.read-ahead-page-count': '16' } })));
  // io-cache sits between write-behind and read-ahead; GlusterFS's keys land on its options.
  const ioc = parseVolfile(clientVolfile({ ...vol, options: {
    'performance.io-cache-size': '8388608', 'performance.cache-refresh-timeout': '3', 'performance.cache-max-file-size': '1048576', 'performance.cache-min-file-size': '1',
  } }));
  const io = ioc.find((d) => d.type === 'performance/io-cache')!;
  t.deepEqual([io.subvolumes, io.options], [['demo-write-behind'], { 'cache-size': '8388608', 'cache-timeout': '3', 'max-file-size': '1048576', 'min-file-size': '1' }]);
  t.deepEqual(ioc.find((d) => d.type === 'performance/read-ahead')!.subvolumes, ['demo-io-cache']);
  t.deepEqual(parseVolfile(clientVolfile({ ...vol, options: { 'performance.cache-size': '1048576' } })).find((d) => d.type === 'performance/io-cache')!.options, { 'cache-size': '1048576' });
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: { 'performance.io-cache-size': '0', 'performance.cache-refresh-timeout': '61' } })));
  const prio = (v: string) => parseVolfile(clientVolfile({ ...vol, options: { 'performance.cache-priority': v } })).find((d) => d.type === 'performance/io-cache')!.options;
  t.deepEqual(prio('*.h:3,*.tmp:0'), { priority: '*.h:3,*.tmp:0' });
  t.deepEqual(prio(''), {}, 'an empty value is the default, not an option line without a value');
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: { 'performance.cache-priority': '' } })));
});

test('the io-cache volume options and the translator accept the same values', (t) => {
  for (const [key, opt] of [['performance.io-cache-size', 'cache-size'], ['performance.cache-size', 'cache-size'], ['performance.cache-refresh-timeout', 'cache-timeout'],
    ['performance.cache-max-file-size', 'max-file-size'], ['performance.cache-min-file-size', 'min-file-size']] as const) {
    const v = VOLUME_OPTIONS[key]!;
    const xl = IoCache.options[opt];
    t.deepEqual([v.xlator, v.key, v.spec.type, v.spec.min, v.spec.max], ['performance/io-cache', opt, xl.type, xl.min, 'max' in xl ? xl.max : undefined], key);
  }
});

test('the volume option and the translator accept the same read-ahead page counts', (t) => {
  const vol = VOLUME_OPTIONS['performance.read-ahead-page-count']!.spec;
  const xl = ReadAhead.options['page-count'];
  t.deepEqual([vol.type, vol.min, vol.max], [xl.type, xl.min, xl.max]);
});

test('readdir-ahead: between nl-cache and md-cache when on, its options reach it, and they accept what the translator does', (t) => {
  const decls = (options: Record<string, string>) => parseVolfile(clientVolfile({ ...vol, options }));
  const on = decls({ 'performance.readdir-ahead': 'true', 'performance.readdir-ahead-parallel': '4', 'performance.readdir-ahead-cache-timeout': '2' });
  t.deepEqual(on.slice(-3).map((d) => d.type), ['performance/nl-cache', 'performance/readdir-ahead', 'performance/md-cache']);
  const rda = on.find((d) => d.type === 'performance/readdir-ahead')!;
  t.deepEqual([rda.name, rda.subvolumes, rda.options], ['demo-readdir-ahead', ['demo-nl-cache'], { parallel: '4', 'cache-timeout': '2', 'reuse-listings': 'true' }]);
  t.deepEqual(on.find((d) => d.type === 'performance/md-cache')!.subvolumes, ['demo-readdir-ahead']);
  t.false(decls({ 'performance.readdir-ahead': 'false' }).some((d) => d.type === 'performance/readdir-ahead'));
  t.notThrows(() => graphFromVolfile(clientVolfile({ ...vol, options: { 'performance.readdir-ahead': 'true', 'performance.readdir-ahead-max-prefetch': '0' } })));
  for (const [key, xlKey] of [['max-prefetch', 'max-prefetch'], ['parallel', 'parallel'], ['cache-timeout', 'cache-timeout'], ['cache-size', 'cache-size']] as const) {
    const v = VOLUME_OPTIONS[`performance.readdir-ahead-${key}`]!.spec;
    const x = ReaddirAhead.options[xlKey];
    t.deepEqual([v.type, v.min, v.max], [x.type, x.min, x.max], key);
  }
  t.is(VOLUME_OPTIONS['performance.readdir-ahead-reuse-listings']!.spec.type, ReaddirAhead.options['reuse-listings'].type);
});

/** The value volgen writes for one option of one translator type, given the volume's options. */
const written = (type: string, key: string) => (options: Record<string, string>): string | undefined =>
  clientGraph({ ...vol, options }).find((d) => d.type === type)!.options[key];

test('readdir-ahead reuses listings while the bricks push invalidations, not when they do not, and a set value always wins', (t) => {
  const reuse = written('performance/readdir-ahead', 'reuse-listings');
  t.is(reuse({}), 'true');
  t.is(reuse({ 'features.cache-invalidation': 'true' }), 'true');
  t.is(reuse({ 'features.cache-invalidation': 'false' }), undefined, 'the translator\'s default (off)');
  t.is(reuse({ 'performance.readdir-ahead-reuse-listings': 'false' }), 'false');
  t.is(reuse({ 'features.cache-invalidation': 'false', 'performance.readdir-ahead-reuse-listings': 'true' }), 'true');
});

test('nl-cache trusts a listing 60 s while the bricks push invalidations, its own 1 s when they do not, and a set timeout always', (t) => {
  const nlTimeout = written('performance/nl-cache', 'nl-cache-timeout');
  t.is(nlTimeout({}), '60');
  t.is(nlTimeout({ 'features.cache-invalidation': 'true' }), '60');
  t.is(nlTimeout({ 'features.cache-invalidation': 'false' }), undefined, 'the translator\'s default (1 s)');
  t.is(nlTimeout({ 'performance.nl-cache-timeout': '5' }), '5');
  t.is(nlTimeout({ 'features.cache-invalidation': 'false', 'performance.nl-cache-timeout': '30' }), '30');
});

test('md-cache keeps attributes 60 s while the bricks push invalidations, its own 1 s when they do not, and a set timeout always', (t) => {
  const mdTimeout = written('performance/md-cache', 'md-cache-timeout');
  t.is(mdTimeout({}), '60');
  t.is(mdTimeout({ 'features.cache-invalidation': 'false' }), undefined, 'the translator\'s default (1 s)');
  t.is(mdTimeout({ 'performance.md-cache-timeout': '0' }), '0', 'off stays off');
  t.is(mdTimeout({ 'features.cache-invalidation': 'false', 'performance.md-cache-timeout': '600' }), '600');
});

test('diagnostics.trace: debug/trace on top of the client graph and trace on the bricks\' protocol/server, only while on; the endpoint reaches both', (t) => {
  const off = parseVolfile(clientVolfile(vol));
  t.false(off.some((d) => d.type === 'debug/trace'));
  t.false(brickVolfile(vol, vol.bricks[0]!).includes('trace'));
  const on: VolgenInput = { ...vol, options: { 'diagnostics.trace': 'on', 'diagnostics.trace-endpoint': 'http://zipkin:9411/api/v2/spans' } };
  const decls = parseVolfile(clientVolfile(on));
  t.deepEqual([decls.at(-1)!.name, decls.at(-1)!.type], ['demo-trace', 'debug/trace']);
  t.deepEqual(decls.at(-1)!.options, { endpoint: 'http://zipkin:9411/api/v2/spans' });
  const server = parseVolfile(brickVolfile(on, vol.bricks[0]!)).find((d) => d.type === 'protocol/server')!;
  t.is(server.options['trace'], 'on');
  t.is(server.options['trace-endpoint'], 'http://zipkin:9411/api/v2/spans');
  t.notThrows(() => graphFromVolfile(clientVolfile(on)), 'the client volfile builds');
  t.false('trace-endpoint' in parseVolfile(brickVolfile({ ...vol, options: { 'diagnostics.trace': 'on' } }, vol.bricks[0]!)).find((d) => d.type === 'protocol/server')!.options);
});
