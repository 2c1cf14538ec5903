import assert from "node:assert/strict";
import { timingSafeEqual } from "./constant_time.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("timingSafeEqual() is true for equal bytes, empty included", () => {
  assert.equal(timingSafeEqual(bytes("$2b$04$abc"), bytes("$2b$04$abc")), true);
  assert.equal(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
});

Deno.test("timingSafeEqual() is false for a difference in the first, a middle or the last byte", () => {
  assert.equal(timingSafeEqual(bytes("xbcdef"), bytes("abcdef")), false);
  assert.equal(timingSafeEqual(bytes("abcXef"), bytes("abcdef")), false);
  assert.equal(timingSafeEqual(bytes("abcdeX"), bytes("abcdef")), false);
  assert.equal(timingSafeEqual(Uint8Array.of(0x80), Uint8Array.of(0x00)), false);
});

Deno.test("timingSafeEqual() is false for different lengths, a prefix included", () => {
  assert.equal(timingSafeEqual(bytes("abc"), bytes("abcd")), false);
  assert.equal(timingSafeEqual(bytes("abcd"), bytes("abc")), false);
  assert.equal(timingSafeEqual(new Uint8Array(0), bytes("a")), false);
});
