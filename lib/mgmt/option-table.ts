// The `volume set` table (VOLUME_OPTIONS) as the translators' option schemas declare it:
// scripts/gen-volume-options.mjs runs this over the built translators and writes the result
// to volume-options.generated.ts, which the CLI and the daemon read without loading any
// translator. docs/options.md says how an option is declared.
import { parseOptions, type OptionSpec, type OptionValue, type VolumeKey, type VolumeSwitch } from '../options.js';
import type { XlatorClass } from '../xlator.js';
import { TRANSLATOR_SWITCH, type VolumeOptionDef } from './volume-options.js';

/**
 * The order `volume set` lists keys and `volume get all` prints them: the translators of the
 * client graph bottom up, then those of the brick graph; any other translator after them, by
 * type. Presentation only: nothing is left out for not being named here.
 */
const LISTING_ORDER: readonly string[] = [
  'protocol/client', 'cluster/stripe', 'cluster/replicate', 'cluster/distribute',
  'storage/posix', 'protocol/server',
  'performance/quick-read', 'performance/open-behind', 'performance/write-behind', 'performance/read-ahead',
  'performance/io-cache', 'performance/nl-cache', 'performance/readdir-ahead', 'performance/md-cache',
];

/** A translator class, with the on/off volume key it may declare. */
type Declaring = XlatorClass & { readonly volumeSwitch?: VolumeSwitch };

function rank(type: string): [number, string] {
  const i = LISTING_ORDER.indexOf(type);
  return [i < 0 ? LISTING_ORDER.length : i, type];
}

function volumeKeys(spec: OptionSpec): readonly VolumeKey[] {
  if (spec.volume === undefined) return [];
  return Array.isArray(spec.volume) ? spec.volume : [spec.volume as VolumeKey];
}

/** The schema fields `volume set` validates with (no volume keys, no conditional default). */
function specOf(spec: OptionSpec, description: string): OptionSpec {
  const { volume: _v, defaultWhen: _d, required: _r, ...rest } = spec;
  return { ...rest, description };
}

/** Whether value is one the option accepts (as volgen will write it, a string). */
function fits(spec: OptionSpec, value: OptionValue): boolean {
  try {
    return parseOptions({ v: spec }, { v: String(value) })['v'] === value;
  } catch {
    return false;
  }
}

/**
 * Every volume option the given translators declare: one row per `volume` key of an option,
 * one per `volumeSwitch`. Throws when two declare the same key, or a conditional default
 * names an unknown key or a value that does not fit.
 */
export function volumeOptionTable(xlators: Iterable<readonly [string, XlatorClass]>): Record<string, VolumeOptionDef> {
  const rows: [string, VolumeOptionDef][] = [];
  const sorted = [...xlators].sort(([a], [b]) => {
    const [ra, ta] = rank(a);
    const [rb, tb] = rank(b);
    return ra - rb || (ta < tb ? -1 : ta > tb ? 1 : 0);
  });
  for (const [type, cls] of sorted) {
    const sw = (cls as Declaring).volumeSwitch;
    if (sw) rows.push([sw.key, { xlator: type, key: TRANSLATOR_SWITCH, spec: { type: 'bool', default: sw.default, description: sw.description } }]);
    for (const [key, spec] of Object.entries(cls.options)) {
      for (const vk of volumeKeys(spec)) {
        const def: VolumeOptionDef = { xlator: type, key, spec: specOf(spec, vk.description ?? spec.description) };
        if (spec.defaultWhen) def.defaultWhen = { ...spec.defaultWhen };
        rows.push([vk.key, def]);
      }
    }
  }
  const table: Record<string, VolumeOptionDef> = {};
  for (const [key, def] of rows) {
    const other = table[key];
    if (other) throw new Error(`volume option ${key} is declared twice: by ${other.xlator} (${other.key}) and ${def.xlator} (${def.key})`);
    table[key] = def;
  }
  for (const [key, def] of rows) {
    const when = def.defaultWhen;
    if (!when) continue;
    const on = table[when.key];
    if (!on) throw new Error(`volume option ${key}: its defaultWhen names ${when.key}, which no translator declares`);
    if (!fits(on.spec, when.is)) throw new Error(`volume option ${key}: defaultWhen.is ${String(when.is)} is not a value of ${when.key}`);
    if (!fits(def.spec, when.default)) throw new Error(`volume option ${key}: defaultWhen.default ${String(when.default)} does not fit the option`);
  }
  return table;
}

function literal(v: unknown): string {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, '\\\'')}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => literal(x)).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : literal(k));
    return `{ ${entries.map(([k, x]) => `${key(k)}: ${literal(x)}`).join(', ')} }`;
  }
  throw new TypeError(`cannot write ${String(v)} into the option table`);
}

/** The text of volume-options.generated.ts for a table. */
export function formatVolumeOptionTable(table: Readonly<Record<string, VolumeOptionDef>>): string {
  const rows = Object.entries(table).map(([key, def]) => {
    const lines = [
      `  ${literal(key)}: {`,
      `    xlator: ${literal(def.xlator)},`,
      `    key: ${literal(def.key)},`,
      `    spec: ${literal(def.spec)},`,
    ];
    if (def.defaultWhen) lines.push(`    defaultWhen: ${literal(def.defaultWhen)},`);
    lines.push('  },');
    return lines.join('\n');
  });
  return [
    '// Generated by scripts/gen-volume-options.mjs from the translators\' option schemas (their',
    '// `volume` keys and `volumeSwitch`): do not edit. `npm run build` fails while this file',
    '// differs from what the schemas say, and rewrites it; docs/options.md.',
    'import type { VolumeOptionDef } from \'./volume-options.js\';',
    '',
    '/** Every key `brickfs volume set` accepts, in the order it lists them. */',
    'export const GENERATED_VOLUME_OPTIONS: Readonly<Record<string, VolumeOptionDef>> = {',
    ...rows,
    '};',
    '',
  ].join('\n');
}
