// Comparing secrets without an early exit: how long a comparison takes says nothing about where two values
// first differ. Not a defence against every side channel (JIT and caches are out of reach from here).

/**
 * True when `a` and `b` hold the same bytes. Every byte pair is visited whatever the first difference, so
 * the time depends only on the lengths, which are treated as public (a bcrypt hash is always 60 bytes): values
 * of different lengths return false at once. Never throws.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
