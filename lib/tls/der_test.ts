import assert from "node:assert/strict";
import {
  encodeBitString,
  encodeBoolean,
  encodeExplicit,
  encodeGeneralizedTime,
  encodeImplicit,
  encodeInteger,
  encodeLength,
  encodeOctetString,
  encodeOid,
  encodePrintableString,
  encodeSequence,
  encodeSet,
  encodeTime,
  encodeUtcTime,
  encodeUtf8String,
  readChildren,
  readElement,
} from "./der.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

Deno.test("encodeLength() uses the short form below 128 and the shortest long form above", () => {
  assert.equal(hex(encodeLength(0)), "00");
  assert.equal(hex(encodeLength(127)), "7f");
  assert.equal(hex(encodeLength(128)), "81 80");
  assert.equal(hex(encodeLength(255)), "81 ff");
  assert.equal(hex(encodeLength(256)), "82 01 00");
  assert.equal(hex(encodeLength(65536)), "83 01 00 00");
  assert.throws(() => encodeLength(-1), RangeError);
});

Deno.test("encodeInteger() keeps values positive and minimal", () => {
  assert.equal(hex(encodeInteger(0)), "02 01 00");
  assert.equal(hex(encodeInteger(127)), "02 01 7f");
  assert.equal(hex(encodeInteger(128)), "02 02 00 80");
  assert.equal(hex(encodeInteger(256)), "02 02 01 00");
  assert.equal(hex(encodeInteger(Uint8Array.of(0x00, 0x00, 0x05))), "02 01 05");
  assert.equal(hex(encodeInteger(Uint8Array.of(0xff, 0x01))), "02 03 00 ff 01");
  assert.equal(hex(encodeInteger(Uint8Array.of(0x00, 0x80))), "02 02 00 80");
  assert.equal(hex(encodeInteger(new Uint8Array(0))), "02 01 00");
  assert.throws(() => encodeInteger(-1), RangeError);
  assert.throws(() => encodeInteger(1.5), RangeError);
});

Deno.test("encodeOid() encodes dotted identifiers in base 128", () => {
  assert.equal(hex(encodeOid("1.2.840.10045.4.3.2")), "06 08 2a 86 48 ce 3d 04 03 02");
  assert.equal(hex(encodeOid("2.5.29.17")), "06 03 55 1d 11");
  assert.equal(hex(encodeOid("1.3.6.1.5.5.7.3.1")), "06 08 2b 06 01 05 05 07 03 01");
  assert.throws(() => encodeOid("1"), RangeError);
  assert.throws(() => encodeOid("3.1"), RangeError);
  assert.throws(() => encodeOid("1.2.x"), RangeError);
});

Deno.test("string, boolean, bit and octet string encoders write the X.690 tags", () => {
  assert.equal(hex(encodeUtf8String("é")), "0c 02 c3 a9");
  assert.equal(hex(encodePrintableString("US")), "13 02 55 53");
  assert.throws(() => encodePrintableString("a@b"), RangeError);
  assert.equal(hex(encodeBoolean(true)), "01 01 ff");
  assert.equal(hex(encodeBoolean(false)), "01 01 00");
  assert.equal(hex(encodeBitString(Uint8Array.of(0x80), 7)), "03 02 07 80");
  assert.equal(hex(encodeBitString(Uint8Array.of(0xab))), "03 02 00 ab");
  assert.throws(() => encodeBitString(Uint8Array.of(0x80), 8), RangeError);
  assert.equal(hex(encodeOctetString(Uint8Array.of(1, 2))), "04 02 01 02");
});

Deno.test("encodeSequence() and encodeSet() wrap their elements; SET OF is sorted", () => {
  assert.equal(hex(encodeSequence()), "30 00");
  assert.equal(hex(encodeSequence(encodeInteger(1), encodeBoolean(true))), "30 06 02 01 01 01 01 ff");
  assert.equal(hex(encodeSet(encodeInteger(2), encodeInteger(1))), "31 06 02 01 01 02 01 02");
});

Deno.test("encodeExplicit() and encodeImplicit() write context tags", () => {
  assert.equal(hex(encodeExplicit(0, encodeInteger(2))), "a0 03 02 01 02");
  assert.equal(hex(encodeImplicit(2, new TextEncoder().encode("a.b"))), "82 03 61 2e 62");
  assert.equal(hex(encodeImplicit(1, Uint8Array.of(5), true)), "a1 01 05");
  assert.throws(() => encodeExplicit(31, encodeInteger(1)), RangeError);
});

Deno.test("encodeTime() uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)", () => {
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes.subarray(2));
  const y2049 = encodeTime(new Date("2049-12-31T23:59:59.999Z"));
  assert.equal(y2049[0], 0x17);
  assert.equal(text(y2049), "491231235959Z");
  const y2050 = encodeTime(new Date("2050-01-01T00:00:00Z"));
  assert.equal(y2050[0], 0x18);
  assert.equal(text(y2050), "20500101000000Z");
  assert.equal(text(encodeUtcTime(new Date("2007-03-04T05:06:07Z"))), "070304050607Z");
  assert.equal(text(encodeGeneralizedTime(new Date("2007-03-04T05:06:07Z"))), "20070304050607Z");
  assert.throws(() => encodeUtcTime(new Date("2050-01-01T00:00:00Z")), RangeError);
  assert.throws(() => encodeTime(new Date(NaN)), RangeError);
});

Deno.test("readElement() and readChildren() read back what the encoders wrote", () => {
  const long = new Uint8Array(300).fill(7);
  const encoded = encodeSequence(encodeInteger(5), encodeOctetString(long));
  const outer = readElement(encoded);
  assert.equal(outer.tag, 0x30);
  assert.equal(outer.end, encoded.length);
  const [first, second] = readChildren(outer.content);
  assert.equal(hex(first?.encoded ?? new Uint8Array()), "02 01 05");
  assert.equal(second?.content.length, 300);
  assert.throws(() => readElement(encoded.subarray(0, 10)), RangeError);
});

Deno.test("readElement() refuses multi-byte tags and lengths it cannot hold", () => {
  assert.throws(() => readElement(Uint8Array.of(0x1f, 0x81, 0x01, 0x00)), /multi-byte form/);
  assert.throws(() => readElement(Uint8Array.of(0x30, 0x80, 0x00, 0x00)), /unsupported form/);
  assert.throws(() => readElement(Uint8Array.of(0x30, 0x82, 0x01)), /truncated inside its length/);
  assert.throws(() => readElement(Uint8Array.of(0x30)), /truncated before its length/);
});
