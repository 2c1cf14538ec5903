import assert from "node:assert/strict";
import { join } from "node:path";
import { LocalCa } from "./local_ca.ts";
import {
  CertificateError,
  checkKeyMatchesCertificate,
  computeFingerprint,
  encodePem,
  parseCertificate,
  splitCertificateChain,
  splitPemBlocks,
} from "./pem.ts";

async function openssl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  assert.ok(out.success, decoder.decode(out.stderr));
  return decoder.decode(out.stdout);
}

/** A self-signed P-256 certificate made by openssl (not by nexo), optionally without a SAN. */
async function opensslSelfSigned(
  dir: string,
  subject: string,
  san?: string,
): Promise<{ cert: string; key: string }> {
  const certPath = join(dir, "c.pem");
  const keyPath = join(dir, "k.pem");
  const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  args.push("-keyout", keyPath, "-out", certPath, "-subj", subject, "-days", "2");
  if (san !== undefined) args.push("-addext", `subjectAltName=${san}`);
  await openssl(...args);
  return { cert: await Deno.readTextFile(certPath), key: await Deno.readTextFile(keyPath) };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_pem_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("encodePem() writes 64-column base64 that splitPemBlocks() reads back", () => {
  const der = Uint8Array.from({ length: 100 }, (_, i) => i);
  const pem = encodePem("CERTIFICATE", der);
  const lines = pem.trimEnd().split("\n");
  assert.equal(lines[0], "-----BEGIN CERTIFICATE-----");
  assert.equal(lines[1]?.length, 64);
  assert.equal(lines.at(-1), "-----END CERTIFICATE-----");
  const blocks = splitPemBlocks(
    `Bag Attributes: junk\n${pem}\r\n${encodePem("PRIVATE KEY", der.subarray(0, 3))}`,
  );
  assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY"]);
  assert.deepEqual([...blocks[0]?.der ?? []], [...der]);
  assert.equal(blocks[0]?.text, pem);
  assert.deepEqual(splitPemBlocks("no pem here"), []);
});

Deno.test("splitPemBlocks() reports a corrupt block without echoing its body", () => {
  const pem = "-----BEGIN PRIVATE KEY-----\nSECRET%%%\n-----END PRIVATE KEY-----\n";
  assert.throws(() => splitPemBlocks(pem, "/etc/k.pem"), (err: Error) => {
    assert.ok(err instanceof CertificateError);
    assert.match(err.message, /"\/etc\/k\.pem": the "PRIVATE KEY" block number 1 is not valid base64/);
    assert.ok(!err.message.includes("SECRET"));
    return true;
  });
});

Deno.test("parseCertificate() and computeFingerprint() read SANs, validity, issuer and fingerprint of the leaf", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["Www.Example.com", "*.example.com"], {
      now: new Date("2031-01-01T00:00:00Z"),
    });
    const info = parseCertificate(leaf.certPem);
    assert.deepEqual(info.names, ["www.example.com", "*.example.com"]);
    assert.equal(info.notBefore.toISOString(), "2030-12-31T23:55:00.000Z");
    assert.equal(info.notAfter.toISOString(), "2031-01-08T00:00:00.000Z");
    assert.match(info.issuer, /^CN=nexo Local CA /);
    await Deno.writeTextFile(join(dir, "leaf.pem"), leaf.certPem);
    const expected = await openssl("x509", "-in", join(dir, "leaf.pem"), "-noout", "-fingerprint", "-sha256");
    assert.equal(await computeFingerprint(leaf.certPem), expected.trim().split("=")[1]);
    assert.equal(splitCertificateChain(leaf.certPem).length, 2);
  });
});

Deno.test("parseCertificate() keeps only DNS SANs and falls back to the CN only without a SAN", async () => {
  await withTempDir(async (dir) => {
    const mixed = await opensslSelfSigned(dir, "/CN=ignored.test", "DNS:A.test,IP:127.0.0.1,DNS:b.test");
    assert.deepEqual(parseCertificate(mixed.cert).names, ["a.test", "b.test"]);
    const legacy = await opensslSelfSigned(dir, "/O=Acme, Inc/CN=Legacy.Test");
    assert.deepEqual(parseCertificate(legacy.cert).names, ["legacy.test"]);
    const none = await opensslSelfSigned(dir, "/O=Acme");
    assert.deepEqual(parseCertificate(none.cert).names, []);
  });
});

Deno.test("parseCertificate() names the source when there is no certificate or it is corrupt", async () => {
  await withTempDir(async (dir) => {
    const { key } = await opensslSelfSigned(dir, "/CN=x.test");
    assert.throws(
      () => parseCertificate(key, "/certs/x/fullchain.pem"),
      (err: Error) => {
        assert.ok(err instanceof CertificateError);
        assert.match(err.message, /"\/certs\/x\/fullchain\.pem".*holds a private key instead/);
        const body = key.split("\n")[1] ?? "";
        assert.ok(body.length > 10 && !err.message.includes(body));
        return true;
      },
    );
    assert.throws(() => parseCertificate("", "empty.pem"), /"empty\.pem": no certificate found/);
    const garbage = encodePem("CERTIFICATE", Uint8Array.of(1, 2, 3));
    assert.throws(
      () => parseCertificate(garbage, "bad.pem"),
      /Cannot parse certificate "bad\.pem": .*not valid X\.509/,
    );
  });
});

Deno.test("checkKeyMatchesCertificate() accepts PKCS#8 and SEC1 keys of the pair and rejects another key, naming both files", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const one = await ca.issue(["one.test"]);
    const two = await ca.issue(["two.test"]);
    await checkKeyMatchesCertificate(one.certPem, one.keyPem);
    const other = await opensslSelfSigned(dir, "/CN=sec1.test");
    await Deno.writeTextFile(join(dir, "pkcs8.pem"), other.key);
    const sec1 = await openssl("ec", "-in", join(dir, "pkcs8.pem"));
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);
    await checkKeyMatchesCertificate(other.cert, sec1);
    await assert.rejects(
      () =>
        checkKeyMatchesCertificate(one.certPem, two.keyPem, { certSource: "one.pem", keySource: "two.key" }),
      (err: Error) => {
        assert.ok(err instanceof CertificateError);
        assert.match(err.message, /^Private key "two\.key" does not belong to certificate "one\.pem"/);
        return true;
      },
    );
  });
});

Deno.test("checkKeyMatchesCertificate() reports encrypted, missing and corrupt keys without key material", async () => {
  await withTempDir(async (dir) => {
    const { cert, key } = await opensslSelfSigned(dir, "/CN=x.test");
    await Deno.writeTextFile(join(dir, "k.pem"), key);
    const encrypted = await openssl("pkey", "-in", join(dir, "k.pem"), "-aes256", "-passout", "pass:pw");
    const options = { certSource: "c.pem", keySource: "k.pem" };
    await assert.rejects(
      () => checkKeyMatchesCertificate(cert, encrypted, options),
      /"k\.pem": it is encrypted/,
    );
    await assert.rejects(
      () => checkKeyMatchesCertificate(cert, cert, options),
      /"k\.pem": no "-----BEGIN PRIVATE KEY/,
    );
    const corrupt = "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n";
    await assert.rejects(() => checkKeyMatchesCertificate(cert, corrupt, options), (err: Error) => {
      assert.match(err.message, /Cannot parse private key "k\.pem"/);
      assert.ok(!err.message.includes("U0VDUkVU") && !String(err.cause).includes("U0VDUkVU"));
      return true;
    });
  });
});
