import assert from "node:assert/strict";
import { parseSize } from "./size.ts";

Deno.test("parseSize() reads byte counts given as numbers or digit strings", () => {
  assert.equal(parseSize(1048576), 1048576);
  assert.equal(parseSize("1048576"), 1048576);
  assert.equal(parseSize(0), 0);
});

Deno.test("parseSize() reads binary units as powers of 1024", () => {
  assert.equal(parseSize("10MiB"), 10 * 1024 * 1024);
  assert.equal(parseSize("512KiB"), 512 * 1024);
  assert.equal(parseSize("1GiB"), 1024 ** 3);
});

Deno.test("parseSize() reads decimal units as powers of 1000", () => {
  assert.equal(parseSize("10MB"), 10_000_000);
  assert.equal(parseSize("1KB"), 1000);
  assert.equal(parseSize("2GB"), 2_000_000_000);
  assert.equal(parseSize("100B"), 100);
});

Deno.test("parseSize() ignores the case of units and a space before them", () => {
  assert.equal(parseSize("10mib"), 10 * 1024 * 1024);
  assert.equal(parseSize("1kb"), 1000);
  assert.equal(parseSize("1 MiB"), 1024 * 1024);
  assert.equal(parseSize("5b"), 5);
});

Deno.test("parseSize() accepts fractions with a unit and rounds down to whole bytes", () => {
  assert.equal(parseSize("1.5KiB"), 1536);
  assert.equal(parseSize("0.1KiB"), 102);
});

Deno.test("parseSize() rejects fractional byte counts", () => {
  assert.throws(() => parseSize(1.5), { name: "RangeError", message: /whole number/ });
  assert.throws(() => parseSize("1.5"), { message: /whole number \(or add a unit: "1.5MiB"\)/ });
});

Deno.test("parseSize() rejects negative and empty sizes", () => {
  assert.throws(() => parseSize(-1), { message: /invalid size -1: sizes cannot be negative/ });
  assert.throws(() => parseSize("-1MiB"), { message: /cannot be negative/ });
  assert.throws(() => parseSize(""), { message: /empty size.*"10MiB"/ });
});

Deno.test("parseSize() rejects unknown units and lists the valid ones", () => {
  assert.throws(() => parseSize("10XB"), {
    message: /invalid size "10XB": unknown unit "XB" \(use B, KB, MB, GB, KiB, MiB or GiB/,
  });
  assert.throws(() => parseSize("1TB"), { message: /unknown unit "TB"/ });
});

Deno.test("parseSize() rejects text that is not a size", () => {
  assert.throws(() => parseSize("big"), { message: /invalid size "big" \(write a byte count/ });
  assert.throws(() => parseSize("MiB"), { message: /invalid size "MiB"/ });
});

Deno.test("parseSize() rejects sizes past the largest safe integer", () => {
  assert.throws(() => parseSize("99999999999GiB"), { message: /too large/ });
});
