// The mount's inode table (lib/inode.ts), whose ids are the low-level FUSE bridge's nodeids:
// stable nodeids per path, subtree renames, which nodes go when the kernel forgets them, and
// fds that hold their inode and follow its renames.
import test from 'ava';
import fs from 'node:fs';
import { CtxKey, Fd, InodeTable, ROOT_ID } from '../../lib/inode.js';

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
  t.is(f.path, '/a/b/f');
  const z = nodes.entry(ROOT_ID, 'z', DIR);
  nodes.move(a.id, 'b', z.id, 'y');
  t.is(f.path, '/z/y/f');
  t.is(b.path, '/z/y');
  t.is(nodes.entry(z.id, 'y', DIR).id, b.id);
  t.is(nodes.find('/z/y/f'), f);
  t.is(nodes.find('/a/b/f'), undefined);
});

test('an unlinked or renamed-over node goes once forgotten, and its name gets a new node', (t) => {
  const nodes = new InodeTable();
  const f = nodes.entry(ROOT_ID, 'f', FILE);
  f.nlookup = 2;
  const g = nodes.entry(ROOT_ID, 'g', FILE);
  nodes.move(ROOT_ID, 'g', ROOT_ID, 'f');
  t.false(f.attached);
  t.is(f.path, '/f', 'an open file keeps its last path for its handles');
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

test('an unlinked inode stays while an fd holds it after the kernel forgets it, and goes with the last release', (t) => {
  const nodes = new InodeTable();
  const f = nodes.entry(ROOT_ID, 'f', FILE, 'aa'.repeat(16));
  f.nlookup = 1;
  const fd = new Fd(f, fs.constants.O_RDWR);
  nodes.opened(fd);
  t.true(f.fds.has(fd));
  nodes.remove(ROOT_ID, 'f');
  nodes.forget(f.id, 1);
  t.is(nodes.get(f.id), f, 'the open file is still served through its fd');
  t.is(nodes.byGfidOf(f.gfid!), f);
  t.is(fd.path, '/f');
  const again = new Fd(f, fs.constants.O_RDONLY);
  nodes.opened(again);
  nodes.released(fd);
  t.is(nodes.get(f.id), f, 'a second fd still holds it');
  nodes.released(again);
  t.is(f.fds.size, 0);
  t.is(nodes.get(f.id), undefined);
  t.is(nodes.byGfidOf('aa'.repeat(16)), undefined);
});

test('an fd\'s path follows a rename of a parent directory, and its ctx slots stay with it', (t) => {
  const nodes = new InodeTable();
  const a = nodes.entry(ROOT_ID, 'a', DIR);
  const b = nodes.entry(a.id, 'b', DIR);
  const f = nodes.entry(b.id, 'f', FILE);
  const fd = new Fd(f, fs.constants.O_WRONLY);
  nodes.opened(fd);
  const key = new CtxKey<{ written: number }>('test');
  fd.ctx.set(key, { written: 3 });
  t.is(fd.path, '/a/b/f');
  nodes.move(ROOT_ID, 'a', ROOT_ID, 'c');
  t.is(fd.path, '/c/b/f');
  const z = nodes.entry(ROOT_ID, 'z', DIR);
  nodes.move(a.id, 'b', z.id, 'y');
  t.is(fd.path, '/z/y/f');
  t.is(fd.inode, f);
  t.is(fd.flags, fs.constants.O_WRONLY);
  t.deepEqual(fd.ctx.get(key), { written: 3 });
});

test('an fd on a detached inode keeps its path and lives outside any table', (t) => {
  const fd = Fd.forPath('/d/f', fs.constants.O_RDONLY);
  t.is(fd.path, '/d/f');
  t.is(fd.inode.table, undefined);
  const nodes = new InodeTable();
  nodes.opened(fd);
  nodes.released(fd);
  t.is(fd.inode.fds.size, 0);
  t.is(nodes.find('/d/f'), undefined);
});
