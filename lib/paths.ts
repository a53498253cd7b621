/** Where `path` is after a rename of `from` to `to`: undefined when it is neither `from` nor under it. */
export function renamedPath(path: string, from: string, to: string): string | undefined {
  if (path === from) return to;
  if (path.startsWith(from === '/' ? '/' : `${from}/`)) return to + path.slice(from.length);
  return undefined;
}
