import test from 'ava';
import { editDistance, nearest } from '../../lib/nearest.js';

test('editDistance counts insertions, deletions and substitutions', (t) => {
  t.is(editDistance('volum', 'volume'), 1);
  t.is(editDistance('inof', 'info'), 2);
  t.is(editDistance('', 'abc'), 3);
  t.is(editDistance('same', 'same'), 0);
});

test('nearest: the closest candidate within a third of the word, dotted ones by their last part too', (t) => {
  t.is(nearest('volum', ['daemon', 'volume', 'mount']), 'volume');
  t.is(nearest('xyzzy', ['daemon', 'volume', 'mount']), undefined);
  t.is(nearest('quick-read', ['performance.quick-read', 'performance.read-ahead']), 'performance.quick-read');
  t.is(nearest('performance.quik-read', ['performance.quick-read', 'performance.read-ahead']), 'performance.quick-read');
});
