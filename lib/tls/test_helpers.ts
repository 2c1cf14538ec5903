// Shared by the certificate and key tests (not used by nexo itself): openssl as a reference implementation
// that makes certificates and keys nexo did not write, a temporary directory for its files, and damaged
// copies of DER for the readers' error paths.

import assert from "node:assert/strict";
import { join } from "node:path";

/** Runs /usr/bin/openssl with `args` and returns its stdout; fails the test with its stderr on error. */
export async function openssl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  assert.ok(out.success, `openssl ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** Runs `fn` with a fresh temporary directory and removes it afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_tls_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `openssl req -newkey` arguments for the key types the tests use. */
export const KEY_TYPES = {
  p256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  p384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
  rsa2048: ["-newkey", "rsa:2048"],
  rsa4096: ["-newkey", "rsa:4096"],
  ed25519: ["-newkey", "ed25519"],
} as const;

/** What `makeCertificate` should make. */
export interface CertificateRequest {
  key: keyof typeof KEY_TYPES;
  /** openssl's "/C=US/O=Org/CN=name" form; UTF-8 allowed. */
  subject: string;
  /** openssl's "DNS:a.test,IP:10.0.0.1" form; no SAN extension when undefined. */
  san?: string;
  days?: number;
  /** Read "+" in `subject` as joining a multi-valued RDN ("/O=A+OU=B"). */
  multiValueRdn?: boolean;
  /** Sign with this CA (its PEM files) instead of self-signing. */
  ca?: { certPath: string; keyPath: string };
}

/** A certificate and its key as openssl wrote them (PKCS#8 key), with their paths in `dir`. */
export interface MadeCertificate {
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

/** Makes a certificate with openssl in `dir`, named `name`.crt / `name`.key. */
export async function makeCertificate(
  dir: string,
  name: string,
  request: CertificateRequest,
): Promise<MadeCertificate> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const days = String(request.days ?? 2);
  const common: string[] = [
    "-nodes",
    "-keyout",
    keyPath,
    "-subj",
    request.subject,
    "-utf8",
    ...KEY_TYPES[request.key],
  ];
  if (request.multiValueRdn === true) common.push("-multivalue-rdn");
  const san = request.san === undefined ? [] : ["-addext", `subjectAltName=${request.san}`];
  if (request.ca === undefined) {
    await openssl("req", "-x509", ...common, ...san, "-days", days, "-out", certPath);
  } else {
    const csrPath = join(dir, `${name}.csr`);
    await openssl("req", "-new", ...common, ...san, "-out", csrPath);
    await openssl(
      "x509",
      ...["-req", "-in", csrPath, "-CA", request.ca.certPath, "-CAkey", request.ca.keyPath, "-days", days],
      ...["-copy_extensions", "copyall", "-out", certPath],
    );
  }
  return {
    certPem: await Deno.readTextFile(certPath),
    keyPem: await Deno.readTextFile(keyPath),
    certPath,
    keyPath,
  };
}

/** Truncations at every length and one flipped bit at every byte of `der`. */
export function damaged(der: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (let length = 0; length < der.length; length++) out.push(der.slice(0, length));
  for (let i = 0; i < der.length; i++) {
    const copy = der.slice();
    copy[i] = (copy[i] ?? 0) ^ (1 << (i % 8));
    out.push(copy);
  }
  return out;
}
