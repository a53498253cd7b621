/** Translator option schemas: type, default, bounds, description (as GlusterFS's volume_options). */

export type OptionType = 'string' | 'int' | 'bool' | 'size' | 'path';

export interface OptionSpec {
  type: OptionType;
  default?: string | number | boolean;
  min?: number;
  max?: number;
  /** For ints and sizes: the value must be a multiple of this (block sizes in pages). */
  multipleOf?: number;
  /** For strings: the allowed values. */
  values?: readonly string[];
  /** For strings: a regular expression (source) the whole value must match, and what it describes, for the error. */
  pattern?: { regex: string; what: string };
  required?: boolean;
  description: string;
  /**
   * The `volume set` key (gluster-style, e.g. performance.md-cache-timeout) that reaches this
   * option in every translator of this type volgen writes; several for GlusterFS's alias keys.
   * lib/mgmt/volume-options.generated.ts is generated from these (docs/options.md).
   */
  volume?: VolumeKey | readonly VolumeKey[];
  /** A default that volgen writes instead of `default` while another volume option has a given value. */
  defaultWhen?: ConditionalDefault;
}

/** A `volume set` key of a translator option (a row of GlusterFS's glusterd-volume-set table). */
export interface VolumeKey {
  key: string;
  /** What `volume set` says of the key, for users of the volume; the option's description when absent. */
  description?: string;
}

/**
 * A context-dependent default (GlusterFS's option groups): while the volume option `key` is
 * in effect with value `is` (set so, or by default), volgen writes `default` for an option the
 * user did not set.
 */
export interface ConditionalDefault {
  key: string;
  is: OptionValue;
  default: OptionValue;
}

/**
 * The `volume set performance.X on|off` key that decides whether a translator is in the
 * client graph at all; a translator class declares it as `static readonly volumeSwitch`.
 */
export interface VolumeSwitch {
  key: string;
  /** In the graph unless switched off. */
  default: boolean;
  description: string;
}

export type OptionSchema = Record<string, OptionSpec>;
export type OptionValue = string | number | boolean;
export type OptionValues = Record<string, OptionValue>;

/** An option value that does not fit its schema. */
export class OptionError extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

function parseOne(key: string, spec: OptionSpec, raw: string): OptionValue {
  switch (spec.type) {
    case 'string':
    case 'path': {
      if (spec.values && !spec.values.includes(raw)) {
        throw new OptionError(key, `option ${key}: "${raw}" is not one of ${spec.values.join(', ')}`);
      }
      if (spec.pattern && !new RegExp(spec.pattern.regex).test(raw)) {
        throw new OptionError(key, `option ${key}: "${raw}" is not ${spec.pattern.what}`);
      }
      if (spec.type === 'path' && !raw.startsWith('/')) {
        throw new OptionError(key, `option ${key}: "${raw}" is not an absolute path`);
      }
      return raw;
    }
    case 'bool': {
      const v = raw.toLowerCase();
      if (['on', 'yes', 'true', 'enable', '1'].includes(v)) return true;
      if (['off', 'no', 'false', 'disable', '0'].includes(v)) return false;
      throw new OptionError(key, `option ${key}: "${raw}" is not a boolean (on/off)`);
    }
    case 'int':
    case 'size': {
      let n: number;
      if (spec.type === 'size') {
        const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(raw.trim());
        const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
        n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
      } else {
        n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      }
      if (!Number.isSafeInteger(n)) throw new OptionError(key, `option ${key}: "${raw}" is not a${spec.type === 'size' ? ' size' : 'n integer'}`);
      if (spec.min !== undefined && n < spec.min) throw new OptionError(key, `option ${key}: ${n} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new OptionError(key, `option ${key}: ${n} is above the maximum ${spec.max}`);
      if (spec.multipleOf !== undefined && n % spec.multipleOf !== 0) {
        throw new OptionError(key, `option ${key}: ${n} is not a multiple of ${spec.multipleOf}`);
      }
      return n;
    }
  }
}

/** Validates raw option strings against a schema and fills in defaults. */
export function parseOptions(schema: OptionSchema, raw: Record<string, string>): OptionValues {
  const out: OptionValues = {};
  for (const [key, value] of Object.entries(raw)) {
    const spec = schema[key];
    if (!spec) {
      const known = Object.keys(schema);
      throw new OptionError(key, `unknown option "${key}"${known.length ? ` (known: ${known.join(', ')})` : ''}`);
    }
    out[key] = parseOne(key, spec, value);
  }
  for (const [key, spec] of Object.entries(schema)) {
    if (key in out) continue;
    if (spec.required) throw new OptionError(key, `option "${key}" is required`);
    if (spec.default !== undefined) out[key] = spec.default;
  }
  return out;
}
