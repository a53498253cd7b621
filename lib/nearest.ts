/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions from a to b. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate a mistyped word most likely meant (a did-you-mean), or undefined when none is
 * close: within a third of the word's length in edits (at least 2). A dotted candidate also
 * matches on its last part, so `nl-cache-timeout` finds `performance.nl-cache-timeout`.
 */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const tail = c.slice(c.lastIndexOf('.') + 1);
    const d = Math.min(editDistance(word, c), tail === c ? Infinity : editDistance(word, tail));
    if (d <= limit && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}
