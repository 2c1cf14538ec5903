import assert from "node:assert/strict";
import { encodeQuery, encodeUpdate, readAnswer, signMessage, type TsigKey } from "./dns_update.ts";

const KEY: TsigKey = { name: "nexo-key", algorithm: "hmac-sha256", secret: new Uint8Array(32).fill(1) };

Deno.test("encodeUpdate() lays out RFC 2136 §2: opcode 5, one zone entry, and the updates' classes and TTLs", () => {
  const message = encodeUpdate(0xabcd, "example.com", [
    { op: "add", name: "_acme-challenge.example.com", value: "v", ttl: 120 },
    { op: "delete", name: "_acme-challenge.example.com", value: "v" },
    { op: "delete-all", name: "_acme-challenge.example.com" },
  ]);
  const view = new DataView(message.buffer);
  assert.deepEqual([view.getUint16(0), view.getUint16(2) >> 11, view.getUint16(4), view.getUint16(8)], [
    0xabcd,
    5,
    1,
    3,
  ]);
  const zoneEnd = 12 + "\x07example\x03com\x00".length;
  assert.deepEqual([view.getUint16(zoneEnd), view.getUint16(zoneEnd + 2)], [6, 1]); // SOA, IN
  const owner = "\x0f_acme-challenge\x07example\x03com\x00".length;
  const add = zoneEnd + 4;
  assert.deepEqual([
    view.getUint16(add + owner),
    view.getUint16(add + owner + 2),
    view.getUint32(add + owner + 4),
  ], [
    16,
    1,
    120,
  ]);
  const del = add + owner + 10 + 2; // "v" as one character-string
  assert.deepEqual([view.getUint16(del + owner + 2), view.getUint32(del + owner + 4)], [254, 0]); // NONE, TTL 0
  const all = del + owner + 10 + 2;
  assert.deepEqual([view.getUint16(all + owner + 2), view.getUint16(all + owner + 8)], [255, 0]); // ANY, no RDATA
  assert.equal(all + owner + 10, message.length);
});

Deno.test("encodeUpdate() splits a TXT value over 255 bytes into character-strings", () => {
  const value = "x".repeat(300);
  const message = encodeUpdate(1, "example.com", [{ op: "add", name: "a.example.com", value, ttl: 60 }]);
  const rdata = message.subarray(message.length - 302);
  assert.deepEqual([rdata[0], rdata[256]], [255, 45]);
});

Deno.test("signMessage() appends one TSIG record and counts it in ADCOUNT", async () => {
  const message = encodeUpdate(7, "example.com", []);
  const signed = await signMessage(message, KEY, 1_700_000_000);
  assert.equal(new DataView(signed.bytes.buffer).getUint16(10), 1);
  assert.equal(signed.mac.length, 32);
  assert.deepEqual(signed.bytes.subarray(0, 10), message.subarray(0, 10));
});

Deno.test("readAnswer() throws a RangeError for hostile bytes, and never hangs", async () => {
  const request = await signMessage(encodeUpdate(7, "example.com", []), KEY, 1_700_000_000);
  const header = (counts: number[]) => {
    const bytes = new Uint8Array(12);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, 7);
    counts.forEach((count, i) => view.setUint16(4 + 2 * i, count));
    return bytes;
  };
  const withBody = (counts: number[], body: number[]) => new Uint8Array([...header(counts), ...body]);
  const cases: Record<string, Uint8Array> = {
    "shorter than a header": new Uint8Array(5),
    "65,535 questions in 12 bytes": header([65535, 0, 0, 0]),
    "a name pointing at itself": withBody([1, 0, 0, 0], [0xc0, 12, 0, 6, 0, 1]),
    "a label past the end": withBody([1, 0, 0, 0], [40, 0x61]),
    "a record longer than the answer": withBody([0, 1, 0, 0], [0, 0, 16, 0, 1, 0, 0, 0, 0, 0xff, 0xff]),
    "a TSIG whose MAC runs past the end": withBody(
      [0, 0, 0, 1],
      [0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 1, 44, 0xff, 0xff],
    ),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    await assert.rejects(readAnswer(bytes, request, KEY), RangeError, what);
  }
});

Deno.test("readAnswer() reads an unsigned answer's RCODE and says it carries no TSIG", async () => {
  const request = await signMessage(encodeUpdate(7, "example.com", []), KEY, 1_700_000_000);
  const answer = new Uint8Array(12);
  answer[1] = 7;
  answer[3] = 9; // NOTAUTH
  assert.deepEqual(await readAnswer(answer, request, KEY), { id: 7, rcode: 9, tsig: null });
});

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
