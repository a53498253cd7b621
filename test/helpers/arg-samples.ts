import type { ArgSpec, FieldsSpec } from '../../lib/rpc/args.js';

/** A value the spec accepts (every optional field present). */
export function sample(spec: ArgSpec): unknown {
  switch (spec.kind) {
    case 'path': return '/hostile';
    case 'string': return 'x';
    case 'enum': return spec.values[0];
    case 'uint': case 'uint32': return 1;
    case 'number': return 1.5;
    case 'bool': return true;
    case 'buffer': return Buffer.from('x');
    case 'array': return [sample(spec.item)];
    case 'map': return { 'user.x': sample(spec.value) };
    case 'object': return sampleFields(spec.fields);
  }
}

export function sampleFields(fields: FieldsSpec): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, s]) => [k, sample(s)]));
}

/** A value of the wrong kind for the spec. */
function wrong(spec: ArgSpec): unknown {
  switch (spec.kind) {
    case 'path': return 42;
    case 'string': return 42;
    case 'enum': return 'bogus';
    case 'uint': return -1;
    case 'uint32': return 2 ** 33;
    case 'number': return 'soon';
    case 'bool': return 'yes';
    case 'buffer': return 'text';
    case 'array': return 'not a list';
    case 'map': return [1];
    case 'object': return 'not a map';
  }
}

/** One bad request: args, and the field its EINVAL should name. */
export interface Mutation {
  what: string;
  field: string;
  args: Record<string, unknown>;
}

/**
 * Every way to get the args of a fop wrong one field at a time: each field (nested ones too)
 * of the wrong kind, each required field missing, an unknown field in each map of fields,
 * each list and map one entry too long.
 */
export function mutations(fields: FieldsSpec): Mutation[] {
  const out: Mutation[] = [];
  const base = sampleFields(fields);
  // at: where the value sits in a fresh copy of base; name: how the brick names it.
  const walk = (spec: ArgSpec, at: Array<string | number>, name: string, optional: boolean): void => {
    const edit = (what: string, field: string, change: (parent: Record<string | number, unknown>, key: string | number) => void): void => {
      const args = structuredCopy(base);
      let parent = args as Record<string | number, unknown>;
      for (const k of at.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      change(parent, at[at.length - 1]!);
      out.push({ what, field, args });
    };
    edit(`${name} of the wrong kind`, name, (p, k) => { p[k] = wrong(spec); });
    if (!optional && typeof at[at.length - 1] === 'string' && !name.endsWith(']')) edit(`${name} missing`, name, (p, k) => { delete p[k]; });
    if (spec.kind === 'array') {
      edit(`${name} with ${spec.max + 1} items`, name, (p, k) => { p[k] = Array.from({ length: spec.max + 1 }, () => sample(spec.item)); });
      walk(spec.item, [...at, 0], `${name}[0]`, true);
    }
    if (spec.kind === 'map') {
      edit(`${name} with ${spec.max + 1} entries`, name, (p, k) => { p[k] = Object.fromEntries(Array.from({ length: spec.max + 1 }, (_, i) => [`user.${i}`, sample(spec.value)])); });
      walk(spec.value, [...at, 'user.x'], `${name}["user.x"]`, true);
    }
    if (spec.kind === 'object') {
      edit(`${name} with an unknown field`, `${name}.bogus`, (p, k) => { (p[k] as Record<string, unknown>).bogus = 1; });
      for (const [f, s] of Object.entries(spec.fields)) walk(s, [...at, f], `${name}.${f}`, !!s.optional);
    }
  };
  out.push({ what: 'an unknown field', field: 'args.bogus', args: { ...structuredCopy(base), bogus: 1 } });
  for (const [f, s] of Object.entries(fields)) walk(s, [f], `args.${f}`, !!s.optional);
  return out;
}

/** A deep copy keeping Buffers Buffers (structuredClone makes them Uint8Arrays). */
function structuredCopy<T>(v: T): T {
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (Array.isArray(v)) return v.map(structuredCopy) as T;
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structuredCopy(x)])) as T;
  return v;
}
