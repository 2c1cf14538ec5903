import assert from "node:assert/strict";
import { findInLib } from "../tests/lib_sources.ts";
import { isoTime } from "./iso_time.ts";

Deno.test("isoTime() writes what toISOString() writes, at the calendar's edges", () => {
  const edges = [
    0,
    -1, // 1969-12-31T23:59:59.999Z
    Date.UTC(2000, 1, 29, 12, 30, 45, 678), // a leap day of a year divisible by 400
    Date.UTC(1900, 1, 28, 23, 59, 59, 999), // 1900 has no 29 February
    Date.UTC(1900, 2, 1),
    Date.UTC(2100, 1, 28),
    Date.UTC(2024, 11, 31, 23, 59, 59, 999),
    Date.UTC(2025, 0, 1),
    -62_167_219_200_000, // 0000-01-01T00:00:00.000Z
    253_402_300_799_999, // 9999-12-31T23:59:59.999Z
  ];
  for (const ms of edges) {
    const expected = new Date(ms).toISOString();
    assert.equal(isoTime(ms), expected);
    assert.equal(isoTime(new Date(ms)), expected);
  }
});

Deno.test("isoTime() agrees with toISOString() on 100,000 times spread over years 0 to 9999", () => {
  const first = -62_167_219_200_000;
  const last = 253_402_300_799_999;
  for (let i = 0; i < 100_000; i++) {
    const ms = Math.floor(first + Math.random() * (last - first));
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `for ${ms}`);
  }
});

Deno.test("isoTime() hands years outside 0-9999 to toISOString(), and refuses an invalid time", () => {
  for (const ms of [-62_167_219_200_001, 253_402_300_800_000, 8.64e15, -8.64e15]) {
    assert.equal(isoTime(ms), new Date(ms).toISOString());
  }
  for (const bad of [NaN, Infinity, 8.64e15 + 1]) {
    assert.throws(() => isoTime(bad), RangeError);
    assert.throws(() => new Date(bad).toISOString(), RangeError);
  }
  assert.throws(() => isoTime(new Date("not a date")), RangeError);
});

Deno.test("lib/ writes its times with isoTime(), never toISOString()", async () => {
  const offenders = await findInLib(
    (line) => line.includes(".toISOString("),
    // iso_time.ts hands it the years it does not write; the dashboard's assets are the browser's script.
    ["iso_time.ts", "dashboard/assets.ts"],
  );
  assert.deepEqual(offenders, [], "use isoTime() from lib/iso_time.ts");
});
