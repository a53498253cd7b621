import test from 'ava';
import { UsageError } from '../../lib/errors.js';
import {
  formatBrick, parseAddBrickArgs, parseBrickSpec, parseCreateArgs, parseRebalanceArgs, parseRemoveBrickArgs, validateVolumeName,
  validateVolumeOption,
} from '../../lib/mgmt/args.js';

const usage = { instanceOf: UsageError };

test('brick specs: host, optional port, absolute path', (t) => {
  t.deepEqual(parseBrickSpec('localhost:/srv/b1'), { host: 'localhost', path: '/srv/b1' });
  t.deepEqual(parseBrickSpec('server1:7200:/srv/b1/'), { host: 'server1', port: 7200, path: '/srv/b1' });
  t.deepEqual(parseBrickSpec('127.0.0.1:/srv/../data/b'), { host: '127.0.0.1', path: '/data/b' });
  t.deepEqual(parseBrickSpec('::1:/srv/b'), { host: '::1', path: '/srv/b' });
  t.deepEqual(parseBrickSpec('[::1]:7300:/srv/b'), { host: '::1', port: 7300, path: '/srv/b' });
});

test('brick specs: relative or missing paths are usage errors with an example', (t) => {
  const rel = t.throws(() => parseBrickSpec('localhost:bricks/b1'), usage);
  t.regex(rel!.message, /not absolute/);
  t.regex(rel!.message, /for example: localhost:\//);
  t.regex(t.throws(() => parseBrickSpec('/srv/b1'), usage)!.message, /has no host.*localhost:\/srv\/b1/);
  t.throws(() => parseBrickSpec('localhost'), usage);
  t.throws(() => parseBrickSpec(':/srv/b'), usage);
  t.throws(() => parseBrickSpec('localhost:/'), usage);
  t.throws(() => parseBrickSpec('localhost:/srv/my brick'), usage);
  t.throws(() => parseBrickSpec('localhost:/srv/b#1'), usage);
  t.throws(() => parseBrickSpec('localhost:99999:/srv/b'), usage);
  t.throws(() => parseBrickSpec('localhost:port:/srv/b'), usage);
  t.throws(() => parseBrickSpec('bad host!:/srv/b'), usage);
});

test('formatBrick round-trips', (t) => {
  for (const s of ['localhost:/srv/b1', 'h:7200:/srv/b1', '[::1]:7300:/srv/b']) t.is(formatBrick(parseBrickSpec(s)), s);
  t.is(formatBrick({ host: '::1', port: 7300, path: '/b' }, false), '::1:/b');
});

test('volume names', (t) => {
  for (const ok of ['demo', 'vol_1', 'a-b', '_x', 'A9']) t.notThrows(() => validateVolumeName(ok));
  for (const bad of ['', '-x', 'a b', 'a/b', 'a.b', 'é', 'x'.repeat(65)]) t.throws(() => validateVolumeName(bad), usage, bad);
});

test('create arguments: bricks, replica and stripe counts', (t) => {
  t.deepEqual(parseCreateArgs('v', ['localhost:/a', 'localhost:/b']), { name: 'v', bricks: ['localhost:/a', 'localhost:/b'], force: false });
  const six = ['h:/a', 'h:/b', 'h:/c', 'h:/d', 'h:/e', 'h:/f'];
  t.deepEqual(parseCreateArgs('v', ['replica', '2', 'stripe', '3', ...six], true), {
    name: 'v', bricks: six, replica: 2, stripe: 3, force: true,
  });
  t.regex(t.throws(() => parseCreateArgs('v', ['replica', '2', 'stripe', '3', 'h:/a', 'h:/b', 'h:/c']), usage)!.message, /multiple of 6 bricks/);
  t.regex(t.throws(() => parseCreateArgs('v', []), usage)!.message, /no bricks/);
  t.regex(t.throws(() => parseCreateArgs('v', ['replica', '2']), usage)!.message, /no bricks/);
  t.throws(() => parseCreateArgs('v', ['replica', '1', 'h:/a']), usage);
  t.throws(() => parseCreateArgs('v', ['replica', 'x', 'h:/a']), usage);
  t.throws(() => parseCreateArgs('v', ['replica', '2', 'replica', '2', 'h:/a']), usage);
  t.regex(t.throws(() => parseCreateArgs('v', ['h:/a', 'replica', '2']), usage)!.message, /before the bricks/);
  t.regex(t.throws(() => parseCreateArgs('v', ['h:/a', 'h:/a/']), usage)!.message, /listed twice/);
  t.throws(() => parseCreateArgs('-v', ['h:/a']), usage);
  t.throws(() => parseCreateArgs('v', ['h:rel']), usage);
});

test('volume set: known keys, bounds, normalised values', (t) => {
  t.is(validateVolumeOption('network.ping-timeout', '10'), '10');
  t.is(validateVolumeOption('network.ping-timeout', '1800'), '1800');
  t.throws(() => validateVolumeOption('network.ping-timeout', '0'), usage);
  t.throws(() => validateVolumeOption('network.ping-timeout', '1801'), usage);
  t.throws(() => validateVolumeOption('network.ping-timeout', 'ten'), usage);
  const unknown = t.throws(() => validateVolumeOption('performance.magic', 'on'), usage);
  t.is(unknown!.message, 'unknown volume option "performance.magic" (every option: brickfs volume set help)');
  t.is(t.throws(() => validateVolumeOption('performance.nl-cach-timeout', '3'), usage)!.message,
    'unknown volume option "performance.nl-cach-timeout"; did you mean performance.nl-cache-timeout? (every option: brickfs volume set help)');
  t.regex(t.throws(() => validateVolumeOption('nl-cache-timeout', '3'), usage)!.message, /did you mean performance\.nl-cache-timeout\?/);
  t.regex(t.throws(() => validateVolumeOption('server.root-sqash', 'on'), usage)!.message, /did you mean server\.root-squash\?/);
  // Booleans are stored, and so shown by `volume info`, as `volume get` shows them.
  t.is(validateVolumeOption('server.root-squash', 'true'), 'on');
  t.is(validateVolumeOption('performance.write-behind', 'disable'), 'off');
});

test('create arguments: stripe N needs a multiple of N bricks (consecutive N form a set)', (t) => {
  t.deepEqual(parseCreateArgs('s', ['stripe', '2', 'h:/a', 'h:/b', 'h:/c', 'h:/d']).bricks, ['h:/a', 'h:/b', 'h:/c', 'h:/d']);
  t.is(parseCreateArgs('s', ['stripe', '2', 'h:/a', 'h:/b']).stripe, 2);
  const odd = t.throws(() => parseCreateArgs('s', ['stripe', '2', 'h:/a', 'h:/b', 'h:/c']), usage);
  t.regex(odd!.message, /stripe 2 needs a multiple of 2 bricks, got 3/);
  t.regex(odd!.message, /each 2 consecutive bricks form one stripe set/);
  t.throws(() => parseCreateArgs('s', ['stripe', '3', 'h:/a', 'h:/b']), usage);
  t.throws(() => parseCreateArgs('s', ['stripe', '1', 'h:/a']), usage);
});

test('volume set cluster.stripe-block-size: sizes with units, at least 4 KiB, a multiple of 4096', (t) => {
  t.is(validateVolumeOption('cluster.stripe-block-size', '64KiB'), '65536');
  t.is(validateVolumeOption('cluster.stripe-block-size', '1M'), '1048576');
  t.is(validateVolumeOption('cluster.stripe-block-size', '4096'), '4096');
  t.regex(t.throws(() => validateVolumeOption('cluster.stripe-block-size', '5000'), usage)!.message, /not a multiple of 4096/);
  t.regex(t.throws(() => validateVolumeOption('cluster.stripe-block-size', '2KiB'), usage)!.message, /below the minimum 4096/);
  t.throws(() => validateVolumeOption('cluster.stripe-block-size', '2GiB'), usage);
  t.throws(() => validateVolumeOption('cluster.stripe-block-size', 'big'), usage);
});

test('add-brick arguments: [replica N] BRICK... [force]', (t) => {
  t.deepEqual(parseAddBrickArgs('v', ['localhost:/a', 'h:7200:/b/']), { bricks: ['localhost:/a', 'h:7200:/b'], force: false });
  t.deepEqual(parseAddBrickArgs('v', ['replica', '2', 'h:/a', 'h:/b', 'force']), { bricks: ['h:/a', 'h:/b'], replica: 2, force: true });
  t.true(parseAddBrickArgs('v', ['h:/a'], true).force);
  t.regex(t.throws(() => parseAddBrickArgs('v', []), usage)!.message, /no bricks given; for example: brickfs volume add-brick v/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['replica', '2']), usage)!.message, /no bricks/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['replica', 'two', 'h:/a']), usage)!.message, /replica count/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['h:/a', 'replica', '2']), usage)!.message, /before the bricks/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['stripe', '2', 'h:/a', 'h:/b']), usage)!.message, /no "stripe N".*multiples of its stripe count/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['h:/a', 'h:/a']), usage)!.message, /listed twice/);
  t.regex(t.throws(() => parseAddBrickArgs('v', ['h:rel']), usage)!.message, /not absolute/);
  t.throws(() => parseAddBrickArgs('-v', ['h:/a']), usage);
});

test('remove-brick arguments: BRICK... start|status|commit|stop [force]', (t) => {
  t.deepEqual(parseRemoveBrickArgs('v', ['h:/a', 'h:/b', 'start']), { bricks: ['h:/a', 'h:/b'], action: 'start', force: false });
  t.deepEqual(parseRemoveBrickArgs('v', ['h:/a', 'commit', 'force']), { bricks: ['h:/a'], action: 'commit', force: true });
  t.is(parseRemoveBrickArgs('v', ['h:/a', 'status']).action, 'status');
  t.is(parseRemoveBrickArgs('v', ['h:/a', 'stop']).action, 'stop');
  t.regex(t.throws(() => parseRemoveBrickArgs('v', ['h:/a']), usage)!.message, /say what to do after the bricks: start, status, commit or stop/);
  t.regex(t.throws(() => parseRemoveBrickArgs('v', ['h:/a', 'begin']), usage)!.message, /"begin" is not a remove-brick command/);
  t.regex(t.throws(() => parseRemoveBrickArgs('v', ['start']), usage)!.message, /no bricks given/);
  t.regex(t.throws(() => parseRemoveBrickArgs('v', ['h:/a', 'start', 'force']), usage)!.message, /"force" goes with commit only/);
  t.regex(t.throws(() => parseRemoveBrickArgs('v', ['start', 'h:/a', 'start']), usage)!.message, /must come after the bricks/);
  t.throws(() => parseRemoveBrickArgs('v', ['h:/a', 'h:/a', 'start']), usage);
  t.throws(() => parseRemoveBrickArgs('v', []), usage);
});

test('rebalance arguments: [fix-layout] start|status|stop, --fix-layout and --throttle with start only', (t) => {
  t.deepEqual(parseRebalanceArgs('v', ['start']), { action: 'start', fixLayout: false });
  t.deepEqual(parseRebalanceArgs('v', ['start'], { fixLayout: true, throttle: 'lazy' }), { action: 'start', fixLayout: true, throttle: 'lazy' });
  t.deepEqual(parseRebalanceArgs('v', ['fix-layout', 'start']), { action: 'start', fixLayout: true });
  t.is(parseRebalanceArgs('v', ['status']).action, 'status');
  t.is(parseRebalanceArgs('v', ['stop']).action, 'stop');
  t.regex(t.throws(() => parseRebalanceArgs('v', []), usage)!.message, /expected start, status or stop after the volume name, got nothing/);
  t.regex(t.throws(() => parseRebalanceArgs('v', ['go']), usage)!.message, /got "go"/);
  t.throws(() => parseRebalanceArgs('v', ['start', 'now']), usage);
  t.regex(t.throws(() => parseRebalanceArgs('v', ['status'], { fixLayout: true }), usage)!.message, /go with start only/);
  t.regex(t.throws(() => parseRebalanceArgs('v', ['start'], { throttle: 'fast' }), usage)!.message, /"fast" is not a throttle: use lazy, normal, aggressive/);
});
