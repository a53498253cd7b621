import { gfidFor } from '../../../../lib/gfid.js';
import { type Frame } from '../../../../lib/frame.js';
import fs from 'node:fs';
import { FsError } from '../../../../lib/errors.js';
import { fanout, firstFailure, migrateOnAll, successes } from '../../../../lib/fanout.js';
import { XATTR_GFID, type FopArgs, type FopReply, type Xattrs } from '../../../../lib/fops.js';
import { CtxKey, type Fd } from '../../../../lib/inode.js';
import { registerXlator } from '../../../../lib/registry.js';
import { Xlator, type FopImpl, type XlatorEvent, type XlatorInit } from '../../../../lib/xlator.js';
import { decodeGeometry, encodeGeometry, XATTR_STRIPE } from './blocks.js';
import { onEveryFd, statFd, stripedRead, stripedWrite } from './io.js';
import { isRegular, mergeIatt, mergeStatfs } from './size.js';

const { O_APPEND } = fs.constants;

/**
 * Stripe's state on an open fd (its slot of the fd's ctx): the block size its file was
 * striped with. The fd itself is open on every child, each keeping its own slot on it.
 */
interface StripeFd {
  blockSize: number;
}

/** The fops that change a name or its attributes on every child (refused while a child is down). */
type EverywhereFop = 'mkdir' | 'mknod' | 'symlink' | 'link' | 'unlink' | 'rmdir' | 'rename' | 'setattr' | 'setxattr' | 'removexattr';

/**
 * cluster/stripe: a file is cut in blocks of block-size; block i lives in the file of the
 * same name on child (i mod N), at its own offset i*B, so every child holds a sparse file
 * and the file's size is the largest copy's (docs/stripe.md). Names, directories and
 * attributes exist identically on every child: namespace and metadata fops go to all of
 * them; lookup and readdir take child 0's attributes with a regular file's size merged;
 * readlink, access, getxattr, listxattr and entrylk are child 0's (the base class winds
 * them there).
 * While a child is down, fops that must reach it fail with ENOTCONN rather than leave the
 * children different.
 */
export class Stripe extends Xlator implements FopImpl {
  static override readonly description = 'Cuts files in blocks spread round-robin over subvolumes';
  static override readonly options = {
    'block-size': {
      type: 'size', default: 128 * 1024, min: 4096, max: 1024 ** 3, multipleOf: 4096,
      description: 'Size of the blocks files are cut in, for files created from now on (a multiple of 4096)',
      volume: { key: 'cluster.stripe-block-size', description: 'Block size of striped volumes for files created from now on (bytes, or with K/M/G; a multiple of 4096)' },
    },
  } as const;

  /** This instance's slot on each open fd. */
  private readonly fdKey = new CtxKey<StripeFd>(this.name);
  /** Fds open through this translator (released ones not counted), for the statedump. */
  private openFds = 0;
  /** Children that said CHILD_UP and not CHILD_DOWN since. */
  private readonly up = new Set<number>();

  constructor(init: XlatorInit) {
    super(init);
    if (init.children.length < 2) throw new Error('cluster/stripe needs at least two subvolumes');
  }

  private get n(): number {
    return this.children.length;
  }

  private get blockSize(): number {
    return this.optNumber('block-size');
  }

  override statedump(): Record<string, unknown> {
    return {
      children: this.children.map((c) => c.name), blockSize: this.blockSize, openFds: this.openFds,
      up: [...this.up].sort((a, b) => a - b).map((i) => this.children[i]!.name),
    };
  }

  /** Tracks which children are up; tells the parents the set is down while any child is. */
  override notify(event: XlatorEvent, from: Xlator): void {
    const i = this.children.indexOf(from);
    if (i < 0) return;
    const wasUp = this.up.size === this.n;
    if (event === 'CHILD_UP') this.up.add(i);
    else this.up.delete(i);
    const isUp = this.up.size === this.n;
    if (wasUp !== isUp) for (const p of this.parents) p.notify(isUp ? 'CHILD_UP' : 'CHILD_DOWN', this);
  }

  /** Refuses a change that could not reach every child: half-applied, it would leave the copies different. */
  private requireAllUp(what: string, path: string): void {
    if (this.up.size === this.n) return;
    const down = this.children.filter((_, i) => !this.up.has(i)).map((c) => c.name);
    throw FsError.of('ENOTCONN', `${what} ${path}: stripe child ${down.join(', ')} is down`);
  }

  /**
   * Winds a namespace or metadata fop to every child. Child 0 decides (its error wins); on
   * the others, errors in `tolerate` mean a copy already in the wanted state.
   */
  private async everywhere<F extends EverywhereFop>(
    fop: F, path: string, args: FopArgs<F> | ((child: number) => FopArgs<F>), frame: Frame, tolerate: readonly string[] = [],
  ): Promise<Array<FopReply<F>>> {
    this.requireAllUp(fop, path);
    const res = await fanout(this.children, fop, args, frame);
    const first = res[0]!;
    if (!first.ok) throw first.error;
    const failed = firstFailure(res, tolerate);
    if (failed) throw failed;
    return successes(res).map((r) => r.value);
  }

  /** The caller's xattrs plus a gfid, the same on every copy (distribute above gives one). */
  private withGfid(xattrs: Xattrs | undefined): Xattrs {
    return { ...xattrs, [XATTR_GFID]: gfidFor(xattrs) };
  }

  /** Takes an fd open on every child into its slot. */
  private opened(fd: Fd, blockSize: number): void {
    fd.ctx.set(this.fdKey, { blockSize });
    this.openFds++;
  }

  private fdOf(fd: Fd): StripeFd {
    const f = fd.ctx.get(this.fdKey);
    if (!f) throw FsError.of('EBADF', `${this.name}: fd on ${fd.path} is not open`);
    return f;
  }

  /** Closes fd on the children a half-failed open or create did open it on. */
  private releaseOn(children: readonly number[], fd: Fd, frame: Frame): void {
    for (const i of children) {
      this.children[i]!.call('release', { fd }, frame).catch((e: Error) => this.log.warn(`release after a failed open: ${e.message}`));
    }
  }

  /** The block size a file was striped with: its geometry xattr, or this volume's for files without one. */
  private async blockSizeOf(path: string, frame: Frame): Promise<number> {
    let raw: Buffer;
    try {
      raw = (await this.children[0]!.call('getxattr', { path, name: XATTR_STRIPE }, frame)).value;
    } catch (e) {
      if (FsError.from(e).code === 'ENODATA') return this.blockSize;
      throw e;
    }
    const g = decodeGeometry(raw);
    if (!g) throw FsError.of('EIO', `${path}: unreadable stripe geometry on ${this.children[0]!.name}`);
    if (g.count !== this.n) {
      throw FsError.of('EIO', `${path} was striped over ${g.count} subvolumes; ${this.name} has ${this.n}`);
    }
    return g.blockSize;
  }

  // ---- lookup and attributes -------------------------------------------------------------

  /**
   * Child 0's answer; for a regular file, the size, blocks and times merged from every copy.
   * Never the content (quick-read's wantData): each child holds only some blocks of a file.
   */
  async lookup(a: FopArgs<'lookup'>, f: Frame): Promise<FopReply<'lookup'>> {
    const { wantData: _content, ...args } = a;
    const res = await fanout(this.children, 'lookup', args, f);
    const first = res[0]!;
    if (!first.ok) throw first.error;
    if (!isRegular(first.value.iatt)) return first.value;
    const copies = [first.value.iatt];
    for (const r of res.slice(1)) {
      if (r.ok) copies.push(r.value.iatt);
      else if (r.error.code === 'ENOENT') this.log.warn(`${a.path}: copy missing on ${this.children[r.child]!.name}`);
      else throw r.error;
    }
    return { ...first.value, iatt: mergeIatt(copies) };
  }

  /**
   * Child 0's names (every child has the same), with each regular file's attributes merged
   * from every child's listing: caches above (md-cache) keep these attributes as lookups'.
   */
  async readdir(a: FopArgs<'readdir'>, f: Frame): Promise<FopReply<'readdir'>> {
    const res = await fanout(this.children, 'readdir', a, f);
    const failed = firstFailure(res);
    if (failed) throw failed;
    const [first, ...others] = successes(res).map((r) => r.value.entries);
    const byName = others.map((entries) => new Map(entries.map((e) => [e.name, e.iatt])));
    const entries = first!.map((e) => {
      if (!isRegular(e.iatt)) return e;
      const copies = [e.iatt];
      for (const m of byName) {
        const c = m.get(e.name);
        if (c) copies.push(c);
      }
      return { ...e, iatt: mergeIatt(copies) };
    });
    return { entries };
  }

  /** Changes mode, owner, times or size on every copy (a size on every copy keeps max = size). */
  async setattr(a: FopArgs<'setattr'>, f: Frame): Promise<FopReply<'setattr'>> {
    const replies = await this.everywhere('setattr', a.path, a, f, ['ENOENT']);
    return { iatt: mergeIatt(replies.map((r) => r.iatt)) };
  }

  /** Sets an xattr on every copy. */
  async setxattr(a: FopArgs<'setxattr'>, f: Frame): Promise<FopReply<'setxattr'>> {
    await this.everywhere('setxattr', a.path, a, f);
    return {};
  }

  /** Removes an xattr from every copy. */
  async removexattr(a: FopArgs<'removexattr'>, f: Frame): Promise<FopReply<'removexattr'>> {
    await this.everywhere('removexattr', a.path, a, f, ['ENODATA', 'ENOENT']);
    return {};
  }

  /** Usage of the whole set: space summed, inodes the smallest child's. */
  async statfs(a: FopArgs<'statfs'>, f: Frame): Promise<FopReply<'statfs'>> {
    const res = await fanout(this.children, 'statfs', a, f);
    const failed = firstFailure(res);
    if (failed) throw failed;
    return { statfs: mergeStatfs(successes(res).map((r) => r.value.statfs)) };
  }

  // ---- namespace -------------------------------------------------------------------------

  /** Makes the directory on every child, with one gfid. */
  async mkdir(a: FopArgs<'mkdir'>, f: Frame): Promise<FopReply<'mkdir'>> {
    const replies = await this.everywhere('mkdir', a.path, { ...a, xattrs: this.withGfid(a.xattrs) }, f, ['EEXIST']);
    return replies[0]!;
  }

  /** Removes the directory from every child. */
  async rmdir(a: FopArgs<'rmdir'>, f: Frame): Promise<FopReply<'rmdir'>> {
    await this.everywhere('rmdir', a.path, a, f, ['ENOENT']);
    return {};
  }

  /** Makes the node on every child (DHT link files from distribute above among them). */
  async mknod(a: FopArgs<'mknod'>, f: Frame): Promise<FopReply<'mknod'>> {
    const replies = await this.everywhere('mknod', a.path, { ...a, xattrs: this.withGfid(a.xattrs) }, f);
    return { iatt: mergeIatt(replies.map((r) => r.iatt)) };
  }

  /** Makes the symlink on every child (child 0's copy is the one read). */
  async symlink(a: FopArgs<'symlink'>, f: Frame): Promise<FopReply<'symlink'>> {
    const replies = await this.everywhere('symlink', a.path, { ...a, xattrs: this.withGfid(a.xattrs) }, f);
    return replies[0]!;
  }

  /** Links every copy. */
  async link(a: FopArgs<'link'>, f: Frame): Promise<FopReply<'link'>> {
    const replies = await this.everywhere('link', a.path, a, f);
    return { iatt: mergeIatt(replies.map((r) => r.iatt)) };
  }

  /** Removes every copy. */
  async unlink(a: FopArgs<'unlink'>, f: Frame): Promise<FopReply<'unlink'>> {
    await this.everywhere('unlink', a.path, a, f, ['ENOENT']);
    return {};
  }

  /** Renames every copy. */
  async rename(a: FopArgs<'rename'>, f: Frame): Promise<FopReply<'rename'>> {
    const replies = await this.everywhere('rename', a.from, a, f, ['ENOENT']);
    // A DHT link file the rename replaced (on every child alike): distribute above removes its data.
    return replies.find((r) => r.replacedLinkto !== undefined) ?? replies[0] ?? {};
  }

  // ---- open files ------------------------------------------------------------------------

  /** Rebalance holds and releases every copy of a file being moved. */
  async migrate(a: FopArgs<'migrate'>, f: Frame): Promise<FopReply<'migrate'>> {
    return migrateOnAll(this.children, a, f);
  }

  /**
   * Creates the file on every child, each copy tagged with the geometry (block size, count,
   * its index), and opens the one fd on all of them. O_APPEND is dropped: the kernel gives
   * every write its offset, and a brick appending at its own end of file would put the
   * block in the wrong place.
   */
  async create(a: FopArgs<'create'>, f: Frame): Promise<FopReply<'create'>> {
    this.requireAllUp('create', a.path);
    const blockSize = this.blockSize;
    const xattrs = this.withGfid(a.xattrs);
    const res = await fanout(this.children, 'create', (i) => ({
      ...a, flags: a.flags & ~O_APPEND,
      xattrs: { ...xattrs, [XATTR_STRIPE]: encodeGeometry({ blockSize, count: this.n, index: i }) },
    }), f);
    const opened = successes(res);
    const failed = firstFailure(res);
    if (failed) {
      // A child failed (it went down after the check): take the new copies back, so no
      // name is left that some children lack. The kernel creates only names its lookup
      // found absent, so these copies are ours.
      this.releaseOn(opened.map((o) => o.child), a.fd, f);
      await fanout(this.children, 'unlink', { path: a.path }, f, opened.map((o) => o.child));
      throw failed;
    }
    this.opened(a.fd, blockSize);
    return { iatt: mergeIatt(opened.map((o) => o.value.iatt)) };
  }

  /** Opens the fd on every copy (without O_APPEND, as create) and learns the file's block size. */
  async open(a: FopArgs<'open'>, f: Frame): Promise<FopReply<'open'>> {
    const [res, geometry] = await Promise.all([
      fanout(this.children, 'open', { ...a, flags: a.flags & ~O_APPEND }, f),
      this.blockSizeOf(a.path, f).then((b) => ({ ok: true as const, b }), (e: unknown) => ({ ok: false as const, e: FsError.from(e) })),
    ]);
    const opened = successes(res);
    const failed = firstFailure(res) ?? (geometry.ok ? undefined : geometry.e);
    if (failed || !geometry.ok) {
      this.releaseOn(opened.map((o) => o.child), a.fd, f);
      throw failed ?? FsError.of('EIO');
    }
    this.opened(a.fd, geometry.b);
    return {};
  }

  /** Reads across blocks; holes read as zeros, never past the logical size. */
  async read(a: FopArgs<'read'>, f: Frame): Promise<FopReply<'read'>> {
    return { data: await stripedRead(this.children, a.fd, this.fdOf(a.fd).blockSize, a.offset, a.size, f) };
  }

  /** A file's bytes are spread over every child and its size is the largest copy's: the caller opens and reads instead. */
  async readfile(a: FopArgs<'readfile'>, f: Frame): Promise<FopReply<'readfile'>> {
    throw FsError.of('ENOSYS', `${this.name}: readfile of ${a.path}: open and read instead`);
  }

  /** Writes across blocks, each piece on its child. */
  async write(a: FopArgs<'write'>, f: Frame): Promise<FopReply<'write'>> {
    return { size: await stripedWrite(this.children, a.fd, this.fdOf(a.fd).blockSize, a.offset, a.data, f) };
  }

  /** Each extent is a striped write of its own, in order (they may overlap); stops at a short one. */
  async writev(a: FopArgs<'writev'>, f: Frame): Promise<FopReply<'writev'>> {
    const { blockSize } = this.fdOf(a.fd);
    let size = 0;
    for (const e of a.extents) {
      const n = await stripedWrite(this.children, a.fd, blockSize, e.offset, e.data, f);
      size += n;
      if (n < e.data.length) break;
    }
    return { size };
  }

  /** Attributes of the open file, merged from every copy. */
  async fstat(a: FopArgs<'fstat'>, f: Frame): Promise<FopReply<'fstat'>> {
    return statFd(this.children, a.fd, f);
  }

  /** Sets every copy to the new size, so the largest copy is the new size, up or down. */
  async ftruncate(a: FopArgs<'ftruncate'>, f: Frame): Promise<FopReply<'ftruncate'>> {
    await onEveryFd(this.children, 'ftruncate', a, f);
    return {};
  }

  /** Flushes every copy to stable storage. */
  async fsync(a: FopArgs<'fsync'>, f: Frame): Promise<FopReply<'fsync'>> {
    await onEveryFd(this.children, 'fsync', a, f);
    return {};
  }

  /** Passes close(2) to every copy. */
  async flush(a: FopArgs<'flush'>, f: Frame): Promise<FopReply<'flush'>> {
    await onEveryFd(this.children, 'flush', a, f);
    return {};
  }

  /** Releases every copy; the fd is gone even when a child fails. */
  async release(a: FopArgs<'release'>, f: Frame): Promise<FopReply<'release'>> {
    if (!a.fd.ctx.take(this.fdKey)) throw FsError.of('EBADF', `${this.name}: fd on ${a.fd.path} is not open`);
    this.openFds--;
    await onEveryFd(this.children, 'release', a, f);
    return {};
  }
}

registerXlator('cluster/stripe', Stripe);
