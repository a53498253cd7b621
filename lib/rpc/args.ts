/**
 * The shapes fop arguments may take on the wire: a small schema language the fop table
 * (lib/fops.ts) writes each fop's arguments in, and the check protocol/server runs on every
 * request before dispatch. The type ArgsSpec<T> ties a schema to the TypeScript type it
 * describes, so a schema that misses a field, has one too many, or gives one the wrong kind
 * does not compile.
 */

/** Longest volume path a request may carry (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest other string (names, lock owners, symlink contents). */
export const MAX_STRING_BYTES = 4096;
/** Longest xattr name (Linux's XATTR_NAME_MAX): the keys of an xattrs map. */
export const MAX_XATTR_NAME_BYTES = 255;

/** A leaf or a container: what one argument must be. */
export type ArgSpec =
  /** An absolute volume path: starts with '/', no NUL; escapes are the brick's to refuse. */
  | { readonly kind: 'path' }
  /** Any string of at most MAX_STRING_BYTES (NUL allowed: internal lock names start with one). */
  | { readonly kind: 'string' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  /** A non-negative safe integer (fds, offsets, sizes, modes). */
  | { readonly kind: 'uint' }
  /** An integer of 0..2^32-1 (uids, gids, flags). */
  | { readonly kind: 'uint32' }
  /** Any finite number (times, which may be before 1970 or fractional). */
  | { readonly kind: 'number' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'buffer' }
  | { readonly kind: 'array'; readonly item: ArgSpec; readonly max: number }
  /** String keys (xattr names) to values of one kind, at most max of them. */
  | { readonly kind: 'map'; readonly value: ArgSpec; readonly max: number }
  | { readonly kind: 'object'; readonly fields: FieldsSpec };

/** A field of an object: its kind, and whether it may be absent. */
export type FieldSpec = ArgSpec & { readonly optional?: boolean };
export type FieldsSpec = { readonly [name: string]: FieldSpec };

/** The schema for a value of type T. */
export type SpecOf<T> =
  [T] extends [string] ? (string extends T ? { readonly kind: 'path' | 'string' } : { readonly kind: 'enum'; readonly values: readonly T[] })
  : [T] extends [number] ? { readonly kind: 'uint' | 'uint32' | 'number' }
  : [T] extends [boolean] ? { readonly kind: 'bool' }
  : [T] extends [Buffer] ? { readonly kind: 'buffer' }
  : [T] extends [readonly (infer E)[]] ? { readonly kind: 'array'; readonly item: SpecOf<E>; readonly max: number }
  : string extends keyof T ? { readonly kind: 'map'; readonly value: SpecOf<T[string & keyof T]>; readonly max: number }
  : { readonly kind: 'object'; readonly fields: ArgsSpec<T> };

/** The schema for an object of type T: every field of T, optional exactly where T's is. */
export type ArgsSpec<T> = {
  readonly [K in keyof T]-?: {} extends Pick<T, K>
    ? SpecOf<Exclude<T[K], undefined>> & { readonly optional: true }
    : SpecOf<T[K]> & { readonly optional?: false };
};

/** The same spec, allowed to be absent. */
export function optional<S extends ArgSpec>(spec: S): S & { readonly optional: true } {
  return { ...spec, optional: true };
}

/** What is wrong with an argument, and the errno a brick answers it with. */
export interface ArgProblem {
  /** ENAMETOOLONG for a path or name over its limit, as the kernel would say; EINVAL for the rest. */
  code: 'EINVAL' | 'ENAMETOOLONG';
  message: string;
}

const invalid = (message: string): ArgProblem => ({ code: 'EINVAL', message });
const tooLong = (message: string): ArgProblem => ({ code: 'ENAMETOOLONG', message });

export const PATH = { kind: 'path' } as const;
export const STRING = { kind: 'string' } as const;
export const UINT = { kind: 'uint' } as const;
export const UINT32 = { kind: 'uint32' } as const;
export const NUMBER = { kind: 'number' } as const;
export const BOOL = { kind: 'bool' } as const;
export const BUFFER = { kind: 'buffer' } as const;

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** What is wrong with v as spec (`at` names it), or undefined when nothing is. */
function problem(spec: ArgSpec, v: unknown, at: string): ArgProblem | undefined {
  switch (spec.kind) {
    case 'path':
      if (typeof v !== 'string' || !v.startsWith('/')) return invalid(`${at} must be an absolute path`);
      if (v.includes('\0')) return invalid(`${at} contains NUL`);
      return Buffer.byteLength(v) > MAX_PATH_BYTES ? tooLong(`${at} is longer than ${MAX_PATH_BYTES} bytes`) : undefined;
    case 'string':
      if (typeof v !== 'string') return invalid(`${at} must be a string`);
      return Buffer.byteLength(v) > MAX_STRING_BYTES ? tooLong(`${at} is longer than ${MAX_STRING_BYTES} bytes`) : undefined;
    case 'enum':
      return typeof v === 'string' && spec.values.includes(v) ? undefined : invalid(`${at} must be one of ${spec.values.join(', ')}`);
    case 'uint':
      return Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : invalid(`${at} must be a non-negative integer`);
    case 'uint32':
      return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff ? undefined : invalid(`${at} must be an integer of 0..2^32-1`);
    case 'number':
      return Number.isFinite(v) ? undefined : invalid(`${at} must be a finite number`);
    case 'bool':
      return typeof v === 'boolean' ? undefined : invalid(`${at} must be a boolean`);
    case 'buffer':
      return Buffer.isBuffer(v) ? undefined : invalid(`${at} must be binary`);
    case 'array': {
      if (!Array.isArray(v)) return invalid(`${at} must be an array`);
      if (v.length > spec.max) return invalid(`${at} has ${v.length} items, more than ${spec.max}`);
      for (let i = 0; i < v.length; i++) {
        const p = problem(spec.item, v[i], `${at}[${i}]`);
        if (p) return p;
      }
      return undefined;
    }
    case 'map': {
      if (!isMap(v)) return invalid(`${at} must be a map`);
      const keys = Object.keys(v);
      if (keys.length > spec.max) return invalid(`${at} has ${keys.length} entries, more than ${spec.max}`);
      for (const k of keys) {
        if (k.length === 0 || Buffer.byteLength(k) > MAX_XATTR_NAME_BYTES) return invalid(`${at} has a key of ${Buffer.byteLength(k)} bytes (1..${MAX_XATTR_NAME_BYTES})`);
        const p = problem(spec.value, v[k], `${at}[${JSON.stringify(k)}]`);
        if (p) return p;
      }
      return undefined;
    }
    case 'object':
      return isMap(v) ? fieldsProblem(spec.fields, v, at) : invalid(`${at} must be a map`);
  }
}

/** Every required field present and right, optional ones right when present, nothing else. */
function fieldsProblem(fields: FieldsSpec, v: Record<string, unknown>, at: string): ArgProblem | undefined {
  for (const k of Object.keys(v)) {
    // undefined is how msgpack carries an absent field someone spread in
    if (!Object.prototype.hasOwnProperty.call(fields, k) && v[k] !== undefined) return invalid(`${at}.${k} is not an argument here`);
  }
  for (const [k, spec] of Object.entries(fields)) {
    const x = v[k];
    if (x === undefined) {
      if (!spec.optional) return invalid(`${at}.${k} is missing`);
      continue;
    }
    const p = problem(spec, x, `${at}.${k}`);
    if (p) return p;
  }
  return undefined;
}

/** What is wrong with a request's args as fields describes them (named as `args.x.y`), with its errno, or undefined. */
export function argsProblem(fields: FieldsSpec, args: Record<string, unknown>): ArgProblem | undefined {
  return fieldsProblem(fields, args, 'args');
}
