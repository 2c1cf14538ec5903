// Decoders for the few DER value types nexo reads out of certificates and keys (OIDs, times, strings,
// unsigned integers, bit strings), on top of der.ts's TLV reader. nexo reads X.509 itself because node:crypto
// costs +4 MiB idle RSS in the main isolate and @peculiar/x509 pulls CommonJS packages that bring up Deno's
// Node layer. Every failure is a RangeError naming the field; nothing here knows certificate schemas.

import { type Bytes, type DerElement, readElement, TAG } from "./der.ts";

/**
 * Reads `bytes` as exactly one element with tag `tag` (a whole certificate or key). Throws RangeError naming
 * `what` when the tag differs or bytes follow the element.
 */
export function readWhole(bytes: Bytes, tag: number, what: string): DerElement {
  const element = expectTag(readElement(bytes), tag, what);
  if (element.end !== bytes.length) {
    throw new RangeError(`${what} is followed by ${bytes.length - element.end} bytes`);
  }
  return element;
}

/**
 * Returns `element` if it is present with tag `tag`, so schema readers can index children freely. Throws
 * RangeError naming `what` (e.g. "the certificate's validity") when it is missing or has another tag.
 */
export function expectTag(element: DerElement | undefined, tag: number, what: string): DerElement {
  if (element === undefined) throw new RangeError(`${what} is missing`);
  if (element.tag !== tag) {
    throw new RangeError(`${what} has tag 0x${hexByte(element.tag)}, expected 0x${hexByte(tag)}`);
  }
  return element;
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

/**
 * The dotted form ("2.5.4.3") of an OBJECT IDENTIFIER element (X.690 §8.19). Throws RangeError naming
 * `what` when the element is missing, not an OID, or its arcs are not minimal base-128 numbers.
 */
export function decodeOid(element: DerElement | undefined, what: string): string {
  const { content } = expectTag(element, TAG.OBJECT_IDENTIFIER, what);
  const arcs: number[] = [];
  let arc = 0;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i] ?? 0;
    // X.690 §8.19.2: an arc never starts with 0x80, and the last byte of each arc has the high bit clear.
    if (arc === 0 && byte === 0x80) throw new RangeError(`${what} has a non-minimal arc`);
    arc = arc * 128 + (byte & 0x7f);
    if (!Number.isSafeInteger(arc)) throw new RangeError(`${what} has an arc too large to read`);
    if (byte & 0x80) continue;
    arcs.push(arc);
    arc = 0;
  }
  const [first, ...rest] = arcs;
  if (first === undefined || (content[content.length - 1] ?? 0) & 0x80) {
    throw new RangeError(`${what} is not a complete OBJECT IDENTIFIER`);
  }
  // X.690 §8.19.4: the first subidentifier packs the first two arcs as 40 * X + Y, X in 0-2.
  const top = Math.min(2, Math.floor(first / 40));
  return [top, first - 40 * top, ...rest].join(".");
}

/**
 * The magnitude of a non-negative INTEGER element as big-endian bytes without leading zeros (an RSA modulus
 * or exponent; zero is empty). Throws RangeError naming `what` when it is missing, empty or negative.
 */
export function decodeUnsignedInteger(element: DerElement | undefined, what: string): Bytes {
  const { content } = expectTag(element, TAG.INTEGER, what);
  if (content.length === 0 || (content[0] ?? 0) & 0x80) {
    throw new RangeError(`${what} is not a non-negative INTEGER`);
  }
  let start = 0;
  while (start < content.length && content[start] === 0) start++;
  return content.subarray(start);
}

/**
 * The bytes of a BIT STRING element of whole bytes (a public key, X.690 §8.6); pass `tag` for an IMPLICIT
 * tagged one. Throws RangeError naming `what` when it is missing, empty, or has unused bits.
 */
export function decodeBitString(
  element: DerElement | undefined,
  what: string,
  tag: number = TAG.BIT_STRING,
): Bytes {
  const { content } = expectTag(element, tag, what);
  if (content[0] !== 0) throw new RangeError(`${what} is not a BIT STRING of whole bytes`);
  return content.subarray(1);
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/**
 * A UTCTime or GeneralizedTime element as a Date, in the forms RFC 5280 §4.1.2.5 requires: seconds, "Z", no
 * fraction; UTCTime years 50-99 are 19xx, 00-49 20xx. Throws RangeError naming `what` for anything else,
 * including impossible dates like February 30.
 */
export function decodeTime(element: DerElement | undefined, what: string): Date {
  if (element?.tag !== TAG.UTC_TIME && element?.tag !== TAG.GENERALIZED_TIME) {
    throw new RangeError(`${what} is not a UTCTime or GeneralizedTime`);
  }
  const text = decodeLatin1(element.content);
  const match = (element.tag === TAG.UTC_TIME ? UTC_TIME : GENERALIZED_TIME).exec(text);
  if (match === null) throw new RangeError(`${what} is not in the form RFC 5280 requires`);
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fullYear = element.tag === TAG.UTC_TIME ? (year >= 50 ? 1900 + year : 2000 + year) : year;
  const date = new Date(0);
  date.setUTCFullYear(fullYear, month - 1, day); // setUTCFullYear, unlike Date.UTC, keeps years 0-99 as is
  date.setUTCHours(hour, minute, second, 0);
  if (
    date.getUTCFullYear() !== fullYear || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day ||
    date.getUTCHours() !== hour || date.getUTCMinutes() !== minute || date.getUTCSeconds() !== second
  ) {
    throw new RangeError(`${what} is not a valid date`);
  }
  return date;
}

/** Whether `tag` is one of the string types X.509 names use (DirectoryString, IA5String and the like). */
export function isStringTag(tag: number): boolean {
  return tag === TAG.UTF8_STRING || tag === TAG.NUMERIC_STRING || tag === TAG.PRINTABLE_STRING ||
    tag === TAG.TELETEX_STRING || tag === TAG.IA5_STRING || tag === TAG.VISIBLE_STRING ||
    tag === TAG.UNIVERSAL_STRING || tag === TAG.BMP_STRING;
}

/**
 * The text of a string element (see `isStringTag`): UTF8String as UTF-8, BMPString as UTF-16BE,
 * UniversalString as UTF-32BE, the rest byte for byte (TeletexString as Latin-1, as most software reads it).
 * Never throws on bad encodings (U+FFFD instead); throws RangeError naming `what` for a non-string element.
 */
export function decodeString(element: DerElement | undefined, what: string): string {
  if (element === undefined || !isStringTag(element.tag)) throw new RangeError(`${what} is not a string`);
  const { tag, content } = element;
  if (tag === TAG.UTF8_STRING) return new TextDecoder().decode(content);
  if (tag === TAG.BMP_STRING) return new TextDecoder("utf-16be").decode(content);
  if (tag === TAG.UNIVERSAL_STRING) {
    let text = "";
    for (let i = 0; i + 4 <= content.length; i += 4) {
      const codePoint = new DataView(content.buffer, content.byteOffset + i, 4).getUint32(0);
      text += codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : "\ufffd";
    }
    return content.length % 4 === 0 ? text : text + "\ufffd";
  }
  return decodeLatin1(content);
}

/** Bytes as text one character per byte (ASCII and Latin-1: an IA5String dNSName, a time). Never throws. */
export function decodeLatin1(bytes: Bytes): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}
