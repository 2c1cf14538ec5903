import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

Deno.test("parseDuration() reads Go-style single and compound durations in ms", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("720h"), 2_592_000_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration(".5s"), 500);
  assert.equal(parseDuration("1m0.5s"), 60_500);
  assert.equal(parseDuration("+2s"), 2_000);
});

Deno.test("parseDuration() reads sub-millisecond units as fractions of a ms", () => {
  assert.equal(parseDuration("1500us"), 1.5);
  assert.equal(parseDuration("1500\u00b5s"), 1.5);
  assert.equal(parseDuration("2000000ns"), 2);
});

Deno.test("parseDuration() accepts 0 without a unit, like Go", () => {
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("0s"), 0);
});

Deno.test("parseDuration() rejects an empty string with an example", () => {
  assert.throws(() => parseDuration(""), { name: "RangeError", message: /empty duration.*"30s"/ });
  assert.throws(() => parseDuration("  "), { message: /empty duration/ });
});

Deno.test("parseDuration() rejects negative durations", () => {
  assert.throws(() => parseDuration("-5s"), { name: "RangeError", message: /"-5s": it is negative/ });
});

Deno.test("parseDuration() rejects a unitless number other than 0, suggesting units", () => {
  assert.throws(() => parseDuration("30"), {
    message: 'invalid duration "30": it has no unit (write "30s" for seconds or "30m" for minutes)',
  });
  assert.throws(() => parseDuration("1h30"), { message: /"30" has no unit/ });
});

Deno.test("parseDuration() rejects unknown units and names the valid ones", () => {
  assert.throws(() => parseDuration("5x"), { message: /unknown unit "x" \(use ns, us, ms, s, m or h/ });
  assert.throws(() => parseDuration("1H"), { message: /unknown unit "H"/ });
  assert.throws(() => parseDuration("2d"), { message: /unknown unit "d"/ });
});

Deno.test("parseDuration() says to remove spaces inside a duration", () => {
  assert.throws(() => parseDuration("1h 30m"), { message: /remove the spaces/ });
});

Deno.test("parseDuration() rejects text that is not a duration, with an example", () => {
  assert.throws(() => parseDuration("soon"), { message: /invalid duration "soon" \(.*"1h30m"/ });
  assert.throws(() => parseDuration("h"), { message: /invalid duration "h"/ });
});

Deno.test("parseDuration() rejects durations past Go's int64 limit", () => {
  assert.equal(parseDuration("2562047h"), 2562047 * 3_600_000);
  assert.throws(() => parseDuration("2562048h"), { message: /too large/ });
});
