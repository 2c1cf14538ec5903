// "Did you mean" for unknown config keys: the known key closest to a typo by edit distance.
// Pure string work; which keys are known where is parse.ts's business.

/**
 * Levenshtein distance between `a` and `b`: the fewest single-character insertions, deletions and
 * substitutions that turn one into the other. Compares UTF-16 code units; O(a.length * b.length) time.
 */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * Returns the entry of `known` closest to `input`, or null when none is close enough to be a plausible typo.
 * Case is ignored and "-" counts as "_" ("Cert-Dir" finds "cert_dir"). "Close enough" is a distance of at
 * most a third of the longer word's length (at least 1): `upstrem` finds "upstream", `ttl` finds nothing.
 * Ties go to the earlier entry of `known`.
 */
export function suggestKey(input: string, known: readonly string[]): string | null {
  const wanted = input.toLowerCase().replaceAll("-", "_");
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const limit = Math.max(1, Math.floor(Math.max(wanted.length, candidate.length) / 3));
    // The distance is at least the difference in length: skipping those keeps a 30,000-character key
    // (a pasted blob, a fuzz case) from costing 30,000 x 20 x 15 steps per known key set.
    if (Math.abs(wanted.length - candidate.length) > limit) continue;
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `suggestKey()` as a message suffix: ` (did you mean "upstream"?)`, or "" when there is no suggestion. */
export function didYouMean(input: string, known: readonly string[]): string {
  const suggestion = suggestKey(input, known);
  return suggestion === null ? "" : ` (did you mean "${suggestion}"?)`;
}
