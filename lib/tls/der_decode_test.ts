import assert from "node:assert/strict";
import {
  encodeBitString,
  encodeGeneralizedTime,
  encodeInteger,
  encodeOid,
  encodePrintableString,
  encodeSequence,
  encodeTlv,
  encodeUtcTime,
  encodeUtf8String,
  readElement,
  TAG,
} from "./der.ts";
import {
  decodeBitString,
  decodeOid,
  decodeString,
  decodeTime,
  decodeUnsignedInteger,
  expectTag,
  isStringTag,
  readWhole,
} from "./der_decode.ts";

const text = (value: string) => new TextEncoder().encode(value);

Deno.test("decodeOid() reads back what encodeOid() wrote and refuses malformed arcs", () => {
  for (
    const oid of ["1.2.840.10045.4.3.2", "2.5.29.17", "0.9.2342.19200300.100.1.25", "2.999.3", "1.3.132.0.34"]
  ) {
    assert.equal(decodeOid(readElement(encodeOid(oid)), "oid"), oid);
  }
  assert.throws(() => decodeOid(readElement(Uint8Array.of(0x06, 0x00)), "the x"), /the x is not a complete/);
  assert.throws(() => decodeOid(readElement(Uint8Array.of(0x06, 0x02, 0x2a, 0x86)), "x"), /not a complete/);
  assert.throws(() => decodeOid(readElement(Uint8Array.of(0x06, 0x02, 0x80, 0x01)), "x"), /non-minimal/);
  assert.throws(() => decodeOid(readElement(encodeInteger(1)), "the x"), /the x has tag 0x02, expected 0x06/);
  assert.throws(() => decodeOid(undefined, "the x"), /the x is missing/);
});

Deno.test("decodeUnsignedInteger() drops leading zeros and refuses negative numbers", () => {
  assert.deepEqual([...decodeUnsignedInteger(readElement(encodeInteger(Uint8Array.of(0xff, 1))), "n")], [
    0xff,
    1,
  ]);
  assert.deepEqual([...decodeUnsignedInteger(readElement(encodeInteger(65537)), "e")], [1, 0, 1]);
  assert.deepEqual([...decodeUnsignedInteger(readElement(encodeInteger(0)), "zero")], []);
  assert.throws(
    () => decodeUnsignedInteger(readElement(Uint8Array.of(0x02, 0x01, 0xff)), "n"),
    /non-negative/,
  );
  assert.throws(() => decodeUnsignedInteger(readElement(Uint8Array.of(0x02, 0x00)), "n"), /non-negative/);
});

Deno.test("decodeBitString() returns whole bytes and refuses unused bits", () => {
  assert.deepEqual([...decodeBitString(readElement(encodeBitString(Uint8Array.of(4, 5))), "key")], [4, 5]);
  assert.throws(
    () => decodeBitString(readElement(encodeBitString(Uint8Array.of(0x80), 7)), "key"),
    /whole bytes/,
  );
  assert.throws(() => decodeBitString(readElement(Uint8Array.of(0x03, 0x00)), "key"), /whole bytes/);
  const implicit = readElement(Uint8Array.of(0x81, 0x02, 0x00, 0x09));
  assert.deepEqual([...decodeBitString(implicit, "public key", 0x81)], [9]);
});

Deno.test("decodeTime() reads UTCTime and GeneralizedTime as RFC 5280 §4.1.2.5 writes them", () => {
  const iso = (bytes: Uint8Array<ArrayBuffer>) => decodeTime(readElement(bytes), "t").toISOString();
  assert.equal(iso(encodeUtcTime(new Date("2049-12-31T23:59:59Z"))), "2049-12-31T23:59:59.000Z");
  assert.equal(iso(encodeUtcTime(new Date("1950-01-01T00:00:00Z"))), "1950-01-01T00:00:00.000Z");
  assert.equal(iso(encodeGeneralizedTime(new Date("2050-01-01T00:00:00Z"))), "2050-01-01T00:00:00.000Z");
  assert.equal(iso(encodeTlv(TAG.GENERALIZED_TIME, text("00050101000000Z"))), "0005-01-01T00:00:00.000Z");
  for (
    const [tag, value] of [
      [TAG.UTC_TIME, "490230000000Z"], // February 30
      [TAG.UTC_TIME, "4912312359Z"], // no seconds
      [TAG.UTC_TIME, "491231235959+0100"], // an offset
      [TAG.GENERALIZED_TIME, "20500101000000.5Z"], // a fraction
      [TAG.GENERALIZED_TIME, "20501301000000Z"], // month 13
      [TAG.GENERALIZED_TIME, "20500101240000Z"], // hour 24
    ] as const
  ) {
    assert.throws(
      () => decodeTime(readElement(encodeTlv(tag, text(value))), "notAfter"),
      /notAfter is not/,
      value,
    );
  }
  assert.throws(
    () => decodeTime(readElement(encodeInteger(1)), "notAfter"),
    /not a UTCTime or GeneralizedTime/,
  );
});

Deno.test("decodeString() decodes every X.509 string type and refuses other tags", () => {
  assert.equal(decodeString(readElement(encodeUtf8String("Wéird ☃")), "s"), "Wéird ☃");
  assert.equal(decodeString(readElement(encodePrintableString("Acme Inc")), "s"), "Acme Inc");
  assert.equal(
    decodeString(readElement(Uint8Array.of(TAG.BMP_STRING, 4, 0x00, 0xe9, 0x26, 0x03)), "s"),
    "é☃",
  );
  const universal = Uint8Array.of(TAG.UNIVERSAL_STRING, 8, 0, 0, 0, 0x41, 0, 0x01, 0xf6, 0x00);
  assert.equal(decodeString(readElement(universal), "s"), "A😀");
  assert.equal(decodeString(readElement(Uint8Array.of(TAG.TELETEX_STRING, 1, 0xe9)), "s"), "é");
  assert.equal(decodeString(readElement(Uint8Array.of(TAG.UTF8_STRING, 1, 0xff)), "s"), "\ufffd");
  assert.throws(() => decodeString(readElement(encodeInteger(1)), "the CN"), /the CN is not a string/);
  assert.equal(isStringTag(TAG.IA5_STRING), true);
  assert.equal(isStringTag(TAG.OCTET_STRING), false);
});

Deno.test("readWhole() and expectTag() refuse trailing bytes, other tags and missing elements", () => {
  const sequence = encodeSequence(encodeInteger(1));
  assert.equal(readWhole(sequence, TAG.SEQUENCE, "x").end, sequence.length);
  assert.throws(
    () => readWhole(Uint8Array.from([...sequence, 0]), TAG.SEQUENCE, "the key"),
    /the key is followed by 1 bytes/,
  );
  assert.throws(() => readWhole(sequence, TAG.SET, "the key"), /the key has tag 0x30, expected 0x31/);
  assert.throws(() => expectTag(undefined, TAG.SET, "the RDN"), /the RDN is missing/);
});
