import type { OptionSpec } from '../options.js';

/** Where a volume option lands in the generated graphs (GlusterFS's glusterd-volume-set table). */
export interface VolumeOptionDef {
  spec: OptionSpec;
  /** Translator type whose instances receive the option. */
  xlator: string;
  /** The option's name in that translator's schema. */
  key: string;
}

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
  'cluster.lookup-optimize': {
    spec: { type: 'bool', description: 'Trust a miss on the hashed brick when the directory layout is settled (on/off)' },
    xlator: 'cluster/distribute',
    key: 'lookup-optimize',
  },
  'performance.md-cache-timeout': {
    spec: { type: 'int', min: 0, max: 600, description: 'Seconds clients keep file attributes (0 turns the attribute cache off)' },
    xlator: 'performance/md-cache',
    key: 'md-cache-timeout',
  },
};
