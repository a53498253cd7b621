import { S_IFDIR, S_IFMT } from '../../lib/fops.js';

/** One kernel inode of the low-level bridge: a name in a parent directory. */
export interface Inode {
  /** The nodeid the kernel knows it by; also its st_ino. */
  readonly id: number;
  parent: number;
  name: string;
  /** Kernel references (lookups answered minus forgotten). */
  nlookup: number;
  /** S_IFMT bits: a name that changed type is a new inode to the kernel. */
  readonly type: number;
  /** Still reachable by (parent, name); false once unlinked or renamed over. */
  attached: boolean;
  /** Bridge file handles open on it (an unlinked file is still served through them). */
  readonly handles: Set<number>;
  /** path() memo, valid while the table's rename count is pathEpoch. */
  path?: string;
  pathEpoch?: number;
}

export const ROOT_ID = 1;

/**
 * The low-level bridge's inode table (libfuse high-level's node table, kept by us). Paths are
 * computed by walking parents, so a rename moves a subtree by changing one node. A node
 * whose name still exists is kept after the kernel forgets it, so a path keeps its st_ino
 * (tar compares the st_ino of directories); unlinked and renamed-over nodes go once the
 * kernel forgets them.
 */
export class InodeTable {
  private readonly byId = new Map<number, Inode>();
  private readonly byName = new Map<string, Inode>();
  private nextId = ROOT_ID + 1;
  /** Bumped by every rename: any memoized path below the moved node may be stale. */
  private renames = 0;

  constructor() {
    this.byId.set(ROOT_ID, { id: ROOT_ID, parent: ROOT_ID, name: '', nlookup: 1, type: S_IFDIR, attached: true, handles: new Set() });
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

  /** The node for (parent, name), made when new or when the name now holds another type. */
  entry(parent: number, name: string, mode: number): Inode {
    const key = keyOf(parent, name);
    const type = mode & S_IFMT;
    const old = this.byName.get(key);
    if (old && old.type === type) return old;
    if (old) this.detach(old);
    const node: Inode = { id: this.nextId++, parent, name, nlookup: 0, type, attached: true, handles: new Set() };
    this.byId.set(node.id, node);
    this.byName.set(key, node);
    return node;
  }

  /** The kernel dropped n references. */
  forget(id: number, n: number): void {
    const node = this.byId.get(id);
    if (!node || id === ROOT_ID) return;
    node.nlookup = Math.max(0, node.nlookup - n);
    if (node.nlookup === 0 && !node.attached) this.byId.delete(id);
  }

  /** (parent, name) was unlinked or removed. */
  remove(parent: number, name: string): void {
    const node = this.byName.get(keyOf(parent, name));
    if (node) this.detach(node);
  }

  /** (parent, name) was renamed to (newParent, newName), replacing whatever was there. */
  move(parent: number, name: string, newParent: number, newName: string): void {
    const node = this.byName.get(keyOf(parent, name));
    this.remove(newParent, newName);
    if (!node) return;
    this.byName.delete(keyOf(parent, name));
    this.renames++;
    node.parent = newParent;
    node.name = newName;
    this.byName.set(keyOf(newParent, newName), node);
  }

  /** Nodes known, for the statedump. */
  get size(): number {
    return this.byId.size;
  }

  private detach(node: Inode): void {
    node.attached = false;
    this.byName.delete(keyOf(node.parent, node.name));
    if (node.nlookup === 0) this.byId.delete(node.id);
  }
}

function keyOf(parent: number, name: string): string {
  return `${parent}/${name}`;
}
