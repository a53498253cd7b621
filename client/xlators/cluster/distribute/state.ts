import { S_IFDIR } from '../../../../lib/fops.js';
import { BoundedMap } from '../../../../lib/bounded-map.js';
import { CtxKey, type Inode, type InodeTable } from '../../../../lib/inode.js';
import type { HashRange } from '../../../../lib/layout.js';

/** A directory's layout as this client uses it. */
export interface DirLayout {
  ranges: HashRange[];
  /** Every entry sits on (or has a link file on) its hashed child: a miss there is final. */
  settled: boolean;
}

/** A layout held for a directory, with the generation of the weights it was read under. */
interface HeldLayout {
  layout: DirLayout;
  generation: number;
}

/** What a reply taught about a gfid whose inode the table does not have yet. */
type Unclaimed = { cached: number } | { layout: HeldLayout };

/**
 * Distribute's state on the shared inodes (GlusterFS keeps both in the inode ctx): on a file,
 * the child holding its data (the cached subvolume); on a directory, its layout. A rename
 * moves the inode, so the state follows the file or the directory, subtree included, and
 * every name of a hard link sees it. Each read of it is checked by its use: a child that no
 * longer holds the file answers ENOENT or ESTALE and the name is located again.
 *
 * Two fallbacks, because a fop's inode is not always there:
 * - a reply comes before the FUSE bridge makes the inode of a new name (a first lookup, a
 *   listing, mkdir): what it said is kept by gfid until a fop arrives on the inode of that
 *   gfid (GlusterFS avoids this by making the inode before the lookup);
 * - a caller without a mount (the rebalance process, tests with detached inodes) names
 *   directories the table does not know: their layouts are kept by path, or every
 *   hashedChild of the rebalancer would read its directory's layout from every child again.
 *   Any directory rename forgets them all, so a rename never scans them.
 * Both are bounded.
 */
export class InodeState {
  private readonly cachedKey: CtxKey<number>;
  private readonly layoutKey: CtxKey<HeldLayout>;
  private readonly unclaimed: BoundedMap<string, Unclaimed>;
  private readonly layoutsByPath: BoundedMap<string, HeldLayout>;
  /** Bumped when the weights change: every layout held before is stale. */
  private generation = 0;

  constructor(owner: string, private readonly table: InodeTable, entries: number) {
    this.cachedKey = new CtxKey(owner);
    this.layoutKey = new CtxKey(owner);
    this.unclaimed = new BoundedMap(4 * entries);
    this.layoutsByPath = new BoundedMap(entries);
  }

  /** The inode a fop on path is about: its own, else the table's of that name. */
  private inodeOf(path: string, inode: Inode | undefined): Inode | undefined {
    return inode ?? this.table.find(path);
  }

  /** The child holding the file at path, if known. */
  cached(path: string, inode?: Inode): number | undefined {
    const node = this.inodeOf(path, inode);
    if (!node || node.type === S_IFDIR) return undefined;
    const held = node.ctx.get(this.cachedKey);
    if (held !== undefined) return held;
    const learned = this.claim(node, 'cached');
    return learned && 'cached' in learned ? node.ctx.set(this.cachedKey, learned.cached) : undefined;
  }

  /** The file at path (of this gfid, when the reply said) lives on child. */
  setCached(path: string, inode: Inode | undefined, child: number, gfid?: string): void {
    const node = this.inodeOf(path, inode);
    if (node && node.type !== S_IFDIR && sameFile(node, gfid)) {
      node.ctx.set(this.cachedKey, child);
      // What an earlier reply left for the inode is older than this.
      if (node.gfid !== undefined) this.unclaimed.delete(node.gfid);
    } else if (gfid !== undefined) {
      this.unclaimed.set(gfid, { cached: child });
    }
  }

  /** Where the file at path lives is not known any more. */
  forgetCached(path: string, inode?: Inode): void {
    this.inodeOf(path, inode)?.ctx.take(this.cachedKey);
  }

  /** The layout held for the directory at path. */
  layout(dir: string, inode?: Inode): DirLayout | undefined {
    const node = this.inodeOf(dir, inode);
    let held = node ? node.ctx.get(this.layoutKey) : this.layoutsByPath.get(dir);
    if (!held && node) {
      const learned = this.claim(node, 'layout');
      if (learned && 'layout' in learned) held = node.ctx.set(this.layoutKey, learned.layout);
    }
    return held?.generation === this.generation ? held.layout : undefined;
  }

  /** Holds the layout of the directory at path (of this gfid, when known). */
  setLayout(dir: string, inode: Inode | undefined, layout: DirLayout, gfid?: string): void {
    const held = { layout, generation: this.generation };
    const node = this.inodeOf(dir, inode);
    if (node && (node.type === S_IFDIR || node.type === 0) && sameFile(node, gfid)) {
      node.ctx.set(this.layoutKey, held);
      if (node.gfid !== undefined) this.unclaimed.delete(node.gfid);
      return;
    }
    if (gfid !== undefined) this.unclaimed.set(gfid, { layout: held });
    if (!node) this.layoutsByPath.set(dir, held);
  }

  /** The directory at path is gone, or its layout is not to be trusted. */
  forgetLayout(dir: string, inode?: Inode): void {
    this.inodeOf(dir, inode)?.ctx.take(this.layoutKey);
    this.layoutsByPath.delete(dir);
  }

  /** A directory was renamed: the layouts held by path may be under another name now. */
  dirRenamed(): void {
    this.layoutsByPath.clear();
  }

  /** The weights changed: no layout held so far is this graph's any more. */
  weightsChanged(): void {
    this.generation++;
    this.layoutsByPath.clear();
    this.unclaimed.clear();
  }

  /** For the statedump. */
  get waiting(): { unclaimed: number; layoutsByPath: number } {
    return { unclaimed: this.unclaimed.size, layoutsByPath: this.layoutsByPath.size };
  }

  /** What a reply said of the inode's gfid before the inode existed, taken over by the inode. */
  private claim(node: Inode, kind: 'cached' | 'layout'): Unclaimed | undefined {
    if (node.gfid === undefined) return undefined;
    const learned = this.unclaimed.get(node.gfid);
    if (!learned || !(kind in learned)) return undefined;
    this.unclaimed.delete(node.gfid);
    return learned;
  }
}

/** Whether an inode can be the file a reply of this gfid was about. */
function sameFile(node: Inode, gfid: string | undefined): boolean {
  return gfid === undefined || node.gfid === undefined || node.gfid === gfid;
}
