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
};
