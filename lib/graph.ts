import { VolfileSyntaxError } from './errors.js';
import { InodeTable } from './inode.js';
import { OptionError, parseOptions } from './options.js';
import { knownXlatorTypes, lookupXlator } from './registry.js';
import { parseVolfile, type VolumeDecl } from './volfile/parse.js';
import type { Xlator, XlatorClass } from './xlator.js';

/** A built translator graph: the top (last volume) and every node by name. */
export class Graph {
  constructor(readonly top: Xlator, readonly byName: Map<string, Xlator>, readonly inodes: InodeTable) {}

  /** Initialises children before parents. */
  async init(): Promise<void> {
    for (const x of this.byName.values()) await x.init();
  }

  /** Tears down parents before children. */
  async fini(): Promise<void> {
    for (const x of [...this.byName.values()].reverse()) await x.fini();
  }

  /**
   * Applies the options of a changed volfile with the same translators (GlusterFS's graph
   * reconfigure): all are validated first, then applied. Throws, changing nothing, on a bad
   * option or a translator that is not in this graph (that change needs a restart).
   */
  reconfigure(decls: readonly VolumeDecl[], file = 'volfile'): void {
    const apply: Array<[Xlator, Record<string, string>]> = [];
    for (const d of decls) {
      const x = this.byName.get(d.name);
      if (!x || x.type !== d.type) throw new VolfileSyntaxError(d.line, `volume "${d.name}" (${d.type}) is not in the running graph; restart to apply`, file);
      try {
        parseOptions((x.constructor as XlatorClass).options, d.options);
      } catch (e) {
        if (e instanceof OptionError) throw new VolfileSyntaxError(d.optionLines[e.key] ?? d.line, `volume "${d.name}": ${e.message}`, file);
        throw e;
      }
      apply.push([x, d.options]);
    }
    for (const [x, options] of apply) x.reconfigure(options);
  }

  statedump(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, x] of this.byName) out[name] = { type: x.type, ...x.statedump() };
    return out;
  }
}

/**
 * Validates declarations against the registry and builds the graph (types and options by
 * line). inodes: the mount's inode table, which every graph of the mount shares.
 */
export function buildGraph(decls: VolumeDecl[], file = 'volfile', inodes = new InodeTable()): Graph {
  const byName = new Map<string, Xlator>();
  const used = new Set<string>();
  for (const d of decls) {
    const cls = lookupXlator(d.type);
    if (!cls) {
      throw new VolfileSyntaxError(d.typeLine, `unknown translator type "${d.type}" (known: ${knownXlatorTypes().join(', ')})`, file);
    }
    const children = d.subvolumes.map((s) => {
      used.add(s);
      return byName.get(s)!;
    });
    try {
      byName.set(d.name, new cls({ name: d.name, type: d.type, options: d.options, children, inodes }));
    } catch (e) {
      if (e instanceof OptionError) {
        throw new VolfileSyntaxError(d.optionLines[e.key] ?? d.line, `volume "${d.name}": ${e.message}`, file);
      }
      if (e instanceof VolfileSyntaxError) throw e;
      throw new VolfileSyntaxError(d.line, `volume "${d.name}": ${(e as Error).message}`, file);
    }
  }
  const top = decls[decls.length - 1]!;
  for (const d of decls) {
    if (d !== top && !used.has(d.name)) {
      throw new VolfileSyntaxError(d.line, `volume "${d.name}" is not used by any other volume (dangling)`, file);
    }
  }
  return new Graph(byName.get(top.name)!, byName, inodes);
}

/** Parses and builds in one step. */
export function graphFromVolfile(text: string, file = 'volfile', inodes?: InodeTable): Graph {
  return buildGraph(parseVolfile(text, file), file, inodes);
}
