import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeImplicit, encodeSequence } from "../tls/der.ts";
import { LocalCa } from "../tls/local_ca.ts";
import { CertificateError, encodePem } from "../tls/pem.ts";
import { makeCertificate, openssl, withTempDir } from "../tls/test_helpers.ts";
import { encodeExtension, encodeName, OID, signCertificate } from "../tls/x509.ts";
import { ariCertId, formatCertId } from "./ari_cert_id.ts";

/**
 * RFC 9773 Appendix A's example certificate (as draft-ietf-acme-ari-08 and certbot's tests carry it): AKI
 * keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321.
 */
const RFC_9773_EXAMPLE = `-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
`;

/** The certID openssl's view of `certPath` gives: its AKI keyid and its serial, DER content bytes. */
async function certIdByOpenssl(certPath: string): Promise<string> {
  const text = await openssl("x509", "-in", certPath, "-noout", "-serial", "-ext", "authorityKeyIdentifier");
  const serialHex = /serial=([0-9A-F]+)/.exec(text)?.[1] ?? "";
  const keyIdHex = /\n\s+(?:keyid:)?([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)?.[1]?.replaceAll(":", "") ??
    "";
  // DER INTEGER content: a leading 0x00 when the high bit is set, so the number stays positive.
  const serial = Uint8Array.fromHex(serialHex.length % 2 === 0 ? serialHex : `0${serialHex}`);
  const content = (serial[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...serial) : serial;
  return formatCertId(Uint8Array.fromHex(keyIdHex), content);
}

Deno.test("ariCertId() gives RFC 9773 Appendix A's identifier for its example certificate", () => {
  assert.equal(ariCertId(RFC_9773_EXAMPLE), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
});

Deno.test("formatCertId() base64url-encodes both parts without padding, keeping the serial's leading zero", () => {
  const keyId = Uint8Array.fromHex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4");
  assert.equal(formatCertId(keyId, Uint8Array.fromHex("0087654321")), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  // Bytes whose base64 has "+", "/" and padding: base64url has "-", "_" and none.
  assert.equal(formatCertId(Uint8Array.of(0xfb, 0xff), Uint8Array.of(0xfb, 0xff, 0xbf)), "-_8.-_-_");
});

Deno.test("ariCertId() agrees with openssl on leaves from nexo's local CA and from openssl", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(join(dir, "ca"));
    for (let i = 0; i < 4; i++) {
      const leaf = await ca.issue([`host${i}.example.com`]);
      const path = join(dir, `leaf${i}.pem`);
      await Deno.writeTextFile(path, leaf.certPem);
      assert.equal(ariCertId(leaf.certPem), await certIdByOpenssl(path));
    }
    const root = await makeCertificate(dir, "root", { key: "p256", subject: "/CN=Test Root" });
    const leaf = await makeCertificate(dir, "leaf", {
      key: "rsa2048",
      subject: "/CN=app.example.com",
      san: "DNS:app.example.com",
      ca: root,
    });
    assert.equal(ariCertId(leaf.certPem), await certIdByOpenssl(leaf.certPath));
  });
});

Deno.test("ariCertId() refuses a leaf without an authority key identifier and text without a certificate", async () => {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const der = await signCertificate({
    issuer: encodeName("Some CA"),
    subject: encodeName("a.example.com"),
    notBefore: new Date("2025-01-01T00:00:00Z"),
    notAfter: new Date("2025-02-01T00:00:00Z"),
    spki,
    extensions: [
      encodeExtension(
        OID.subjectAltName,
        false,
        encodeSequence(encodeImplicit(2, new TextEncoder().encode("a.example.com"))),
      ),
    ],
  }, keys.privateKey);
  assert.throws(
    () => ariCertId(encodePem("CERTIFICATE", der), "/certs/a.example.com/fullchain.pem"),
    {
      name: "CertificateError",
      message:
        'Cannot compute the renewal information ID of certificate "/certs/a.example.com/fullchain.pem": ' +
        "it has no authority key identifier (RFC 9773 needs one; nexo renews it on its fixed schedule)",
    },
  );
  assert.throws(() => ariCertId("no PEM here"), CertificateError);
});
