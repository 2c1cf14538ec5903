// A certificate's new private key and the CSR that asks an ACME CA to certify it (RFC 8555 §7.4: a PKCS#10
// request, RFC 2986, naming every identifier in subjectAltName), through WebCrypto and lib/tls's DER encoder.
// No node:crypto: the ACME worker imports no `node:` module, so Deno's Node compatibility layer stays unloaded
// (docs/performance.md: it was most of what a finished worker left behind).

import { encodePem, splitPemBlocks } from "../tls/pem.ts";
import {
  type Bytes,
  encodeBitString,
  encodeImplicit,
  encodeInteger,
  encodeOid,
  encodeSequence,
  encodeSet,
  encodeTlv,
  TAG,
} from "../tls/der.ts";
import { encodeEcdsaSignature, encodeExtension, encodeName, OID } from "../tls/x509.ts";

const EC_KEY: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const RSA_KEY: RsaHashedKeyGenParams = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
/** PKCS #9 extensionRequest (RFC 2985 §5.4.2): the attribute that carries the requested extensions. */
const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
/** RFC 5280 §4.1.2.6 / X.520: a commonName has at most 64 characters; longer names go in the SAN only. */
const MAX_COMMON_NAME = 64;

/** Creates a new private key, PKCS#8 PEM: ECDSA P-256 (the default) or RSA-2048. */
export async function createPrivateKey(type: "ecdsa" | "rsa"): Promise<string> {
  const pair = await crypto.subtle.generateKey(type === "rsa" ? RSA_KEY : EC_KEY, true, ["sign", "verify"]);
  return encodePem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)));
}

/**
 * Creates a PEM CSR for `names` signed with `keyPem` (a key from `createPrivateKey`): every name in
 * subjectAltName, the first also as the subject's CN when it fits (CAs take the SAN; the CN is cosmetic).
 */
export async function createCsr(names: string[], keyPem: string): Promise<string> {
  if (names.length === 0) throw new RangeError("Cannot create a CSR for no names");
  const { privateKey, spki, kind } = await importKeyPair(keyPem);
  const sans = names.map((name) => encodeImplicit(2, new TextEncoder().encode(name))); // dNSName [2]
  const extensions = encodeSequence(encodeExtension(OID.subjectAltName, false, encodeSequence(...sans)));
  const attribute = encodeSequence(encodeOid(EXTENSION_REQUEST), encodeSet(extensions));
  const first = names[0]!;
  const info = encodeSequence(
    encodeInteger(0), // version 1 (RFC 2986 §4.1)
    encodeName(first.length <= MAX_COMMON_NAME ? first : undefined),
    spki,
    encodeImplicit(0, attribute, true), // attributes [0] IMPLICIT SET OF Attribute
  );
  let algorithm: Bytes;
  let signature: Bytes;
  if (kind === "ecdsa") {
    algorithm = encodeSequence(encodeOid(OID.ecdsaWithSha256)); // RFC 5758 §3.2: parameters absent
    const raw = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, info),
    );
    signature = encodeEcdsaSignature(raw);
  } else {
    algorithm = encodeSequence(encodeOid(SHA256_WITH_RSA), encodeTlv(TAG.NULL, new Uint8Array(0))); // RFC 4055 §5
    signature = new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", privateKey, info));
  }
  return encodePem("CERTIFICATE REQUEST", encodeSequence(info, algorithm, encodeBitString(signature)));
}

/** The signing key and the DER SubjectPublicKeyInfo of a PKCS#8 PEM key: ECDSA P-256 or RSA. */
async function importKeyPair(
  keyPem: string,
): Promise<{ privateKey: CryptoKey; spki: Bytes; kind: "ecdsa" | "rsa" }> {
  const der = splitPemBlocks(keyPem).find((block) => block.label === "PRIVATE KEY")?.der;
  if (der === undefined) throw new Error("Cannot create a CSR: the key is not a PKCS#8 PEM key");
  for (const [kind, params] of [["ecdsa", EC_KEY], ["rsa", RSA_KEY]] as const) {
    const privateKey = await crypto.subtle.importKey("pkcs8", der, params, true, ["sign"]).catch(() => null);
    if (privateKey === null) continue;
    // WebCrypto cannot export a public key from a private one; its JWK without the private members can.
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    for (const member of ["d", "p", "q", "dp", "dq", "qi"] as const) delete jwk[member];
    jwk.key_ops = ["verify"];
    const publicKey = await crypto.subtle.importKey("jwk", jwk, params, true, ["verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
    return { privateKey, spki, kind };
  }
  throw new Error("Cannot create a CSR: the key is neither ECDSA P-256 nor RSA");
}
