import { XATTR_AFR_PREFIX, type Xattrs } from '../../../../lib/fops.js';

/** The three things a replica can miss, in changelog order (as AFR's data/metadata/entry). */
export const KINDS = ['data', 'metadata', 'entry'] as const;
export type Kind = (typeof KINDS)[number];
const KIND_INDEX: Record<Kind, number> = { data: 0, metadata: 1, entry: 2 };
const COUNTER_BYTES = 12;

/** The changelog xattr a copy keeps about replica `name`. */
export function changelogName(name: string): string {
  return XATTR_AFR_PREFIX + name;
}

/** A delta or value of one changelog xattr: [data, metadata, entry] as big-endian int32s. */
export function counters(kind: Kind, n: number): Buffer {
  const b = Buffer.alloc(COUNTER_BYTES);
  b.writeInt32BE(n, KIND_INDEX[kind] * 4);
  return b;
}

/** A delta of several kinds at once (a write burst marks data and metadata). */
export function countersOf(kinds: readonly Kind[], n: number): Buffer {
  const b = Buffer.alloc(COUNTER_BYTES);
  for (const kind of kinds) b.writeInt32BE(n, KIND_INDEX[kind] * 4);
  return b;
}

function read(b: Uint8Array | undefined, kind: Kind): number {
  if (!b || b.length < COUNTER_BYTES) return 0;
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).readInt32BE(KIND_INDEX[kind] * 4);
}

/**
 * What the replicas say about each other: pending[i][j] is how many changes of a kind copy
 * i holds that copy j may have missed. Undefined rows are replicas that did not answer.
 */
export class Changelog {
  constructor(readonly names: readonly string[], private readonly rows: ReadonlyArray<Xattrs | undefined>) {}

  /** The changelog in lookups of one path on every replica (asked for the changelogName xattrs). */
  static fromLookups(names: readonly string[], res: ReadonlyArray<{ ok: true; value: { xattrs?: Xattrs } } | { ok: false }>): Changelog {
    return new Changelog(names, res.map((r) => (r.ok ? r.value.xattrs ?? {} : undefined)));
  }

  /** Pending count copy i holds against copy j for a kind (0 when i did not answer). */
  pending(i: number, j: number, kind: Kind): number {
    return read(this.rows[i]?.[changelogName(this.names[j]!)], kind);
  }

  answered(i: number): boolean {
    return this.rows[i] !== undefined;
  }

  /**
   * A copy whose note about itself is non-zero went away in the middle of a change: its
   * own change may be missing, so its accusations of others do not count (as in AFR).
   */
  private accuser(i: number, kind: Kind): boolean {
    return this.answered(i) && this.pending(i, i, kind) <= 0;
  }

  /** True when another answering copy that can be trusted as a witness blames copy j. */
  blamed(j: number, kind: Kind): boolean {
    return this.names.some((_, i) => i !== j && this.accuser(i, kind) && this.pending(i, j, kind) > 0)
      || (this.pending(j, j, kind) > 0 && this.names.some((_, i) => i !== j && this.accuser(i, kind)));
  }

  /** Answering copies no other copy blames: safe to read from and to heal from. */
  sources(kind: Kind): number[] {
    return this.names.map((_, i) => i).filter((i) => this.answered(i) && !this.blamed(i, kind));
  }

  /** Any non-zero counter at all (including a copy's note about itself after an interrupted change). */
  dirty(kind: Kind): boolean {
    return this.names.some((_, i) => this.answered(i) && this.names.some((__, j) => this.pending(i, j, kind) !== 0));
  }

  /** Something to heal now: a non-zero counter of an answering copy about an answering copy. */
  healable(kind: Kind): boolean {
    return this.names.some((_, i) => this.answered(i) && this.names.some((__, j) => this.answered(j) && this.pending(i, j, kind) !== 0));
  }

  /** Every answering copy is blamed by another: nothing can be trusted without a policy. */
  splitBrain(kind: Kind): boolean {
    const answering = this.names.map((_, i) => i).filter((i) => this.answered(i));
    return answering.length > 1 && answering.every((i) => this.blamed(i, kind));
  }

  /**
   * The xattrop deltas that zero copy i's counters of a kind about the given copies (after
   * healing them). Notes about copies that were not healed — unreachable ones — stay.
   */
  resetDeltas(i: number, kind: Kind, about: readonly number[]): Xattrs {
    const out: Xattrs = {};
    this.names.forEach((name, j) => {
      if (!about.includes(j)) return;
      const v = this.pending(i, j, kind);
      if (v !== 0) out[changelogName(name)] = counters(kind, -v);
    });
    return out;
  }
}
