import test from 'ava';
import { Changelog, changelogDelta, changelogNames } from '../../client/xlators/cluster/replicate/changelog.js';
import { XATTR_AFR, XATTR_AFR_PREFIX, type Iatt, type Xattrs } from '../../lib/fops.js';

const NAMES = ['v-client-0', 'v-client-1'];

const int32s = (b: Uint8Array): number[] => Array.from({ length: b.length / 4 }, (_, i) => Buffer.from(b).readInt32BE(i * 4));

test('a delta is one xattr: two int32 slots per replica, [data or entry, metadata]', (t) => {
  t.deepEqual(Object.keys(changelogDelta(2, [0, 1], ['data'], 1)), [XATTR_AFR]);
  t.deepEqual(int32s(changelogDelta(2, [0, 1], ['data'], 1)[XATTR_AFR]!), [1, 0, 1, 0]);
  t.deepEqual(int32s(changelogDelta(2, [1], ['metadata'], -1)[XATTR_AFR]!), [0, 0, 0, -1]);
  t.deepEqual(int32s(changelogDelta(2, [0], ['data', 'metadata'], 1)[XATTR_AFR]!), [1, 1, 0, 0]);
  t.deepEqual(int32s(changelogDelta(3, [2], ['entry'], 1)[XATTR_AFR]!), [0, 0, 0, 0, 1, 0]);
  t.deepEqual(changelogNames(NAMES), [XATTR_AFR, `${XATTR_AFR_PREFIX}v-client-0`, `${XATTR_AFR_PREFIX}v-client-1`]);
});

/** A packed changelog row from its int32 slots. */
const row = (...v: number[]): Xattrs => ({ [XATTR_AFR]: Buffer.from(new Int32Array(v).buffer).swap32() });
const dirIatt = { mode: 0o040755 } as Iatt;
const fileIatt = { mode: 0o100644 } as Iatt;

test('slot 0 counts data on a file and entries on a directory, never the other', (t) => {
  // Copy 0 blames copy 1 in slot 0, copy 1 holds nothing.
  const rows = [row(0, 0, 1, 0), row(0, 0, 0, 0)];
  const file = Changelog.fromLookups(NAMES, rows.map((x) => ({ ok: true as const, value: { xattrs: x, iatt: fileIatt } })));
  t.deepEqual([file.blamed(1, 'data'), file.blamed(1, 'entry'), file.blamed(1, 'metadata')], [true, false, false]);
  t.deepEqual(file.sources('data'), [0]);
  const dir = Changelog.fromLookups(NAMES, rows.map((x) => ({ ok: true as const, value: { xattrs: x, iatt: dirIatt } })));
  t.deepEqual([dir.blamed(1, 'data'), dir.blamed(1, 'entry'), dir.blamed(1, 'metadata')], [false, true, false]);
  // Slot 1 is metadata either way.
  const meta = new Changelog(NAMES, [row(0, 0, 0, 2), row(0, 0, 0, 0)]);
  t.is(meta.pending(0, 1, 'metadata'), 2);
});

test('marks of the old per-replica format count with the new ones, and resets clear each where it is', (t) => {
  const old = Buffer.alloc(12);
  old.writeInt32BE(3, 0);
  const log = new Changelog(NAMES, [{ ...row(0, 0, 2, 0), [`${XATTR_AFR_PREFIX}v-client-1`]: old }, {}]);
  t.is(log.pending(0, 1, 'data'), 5);
  t.true(log.blamed(1, 'data'));
  const reset = log.resetDeltas(0, 'data', [1]);
  t.deepEqual(int32s(reset[XATTR_AFR]!), [0, 0, -2, 0]);
  t.deepEqual(int32s(reset[`${XATTR_AFR_PREFIX}v-client-1`]!), [-3, 0, 0]);
  t.deepEqual(log.resetDeltas(0, 'metadata', [1]), {}, 'nothing to reset, nothing sent');
});
