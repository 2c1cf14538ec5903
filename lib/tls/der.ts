// A minimal ASN.1 DER (ITU-T X.690 §10) encoder, exactly the types X.509 certificate generation needs, and
// the TLV reader that der_decode.ts, cert_fields.ts and public_key.ts build on to read certificates and keys
// without node:crypto (see der_decode.ts for why). It does not validate schemas, decode values into JS types
// (der_decode.ts does), or handle BER's indefinite lengths.

import { concatBytes as concatParts } from "../bytes.ts";

/** Universal tag numbers (X.680 §8.6) as tag bytes, with the constructed bit set where DER requires it. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OBJECT_IDENTIFIER: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Bytes backed by a plain ArrayBuffer, which is what WebCrypto accepts as a BufferSource. */
export type Bytes = Uint8Array<ArrayBuffer>;

const CONTEXT_PRIMITIVE = 0x80;
const CONTEXT_CONSTRUCTED = 0xa0;

/** Joins byte arrays into one new array; used to build element contents. */
export function concatBytes(parts: readonly Bytes[]): Bytes {
  return concatParts(parts);
}

/**
 * Encodes a content length (X.690 §8.1.3): short form below 128, otherwise long form with the fewest bytes.
 * Throws RangeError for negative or non-integer lengths.
 */
export function encodeLength(length: number): Bytes {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`Cannot encode DER length ${length}: it must be a non-negative integer`);
  }
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Encodes one element from a single-byte tag (tag numbers below 31) and its already-encoded content. */
export function encodeTlv(tag: number, content: Bytes): Bytes {
  return concatBytes([Uint8Array.of(tag), encodeLength(content.length), content]);
}

/** SEQUENCE of the given encoded elements, in order. */
export function encodeSequence(...elements: Bytes[]): Bytes {
  return encodeTlv(TAG.SEQUENCE, concatBytes(elements));
}

/**
 * SET OF the given encoded elements. DER (X.690 §11.6) orders SET OF by encoded bytes; X.509 names put one
 * attribute per RDN, so the elements are sorted here for correctness when there are several.
 */
export function encodeSet(...elements: Bytes[]): Bytes {
  const sorted = [...elements].sort(compareBytes);
  return encodeTlv(TAG.SET, concatBytes(sorted));
}

function compareBytes(a: Bytes, b: Bytes): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return a.length - b.length;
}

/**
 * Non-negative INTEGER from a safe integer or from big-endian unsigned bytes (a serial number, an ECDSA r or
 * s). Leading zero bytes are dropped and one 0x00 is added when the high bit is set, so the value stays
 * positive and minimally encoded (X.690 §8.3.2). Throws RangeError for negative or unsafe numbers.
 */
export function encodeInteger(value: number | Bytes): Bytes {
  let bytes: Bytes;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(
        `Cannot encode DER INTEGER ${value}: only non-negative safe integers are supported`,
      );
    }
    const digits: number[] = [];
    for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) digits.unshift(rest % 256);
    bytes = Uint8Array.from(digits);
  } else {
    let start = 0;
    while (start < value.length && value[start] === 0) start++;
    bytes = value.subarray(start);
  }
  if (bytes.length === 0) return encodeTlv(TAG.INTEGER, Uint8Array.of(0));
  if ((bytes[0] ?? 0) & 0x80) return encodeTlv(TAG.INTEGER, concatBytes([Uint8Array.of(0), bytes]));
  return encodeTlv(TAG.INTEGER, bytes);
}

/**
 * OBJECT IDENTIFIER from dotted form ("1.2.840.10045.4.3.2"), base-128 arcs per X.690 §8.19.
 * Throws RangeError for malformed identifiers (fewer than two arcs, first arc above 2, non-numeric arcs).
 */
export function encodeOid(dotted: string): Bytes {
  const arcs = dotted.split(".").map((arc) => /^\d+$/.test(arc) ? Number(arc) : NaN);
  const [first, second, ...rest] = arcs;
  if (
    first === undefined || second === undefined || arcs.some((arc) => !Number.isSafeInteger(arc)) ||
    first > 2 || (first < 2 && second > 39)
  ) {
    throw new RangeError(
      `Cannot encode OBJECT IDENTIFIER "${dotted}": expected dotted decimal like "2.5.4.3"`,
    );
  }
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk: number[] = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v % 128));
    out.push(...chunk);
  }
  return encodeTlv(TAG.OBJECT_IDENTIFIER, Uint8Array.from(out));
}

/** UTF8String; the preferred DirectoryString choice for new certificates (RFC 5280 §4.1.2.6). */
export function encodeUtf8String(text: string): Bytes {
  return encodeTlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

/** PrintableString (X.680 §41.4); throws RangeError for characters outside its repertoire. */
export function encodePrintableString(text: string): Bytes {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new RangeError(
      `Cannot encode PrintableString "${text}": it allows only A-Z a-z 0-9 space and '()+,-./:=? (use UTF8String)`,
    );
  }
  return encodeTlv(TAG.PRINTABLE_STRING, new TextEncoder().encode(text));
}

/** BOOLEAN; DER writes true as 0xff (X.690 §11.1). */
export function encodeBoolean(value: boolean): Bytes {
  return encodeTlv(TAG.BOOLEAN, Uint8Array.of(value ? 0xff : 0x00));
}

/**
 * BIT STRING of whole bytes plus a count of unused trailing bits in the last byte (0-7). For named-bit lists
 * like keyUsage, DER drops trailing zero bits (X.690 §11.2.2), so pass the matching `unusedBits`.
 */
export function encodeBitString(bytes: Bytes, unusedBits = 0): Bytes {
  if (
    !Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits)
  ) {
    throw new RangeError(
      `Cannot encode BIT STRING with ${unusedBits} unused bits over ${bytes.length} bytes`,
    );
  }
  return encodeTlv(TAG.BIT_STRING, concatBytes([Uint8Array.of(unusedBits), bytes]));
}

/** OCTET STRING. */
export function encodeOctetString(bytes: Bytes): Bytes {
  return encodeTlv(TAG.OCTET_STRING, bytes);
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0");
}

function formatUtcDigits(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("Cannot encode an invalid Date as an ASN.1 time");
  return pad(date.getUTCMonth() + 1, 2) + pad(date.getUTCDate(), 2) + pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) + pad(date.getUTCSeconds(), 2) + "Z";
}

/** UTCTime "YYMMDDHHMMSSZ" (seconds, no fraction); RFC 5280 §4.1.2.5.1 allows it for 1950-2049 only. */
export function encodeUtcTime(date: Date): Bytes {
  const year = date.getUTCFullYear();
  if (!(year >= 1950 && year <= 2049)) {
    throw new RangeError(`Cannot encode ${year} as UTCTime: it covers 1950-2049 (use GeneralizedTime)`);
  }
  return encodeTlv(TAG.UTC_TIME, new TextEncoder().encode(pad(year % 100, 2) + formatUtcDigits(date)));
}

/** GeneralizedTime "YYYYMMDDHHMMSSZ" (seconds, no fraction, RFC 5280 §4.1.2.5.2); years 0-9999. */
export function encodeGeneralizedTime(date: Date): Bytes {
  const year = date.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) {
    throw new RangeError(`Cannot encode ${year} as GeneralizedTime: it covers years 0-9999`);
  }
  return encodeTlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(pad(year, 4) + formatUtcDigits(date)));
}

/**
 * An X.509 Time for validity dates: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
 * Milliseconds are truncated.
 */
export function encodeTime(date: Date): Bytes {
  const year = date.getUTCFullYear();
  return year >= 1950 && year <= 2049 ? encodeUtcTime(date) : encodeGeneralizedTime(date);
}

function checkTagNumber(tagNumber: number): void {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new RangeError(`Cannot encode context tag [${tagNumber}]: only tag numbers 0-30 are supported`);
  }
}

/** EXPLICIT context tag `[tagNumber]` wrapping a complete element (e.g. the certificate version `[0]`). */
export function encodeExplicit(tagNumber: number, element: Bytes): Bytes {
  checkTagNumber(tagNumber);
  return encodeTlv(CONTEXT_CONSTRUCTED | tagNumber, element);
}

/**
 * IMPLICIT context tag `[tagNumber]` replacing an element's own tag: pass the raw content bytes (e.g. the
 * IA5 text of a dNSName `[2]`). Set `constructed` when the replaced type was constructed (a SEQUENCE).
 */
export function encodeImplicit(tagNumber: number, content: Bytes, constructed = false): Bytes {
  checkTagNumber(tagNumber);
  return encodeTlv((constructed ? CONTEXT_CONSTRUCTED : CONTEXT_PRIMITIVE) | tagNumber, content);
}

/** One element read back from DER bytes: its tag byte, content, and the offset just past it. */
export interface DerElement {
  tag: number;
  content: Bytes;
  /** The whole element including tag and length bytes. */
  encoded: Bytes;
  end: number;
}

/**
 * Reads the element at `offset` (single-byte tags, definite lengths). Throws RangeError when the bytes are
 * truncated, use a multi-byte tag or use forms DER forbids; callers wrap it with the name of the file being
 * read.
 */
export function readElement(bytes: Bytes, offset = 0): DerElement {
  const tag = bytes[offset];
  const first = bytes[offset + 1];
  if (tag === undefined || first === undefined) {
    throw new RangeError("DER element truncated before its length");
  }
  // X.690 §8.1.2.4: tag number 31 announces more tag bytes; nothing nexo reads uses tag numbers above 30.
  if ((tag & 0x1f) === 0x1f) throw new RangeError("DER tag uses the multi-byte form");
  let length = first;
  let headerLength = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) {
      throw new RangeError(`DER length uses unsupported form 0x${first.toString(16)}`);
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = bytes[offset + 2 + i];
      if (byte === undefined) throw new RangeError("DER element truncated inside its length");
      length = length * 256 + byte;
    }
    headerLength += count;
  }
  const end = offset + headerLength + length;
  if (end > bytes.length) throw new RangeError("DER element is longer than the bytes that hold it");
  return {
    tag,
    content: bytes.subarray(offset + headerLength, end),
    encoded: bytes.subarray(offset, end),
    end,
  };
}

/** Reads every element inside a constructed element's content, in order. Throws like `readElement`. */
export function readChildren(content: Bytes): DerElement[] {
  const children: DerElement[] = [];
  for (let offset = 0; offset < content.length;) {
    const child = readElement(content, offset);
    children.push(child);
    offset = child.end;
  }
  return children;
}
