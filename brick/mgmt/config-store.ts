/**
 * The management daemon's configuration store, behind one interface with two backends: a
 * file on the one host (the embedded default: nothing to install) and etcd for a pool of
 * hosts (as glusterd2 kept its store). Keys are '/'-separated strings under a prefix the
 * caller chooses; values are strings (JSON where the caller stores objects).
 *
 * Every change is conditional on the revision the caller read, so two daemons changing the
 * same key cannot both win (etcd's transaction on mod_revision; the file store's own
 * counter). Liveness is a lease: a key put with a lease goes when its holder stops renewing.
 */

/** A key's value and the revision of its last change (0 never occurs for a present key). */
export interface Versioned {
  key: string;
  value: string;
  revision: number;
}

/** A change seen by a watch: the value after it, or none when the key was removed (or its lease expired). */
export interface StoreEvent {
  key: string;
  value?: string;
  revision: number;
}

/** A watch on a prefix; close() stops it. */
export interface StoreWatch {
  close(): Promise<void>;
}

/** A lease: keys put with it go when it expires or is revoked. Renewed by the store until revoke(). */
export interface StoreLease {
  readonly id: string;
  /** Called once if the lease is lost (expired before a renewal reached the store). */
  onLost(fn: () => void): void;
  revoke(): Promise<void>;
}

/** A held cluster-wide lock; release() gives it up (it also goes with its holder's lease). */
export interface StoreLock {
  release(): Promise<void>;
}

export interface ConfigStore {
  /** One key, or undefined when absent. */
  get(key: string): Promise<Versioned | undefined>;
  /** Every key under a prefix, in key order. */
  list(prefix: string): Promise<Versioned[]>;
  /**
   * Puts value at key only if the key's revision is still `expected` (0: only if absent).
   * True when it was written; false when someone changed the key since it was read.
   */
  putIf(key: string, value: string, expected: number, lease?: StoreLease): Promise<boolean>;
  /** Removes key only if its revision is still `expected`; true when removed. */
  removeIf(key: string, expected: number): Promise<boolean>;
  /**
   * Calls fn for every change under prefix from now on, in revision order. Should the store
   * drop changes (etcd cancels a watch whose next revision was compacted away while it was
   * cut off), the watch goes on from the store's present revision and onGap is called: the
   * caller reads again what it follows.
   */
  watch(prefix: string, fn: (e: StoreEvent) => void, onGap?: () => void): Promise<StoreWatch>;
  /** A lease of ttlMs, renewed until revoked (peer liveness). */
  lease(ttlMs: number): Promise<StoreLease>;
  /**
   * Takes the named cluster-wide lock (the operation lock of glusterd: one volume change
   * at a time), waiting at most waitMs; rejects with EBUSY-coded FsError when it stays held.
   */
  lock(name: string, waitMs: number): Promise<StoreLock>;
  /** Stops leases, watches and connections. */
  close(): Promise<void>;
}
