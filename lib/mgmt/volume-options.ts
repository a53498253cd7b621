import type { ConditionalDefault, OptionSpec } from '../options.js';
import { GENERATED_VOLUME_OPTIONS } from './volume-options.generated.js';

/**
 * Where a volume option lands in the generated graphs (GlusterFS's glusterd-volume-set table).
 * Each row comes from the schema of the translator that reads the option (its `volume` key or
 * `volumeSwitch`), through volume-options.generated.ts: docs/options.md.
 */
export interface VolumeOptionDef {
  /** What `volume set` accepts: the translator option's type, bounds and default, described for users of the volume. */
  spec: OptionSpec;
  /** Translator type whose instances receive the option. */
  xlator: string;
  /**
   * The option's name in that translator's schema, or TRANSLATOR_SWITCH: the value (on/off)
   * decides whether the translator is in the client graph at all (GlusterFS's
   * performance.write-behind on|off); spec.default says whether it is by default.
   */
  key: string;
  /** The default volgen writes instead of spec.default while another volume option has a given value. */
  defaultWhen?: ConditionalDefault;
}

/** The `key` of a volume option that switches a whole translator on or off. */
export const TRANSLATOR_SWITCH = '(present)';

/** Every key `brickfs volume set` accepts, in the order it lists them. */
export const VOLUME_OPTIONS: Readonly<Record<string, VolumeOptionDef>> = GENERATED_VOLUME_OPTIONS;
