// ISO 8601 timestamps in UTC with milliseconds, as Date.prototype.toISOString writes them, for every time nexo
// logs, stores or shows (a test keeps lib/ off toISOString). V8's toISOString keeps 1.2-1.4 MiB of a process
// from its first call on (its date formatting code and data pages, measured in an empty script), and nexo
// writes one per log line: arithmetic on the time value costs nothing of the kind.

const DAY_MS = 86_400_000;

/**
 * `time` as "YYYY-MM-DDTHH:MM:SS.mmmZ", what `toISOString()` returns for it; years outside 0-9999 are left to
 * toISOString (its six-digit form). Throws RangeError for an invalid time, as toISOString does.
 */
export function isoTime(time: Date | number): string {
  const ms = typeof time === "number" ? time : time.getTime();
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new RangeError(`Invalid time value: ${ms}`);
  const days = Math.floor(ms / DAY_MS);
  const { year, month, day } = civilFromDays(days);
  if (year < 0 || year > 9999) return new Date(ms).toISOString();
  let rest = ms - days * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hours, 2)}:${pad(minutes, 2)}:${
    pad(seconds, 2)
  }.` +
    `${pad(rest - seconds * 1000, 3)}Z`;
}

/**
 * The proleptic Gregorian date `days` after 1970-01-01 (negative: before), by Howard Hinnant's
 * days_from_civil inverse (http://howardhinnant.github.io/date_algorithms.html#civil_from_days): 400-year eras
 * of 146,097 days, years counted from March so that the leap day ends each one.
 */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468; // days from 0000-03-01
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097; // 0-146,096
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  ); // 0-399
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153); // 0 = March ... 11 = February
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}
