// X.509 v3 certificate assembly (RFC 5280 §4.1) for certificates signed with ECDSA P-256 / SHA-256: names,
// extensions, the signed envelope, and reading an issuer's subject and key identifier back out. It holds
// no policy (which extensions a root or leaf gets lives in local_ca.ts) and never touches files.

import {
  type Bytes,
  encodeBitString,
  encodeBoolean,
  encodeExplicit,
  encodeInteger,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  encodeSet,
  encodeTime,
  encodeUtf8String,
  readChildren,
  readElement,
} from "./der.ts";

/** Object identifiers nexo's certificates use (RFC 5280 §4.2.1, RFC 5758 §3.2). */
export const OID = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

const ECDSA_SHA256: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** The fields of a TBSCertificate that vary between certificates; byte values are DER. */
export interface CertificateFields {
  /** The issuer's Name, byte-identical to the issuer certificate's subject (RFC 5280 §4.1.2.4). */
  issuer: Bytes;
  subject: Bytes;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo of the key being certified. */
  spki: Bytes;
  /** Encoded Extension elements, see `encodeExtension`. */
  extensions: Bytes[];
}

/** Name with one CN attribute, or the empty Name when `commonName` is undefined (RFC 5280 §4.1.2.6). */
export function encodeName(commonName: string | undefined): Bytes {
  if (commonName === undefined) return encodeSequence();
  return encodeSequence(encodeSet(encodeSequence(encodeOid(OID.commonName), encodeUtf8String(commonName))));
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING } (RFC 5280 §4.1). */
export function encodeExtension(oid: string, critical: boolean, value: Bytes): Bytes {
  // DER omits a field equal to its DEFAULT (X.690 §11.5), so critical appears only when true.
  return critical
    ? encodeSequence(encodeOid(oid), encodeBoolean(true), encodeOctetString(value))
    : encodeSequence(encodeOid(oid), encodeOctetString(value));
}

/**
 * Builds the TBSCertificate (RFC 5280 §4.1) with a fresh random serial, signs it with `signer` (an ECDSA
 * P-256 private key) using ecdsa-with-SHA256 and returns the DER certificate. Rejects if signing fails.
 */
export async function signCertificate(fields: CertificateFields, signer: CryptoKey): Promise<Bytes> {
  const algorithm = encodeSequence(encodeOid(OID.ecdsaWithSha256)); // RFC 5758 §3.2: parameters absent
  const tbs = encodeSequence(
    encodeExplicit(0, encodeInteger(2)), // v3
    encodeInteger(crypto.getRandomValues(new Uint8Array(16))), // CA/B BR §7.1: ≥64 bits of CSPRNG output
    algorithm,
    fields.issuer,
    encodeSequence(encodeTime(fields.notBefore), encodeTime(fields.notAfter)),
    fields.subject,
    fields.spki,
    encodeExplicit(3, encodeSequence(...fields.extensions)),
  );
  const raw = new Uint8Array(await crypto.subtle.sign(ECDSA_SHA256, signer, tbs));
  return encodeSequence(tbs, algorithm, encodeBitString(encodeEcdsaSignature(raw)));
}

/** WebCrypto returns r||s; X.509 wants Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3). */
export function encodeEcdsaSignature(raw: Bytes): Bytes {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new RangeError(
      `Cannot encode an ECDSA signature of ${raw.length} bytes: expected r||s of equal halves`,
    );
  }
  const half = raw.length / 2;
  return encodeSequence(encodeInteger(raw.subarray(0, half)), encodeInteger(raw.subarray(half)));
}

/** Key identifier: SHA-1 of the subjectPublicKey BIT STRING value (RFC 5280 §4.2.1.2, method 1). */
export async function computeKeyId(spki: Bytes): Promise<Bytes> {
  const bitString = readChildren(readElement(spki).content)[1];
  if (bitString === undefined) throw new RangeError("SubjectPublicKeyInfo has no subjectPublicKey");
  const publicKey = bitString.content.subarray(1); // skip the unused-bits byte
  return new Uint8Array(await crypto.subtle.digest("SHA-1", publicKey));
}

/** What a leaf needs from its issuer's certificate. */
export interface IssuerFields {
  /** The issuer's subject Name, DER, to copy into the leaf's issuer field. */
  subject: Bytes;
  /** The issuer's SubjectPublicKeyInfo, DER. */
  spki: Bytes;
  /** The issuer's subjectKeyIdentifier, when it has one. */
  keyId?: Bytes;
}

/** Reads the subject, SPKI and (if present) subjectKeyIdentifier out of an issuer certificate's DER;
 * throws RangeError when the DER is not a certificate. */
export function readIssuerFields(certDer: Bytes): IssuerFields {
  const tbs = readChildren(readChildren(readElement(certDer).content)[0]?.content ?? new Uint8Array());
  const skip = tbs[0]?.tag === 0xa0 ? 1 : 0; // the optional [0] version
  const subject = tbs[skip + 4]?.encoded;
  const spki = tbs[skip + 5]?.encoded;
  if (subject === undefined || spki === undefined) throw new RangeError("certificate TBS is truncated");
  const extensions = tbs.find((element) => element.tag === 0xa3);
  if (extensions === undefined) return { subject, spki };
  const skiOid = encodeOid(OID.subjectKeyIdentifier);
  for (const extension of readChildren(readElement(extensions.content).content)) {
    const parts = readChildren(extension.content);
    const value = parts[parts.length - 1];
    if (parts[0] !== undefined && value !== undefined && sameBytes(parts[0].encoded, skiOid)) {
      return { subject, spki, keyId: readElement(value.content).content };
    }
  }
  return { subject, spki };
}

function sameBytes(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
