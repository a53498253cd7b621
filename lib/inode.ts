import { S_IFDIR, S_IFMT } from './fops.js';

/**
 * Identity shared by every translator of a client graph, as GlusterFS's inode_t and fd_t:
 * one inode per file (keyed by gfid and by its names), one Fd object per open, each with a
 * context of typed slots where a translator hangs its own state (inode_ctx, fd_ctx). A
 * translator keeps no table of its own keyed by path or fd number: it asks the object it was
 * given for its slot. A path is computed from the inode's name in its parent, so a rename
 * moves a whole subtree, and every fd and every translator's state on it, by changing one
 * name in one place.
 */

/**
 * A slot's key: one per owner (normally one per translator instance, so two instances of a
 * type in one graph keep separate state), typed by what the slot holds.
 */
export class CtxKey<T> {
  /** Ties the key to its value type; never set. */
  declare private readonly _value: T;
  constructor(readonly owner: string) {}
}

/** Per-translator state on an inode or fd. */
export class Ctx {
  private readonly slots = new Map<CtxKey<unknown>, unknown>();

  get<T>(key: CtxKey<T>): T | undefined {
    return this.slots.get(key) as T | undefined;
  }

  set<T>(key: CtxKey<T>, value: T): T {
    this.slots.set(key, value);
    return value;
  }

  /** The slot's value, made by make() the first time it is asked for. */
  ensure<T>(key: CtxKey<T>, make: () => T): T {
    const v = this.slots.get(key) as T | undefined;
    if (v !== undefined) return v;
    const made = make();
    this.slots.set(key, made);
    return made;
  }

  /** Removes the slot, returning what it held. */
  take<T>(key: CtxKey<T>): T | undefined {
    const v = this.slots.get(key) as T | undefined;
    this.slots.delete(key);
    return v;
  }

  has(key: CtxKey<unknown>): boolean {
    return this.slots.has(key);
  }
}

/** One name of an inode: a directory (by inode id) and a name in it. */
export interface Link {
  parent: number;
  name: string;
}

/** The id of the volume root, which is also FUSE's root nodeid. */
export const ROOT_ID = 1;

/**
 * One file of the volume. Every name of a hard link maps to one Inode (by gfid); its path is
 * its first name's, computed through its parents. An inode made for a path outside any table
 * (`InodeTable.detached`: rebalance, self-heal, a brick) has that path for good.
 */
export class Inode {
  readonly ctx = new Ctx();
  /** The file's identity, once known (a lookup or create answered it). */
  gfid?: string;
  /** The directory and name fops use (its first name); parent and name of the last name once unlinked. */
  parent: number;
  name: string;
  /** Its other names (hard links), in the order they were seen. */
  more: Link[] = [];
  /** References from the kernel (lookups answered minus forgotten). */
  nlookup = 0;
  /** Still reachable by some (parent, name); false once its last name is unlinked or renamed over. */
  attached = true;
  /** Fds open on it (an unlinked file is still served through them). */
  readonly fds = new Set<Fd>();
  /** path memo, valid while the table's rename count is pathEpoch. */
  private memo?: string;
  private memoEpoch = -1;

  constructor(
    /** The table it belongs to; undefined for a detached inode. */
    readonly table: InodeTable | undefined,
    /** Its number in the table (the FUSE nodeid); 0 when detached. */
    readonly id: number,
    /** S_IFMT bits: a name that changed type is a new inode. */
    readonly type: number,
    parent: number,
    name: string,
    private readonly fixedPath?: string,
  ) {
    this.parent = parent;
    this.name = name;
  }

  /** The volume path fops use now ("/" for the root). */
  get path(): string {
    if (this.fixedPath !== undefined) return this.fixedPath;
    const table = this.table!;
    if (this.id === ROOT_ID) return '/';
    if (this.memoEpoch === table.renameCount) return this.memo!;
    const parent = table.get(this.parent);
    this.memo = parent && parent.id !== ROOT_ID ? `${parent.path}/${this.name}` : `/${this.name}`;
    this.memoEpoch = table.renameCount;
    return this.memo;
  }

  isDir(): boolean {
    return this.type === S_IFDIR;
  }
}

/**
 * An open file (or directory) as the whole graph sees it: made by whoever opens (the FUSE
 * bridge, graph-switch, rebalance, self-heal) and passed to open/create, then to every fd
 * fop. Each translator keeps what it needs for the fd (the brick's fd number, buffered
 * writes, a read-ahead window) in its slot of ctx; release is the last fop on it.
 */
export class Fd {
  readonly ctx = new Ctx();
  constructor(
    readonly inode: Inode,
    /** open(2) flags it was opened with (reopens drop O_CREAT/O_EXCL/O_TRUNC). */
    readonly flags: number,
  ) {}

  /** An fd on a detached inode of path: for callers outside a mount (rebalance, heal, a brick, tests). */
  static forPath(path: string, flags: number, mode = 0): Fd {
    return new Fd(InodeTable.detached(path, mode), flags);
  }

  /** The path of its file now (follows renames through the inode). */
  get path(): string {
    return this.inode.path;
  }
}

/**
 * The inode table of a mount, shared by every translator of each of its graphs: keyed by id
 * (the FUSE nodeid), by (parent, name) and by gfid. A name whose file has a gfid already known
 * under another name is the same inode (a hard link), so state hung on it is seen through
 * every name. A node whose name still exists is kept after the kernel forgets it; unlinked
 * and renamed-over nodes go once the kernel forgets them and no fd holds them.
 */
export class InodeTable {
  private readonly byId = new Map<number, Inode>();
  private readonly byName = new Map<string, Inode>();
  private readonly byGfid = new Map<string, Inode>();
  private nextId = ROOT_ID + 1;
  /** Bumped by every rename or change of a node's first name: any memoized path may be stale. */
  renameCount = 0;
  readonly root: Inode;

  constructor() {
    this.root = new Inode(this, ROOT_ID, S_IFDIR, ROOT_ID, '');
    this.root.nlookup = 1;
    this.byId.set(ROOT_ID, this.root);
  }

  /**
   * An inode for a path outside the table's names (a rebalance or heal process, a brick, a
   * test): its path never changes, and it holds per-translator state like any other.
   */
  static detached(path: string, mode = 0, gfid?: string): Inode {
    const inode = new Inode(undefined, 0, mode & S_IFMT, 0, path.slice(path.lastIndexOf('/') + 1), path);
    if (gfid !== undefined) inode.gfid = gfid;
    return inode;
  }

  get(id: number): Inode | undefined {
    return this.byId.get(id);
  }

  /** The inode of this gfid, if the table has it. */
  byGfidOf(gfid: string): Inode | undefined {
    return this.byGfid.get(gfid);
  }

  /** The path of name in directory dir. */
  childPath(dir: Inode, name: string): string {
    return dir.id === ROOT_ID ? `/${name}` : `${dir.path}/${name}`;
  }

  /** The node (parent, name) names now, if the table has it. */
  child(parent: number, name: string): Inode | undefined {
    return this.byName.get(keyOf(parent, name));
  }

  /** The node a volume path names now, if the table has it (walks the names from the root). */
  find(path: string): Inode | undefined {
    let node: Inode | undefined = this.root;
    for (const name of path.split('/')) {
      if (name === '' || !node) continue;
      node = this.byName.get(keyOf(node.id, name));
    }
    return node;
  }

  /**
   * The node for (parent, name) holding a file of this type and gfid: the one the name has
   * when it is the same file, else the one of the same gfid under another name (a hard link,
   * or a rename made elsewhere), else a new one.
   */
  entry(parent: number, name: string, mode: number, gfid?: string): Inode {
    const key = keyOf(parent, name);
    const type = mode & S_IFMT;
    const old = this.byName.get(key);
    if (old && old.type === type && (gfid === undefined || old.gfid === undefined || old.gfid === gfid)) {
      if (gfid !== undefined && old.gfid === undefined) this.identify(old, gfid);
      return old;
    }
    if (old) this.unlinkName(old, parent, name);
    const known = gfid === undefined ? undefined : this.byGfid.get(gfid);
    if (known && known.type === type && known.id !== ROOT_ID) {
      this.addName(known, parent, name);
      this.byName.set(key, known);
      return known;
    }
    const node = new Inode(this, this.nextId++, type, parent, name);
    this.byId.set(node.id, node);
    this.byName.set(key, node);
    if (gfid !== undefined) this.identify(node, gfid);
    return node;
  }

  /** The kernel dropped n references. */
  forget(id: number, n: number): void {
    const node = this.byId.get(id);
    if (!node || id === ROOT_ID) return;
    node.nlookup = Math.max(0, node.nlookup - n);
    this.dropIfUnused(node);
  }

  /** An fd was opened on the inode: it stays while the fd does. */
  opened(fd: Fd): void {
    fd.inode.fds.add(fd);
  }

  /** The fd was released. */
  released(fd: Fd): void {
    fd.inode.fds.delete(fd);
    if (fd.inode.table === this) this.dropIfUnused(fd.inode);
  }

  /** (parent, name) was unlinked or removed. */
  remove(parent: number, name: string): void {
    const node = this.byName.get(keyOf(parent, name));
    if (node) this.unlinkName(node, parent, name);
  }

  /** (parent, name) was renamed to (newParent, newName), replacing whatever was there. */
  move(parent: number, name: string, newParent: number, newName: string): void {
    const node = this.byName.get(keyOf(parent, name));
    const target = this.byName.get(keyOf(newParent, newName));
    // rename(2) of one name of a file over another name of the same file does nothing.
    if (node && node === target) return;
    this.remove(newParent, newName);
    if (!node) return;
    this.byName.delete(keyOf(parent, name));
    this.renameCount++;
    if (node.parent === parent && node.name === name) {
      node.parent = newParent;
      node.name = newName;
    } else {
      const l = node.more.find((m) => m.parent === parent && m.name === name);
      if (l) {
        l.parent = newParent;
        l.name = newName;
      }
    }
    this.byName.set(keyOf(newParent, newName), node);
  }

  /** Nodes known, for the statedump. */
  get size(): number {
    return this.byId.size;
  }

  private identify(node: Inode, gfid: string): void {
    node.gfid = gfid;
    this.byGfid.set(gfid, node);
  }

  private addName(node: Inode, parent: number, name: string): void {
    if (!node.attached) {
      // Its last name went; this one (a rename done elsewhere, a link made meanwhile) brings it back.
      node.parent = parent;
      node.name = name;
      node.attached = true;
      this.renameCount++;
      return;
    }
    if ((node.parent === parent && node.name === name) || node.more.some((m) => m.parent === parent && m.name === name)) return;
    node.more.push({ parent, name });
  }

  /** Takes one name from a node; the node is detached when it was its last. */
  private unlinkName(node: Inode, parent: number, name: string): void {
    this.byName.delete(keyOf(parent, name));
    if (node.parent === parent && node.name === name) {
      const next = node.more.shift();
      if (next) {
        node.parent = next.parent;
        node.name = next.name;
        this.renameCount++;
        return;
      }
      node.attached = false;
      this.dropIfUnused(node);
      return;
    }
    node.more = node.more.filter((m) => m.parent !== parent || m.name !== name);
  }

  private dropIfUnused(node: Inode): void {
    if (node.attached || node.nlookup > 0 || node.fds.size > 0 || node.id === ROOT_ID) return;
    this.byId.delete(node.id);
    if (node.gfid !== undefined && this.byGfid.get(node.gfid) === node) this.byGfid.delete(node.gfid);
    for (const l of node.more) if (this.byName.get(keyOf(l.parent, l.name)) === node) this.byName.delete(keyOf(l.parent, l.name));
  }
}

function keyOf(parent: number, name: string): string {
  return `${parent}/${name}`;
}
