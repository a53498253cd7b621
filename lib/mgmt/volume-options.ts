import type { OptionSpec } from '../options.js';

/** Where a volume option lands in the generated graphs (GlusterFS's glusterd-volume-set table). */
export interface VolumeOptionDef {
  spec: OptionSpec;
  /** Translator type whose instances receive the option. */
  xlator: string;
  /**
   * The option's name in that translator's schema, or TRANSLATOR_SWITCH: the value (on/off)
   * decides whether the translator is in the client graph at all (GlusterFS's
   * performance.write-behind on|off).
   */
  key: string;
}

/** The `key` of a volume option that switches a whole translator on or off. */
export const TRANSLATOR_SWITCH = '(present)';

/** Performance translators and whether they are in the graph by default (GlusterFS's defaults, except where docs/performance.md says why not). */
export const PERFORMANCE_DEFAULTS: Readonly<Record<string, boolean>> = {
  'performance/quick-read': true,
  'performance/open-behind': true,
  'performance/write-behind': true,
  'performance/read-ahead': true,
  // On, as in GlusterFS up to 8 (9 turned it off); docs/performance.md "io-cache" says why.
  'performance/io-cache': true,
  'performance/nl-cache': true,
  'performance/readdir-ahead': true,
  'performance/md-cache': true,
};

/** Every key `brickfs volume set` accepts. */
export const VOLUME_OPTIONS: Readonly<Record<string, VolumeOptionDef>> = {
  'network.ping-timeout': {
    spec: { type: 'int', min: 1, max: 1800, description: 'Seconds without an answer before a client declares a brick down' },
    xlator: 'protocol/client',
    key: 'ping-timeout',
  },
  'cluster.stripe-block-size': {
    spec: {
      type: 'size', min: 4096, max: 1024 ** 3, multipleOf: 4096,
      description: 'Block size of striped volumes for files created from now on (bytes, or with K/M/G; a multiple of 4096)',
    },
    xlator: 'cluster/stripe',
    key: 'block-size',
  },
  'cluster.quorum-type': {
    spec: { type: 'string', values: ['none', 'auto', 'fixed'], description: 'When replicated writes are refused: auto (more than half, or half with the first brick), fixed (cluster.quorum-count), none' },
    xlator: 'cluster/replicate',
    key: 'quorum-type',
  },
  'cluster.quorum-count': {
    spec: { type: 'int', min: 1, max: 16, description: 'Replicas needed for writes when cluster.quorum-type is fixed' },
    xlator: 'cluster/replicate',
    key: 'quorum-count',
  },
  'cluster.self-heal': {
    spec: { type: 'bool', description: 'Heal a blamed replica when a client looks the file up (on/off)' },
    xlator: 'cluster/replicate',
    key: 'self-heal',
  },
  'cluster.entry-eager-lock': {
    spec: { type: 'bool', description: 'Replicated creates and unlinks in one directory share one whole-directory lock and pending mark while they come in a row (on/off, default on)' },
    xlator: 'cluster/replicate',
    key: 'entry-burst',
  },
  'cluster.post-op-delay-ms': {
    spec: { type: 'int', min: 0, max: 60000, description: 'Milliseconds a replicated write burst keeps its lock and pending marks after its last write (default 50)' },
    xlator: 'cluster/replicate',
    key: 'post-op-delay-ms',
  },
  'cluster.entry-post-op-delay-ms': {
    spec: { type: 'int', min: 0, max: 60000, description: 'Milliseconds a replicated entry burst keeps its directory locked and marked after its last change; it ends at the latest 5 s after it began, and at once when another client wants the lock (default 1000)' },
    xlator: 'cluster/replicate',
    key: 'entry-post-op-delay-ms',
  },
  'cluster.lookup-optimize': {
    spec: { type: 'bool', description: 'Trust a miss on the hashed brick when the directory layout is settled (on/off)' },
    xlator: 'cluster/distribute',
    key: 'lookup-optimize',
  },
  'storage.writeback-window': {
    spec: { type: 'size', min: 0, max: 1024 ** 3, description: 'Bytes a file is written in sequence before its brick starts writing them to disk while the writer goes on (bytes, or with K/M/G; 0 leaves it to the kernel; default 4M); running bricks apply it at once' },
    xlator: 'storage/posix',
    key: 'writeback-window',
  },
  'features.cache-invalidation': {
    spec: { type: 'bool', description: 'Bricks tell every other client which paths a client changed, so their caches (and the kernel\'s) drop them at once instead of after their timeouts; running bricks apply it at once (on/off, default on)' },
    xlator: 'protocol/server',
    key: 'cache-invalidation',
  },
  'performance.quick-read': {
    spec: { type: 'bool', description: 'Fetch the content of small files with their lookup and answer their reads from the client for up to 1 s (on/off)' },
    xlator: 'performance/quick-read',
    key: TRANSLATOR_SWITCH,
  },
  'performance.quick-read-max-file-size': {
    spec: { type: 'size', min: 0, max: 1024 ** 2, description: 'Largest file whose content quick-read fetches with its lookup (bytes, or with K/M; at most 1 MiB)' },
    xlator: 'performance/quick-read',
    key: 'max-file-size',
  },
  'performance.quick-read-cache-timeout': {
    spec: { type: 'int', min: 0, max: 60, description: 'Seconds a small file\'s fetched content answers reads (0 turns quick-read\'s cache off)' },
    xlator: 'performance/quick-read',
    key: 'cache-timeout',
  },
  'performance.quick-read-cache-size': {
    spec: { type: 'size', min: 0, max: 1024 ** 3, description: 'Bytes of small-file content a client holds in total (bytes, or with K/M/G)' },
    xlator: 'performance/quick-read',
    key: 'cache-size',
  },
  'performance.quick-read-prefetch-files': {
    spec: { type: 'int', min: 0, max: 16, description: 'Small files of a recently listed directory whose content quick-read fetches ahead, in parallel, once a walker looks one of them (or the directory) up; 0 turns it off' },
    xlator: 'performance/quick-read',
    key: 'prefetch-files',
  },
  'performance.open-behind': {
    spec: { type: 'bool', description: 'Answer read-only opens at once and read small files by path, one round trip per file; another client\'s unlink of a file open here makes its reads fail (on/off)' },
    xlator: 'performance/open-behind',
    key: TRANSLATOR_SWITCH,
  },
  'performance.write-behind': {
    spec: { type: 'bool', description: 'Acknowledge writes at once and send them in the background; errors surface on the next write, fsync or close (on/off)' },
    xlator: 'performance/write-behind',
    key: TRANSLATOR_SWITCH,
  },
  'performance.write-behind-window-size': {
    spec: { type: 'size', min: 0, max: 1024 ** 3, description: 'Bytes of acknowledged, not yet written data a client holds per file (bytes, or with K/M/G)' },
    xlator: 'performance/write-behind',
    key: 'cache-size',
  },
  'performance.flush-behind': {
    spec: { type: 'bool', description: 'close() returns without waiting for the pending writes; a failure after that is only logged (GlusterFS\'s default is on, brickfs\'s off) (on/off)' },
    xlator: 'performance/write-behind',
    key: 'flush-behind',
  },
  'performance.write-behind-hold-ms': {
    spec: { type: 'int', min: 0, max: 1000, description: 'Milliseconds a small batch of writes to an idle file waits for the next write to merge with (0: sent at once, GlusterFS\'s trickling-writes)' },
    xlator: 'performance/write-behind',
    key: 'hold-ms',
  },
  'performance.read-ahead': {
    spec: { type: 'bool', description: 'Fetch the next pages of a file read sequentially before they are asked for (on/off)' },
    xlator: 'performance/read-ahead',
    key: TRANSLATOR_SWITCH,
  },
  'performance.read-ahead-page-count': {
    spec: { type: 'int', min: 1, max: 16, description: 'Pages (1 MiB each) fetched ahead of a sequential reader' },
    xlator: 'performance/read-ahead',
    key: 'page-count',
  },
  'performance.io-cache': {
    spec: { type: 'bool', description: 'Keep file pages in client memory across opens, checked against the file\'s mtime and size; another client\'s change is seen after performance.cache-refresh-timeout (on/off)' },
    xlator: 'performance/io-cache',
    key: TRANSLATOR_SWITCH,
  },
  'performance.io-cache-size': {
    spec: { type: 'size', min: 0, max: 64 * 1024 ** 3, description: 'Bytes of file pages io-cache holds per mount, least recently used evicted first (bytes, or with K/M/G)' },
    xlator: 'performance/io-cache',
    key: 'cache-size',
  },
  // GlusterFS's older key for the same size (there it sizes quick-read's cache too).
  'performance.cache-size': {
    spec: { type: 'size', min: 0, max: 64 * 1024 ** 3, description: 'Bytes of file pages io-cache holds per mount (as performance.io-cache-size)' },
    xlator: 'performance/io-cache',
    key: 'cache-size',
  },
  'performance.cache-refresh-timeout': {
    spec: { type: 'int', min: 0, max: 61, description: 'Seconds io-cache trusts the attributes it saw for a file before it checks them again (the bound on seeing another client\'s change)' },
    xlator: 'performance/io-cache',
    key: 'cache-timeout',
  },
  'performance.cache-max-file-size': {
    spec: { type: 'size', min: 0, description: 'Files larger than this are not kept by io-cache (0: no limit)' },
    xlator: 'performance/io-cache',
    key: 'max-file-size',
  },
  'performance.cache-min-file-size': {
    spec: { type: 'size', min: 0, description: 'Files smaller than this are not kept by io-cache' },
    xlator: 'performance/io-cache',
    key: 'min-file-size',
  },
  'performance.cache-priority': {
    spec: { type: 'string', description: 'PATTERN:N,... (e.g. *.h:3,*.tmp:0): io-cache evicts pages of lower-priority files first; unmatched files have 1, 0 is never cached' },
    xlator: 'performance/io-cache',
    key: 'priority',
  },
  'performance.nl-cache': {
    spec: { type: 'bool', description: 'Answer lookups of names known not to exist (in directories this client made or listed) without a round trip (on/off)' },
    xlator: 'performance/nl-cache',
    key: TRANSLATOR_SWITCH,
  },
  'performance.nl-cache-timeout': {
    spec: { type: 'int', min: 0, max: 600, description: 'Seconds a directory listing this client knows stays trusted for negative lookups (default 60 while features.cache-invalidation is on, else 1)' },
    xlator: 'performance/nl-cache',
    key: 'nl-cache-timeout',
  },
  'performance.readdir-ahead': {
    spec: { type: 'bool', description: 'When a directory is listed, fetch the listings of its subdirectories in the background for a walk that goes down next (find, du, rm -rf) (on/off)' },
    xlator: 'performance/readdir-ahead',
    key: TRANSLATOR_SWITCH,
  },
  'performance.readdir-ahead-max-prefetch': {
    spec: { type: 'int', min: 0, max: 4096, description: 'Subdirectories whose listings are prefetched per listing' },
    xlator: 'performance/readdir-ahead',
    key: 'max-prefetch',
  },
  'performance.readdir-ahead-parallel': {
    spec: { type: 'int', min: 1, max: 64, description: 'Prefetched listings in flight at most, per client' },
    xlator: 'performance/readdir-ahead',
    key: 'parallel',
  },
  'performance.readdir-ahead-cache-timeout': {
    spec: { type: 'int', min: 0, max: 600, description: 'Seconds a prefetched listing may be used (0: no prefetching)' },
    xlator: 'performance/readdir-ahead',
    key: 'cache-timeout',
  },
  'performance.readdir-ahead-reuse-listings': {
    spec: { type: 'bool', description: 'A listing answers every readdir of its directory until it is cache-timeout old, not one (default on while features.cache-invalidation is on, else off)' },
    xlator: 'performance/readdir-ahead',
    key: 'reuse-listings',
  },
  'performance.readdir-ahead-cache-size': {
    spec: { type: 'int', min: 0, max: 1 << 24, description: 'Directory entries held at most in prefetched listings, per client' },
    xlator: 'performance/readdir-ahead',
    key: 'cache-size',
  },
  'performance.md-cache': {
    spec: { type: 'bool', description: 'Cache file attributes in the client (on/off)' },
    xlator: 'performance/md-cache',
    key: TRANSLATOR_SWITCH,
  },
  'performance.md-cache-timeout': {
    spec: { type: 'int', min: 0, max: 600, description: 'Seconds clients keep file attributes (0 turns the attribute cache off; default 60 while features.cache-invalidation is on, else 1)' },
    xlator: 'performance/md-cache',
    key: 'md-cache-timeout',
  },
};
