import { S_IFDIR, S_IFMT } from '../../lib/fops.js';

/** One name of an inode: a directory (by nodeid) and a name in it. */
export interface Link {
  parent: number;
  name: string;
}

/** One kernel inode of the low-level bridge: a file, reachable by one or more names. */
export interface Inode {
  /** The nodeid the kernel knows it by (st_ino comes from the gfid when there is one). */
  readonly id: number;
  /** The file's identity: every name of a hard link maps to the inode with its gfid. */
  gfid?: string;
  /** The name fops use (the first of its names); parent and name of the last name once unlinked. */
  parent: number;
  name: string;
  /** Its other names (hard links), in the order they were seen. */
  more: Link[];
  /** Kernel references (lookups answered minus forgotten). */
  nlookup: number;
  /** S_IFMT bits: a name that changed type is a new inode to the kernel. */
  readonly type: number;
  /** Still reachable by some (parent, name); false once its last name is unlinked or renamed over. */
  attached: boolean;
  /** Bridge file handles open on it (an unlinked file is still served through them). */
  readonly handles: Set<number>;
  /** path() memo, valid while the table's rename count is pathEpoch. */
  path?: string;
  pathEpoch?: number;
}

export const ROOT_ID = 1;

/**
 * The low-level bridge's inode table, keyed both by name and by gfid: a name whose file has
 * a gfid already known under another name is the same kernel inode (a hard link), so a
 * change through one name is seen through every other at once. Paths are computed by
 * walking parents, so a rename moves a subtree by changing one node. A node whose name
 * still exists is kept after the kernel forgets it; unlinked and renamed-over nodes go once
 * the kernel forgets them.
 */
export class InodeTable {
  private readonly byId = new Map<number, Inode>();
  private readonly byName = new Map<string, Inode>();
  private readonly byGfid = new Map<string, Inode>();
  private nextId = ROOT_ID + 1;
  /** Bumped by every rename or change of a node's first name: any memoized path may be stale. */
  private renames = 0;

  constructor() {
    this.byId.set(ROOT_ID, { id: ROOT_ID, parent: ROOT_ID, name: '', more: [], nlookup: 1, type: S_IFDIR, attached: true, handles: new Set() });
  }

  get(id: number): Inode | undefined {
    return this.byId.get(id);
  }

  /** The volume path of a node ("/" for the root). */
  path(node: Inode): string {
    if (node.id === ROOT_ID) return '/';
    if (node.pathEpoch === this.renames) return node.path!;
    const parent = this.byId.get(node.parent);
    node.path = parent && parent.id !== ROOT_ID ? `${this.path(parent)}/${node.name}` : `/${node.name}`;
    node.pathEpoch = this.renames;
    return node.path;
  }

  /** The path of name in directory dir. */
  childPath(dir: Inode, name: string): string {
    return dir.id === ROOT_ID ? `/${name}` : `${this.path(dir)}/${name}`;
  }

  /** The node a volume path names now, if the table has it (walks the names from the root). */
  find(path: string): Inode | undefined {
    let node = this.byId.get(ROOT_ID);
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
    const node: Inode = { id: this.nextId++, parent, name, more: [], nlookup: 0, type, attached: true, handles: new Set() };
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
    if (node.nlookup === 0 && !node.attached) this.drop(node);
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
    this.renames++;
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
      this.renames++;
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
        this.renames++;
        return;
      }
      node.attached = false;
      if (node.nlookup === 0) this.drop(node);
      return;
    }
    node.more = node.more.filter((m) => m.parent !== parent || m.name !== name);
  }

  private drop(node: Inode): void {
    this.byId.delete(node.id);
    if (node.gfid !== undefined && this.byGfid.get(node.gfid) === node) this.byGfid.delete(node.gfid);
    for (const l of node.more) if (this.byName.get(keyOf(l.parent, l.name)) === node) this.byName.delete(keyOf(l.parent, l.name));
  }
}

function keyOf(parent: number, name: string): string {
  return `${parent}/${name}`;
}
