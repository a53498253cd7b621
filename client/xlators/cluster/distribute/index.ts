import type { Frame } from '../../../../lib/frame.js';
import type { FopArgs, FopReply } from '../../../../lib/fops.js';
import { CtxKey } from '../../../../lib/inode.js';
import { computeLayout, type HashRange } from '../../../../lib/layout.js';
import type { Logger } from '../../../../lib/log.js';
import { registerXlator } from '../../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorInit } from '../../../../lib/xlator.js';
import { mkdir, readdir, rmdir } from './dir-ops.js';
import { flush, onFd, open, readfile, release, type DhtFd } from './fd-ops.js';
import { create, makeOnHashed, onHolder, statfs, unlink } from './file-ops.js';
import { fixLayout, hashed, settleLayout } from './layout.js';
import { link, pointLinkfile } from './linkfile.js';
import { locate } from './lookup.js';
import { rename } from './rename.js';
import { InodeState } from './state.js';

/**
 * cluster/distribute (elastic hash). A file lives on the child whose hash range, in the
 * layout of its parent directory, holds xxhash32 of its name. Directories exist on every
 * child; each copy carries that child's range. A name living elsewhere (after a rename) is
 * found through a link file on its hashed child; a miss on the hashed child asks every child.
 *
 * This class holds the configuration and the state and routes each fop to the module of its
 * concern, as GlusterFS splits dht: state.ts (inode ctx), layout.ts and selfheal.ts
 * (layouts, directory heal, fix-layout), lookup.ts (locating names), linkfile.ts,
 * rename.ts, dir-ops.ts (mkdir, rmdir, readdir), file-ops.ts and fd-ops.ts.
 */
export class Distribute extends Xlator implements FopImpl {
  static override readonly description = 'Spreads files over subvolumes by elastic hash';
  static override readonly options = {
    'layout-cache-entries': {
      type: 'int', default: 16384, min: 16, max: 1 << 22,
      description: 'Directory layouts kept for directories the inode table does not know (and 4x that many replies waiting for their inode)',
    },
    'lookup-optimize': {
      type: 'bool', default: true, description: 'Trust a miss on the hashed subvolume when the directory layout is settled (no ask-everyone)',
      volume: { key: 'cluster.lookup-optimize', description: 'Trust a miss on the hashed brick when the directory layout is settled (on/off)' },
    },
    'layout-epoch': { type: 'int', default: 0, min: 0, max: 0xffffffff, description: 'Generation of the brick set; layouts written by an older one are rewritten, a newer one is never overwritten' },
    'layout-weights': { type: 'string', default: '', description: 'Share of new names per subvolume, comma separated (default: equal)' },
    'decommissioned-bricks': { type: 'string', default: '', description: 'Subvolumes being drained by remove-brick, comma separated: they get no hash range' },
  } as const;

  /** Where files are and directory layouts, on the shared inodes. */
  readonly state: InodeState;
  /** This instance's slot on each open fd. */
  readonly fdKey = new CtxKey<DhtFd>(this.name);
  /** Counters for the statedump: fds open through this translator, layouts written (fix-layout counts its work with it), directory fops sent without a lookup first. */
  readonly stats = { openFds: 0, layoutWrites: 0, knownDirFops: 0 };
  private readonly childIndex = new Map<string, number>();
  private weightList: number[];
  private drainedList: number[] = [];

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length === 0) throw new Error('cluster/distribute needs at least one subvolume');
    init.children.forEach((c, i) => this.childIndex.set(c.name, i));
    this.weightList = this.parseWeights();
    this.state = new InodeState(this.name, this.inodes, this.optNumber('layout-cache-entries'));
  }

  override reconfigure(options: Record<string, string>): void {
    super.reconfigure(options);
    this.weightList = this.parseWeights();
    this.state.weightsChanged();
  }

  private parseWeights(): number[] {
    const list = (key: string): string[] => this.optString(key).split(',').map((w) => w.trim()).filter(Boolean);
    const raw = list('layout-weights');
    if (raw.length && raw.length !== this.n) throw new Error(`layout-weights has ${raw.length} values for ${this.n} subvolumes`);
    const weights = raw.length ? raw.map((w) => {
      if (!/^\d+$/.test(w)) throw new Error(`layout-weights: "${w}" is not a non-negative integer`);
      return Number(w);
    }) : new Array<number>(this.n).fill(1);
    const drained: number[] = [];
    for (const name of list('decommissioned-bricks')) {
      const i = this.childIndex.get(name);
      if (i === undefined) throw new Error(`decommissioned-bricks: "${name}" is not a subvolume of ${this.name}`);
      weights[i] = 0;
      drained.push(i);
    }
    this.drainedList = drained;
    if (!weights.some((w) => w > 0)) throw new Error('every subvolume is decommissioned or has weight 0: nothing can take new files');
    return weights;
  }

  /** Each subvolume's share of new names: the layout weights, 0 for a decommissioned one. */
  get weights(): readonly number[] {
    return this.weightList;
  }

  /** The children a remove-brick drains (option decommissioned-bricks), by index. */
  get decommissioned(): readonly number[] {
    return this.drainedList;
  }

  get epoch(): number {
    return this.optNumber('layout-epoch');
  }

  get lookupOptimize(): boolean {
    return this.optBool('lookup-optimize');
  }

  get logger(): Logger {
    return this.log;
  }

  get n(): number {
    return this.children.length;
  }

  /** Every child's index. */
  all(): number[] {
    return this.children.map((_, i) => i);
  }

  /** The layout this graph writes for a directory at this path. */
  target(dir: string): HashRange[] {
    return computeLayout(this.weightList, dir);
  }

  override statedump(): Record<string, unknown> {
    return { children: this.children.map((c) => c.name), weights: this.weightList, epoch: this.epoch, ...this.stats, ...this.state.waiting };
  }

  // ---- what the rebalancer (client/rebalance) uses ---------------------------------------

  /** fix-layout of one directory; true when something was rewritten. */
  fixLayout(dir: string, frame: Frame): Promise<boolean> {
    return fixLayout(this, dir, frame);
  }

  /** Marks a directory's layout settled on every copy: each entry now sits on its hashed child. */
  settleLayout(dir: string, frame: Frame): Promise<void> {
    return settleLayout(this, dir, frame);
  }

  /** Makes (or repoints) the link file at path on child `at`, pointing to child `to`, with the file's gfid. */
  pointLinkfile(path: string, at: number, to: number, frame: Frame): Promise<void> {
    return pointLinkfile(this, path, at, to, frame);
  }

  /** The child a link file's target names, if it is one of ours. */
  childNamed(name: string): number | undefined {
    return this.childIndex.get(name);
  }

  /** The child a name hashes to under this graph's layout of its directory. */
  async hashedChild(path: string, frame: Frame): Promise<number> {
    return (await hashed(this, path, frame)).child;
  }

  // ---- fops -----------------------------------------------------------------------------

  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const loc = await locate(this, a.path, f, a.wantData, a.inode);
    if ('dir' in loc) return { iatt: loc.dir };
    return loc.data ? { iatt: loc.iatt, data: loc.data } : { iatt: loc.iatt };
  }

  access(a: FopArgs<'access'>, f: Frame): Promise<FopReply<'access'>> {
    return onHolder(this, 'access', a, f);
  }

  readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    return readdir(this, a, f);
  }

  mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    return mkdir(this, a, f);
  }

  rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    return rmdir(this, a, f);
  }

  create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    return create(this, a, f);
  }

  mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    return makeOnHashed(this, 'mknod', a, f);
  }

  symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    return makeOnHashed(this, 'symlink', a, f);
  }

  open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    return open(this, a, f);
  }

  readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    return readfile(this, a, f);
  }

  read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    return onFd(this, 'read', a, f);
  }

  write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return onFd(this, 'write', a, f);
  }

  writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    return onFd(this, 'writev', a, f);
  }

  fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    return onFd(this, 'fstat', a, f);
  }

  ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    return onFd(this, 'ftruncate', a, f);
  }

  fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    return onFd(this, 'fsync', a, f);
  }

  flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    return flush(this, a, f);
  }

  release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    return release(this, a, f);
  }

  unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    return unlink(this, a, f);
  }

  rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    return rename(this, a, f);
  }

  link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    return link(this, a, f);
  }

  readlink(a: FopArgs<'readlink'>, f: Frame): Promise<FopReply<'readlink'>> {
    return onHolder(this, 'readlink', a, f);
  }

  setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    return onHolder(this, 'setattr', a, f);
  }

  getxattr(a: FopArgs<'getxattr'>, f: Frame): Promise<FopReply<'getxattr'>> {
    return onHolder(this, 'getxattr', a, f);
  }

  setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    return onHolder(this, 'setxattr', a, f);
  }

  listxattr(a: FopArgs<'listxattr'>, f: Frame): Promise<FopReply<'listxattr'>> {
    return onHolder(this, 'listxattr', a, f);
  }

  removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    return onHolder(this, 'removexattr', a, f);
  }

  statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    return statfs(this, a, f);
  }
}

registerXlator('cluster/distribute', Distribute);
