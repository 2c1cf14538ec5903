import assert from "node:assert/strict";
import { createCsr, createPrivateKey } from "./csr.ts";

/** openssl's reading of a PEM CSR: its text dump, after it checked the signature (-verify). */
async function opensslRead(csrPem: string): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: ["req", "-noout", "-verify", "-text"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(csrPem));
  await writer.close();
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, text);
  return text;
}

for (const type of ["ecdsa", "rsa"] as const) {
  Deno.test(`createCsr(): a ${type} CSR that openssl verifies, every name in subjectAltName`, async () => {
    const keyPem = await createPrivateKey(type);
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const text = await opensslRead(
      await createCsr(["example.com", "*.example.com", "www.example.com"], keyPem),
    );
    assert.match(text, /verify OK|Certificate request self-signature verify OK/);
    assert.match(text, /Subject: CN\s?=\s?example\.com/);
    assert.match(text, /DNS:example\.com, DNS:\*\.example\.com, DNS:www\.example\.com/);
    assert.match(text, type === "ecdsa" ? /ecdsa-with-SHA256/ : /sha256WithRSAEncryption/);
    assert.match(text, type === "ecdsa" ? /prime256v1|P-256/ : /Public-Key: \(2048 bit\)/);
  });
}

Deno.test("createCsr(): a first name longer than a commonName may be goes in subjectAltName only", async () => {
  const long = `${"a".repeat(60)}.example.com`;
  const text = await opensslRead(await createCsr([long], await createPrivateKey("ecdsa")));
  assert.doesNotMatch(text, /CN\s?=/);
  assert.match(text, new RegExp(`DNS:${long.replace(/\./g, "\\.")}`));
});

Deno.test("createCsr(): refuses no names and a key that is not PKCS#8", async () => {
  const keyPem = await createPrivateKey("ecdsa");
  await assert.rejects(createCsr([], keyPem), /no names/);
  await assert.rejects(
    createCsr(["a.example"], "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
    /PKCS#8/,
  );
});
