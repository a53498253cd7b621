import xxhash from 'xxhash-wasm';

const { h32 } = await xxhash();

/** The elastic hash of a name: xxhash32 (seed 0) of its UTF-8 bytes, as an unsigned 32-bit number. */
export function nameHash(name: string): number {
  return h32(name, 0) >>> 0;
}
