import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { join } from "node:path";
import {
  concatBytes,
  encodeImplicit,
  encodeInteger,
  encodeSequence,
  readChildren,
  readElement,
} from "./der.ts";
import { derivePublicKey, readSpkiPublicKey } from "./public_key.ts";
import { readCertificateFields } from "./cert_fields.ts";
import {
  CertificateError,
  checkKeyMatchesCertificate,
  encodePem,
  splitCertificateChain,
  splitPemBlocks,
} from "./pem.ts";
import { damaged, KEY_TYPES, makeCertificate, openssl, withTempDir } from "./test_helpers.ts";

/** The first block of `pem` whose label ends in PRIVATE KEY. */
function keyBlock(pem: string): { label: string; der: Uint8Array<ArrayBuffer> } {
  const block = splitPemBlocks(pem).find((b) => b.label.endsWith("PRIVATE KEY"));
  assert.ok(block !== undefined, "no private key block");
  return block;
}

/** node:crypto's public key of a private key PEM, as SPKI DER: what pem.ts compared before. */
function nodePublicKey(keyPem: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(createPublicKey(keyPem).export({ type: "spki", format: "der" }));
}

/** An Ed25519 PKCS#8 v1 key rewritten as OneAsymmetricKey v2 with its public key [1] (RFC 5958 §2). */
function withEd25519PublicKey(
  v1: Uint8Array<ArrayBuffer>,
  spki: Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  const [, algorithm, privateKey] = readChildren(readElement(v1).content);
  const [, publicKey] = readChildren(readElement(spki).content);
  assert.ok(algorithm !== undefined && privateKey !== undefined && publicKey !== undefined);
  return encodeSequence(
    encodeInteger(1),
    algorithm.encoded,
    privateKey.encoded,
    encodeImplicit(1, publicKey.content),
  );
}

/** Every key file form openssl writes for each key type, with the certificate it belongs to. */
async function makeKeyForms(dir: string): Promise<{ name: string; certPem: string; keyPem: string }[]> {
  const forms: { name: string; certPem: string; keyPem: string }[] = [];
  for (const type of Object.keys(KEY_TYPES) as (keyof typeof KEY_TYPES)[]) {
    const made = await makeCertificate(dir, type, { key: type, subject: `/CN=${type}.test` });
    const add = (form: string, keyPem: string) =>
      forms.push({ name: `${type} ${form}`, certPem: made.certPem, keyPem });
    add("PKCS#8", made.keyPem);
    if (type.startsWith("rsa")) {
      add("PKCS#1", await openssl("rsa", "-in", made.keyPath, "-traditional"));
    } else if (type.startsWith("p")) {
      const sec1 = await openssl("ec", "-in", made.keyPath);
      const noPublic = await openssl("ec", "-in", made.keyPath, "-no_public");
      const noPublicPath = join(dir, `${type}.nopub`);
      await Deno.writeTextFile(noPublicPath, noPublic);
      add("SEC1", sec1);
      add("SEC1 without public key", noPublic);
      add("PKCS#8 without public key", await openssl("pkcs8", "-topk8", "-nocrypt", "-in", noPublicPath));
      add("SEC1 compressed", await openssl("ec", "-in", made.keyPath, "-conv_form", "compressed"));
    } else {
      const spki = nodePublicKey(made.keyPem);
      add(
        "PKCS#8 v2 with public key",
        encodePem("PRIVATE KEY", withEd25519PublicKey(keyBlock(made.keyPem).der, spki)),
      );
    }
  }
  return forms;
}

Deno.test("derivePublicKey() finds the public key node:crypto found, for every key type and file form", async () => {
  await withTempDir(async (dir) => {
    const forms = await makeKeyForms(dir);
    assert.equal(forms.length, 16);
    for (const { name, keyPem } of forms) {
      const { label, der } = keyBlock(keyPem);
      assert.deepEqual(await derivePublicKey(label, der), readSpkiPublicKey(nodePublicKey(keyPem)), name);
    }
  });
});

Deno.test("checkKeyMatchesCertificate() accepts each key form with its certificate and refuses it with every other", async () => {
  await withTempDir(async (dir) => {
    const forms = await makeKeyForms(dir);
    for (const key of forms) {
      for (const cert of forms) {
        const check = checkKeyMatchesCertificate(cert.certPem, key.keyPem, {
          certSource: "c",
          keySource: "k",
        });
        if (cert.certPem === key.certPem) await check;
        else {await assert.rejects(
            check,
            /^CertificateError: Private key "k" does not belong to certificate "c"/,
            `${key.name} vs ${cert.name}`,
          );}
      }
    }
  });
});

Deno.test("checkKeyMatchesCertificate() compares an EC point stored compressed in one and uncompressed in the other", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(dir, "p384", { key: "p384", subject: "/CN=p384.test" });
    const compressedKeyPath = join(dir, "compressed.key");
    await openssl("ec", "-in", made.keyPath, "-conv_form", "compressed", "-out", compressedKeyPath);
    const compressedCert = await openssl("req", "-x509", "-new", "-key", compressedKeyPath, "-subj", "/CN=c");
    const { spki } = readCertificateFields(splitCertificateChain(compressedCert)[0]?.der ?? new Uint8Array());
    const point = readChildren(readElement(spki).content)[1];
    assert.equal(point?.content.length, 1 + 1 + 48, "the certificate's point is compressed");
    await checkKeyMatchesCertificate(compressedCert, made.keyPem);
    await checkKeyMatchesCertificate(made.certPem, await Deno.readTextFile(compressedKeyPath));
  });
});

Deno.test("checkKeyMatchesCertificate() refuses keys nexo cannot serve with the existing message", async () => {
  await withTempDir(async (dir) => {
    const made = await makeCertificate(dir, "p256", { key: "p256", subject: "/CN=p256.test" });
    const ed448 = await openssl("genpkey", "-algorithm", "ed448");
    const options = { certSource: "c.pem", keySource: "k.pem" };
    await assert.rejects(
      checkKeyMatchesCertificate(made.certPem, ed448, options),
      /^CertificateError: Cannot parse private key "k\.pem": the "PRIVATE KEY" block is not a valid key \(replace the file\)$/,
    );
    const openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n";
    await assert.rejects(
      checkKeyMatchesCertificate(made.certPem, openssh, options),
      /"OPENSSH PRIVATE KEY" block is not a valid key/,
    );
  });
});

Deno.test("checkKeyMatchesCertificate() turns damaged keys into CertificateError without key material", async () => {
  await withTempDir(async (dir) => {
    const forms = await makeKeyForms(dir);
    const seen = new Set<string>();
    for (const { name, certPem, keyPem } of forms.filter((form) => !form.name.startsWith("rsa4096"))) {
      const { label, der } = keyBlock(keyPem);
      const body = keyPem.split("\n").slice(1, -2).join("");
      for (const variant of damaged(der)) {
        try {
          await checkKeyMatchesCertificate(certPem, encodePem(label, variant), { keySource: "k.pem" });
        } catch (err) {
          assert.ok(err instanceof CertificateError, `${name}: expected a CertificateError, got ${err}`);
          const text = `${err.message} ${String(err.cause)}`;
          for (let i = 0; i + 16 <= body.length; i += 16) {
            assert.ok(!text.includes(body.slice(i, i + 16)), name);
          }
          seen.add(err.message.replace(/ \(.*$/, ""));
        }
      }
    }
    assert.deepEqual([...seen].sort(), [
      'Cannot parse private key "k.pem": the "EC PRIVATE KEY" block is not a valid key',
      'Cannot parse private key "k.pem": the "PRIVATE KEY" block is not a valid key',
      'Cannot parse private key "k.pem": the "RSA PRIVATE KEY" block is not a valid key',
      'Private key "k.pem" does not belong to certificate',
    ]);
  });
});

Deno.test("readSpkiPublicKey() keeps unknown algorithms comparable by OID and bytes", () => {
  const spki = encodeSequence(
    encodeSequence(Uint8Array.of(0x06, 0x03, 0x2a, 0x03, 0x04)),
    concatBytes([Uint8Array.of(0x03, 0x03, 0x00), Uint8Array.of(0xab, 0xcd)]),
  );
  assert.deepEqual(readSpkiPublicKey(spki), { algorithm: "1.2.3.4", key: "abcd" });
  assert.throws(() => readSpkiPublicKey(spki.subarray(0, spki.length - 1)), RangeError);
});
