// Go-style duration strings ("90s", "1h30m", "250ms", "1.5h") to milliseconds, for the config's timeouts
// and intervals. Follows Go's time.ParseDuration grammar, minus negative values, which no setting takes.
// Knows nothing of which setting a duration belongs to; the config reader adds that to the error message.

/** Milliseconds per unit. Units are case-sensitive as in Go: "m" is minutes, "ms" milliseconds. */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "\u00b5s": 1e-3, // µs (micro sign), accepted by Go
  "\u03bcs": 1e-3, // μs (Greek mu), accepted by Go
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's limit: the largest int64 count of nanoseconds is about 2562047h47m. */
const MAX_DURATION_MS = 2562047 * 3_600_000;

const EXAMPLES = `like "30s", "1h30m" or "250ms"`;
const UNITS = "use ns, us, ms, s, m or h";

/**
 * Parses a duration like "90s", "1h30m", "720h", "250ms" or "1.5h" into milliseconds (possibly fractional for
 * ns/us). "0" is the only number accepted without a unit. Throws `RangeError` with a message that quotes the
 * input, says what is wrong and shows a valid example, for: empty input, negative durations, unitless
 * numbers, unknown units, anything else that is not a duration, and values beyond Go's limit of ~2562047h.
 */
export function parseDuration(text: string): number {
  const input = text.trim();
  const quoted = JSON.stringify(text);
  if (input === "") throw new RangeError(`empty duration (write a number and a unit, ${EXAMPLES})`);
  if (input.startsWith("-")) {
    throw new RangeError(
      `invalid duration ${quoted}: it is negative (durations must be positive, ${EXAMPLES})`,
    );
  }
  const body = input.startsWith("+") ? input.slice(1) : input;
  if (/^0*\.?0*$/.test(body) && /0/.test(body)) return 0;
  if (/^(\d+\.?\d*|\.\d+)$/.test(body)) {
    throw new RangeError(
      `invalid duration ${quoted}: it has no unit (write "${body}s" for seconds or "${body}m" for minutes)`,
    );
  }
  let total = 0;
  let rest = body;
  while (rest !== "") {
    const match = /^(\d+\.?\d*|\.\d+)([^\d.]*)/.exec(rest);
    if (match === null || match[0] === "") {
      throw new RangeError(`invalid duration ${quoted} (write a number and a unit, ${EXAMPLES})`);
    }
    const [whole, amount = "", unit = ""] = match;
    const perUnit = UNIT_MS[unit];
    if (perUnit === undefined) {
      if (unit === "") throw new RangeError(`invalid duration ${quoted}: "${amount}" has no unit (${UNITS})`);
      const hint = /\s/.test(unit) ? "remove the spaces, " : "";
      throw new RangeError(
        `invalid duration ${quoted}: unknown unit "${unit}" (${hint}${UNITS}, ${EXAMPLES})`,
      );
    }
    total += Number(amount) * perUnit;
    rest = rest.slice(whole.length);
  }
  if (!(total <= MAX_DURATION_MS)) {
    throw new RangeError(`invalid duration ${quoted}: too large (the maximum is "2562047h")`);
  }
  return total;
}
