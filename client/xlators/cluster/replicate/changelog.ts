import { isDir, XATTR_AFR, XATTR_AFR_PREFIX, type Iatt, type Xattrs } from '../../../../lib/fops.js';

/** The three things a replica can miss, in changelog order (as AFR's data/metadata/entry). */
export const KINDS = ['data', 'metadata', 'entry'] as const;
export type Kind = (typeof KINDS)[number];

// The changelog on disk (docs/replicate.md): one xattr per copy, XATTR_AFR, holding two
// big-endian int32 counters per replica of the set, by position: slot 0 counts data changes
// of a file or entry changes of a directory (a file has no entries, a directory no data),
// slot 1 metadata changes. Replica 2 needs 16 bytes, which ext4 keeps inside a 256-byte
// inode beside the gfid; one xattr per replica, as before, spilled every file's changelog
// into a separate 4 KiB block, and every pre-op and post-op cost ~50 µs per xattr there.
const SLOTS_PER_REPLICA = 2;
const SLOT_BYTES = 4;
const SLOT: Record<Kind, number> = { data: 0, entry: 0, metadata: 1 };

/** Bytes of the packed changelog of a set of `replicas`. */
function packedBytes(replicas: number): number {
  return replicas * SLOTS_PER_REPLICA * SLOT_BYTES;
}

/** Where the counter of a kind about replica j sits in the packed changelog. */
function slotOffset(j: number, kind: Kind): number {
  return (j * SLOTS_PER_REPLICA + SLOT[kind]) * SLOT_BYTES;
}

// Earlier versions kept one xattr per replica, `trusted.brickfs.afr.<replica name>` =
// [data, metadata, entry]. Those are still read (a volume made by them may hold pending
// marks), counted with the new ones, and cleared by heals; they are never written otherwise.
const LEGACY_BYTES = 12;
const LEGACY_INDEX: Record<Kind, number> = { data: 0, metadata: 1, entry: 2 };

function legacyName(name: string): string {
  return XATTR_AFR_PREFIX + name;
}

/** The xattrs a lookup asks for to read the changelog of a set with these replicas. */
export function changelogNames(names: readonly string[]): string[] {
  return [XATTR_AFR, ...names.map(legacyName)];
}

/**
 * An xattrop delta: n for each of the kinds about each of the replicas `about` (positions in
 * a set of `replicas`).
 */
export function changelogDelta(replicas: number, about: readonly number[], kinds: readonly Kind[], n: number): Xattrs {
  const b = Buffer.alloc(packedBytes(replicas));
  for (const j of about) for (const kind of kinds) b.writeInt32BE(n, slotOffset(j, kind));
  return { [XATTR_AFR]: b };
}

function int32At(b: Uint8Array | undefined, offset: number): number {
  if (!b || b.length < offset + 4) return 0;
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).readInt32BE(offset);
}

/**
 * What the replicas say about each other: pending[i][j] is how many changes of a kind copy
 * i holds that copy j may have missed. Undefined rows are replicas that did not answer.
 */
export class Changelog {
  /**
   * rows: each replica's changelog xattrs (changelogNames), undefined for one that did not
   * answer. dir: the path is a directory (slot 0 counts entries, not data).
   */
  constructor(readonly names: readonly string[], private readonly rows: ReadonlyArray<Xattrs | undefined>, private readonly dir = false) {}

  /** The changelog in lookups of one path on every replica (asked for the changelogNames xattrs). */
  static fromLookups(names: readonly string[], res: ReadonlyArray<{ ok: true; value: { xattrs?: Xattrs; iatt?: Iatt } } | { ok: false }>): Changelog {
    const first = res.find((r) => r.ok && r.value.iatt);
    const dir = first?.ok === true && first.value.iatt !== undefined && isDir(first.value.iatt);
    return new Changelog(names, res.map((r) => (r.ok ? r.value.xattrs ?? {} : undefined)), dir);
  }

  /** Whether slot 0 of the packed changelog counts this kind for this path. */
  private packedKind(kind: Kind): boolean {
    return kind === 'metadata' || (kind === 'entry') === this.dir;
  }

  private packed(i: number, j: number, kind: Kind): number {
    if (!this.packedKind(kind)) return 0;
    return int32At(this.rows[i]?.[XATTR_AFR], slotOffset(j, kind));
  }

  private legacy(i: number, j: number, kind: Kind): number {
    const v = this.rows[i]?.[legacyName(this.names[j]!)];
    return v && v.length >= LEGACY_BYTES ? int32At(v, LEGACY_INDEX[kind] * 4) : 0;
  }

  /** Pending count copy i holds against copy j for a kind (0 when i did not answer). */
  pending(i: number, j: number, kind: Kind): number {
    return this.packed(i, j, kind) + this.legacy(i, j, kind);
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
   * healing them), in whichever format holds them. Notes about copies that were not
   * healed — unreachable ones — stay.
   */
  resetDeltas(i: number, kind: Kind, about: readonly number[]): Xattrs {
    const out: Xattrs = {};
    let packed: Buffer | undefined;
    for (const j of about) {
      const v = this.packed(i, j, kind);
      if (v !== 0) {
        packed ??= Buffer.alloc(packedBytes(this.names.length));
        packed.writeInt32BE(-v, slotOffset(j, kind));
      }
      const old = this.legacy(i, j, kind);
      if (old !== 0) {
        const b = Buffer.alloc(LEGACY_BYTES);
        b.writeInt32BE(-old, LEGACY_INDEX[kind] * 4);
        out[legacyName(this.names[j]!)] = b;
      }
    }
    if (packed) out[XATTR_AFR] = packed;
    return out;
  }
}
