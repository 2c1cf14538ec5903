// Byte sizes for the config's limits: a plain byte count (1048576) or a number and a unit ("10MiB", "512KiB",
// "10MB"). KB/MB/GB are decimal (1000^n) and KiB/MiB/GiB binary (1024^n), as in IEC 80000-13; units are
// case-insensitive. Knows nothing of which limit a size belongs to; parse.ts adds that to the error message.

/** Bytes per unit, keyed by the lowercased unit. */
const UNIT_BYTES: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const UNITS = "use B, KB, MB, GB, KiB, MiB or GiB";
const EXAMPLES = `like "10MiB", "512KiB" or 1048576`;

/**
 * Parses a byte size into a whole number of bytes: a non-negative integer (as a YAML number or a string of
 * digits), or a number and a unit ("10MiB", "1.5 GB", "512kib", "100B"); fractional results are rounded
 * down. Throws `RangeError` with a message that quotes the input, says what is wrong and shows a valid
 * example, for: empty input, negative or fractional byte counts, unknown units, anything else that is not a
 * size, and sizes past `Number.MAX_SAFE_INTEGER` bytes.
 */
export function parseSize(value: string | number): number {
  const quoted = typeof value === "number" ? String(value) : JSON.stringify(value);
  const input = String(value).trim();
  if (input === "") {
    throw new RangeError(`empty size (write a byte count or a number and a unit, ${EXAMPLES})`);
  }
  if (input.startsWith("-")) throw new RangeError(`invalid size ${quoted}: sizes cannot be negative`);
  const match = /^(\d+\.?\d*|\.\d+)\s*([a-z]*)$/i.exec(input);
  if (match === null) {
    throw new RangeError(`invalid size ${quoted} (write a byte count or a number and a unit, ${EXAMPLES})`);
  }
  const [, amount = "", unit = ""] = match;
  if (unit === "") {
    if (!/^\d+$/.test(amount)) {
      throw new RangeError(
        `invalid size ${quoted}: a byte count must be a whole number (or add a unit: "${amount}MiB")`,
      );
    }
    return checkRange(Number(amount), quoted);
  }
  const perUnit = UNIT_BYTES[unit.toLowerCase()];
  if (perUnit === undefined) {
    throw new RangeError(`invalid size ${quoted}: unknown unit "${unit}" (${UNITS}, ${EXAMPLES})`);
  }
  return checkRange(Math.floor(Number(amount) * perUnit), quoted);
}

function checkRange(bytes: number, quoted: string): number {
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`invalid size ${quoted}: too large`);
  return bytes;
}
