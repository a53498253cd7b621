// What `brickfs volume get` shows: every volume option's value in effect, read from the
// graphs volgen generates for the volume, so defaults that depend on other options (the
// nl-cache timeout with cache invalidation on, say) come out as the translators see them.
import type { Decl } from '../../brick/mgmt/volgen.js';
import { TRANSLATOR_SWITCH, VOLUME_OPTIONS } from '../../lib/mgmt/volume-options.js';
import { parseOptions, type OptionSpec } from '../../lib/options.js';

/** One row of `volume get`. */
export interface EffectiveOption {
  key: string;
  /** As `volume set` takes it: on/off for switches, bytes for sizes. */
  value: string;
  /** Set with `volume set` (else the default). */
  set: boolean;
}

/**
 * The value in effect of every volume option. A translator not in the graph (stripe's block
 * size on a volume without stripe, a performance translator switched off) shows the value it
 * would start with: its schema's default, which the generated VOLUME_OPTIONS carries, so no
 * translator is loaded here.
 */
export function effectiveOptions(set: Readonly<Record<string, string>>, clientGraph: readonly Decl[], brickGraph: readonly Decl[]): EffectiveOption[] {
  return Object.keys(VOLUME_OPTIONS).map((key) => ({ key, value: effectiveValue(key, set, [...clientGraph, ...brickGraph]), set: key in set }));
}

function effectiveValue(key: string, set: Readonly<Record<string, string>>, graph: readonly Decl[]): string {
  const def = VOLUME_OPTIONS[key]!;
  if (def.key === TRANSLATOR_SWITCH) return graph.some((d) => d.type === def.xlator) ? 'on' : 'off';
  const { spec } = def;
  const raw = graph.find((d) => d.type === def.xlator)?.options[def.key] ?? set[key];
  const value = raw === undefined ? spec.default : parseOptions({ [def.key]: spec }, { [def.key]: raw })[def.key];
  return show(spec, value);
}

function show(spec: OptionSpec, value: unknown): string {
  if (value === undefined || value === '') return '(none)';
  if (spec.type === 'bool') return value ? 'on' : 'off';
  return String(value);
}
