// PEM text (RFC 7468) in and out, and the facts nexo needs from a certificate: its DNS names, validity,
// issuer and fingerprint, plus a check that a private key belongs to it. The DER is read by nexo's own code
// (cert_fields.ts, public_key.ts) and Web Crypto, not node:crypto, which costs +4 MiB idle RSS in the main
// isolate. It does not verify chains or signatures (the TLS client does) and never puts key material in
// messages.

import type { Bytes } from "./der.ts";
import { type ParsedCertificate, readCertificateFields } from "./cert_fields.ts";
import { derivePublicKey, type PublicKeyId, readSpkiPublicKey } from "./public_key.ts";

/** A certificate or key file that cannot be used; `cert_files.ts` catches it to report and carry on. */
export class CertificateError extends Error {
  override name = "CertificateError";
}

/** One `-----BEGIN <label>-----` ... `-----END <label>-----` block of a PEM file. */
export interface PemBlock {
  /** The label, e.g. "CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY". */
  label: string;
  /** The block exactly as it appeared, BEGIN and END lines included, followed by "\n". */
  text: string;
  /** The decoded base64 body. */
  der: Bytes;
}

/** What nexo reads from a certificate (the first one of a chain). */
export interface CertificateInfo {
  /** DNS subjectAltNames, lowercased, in certificate order; the subject CN only if there is no SAN extension. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /**
   * The issuer's distinguished name, attributes in certificate order joined by ", " as node:crypto printed
   * them (e.g. "CN=nexo Local CA 2025-01-01", "C=US, O=Let's Encrypt, CN=R11").
   */
  issuer: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

function describe(source: string | undefined, what: string): string {
  return source === undefined ? what : `${what} "${source}"`;
}

/**
 * Splits PEM text into its blocks, in order, ignoring text between blocks (certbot and openssl may add
 * "Bag Attributes" lines). Returns [] when there is no block. Throws CertificateError when a block's body
 * is not base64; the message names `source` but never echoes the body, which may be a private key.
 */
export function splitPemBlocks(text: string, source?: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const label = match[1] ?? "";
    let der: Bytes;
    try {
      // Not atob: its first call keeps ~0.7 MiB of a process (Deno's op and its code), this V8 builtin ~0.3.
      // Both skip the line breaks and spaces between the base64 lines, and refuse any other character.
      der = Uint8Array.fromBase64(match[2] ?? "");
    } catch (err) {
      throw new CertificateError(
        `Cannot read ${describe(source, "PEM file")}: the "${label}" block number ${
          blocks.length + 1
        } is not valid base64 (the file is corrupt or was edited; replace it)`,
        { cause: err },
      );
    }
    blocks.push({ label, text: match[0] + "\n", der });
  }
  return blocks;
}

/** Encodes DER bytes as a PEM block with 64-character lines (RFC 7468 §2), ending in "\n". */
export function encodePem(label: string, der: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < der.length; i += 0x8000) binary += String.fromCharCode(...der.subarray(i, i + 0x8000));
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Returns the CERTIFICATE blocks of a PEM chain, leaf first as written. Throws CertificateError naming
 * `source` when there is none (with a hint when the file holds a private key instead).
 */
export function splitCertificateChain(pem: string, source?: string): PemBlock[] {
  const blocks = splitPemBlocks(pem, source);
  const certs = blocks.filter((block) => block.label === "CERTIFICATE");
  if (certs.length > 0) return certs;
  const hint = blocks.some((block) => block.label.endsWith("PRIVATE KEY"))
    ? "it holds a private key instead (are the certificate and key files swapped?)"
    : "expected a PEM file starting with -----BEGIN CERTIFICATE-----";
  throw new CertificateError(`Cannot read ${describe(source, "certificate")}: no certificate found; ${hint}`);
}

interface FirstCertificate extends ParsedCertificate {
  der: Bytes;
  publicKey: PublicKeyId;
}

/** The first certificate of `pem`, read; throws CertificateError naming `source` when it cannot be. */
function readFirstCertificate(pem: string, source: string | undefined): FirstCertificate {
  const [first] = splitCertificateChain(pem, source);
  const der = first?.der ?? new Uint8Array();
  try {
    const fields = readCertificateFields(der);
    return { ...fields, der, publicKey: readSpkiPublicKey(fields.spki) };
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new CertificateError(
      `Cannot parse ${
        describe(source, "certificate")
      }: the first CERTIFICATE block is not valid X.509 DER (replace the file with the one your CA issued)`,
      { cause: err },
    );
  }
}

/**
 * Parses the first certificate of a PEM chain (the leaf in a fullchain.pem). Throws CertificateError naming
 * `source` (a file path, for messages only) when there is no certificate or it is not valid X.509.
 */
export function parseCertificate(pem: string, source?: string): CertificateInfo {
  const { names, notBefore, notAfter, issuer } = readFirstCertificate(pem, source);
  return { names, notBefore, notAfter, issuer };
}

/**
 * SHA-256 of the first certificate's DER, uppercase hex pairs joined by ":" (as `openssl x509 -fingerprint
 * -sha256` prints it). Async because Web Crypto digests are; rejects like `parseCertificate`.
 */
export async function computeFingerprint(pem: string, source?: string): Promise<string> {
  const { der } = readFirstCertificate(pem, source);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/** File names for the messages of `checkKeyMatchesCertificate`. */
export interface KeyMatchOptions {
  certSource?: string;
  keySource?: string;
}

async function readPrivateKey(keyPem: string, source: string | undefined): Promise<PublicKeyId> {
  const blocks = splitPemBlocks(keyPem, source);
  if (blocks.some((block) => block.label === "ENCRYPTED PRIVATE KEY")) {
    throw new CertificateError(
      `Cannot use ${
        describe(source, "private key")
      }: it is encrypted (decrypt it with "openssl pkey -in <file> -out <file>"; nexo reads unencrypted keys)`,
    );
  }
  const key = blocks.find((block) => block.label.endsWith("PRIVATE KEY"));
  if (key === undefined) {
    throw new CertificateError(
      `Cannot read ${
        describe(source, "private key")
      }: no "-----BEGIN PRIVATE KEY-----" block found (expected a PEM private key such as privkey.pem)`,
    );
  }
  try {
    return await derivePublicKey(key.label, key.der);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    // The cause names the malformed field or Web Crypto's reason, never the key bytes.
    throw new CertificateError(
      `Cannot parse ${
        describe(source, "private key")
      }: the "${key.label}" block is not a valid key (replace the file)`,
      { cause: err },
    );
  }
}

/**
 * Rejects with CertificateError unless the private key in `keyPem` (PKCS#8, SEC1 or PKCS#1 PEM; RSA, ECDSA
 * or Ed25519) is the one whose public half is in the first certificate of `certPem`. Called before a pair is
 * served, so a mismatched pair is reported at load time instead of failing every TLS handshake. Async
 * because deriving a public key the key file does not carry takes Web Crypto. Messages name the files,
 * never the key.
 */
export async function checkKeyMatchesCertificate(
  certPem: string,
  keyPem: string,
  options: KeyMatchOptions = {},
): Promise<void> {
  const fromCert = readFirstCertificate(certPem, options.certSource).publicKey;
  const fromKey = await readPrivateKey(keyPem, options.keySource);
  if (fromKey.algorithm !== fromCert.algorithm || fromKey.key !== fromCert.key) {
    throw new CertificateError(
      `${describe(options.keySource, "Private key")} does not belong to ${
        describe(options.certSource, "certificate")
      } (install the key that was generated with this certificate, or reissue the certificate)`,
    );
  }
}
