import { FsError } from './errors.js';
import type { FopArgs, FopHandlers, FopName, FopReply } from './fops.js';
import type { Frame } from './frame.js';
import { InodeTable } from './inode.js';
import { parseOptions, type OptionSchema, type OptionValues } from './options.js';
import { Logger } from './log.js';
import { traceFop } from './trace.js';

/** Events that travel up the graph (GlusterFS's notify). */
export type XlatorEvent = 'CHILD_UP' | 'CHILD_DOWN';

export interface XlatorInit {
  name: string;
  type: string;
  /** Raw option strings as written in the volfile; validated against the schema. */
  options: Record<string, string>;
  children: Xlator[];
  /** The graph's inode table (the mount's, shared by its graphs); a new one when absent (unit tests). */
  inodes?: InodeTable;
}

export interface XlatorClass {
  new (init: XlatorInit): Xlator;
  readonly options: OptionSchema;
  readonly description: string;
}

/** What a translator class declares it implements (`implements FopImpl`): any subset of the fops. */
export type FopImpl = Partial<FopHandlers>;

/**
 * A handler run under a span of its own (Xlator.call, for a traced frame). Out of call():
 * a closure there would make V8 allocate a context on every call, traced or not.
 */
function tracedOwn<F extends FopName>(x: Xlator, fop: F, own: (a: FopArgs<F>, f: Frame) => Promise<FopReply<F>>, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
  return traceFop(`${x.name} ${fop}`, frame, (f) => own.call(x, args, f));
}

/**
 * Base of every translator: lifecycle, options, and pass-through of unimplemented fops.
 * A fop handler is a method named after the fop; call() winds to it or to the first child.
 */
export abstract class Xlator {
  static readonly options: OptionSchema = {};
  static readonly description: string = '';

  readonly name: string;
  readonly type: string;
  readonly children: Xlator[];
  readonly parents: Xlator[] = [];
  /** The inode table every translator of the graph shares (GlusterFS's itable). */
  readonly inodes: InodeTable;
  protected opts: OptionValues;
  protected readonly log: Logger;

  constructor(init: XlatorInit) {
    this.name = init.name;
    this.type = init.type;
    this.children = init.children;
    this.inodes = init.inodes ?? init.children[0]?.inodes ?? new InodeTable();
    for (const c of init.children) c.parents.push(this);
    const schema = (this.constructor as XlatorClass).options;
    this.opts = parseOptions(schema, init.options);
    this.log = new Logger(`${init.type}:${init.name}`);
  }

  /** Winds a fop: this translator's handler if it has one, else the first child's. */
  call<F extends FopName>(fop: F, args: FopArgs<F>, frame: Frame): Promise<FopReply<F>> {
    const own = (this as unknown as Record<string, ((a: FopArgs<F>, f: Frame) => Promise<FopReply<F>>) | undefined>)[fop];
    if (own) return frame.trace === undefined ? own.call(this, args, frame) : tracedOwn(this, fop, own, args, frame);
    const child = this.children[0];
    if (!child) return Promise.reject(FsError.of('ENOSYS', `${this.name}: ${fop} not supported`));
    return child.call(fop, args, frame);
  }

  /** Called once, children first, before any fop. */
  async init(): Promise<void> {}

  /** Called once on shutdown, parents first. */
  async fini(): Promise<void> {}

  /** Applies new option values from a changed volfile without a restart. */
  reconfigure(options: Record<string, string>): void {
    this.opts = parseOptions((this.constructor as XlatorClass).options, options);
  }

  /**
   * Someone now waits for requests sent `behind` (lib/rpc/coalescing-sender.ts): send them
   * at once. The default passes it to the children; protocol/client flushes.
   */
  flushBehind(): void {
    for (const c of this.children) c.flushBehind();
  }

  /** A child went up or down; the default passes the event to the parents. */
  notify(event: XlatorEvent, _from: Xlator): void {
    for (const p of this.parents) p.notify(event, this);
  }

  /**
   * Another client changed these volume paths (a brick's upcall, GlusterFS's cache
   * invalidation): the attributes or content of each path, or its presence in its parent
   * directory. A caching translator drops what it holds of them (and of their parents'
   * listings) and calls this default, which tells the parents.
   */
  invalidate(paths: readonly string[], _from: Xlator): void {
    for (const p of this.parents) p.invalidate(paths, this);
  }

  /**
   * A lock `owner` holds on (path, name) is wanted by another request. On a brick
   * features/locks says so and protocol/server tells the holder's client (a push); in the
   * client protocol/client passes it up to the translator that took the lock. Default: tell
   * the parents.
   */
  lockContended(path: string, name: string, owner: string): void {
    for (const p of this.parents) p.lockContended(path, name, owner);
  }

  /** A client connection went away: drop what it held (locks). Default: tell the children. */
  clientGone(clientId: string): void {
    for (const c of this.children) c.clientGone(clientId);
  }

  /** Private state for debugging (GlusterFS statedump). */
  statedump(): Record<string, unknown> {
    return {};
  }

  protected optString(key: string): string {
    return String(this.opts[key]);
  }

  protected optNumber(key: string): number {
    return Number(this.opts[key]);
  }

  protected optBool(key: string): boolean {
    return this.opts[key] === true;
  }
}
