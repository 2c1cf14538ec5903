// Reads the fields nexo uses out of one DER X.509 certificate (RFC 5280 §4.1): its DNS names, validity,
// issuer name as text, SubjectPublicKeyInfo, serial number and authority key identifier. It checks the
// structure it walks, not signatures, chains or the extensions it skips (TLS clients verify those); pem.ts
// turns its RangeErrors into messages with file names. Own code instead of node:crypto: see der_decode.ts.

import { type Bytes, type DerElement, readChildren, TAG } from "./der.ts";
import {
  decodeLatin1,
  decodeOid,
  decodeString,
  decodeTime,
  expectTag,
  isStringTag,
  readWhole,
} from "./der_decode.ts";

/** What `readCertificateFields` returns. */
export interface ParsedCertificate {
  /** DNS subjectAltNames, lowercased, in certificate order; the subject CN only if there is no SAN extension. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** The issuer's name as node:crypto's X509Certificate printed it, attributes joined by ", " in order. */
  issuer: string;
  /** The SubjectPublicKeyInfo element, DER. */
  spki: Bytes;
  /** The serialNumber INTEGER's content bytes as encoded, a leading 0x00 kept (what RFC 9773 §4.1 wants). */
  serial: Bytes;
  /** The authorityKeyIdentifier's keyIdentifier (RFC 5280 §4.2.1.1); null when absent or malformed. */
  authorityKeyId: Bytes | null;
}

const OID_COMMON_NAME = "2.5.4.3";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35";
const KEY_IDENTIFIER_TAG = 0x80; // AuthorityKeyIdentifier keyIdentifier [0] IMPLICIT OCTET STRING
const DNS_NAME_TAG = 0x82; // GeneralName dNSName [2] IMPLICIT IA5String (RFC 5280 §4.2.1.6)
const VERSION_TAG = 0xa0; // [0] EXPLICIT Version
const EXTENSIONS_TAG = 0xa3; // [3] EXPLICIT Extensions

/**
 * Short names of name attributes, as node:crypto's X509Certificate printed them on Deno 2.9.6 (x509-parser's
 * registry); it printed other types as "OID(2.5.4.65)", and so does `formatName`.
 */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "surname",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "streetAddress",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.13": "description",
  "2.5.4.15": "businessCategory",
  "2.5.4.17": "postalCode",
  "2.5.4.41": "name",
  "2.5.4.42": "givenName",
  "2.5.4.43": "initials",
  "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.1": "uid",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.3.6.1.4.1.311.60.2.1.1": "msJurisdictionLocality",
  "1.3.6.1.4.1.311.60.2.1.2": "msJurisdictionStateOrProvince",
  "1.3.6.1.4.1.311.60.2.1.3": "msJurisdictionCountry",
};

/**
 * Reads a DER certificate. Throws RangeError saying which field is malformed when the bytes are not one
 * X.509 Certificate (trailing bytes included) or a field nexo reads does not have its RFC 5280 form.
 */
export function readCertificateFields(der: Bytes): ParsedCertificate {
  const parts = readChildren(readWhole(der, TAG.SEQUENCE, "the certificate").content);
  const tbs = readChildren(expectTag(parts[0], TAG.SEQUENCE, "the TBSCertificate").content);
  expectTag(parts[1], TAG.SEQUENCE, "the signature algorithm");
  expectTag(parts[2], TAG.BIT_STRING, "the signature");
  if (parts.length !== 3) throw new RangeError("the certificate has more than three parts");
  const at = tbs[0]?.tag === VERSION_TAG ? 1 : 0;
  const serial = expectTag(tbs[at], TAG.INTEGER, "the serial number").content;
  expectTag(tbs[at + 1], TAG.SEQUENCE, "the TBS signature algorithm");
  const issuer = expectTag(tbs[at + 2], TAG.SEQUENCE, "the issuer");
  const validity = readChildren(expectTag(tbs[at + 3], TAG.SEQUENCE, "the validity").content);
  const subject = expectTag(tbs[at + 4], TAG.SEQUENCE, "the subject");
  const spki = expectTag(tbs[at + 5], TAG.SEQUENCE, "the subjectPublicKeyInfo");
  if (validity.length !== 2) throw new RangeError("the validity does not hold exactly two times");
  const extensions = tbs.slice(at + 6).find((element) => element.tag === EXTENSIONS_TAG);
  const san = extensions === undefined ? undefined : findExtension(extensions.content, OID_SUBJECT_ALT_NAME);
  return {
    // RFC 6125 §6.4.4: the CN counts only when there is no subjectAltName extension at all.
    names: san === undefined ? readCommonNames(subject.content) : readDnsNames(san),
    notBefore: decodeTime(validity[0], "notBefore"),
    notAfter: decodeTime(validity[1], "notAfter"),
    issuer: formatName(issuer.content),
    spki: spki.encoded,
    serial,
    authorityKeyId: extensions === undefined ? null : readAuthorityKeyId(extensions.content),
  };
}

/**
 * The keyIdentifier of the authorityKeyIdentifier extension (RFC 5280 §4.2.1.1), or null when there is none
 * or it is malformed: only ACME renewal information needs it, so it never makes a served certificate
 * unreadable.
 */
function readAuthorityKeyId(explicitExtensions: Bytes): Bytes | null {
  try {
    const aki = findExtension(explicitExtensions, OID_AUTHORITY_KEY_IDENTIFIER);
    if (aki === undefined) return null;
    const fields = readChildren(readWhole(aki, TAG.SEQUENCE, "the authorityKeyIdentifier").content);
    return fields.find((field) => field.tag === KEY_IDENTIFIER_TAG)?.content ?? null;
  } catch (err) {
    if (err instanceof RangeError) return null;
    throw err;
  }
}

/** The value (extnValue's content) of the first extension with `oid`, or undefined. */
function findExtension(explicitContent: Bytes, oid: string): Bytes | undefined {
  for (const extension of readChildren(readWhole(explicitContent, TAG.SEQUENCE, "the extensions").content)) {
    const fields = readChildren(expectTag(extension, TAG.SEQUENCE, "an extension").content);
    if (decodeOid(fields[0], "an extension's id") !== oid) continue;
    return expectTag(fields[fields.length - 1], TAG.OCTET_STRING, "the extension value").content;
  }
  return undefined;
}

function readDnsNames(san: Bytes): string[] {
  const generalNames = readChildren(readWhole(san, TAG.SEQUENCE, "the subjectAltName").content);
  return generalNames.filter((name) => name.tag === DNS_NAME_TAG).map((name) =>
    decodeLatin1(name.content).toLowerCase()
  );
}

/** The attributes of a Name (RFC 5280 §4.1.2.4), RDN by RDN in encoded order. */
function readAttributes(name: Bytes): { type: string; value: DerElement }[][] {
  return readChildren(name).map((rdn) =>
    readChildren(expectTag(rdn, TAG.SET, "a relative distinguished name").content).map((attribute) => {
      const [type, value] = readChildren(expectTag(attribute, TAG.SEQUENCE, "a name attribute").content);
      if (value === undefined) throw new RangeError("a name attribute has no value");
      return { type: decodeOid(type, "a name attribute's type"), value };
    })
  );
}

function readCommonNames(subject: Bytes): string[] {
  const cn = readAttributes(subject).flat().find((attribute) => attribute.type === OID_COMMON_NAME);
  if (cn === undefined || !isStringTag(cn.value.tag)) return [];
  return [decodeString(cn.value, "the subject CN").toLowerCase()];
}

/**
 * A Name as node:crypto printed it: "type=value" in encoded order, " + " within a multi-valued RDN, joined
 * by ", ". Values are not escaped; a value that is not a string prints as "#" and its DER in hex (RFC 4514
 * §2.4).
 */
function formatName(name: Bytes): string {
  return readAttributes(name).map((rdn) =>
    rdn.map(({ type, value }) => {
      const label = ATTRIBUTE_NAMES[type] ?? `OID(${type})`;
      const text = isStringTag(value.tag)
        ? decodeString(value, "a name attribute's value")
        : "#" + value.encoded.toHex();
      return `${label}=${text}`;
    }).join(" + ")
  ).join(", ");
}
