import assert from "node:assert/strict";
import { encodeQuery } from "./dns_rcode.ts";

Deno.test("encodeQuery() writes an RFC 1035 §4.1 question: header, labels, type and class", () => {
  const query = encodeQuery(0x1234, "a.example.com.", "CAA");
  assert.deepEqual(
    [...query],
    [
      0x12,
      0x34,
      0x01,
      0x00,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0, // id, RD, one question
      1,
      0x61,
      7,
      ...new TextEncoder().encode("example"),
      3,
      ...new TextEncoder().encode("com"),
      0,
      0x01,
      0x01,
      0,
      1, // CAA (257), IN
    ],
  );
});
