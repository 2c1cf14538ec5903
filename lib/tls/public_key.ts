// The public key of a certificate (its SubjectPublicKeyInfo, RFC 5280 §4.1.2.7) and of a private key
// (PKCS#8 RFC 5958, SEC1 RFC 5915, PKCS#1 RFC 8017), reduced to what identifies it so pem.ts can tell
// whether a key belongs to a certificate. Web Crypto only derives a public key the key file does not carry.
// It never returns or reports private key bytes; it does not check that a key can sign.

import {
  type Bytes,
  concatBytes,
  type DerElement,
  encodeInteger,
  encodeOctetString,
  encodeOid,
  encodeSequence,
  readChildren,
  TAG,
} from "./der.ts";
import { decodeBitString, decodeOid, decodeUnsignedInteger, expectTag, readWhole } from "./der_decode.ts";

/** A public key reduced to what identifies it: two keys are the same when both fields are equal. */
export interface PublicKeyId {
  /** "rsa", "ec <curve OID>", "ed25519", or the algorithm OID of a key type nexo does not know. */
  algorithm: string;
  /** Hex: "modulus:exponent" for RSA, the compressed point for EC, the key bytes otherwise. */
  key: string;
}

const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsassaPss: "1.2.840.113549.1.1.10", // same key structure as rsaEncryption (RFC 4055 §1.2)
  ecPublicKey: "1.2.840.10045.2.1",
  ed25519: "1.3.101.112",
} as const;

/** Named curves (RFC 5480 §2.1.1.1) by OID, as Web Crypto names them. */
const CURVES: Readonly<Record<string, string>> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
};

const SEC1_PARAMETERS_TAG = 0xa0; // [0] EXPLICIT ECParameters
const SEC1_PUBLIC_KEY_TAG = 0xa1; // [1] EXPLICIT BIT STRING
const PKCS8_PUBLIC_KEY_TAG = 0x81; // OneAsymmetricKey publicKey [1] IMPLICIT BIT STRING (RFC 5958 §2)

/** Reads a DER SubjectPublicKeyInfo. Throws RangeError naming the malformed field. */
export function readSpkiPublicKey(spki: Bytes): PublicKeyId {
  const [algorithm, publicKey] = readChildren(readWhole(spki, TAG.SEQUENCE, "the public key info").content);
  const [oid, parameters] = readChildren(expectTag(algorithm, TAG.SEQUENCE, "the key algorithm").content);
  const type = decodeOid(oid, "the key algorithm");
  const bits = decodeBitString(publicKey, "the public key");
  if (type === OID.rsaEncryption || type === OID.rsassaPss) {
    const [modulus, exponent] = readChildren(readWhole(bits, TAG.SEQUENCE, "the RSA public key").content);
    return rsaKeyId(modulus, exponent);
  }
  if (type === OID.ecPublicKey) {
    return { algorithm: `ec ${decodeOid(parameters, "the EC curve")}`, key: compressPoint(bits) };
  }
  return { algorithm: type === OID.ed25519 ? "ed25519" : type, key: bits.toHex() };
}

/**
 * The public key of the private key `der` from a PEM block labelled `label`: "PRIVATE KEY" (PKCS#8: RSA, EC,
 * Ed25519), "EC PRIVATE KEY" (SEC1) or "RSA PRIVATE KEY" (PKCS#1). Rejects with RangeError when the key is
 * malformed, of another type, or (without its public key) on a curve Web Crypto does not know; the error
 * never holds key bytes.
 */
export async function derivePublicKey(label: string, der: Bytes): Promise<PublicKeyId> {
  if (label === "RSA PRIVATE KEY") return readRsaPrivateKey(der);
  if (label === "EC PRIVATE KEY") {
    const { curve, point } = readSec1(der);
    if (curve === undefined) throw new RangeError("the EC private key does not name its curve");
    return await ecKeyId(curve, point, () => wrapSec1(curve, der));
  }
  if (label !== "PRIVATE KEY") throw new RangeError(`nexo does not read "${label}" keys`);
  return await readPkcs8(der);
}

/** PrivateKeyInfo / OneAsymmetricKey (RFC 5958 §2) holding an RSA, EC or Ed25519 key. */
async function readPkcs8(der: Bytes): Promise<PublicKeyId> {
  const fields = readChildren(readWhole(der, TAG.SEQUENCE, "the PKCS#8 key").content);
  expectTag(fields[0], TAG.INTEGER, "the PKCS#8 version");
  const [oid, parameters] = readChildren(expectTag(fields[1], TAG.SEQUENCE, "the key algorithm").content);
  const type = decodeOid(oid, "the key algorithm");
  const privateKey = expectTag(fields[2], TAG.OCTET_STRING, "the private key").content;
  const publicKey = fields.slice(3).find((field) => field.tag === PKCS8_PUBLIC_KEY_TAG);
  if (type === OID.rsaEncryption || type === OID.rsassaPss) return readRsaPrivateKey(privateKey);
  if (type === OID.ecPublicKey) {
    const curve = decodeOid(parameters, "the EC curve");
    const sec1 = readSec1(privateKey);
    if (sec1.curve !== undefined && sec1.curve !== curve) throw new RangeError("the key names two curves");
    return await ecKeyId(curve, sec1.point, () => der);
  }
  if (type !== OID.ed25519) throw new RangeError(`nexo does not read keys of algorithm ${type}`);
  // RFC 8410 §7: the private key is an OCTET STRING of the 32-byte seed, the public key optional.
  if (readWhole(privateKey, TAG.OCTET_STRING, "the Ed25519 key").content.length !== 32) {
    throw new RangeError("the Ed25519 key is not 32 bytes");
  }
  const key = publicKey === undefined
    ? decodeBase64Url((await exportJwk(der, { name: "Ed25519" })).x)
    : decodeBitString(publicKey, "the public key", PKCS8_PUBLIC_KEY_TAG);
  return { algorithm: "ed25519", key: key.toHex() };
}

/** RSAPrivateKey (RFC 8017 Appendix A.1.2): version, n, e, d, p, q, dP, dQ, qInv, all INTEGERs. */
function readRsaPrivateKey(der: Bytes): PublicKeyId {
  const fields = readChildren(readWhole(der, TAG.SEQUENCE, "the RSA private key").content);
  for (let i = 0; i < 9; i++) expectTag(fields[i], TAG.INTEGER, "an RSA private key field");
  return rsaKeyId(fields[1], fields[2]);
}

function rsaKeyId(modulus: DerElement | undefined, exponent: DerElement | undefined): PublicKeyId {
  const n = decodeUnsignedInteger(modulus, "the RSA modulus");
  const e = decodeUnsignedInteger(exponent, "the RSA exponent");
  return { algorithm: "rsa", key: `${n.toHex()}:${e.toHex()}` };
}

/** ECPrivateKey (RFC 5915 §3): the curve from [0] and the public point from [1], when present. */
function readSec1(der: Bytes): { curve: string | undefined; point: Bytes | undefined } {
  const fields = readChildren(readWhole(der, TAG.SEQUENCE, "the EC private key").content);
  expectTag(fields[0], TAG.INTEGER, "the EC key version");
  expectTag(fields[1], TAG.OCTET_STRING, "the EC private key");
  const parameters = fields.find((field) => field.tag === SEC1_PARAMETERS_TAG);
  const publicKey = fields.find((field) => field.tag === SEC1_PUBLIC_KEY_TAG);
  return {
    curve: parameters === undefined
      ? undefined
      : decodeOid(readWhole(parameters.content, TAG.OBJECT_IDENTIFIER, "the EC curve"), "the EC curve"),
    point: publicKey === undefined ? undefined : decodeBitString(
      readWhole(publicKey.content, TAG.BIT_STRING, "the EC public key"),
      "the EC public key",
    ),
  };
}

/** A SEC1 key as PKCS#8 (RFC 5208 §5), which is what Web Crypto imports. */
function wrapSec1(curve: string, sec1: Bytes): Bytes {
  return encodeSequence(
    encodeInteger(0),
    encodeSequence(encodeOid(OID.ecPublicKey), encodeOid(curve)),
    encodeOctetString(sec1),
  );
}

/** The key id of an EC key: its stored point, or else the one Web Crypto derives from the pkcs8 form. */
async function ecKeyId(curve: string, point: Bytes | undefined, pkcs8: () => Bytes): Promise<PublicKeyId> {
  if (point !== undefined) return { algorithm: `ec ${curve}`, key: compressPoint(point) };
  const namedCurve = CURVES[curve];
  if (namedCurve === undefined) {
    throw new RangeError(
      `the EC key on curve ${curve} carries no public key and Web Crypto cannot derive it`,
    );
  }
  const jwk = await exportJwk(pkcs8(), { name: "ECDSA", namedCurve });
  const derived = concatBytes([Uint8Array.of(0x04), decodeBase64Url(jwk.x), decodeBase64Url(jwk.y)]);
  return { algorithm: `ec ${curve}`, key: compressPoint(derived) };
}

async function exportJwk(pkcs8: Bytes, algorithm: EcKeyImportParams | Algorithm): Promise<JsonWebKey> {
  try {
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm, true, ["sign"]);
    return await crypto.subtle.exportKey("jwk", key);
  } catch (err) {
    // Web Crypto's reasons name the problem, never the key bytes.
    throw new RangeError(`Web Crypto cannot read the ${algorithm.name} key`, { cause: err });
  }
}

/**
 * An EC point (SEC 1 §2.3.3) in compressed form: 0x02/0x03 by the parity of y, then x. A certificate and a
 * key may store the same point uncompressed and compressed; other forms are compared as they are.
 */
function compressPoint(point: Bytes): string {
  if (point[0] !== 0x04 || point.length % 2 === 0) return point.toHex();
  const size = (point.length - 1) / 2;
  const parity = (point[point.length - 1] ?? 0) & 1;
  return concatBytes([Uint8Array.of(0x02 + parity), point.subarray(1, 1 + size)]).toHex();
}

function decodeBase64Url(text: string | undefined): Bytes {
  if (text === undefined) throw new RangeError("Web Crypto exported no public key");
  return Uint8Array.fromBase64(text, { alphabet: "base64url" });
}
