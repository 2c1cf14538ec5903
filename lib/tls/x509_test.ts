import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  encodeEcdsaSignature,
  encodeExtension,
  encodeName,
  OID,
  readIssuerFields,
  signCertificate,
} from "./x509.ts";
import { encodePem } from "./pem.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("encodeEcdsaSignature() turns raw r||s into a DER SEQUENCE of two positive INTEGERs", () => {
  const raw = new Uint8Array(64);
  raw[0] = 0x80; // r has its high bit set: needs a 0x00 prefix
  raw[63] = 0x01; // s is 1 after dropping 31 leading zero bytes
  const der = encodeEcdsaSignature(raw);
  assert.deepEqual([...der.subarray(0, 5)], [0x30, 0x26, 0x02, 0x21, 0x00]);
  assert.deepEqual([...der.subarray(der.length - 3)], [0x02, 0x01, 0x01]);
  assert.throws(() => encodeEcdsaSignature(new Uint8Array(63)), RangeError);
});

Deno.test("signCertificate() output verifies with the signer's public key and reads back its issuer fields", async () => {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const name = encodeName("x509 test");
  const keyId = Uint8Array.of(1, 2, 3, 4);
  const der = await signCertificate({
    issuer: name,
    subject: name,
    notBefore: new Date("2030-01-01T00:00:00Z"),
    notAfter: new Date("2051-01-01T00:00:00Z"),
    spki,
    extensions: [encodeExtension(OID.subjectKeyIdentifier, false, Uint8Array.of(0x04, 4, ...keyId))],
  }, keys.privateKey);
  const cert = new X509Certificate(encodePem("CERTIFICATE", der));
  assert.equal(cert.subject, "CN=x509 test");
  assert.equal(cert.validToDate.toISOString(), "2051-01-01T00:00:00.000Z");
  assert.ok(cert.verify(cert.publicKey));
  const fields = readIssuerFields(der);
  assert.equal(hex(fields.subject), hex(name));
  assert.equal(hex(fields.spki), hex(spki));
  assert.equal(hex(fields.keyId ?? new Uint8Array()), hex(keyId));
});
