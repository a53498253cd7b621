import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VolfileSyntaxError } from '../../lib/errors.js';
import { graphFromVolfile } from '../../lib/graph.js';
import { formatVolfile, parseVolfile } from '../../lib/volfile/parse.js';
import '../../client/xlators/index.js';
import '../../brick/xlators/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const good = `
# two bricks
volume v-client-0
    type protocol/client
    option remote-host 127.0.0.1
    option remote-port 7101
    option remote-subvolume /srv/b0
end-volume
volume v-client-1
    type protocol/client
    option remote-host 127.0.0.1   # trailing comment
    option remote-port 7102
    option remote-subvolume /srv/b1
end-volume
volume v-dht
    type cluster/distribute
    subvolumes v-client-0 v-client-1
end-volume
`;

function lineOf(text: string, fn: () => unknown): number {
  const e = (() => {
    try {
      fn();
    } catch (err) {
      return err;
    }
    throw new Error(`no error for:\n${text}`);
  })();
  if (!(e instanceof VolfileSyntaxError)) throw e;
  return e.line;
}

test('parses GlusterFS syntax; the last volume is the top', (t) => {
  const decls = parseVolfile(good);
  t.is(decls.length, 3);
  t.deepEqual(decls[2]!.subvolumes, ['v-client-0', 'v-client-1']);
  t.is(decls[1]!.options['remote-host'], '127.0.0.1');
  const g = graphFromVolfile(good);
  t.is(g.top.name, 'v-dht');
  t.is(g.top.children.length, 2);
});

test('format then parse round-trips', (t) => {
  const decls = parseVolfile(good);
  const again = parseVolfile(formatVolfile(decls));
  t.deepEqual(again.map((d) => [d.name, d.type, d.options, d.subvolumes]), decls.map((d) => [d.name, d.type, d.options, d.subvolumes]));
});

const bad: Array<[string, string, number]> = [
  ['unknown type', good.replace('type cluster/distribute', 'type cluster/nope'), 16],
  ['unknown option', good.replace('option remote-port 7102', 'option remote-prot 7102'), 12],
  ['bad option value', good.replace('option remote-port 7101', 'option remote-port seventy'), 6],
  ['dangling subvolume', good.replace('subvolumes v-client-0 v-client-1', 'subvolumes v-client-0 v-client-9'), 17],
  ['use before define (cycle)', `volume a\n  type cluster/distribute\n  subvolumes b\nend-volume\nvolume b\n  type cluster/distribute\n  subvolumes a\nend-volume\n`, 3],
  ['self reference', `volume a\n  type cluster/distribute\n  subvolumes a\nend-volume\n`, 3],
  ['missing end-volume', good.replace(/end-volume\s*$/, ''), 15],
  ['unknown keyword', good.replace('    type cluster/distribute', '    typo cluster/distribute'), 16],
  ['unused volume', `${good.split('volume v-dht')[0]}volume v-dht\n  type cluster/distribute\n  subvolumes v-client-0\nend-volume\n`, 9],
  ['missing required option', good.replace('    option remote-subvolume /srv/b1\n', ''), 9],
  ['duplicate volume name', good.replace('volume v-client-1', 'volume v-client-0'), 9],
];

for (const [what, text, line] of bad) {
  test(`rejects ${what} with its line number`, (t) => {
    t.is(lineOf(text, () => graphFromVolfile(text)), line);
  });
}

test('every example in volfiles/ parses and builds', (t) => {
  const dir = path.join(repo, 'volfiles');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.vol'));
  t.true(files.length > 0);
  for (const f of files) t.notThrows(() => graphFromVolfile(fs.readFileSync(path.join(dir, f), 'utf8'), f), f);
});
