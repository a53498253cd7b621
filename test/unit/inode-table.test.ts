// The low-level FUSE bridge's inode table (client/fuse/inode-table.ts): stable nodeids per
// path, subtree renames, and which nodes go when the kernel forgets them.
import test from 'ava';
import { InodeTable, ROOT_ID } from '../../client/fuse/inode-table.js';

const DIR = 0o040755;
const FILE = 0o100644;

test('a path keeps its nodeid after the kernel forgets it (tar compares directory st_ino)', (t) => {
  const nodes = new InodeTable();
  const d = nodes.entry(ROOT_ID, 'd', DIR);
  d.nlookup++;
  nodes.forget(d.id, 1);
  t.is(nodes.get(d.id), d);
  t.is(nodes.entry(ROOT_ID, 'd', DIR).id, d.id);
});

test('a rename moves the subtree: paths follow the one node that changed', (t) => {
  const nodes = new InodeTable();
  const a = nodes.entry(ROOT_ID, 'a', DIR);
  const b = nodes.entry(a.id, 'b', DIR);
  const f = nodes.entry(b.id, 'f', FILE);
  t.is(nodes.path(f), '/a/b/f');
  const z = nodes.entry(ROOT_ID, 'z', DIR);
  nodes.move(a.id, 'b', z.id, 'y');
  t.is(nodes.path(f), '/z/y/f');
  t.is(nodes.path(b), '/z/y');
  t.is(nodes.entry(z.id, 'y', DIR).id, b.id);
});

test('an unlinked or renamed-over node goes once forgotten, and its name gets a new node', (t) => {
  const nodes = new InodeTable();
  const f = nodes.entry(ROOT_ID, 'f', FILE);
  f.nlookup = 2;
  const g = nodes.entry(ROOT_ID, 'g', FILE);
  nodes.move(ROOT_ID, 'g', ROOT_ID, 'f');
  t.false(f.attached);
  t.is(nodes.path(f), '/f', 'an open file keeps its last path for its handles');
  nodes.forget(f.id, 1);
  t.is(nodes.get(f.id), f);
  nodes.forget(f.id, 1);
  t.is(nodes.get(f.id), undefined);
  t.is(nodes.entry(ROOT_ID, 'f', FILE).id, g.id);
  nodes.remove(ROOT_ID, 'f');
  t.is(nodes.get(g.id), undefined, 'never looked up: gone at once');
  t.not(nodes.entry(ROOT_ID, 'f', FILE).id, g.id);
});

test('a name that now holds another type is a new inode', (t) => {
  const nodes = new InodeTable();
  const f = nodes.entry(ROOT_ID, 'x', FILE);
  const d = nodes.entry(ROOT_ID, 'x', DIR);
  t.not(d.id, f.id);
  t.false(f.attached);
});
