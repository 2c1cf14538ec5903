import assert from "node:assert/strict";
import { join } from "node:path";
import { LocalCa } from "./local_ca.ts";
import { checkKeyMatchesCertificate, parseCertificate } from "./pem.ts";

async function openssl(...args: string[]): Promise<{ ok: boolean; output: string }> {
  const out = await new Deno.Command("/usr/bin/openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  return { ok: out.success, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_local_ca_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("LocalCa.loadOrCreate() creates root.crt and a 0600 root.key in a 0700 directory", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "ca");
    const ca = await LocalCa.loadOrCreate(dir);
    assert.equal(ca.rootCertPath, join(dir, "root.crt"));
    assert.equal(await Deno.readTextFile(ca.rootCertPath), ca.rootCertPem);
    assert.equal((await Deno.stat(join(dir, "root.key"))).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "root.crt",
      "root.key",
    ]);
    const info = parseCertificate(ca.rootCertPem);
    assert.match(info.issuer, /^CN=nexo Local CA \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const text = await openssl("x509", "-in", ca.rootCertPath, "-noout", "-text");
    assert.match(text.output, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text.output, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(text.output, /Subject Key Identifier/);
    const years = (info.notAfter.getTime() - Date.now()) / (365.25 * 24 * 3600 * 1000);
    assert.ok(years > 9.9 && years < 10.1, `root lifetime ${years} years`);
  });
});

Deno.test("LocalCa.loadOrCreate() reuses the existing root on the next start", async () => {
  await withTempDir(async (dir) => {
    const first = await LocalCa.loadOrCreate(dir);
    const keyBefore = await Deno.readTextFile(join(dir, "root.key"));
    const second = await LocalCa.loadOrCreate(dir);
    assert.equal(second.rootCertPem, first.rootCertPem);
    assert.equal(await Deno.readTextFile(join(dir, "root.key")), keyBefore);
    const leaf = await second.issue(["reused.test"]);
    await Deno.writeTextFile(join(dir, "leaf.pem"), leaf.certPem);
    const verify = await openssl("verify", "-CAfile", first.rootCertPath, join(dir, "leaf.pem"));
    assert.ok(verify.ok, verify.output);
  });
});

Deno.test("LocalCa.issue() mints a leaf that openssl verifies against root.crt for TLS server use", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["App.Test", "*.app.test"]);
    const leafPath = join(dir, "leaf.pem");
    await Deno.writeTextFile(leafPath, leaf.certPem);
    const verify = await openssl("verify", "-purpose", "sslserver", "-CAfile", ca.rootCertPath, leafPath);
    assert.ok(verify.ok, verify.output);
    const text = await openssl("x509", "-in", leafPath, "-noout", "-text");
    assert.match(text.output, /Subject: CN ?= ?app\.test/);
    assert.match(text.output, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text.output, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(text.output, /Extended Key Usage: \s*TLS Web Server Authentication/);
    assert.match(text.output, /Authority Key Identifier/);
    assert.match(text.output, /Subject Key Identifier/);
    assert.match(text.output, /Signature Algorithm: ecdsa-with-SHA256/);
    await checkKeyMatchesCertificate(leaf.certPem, leaf.keyPem);
    assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  });
});

Deno.test("LocalCa.issue() certificate chain ends with the root and covers wildcard SANs", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["*.Example.com", "example.com", "*.example.com"]);
    assert.ok(leaf.certPem.endsWith(ca.rootCertPem));
    assert.equal(leaf.certPem.match(/BEGIN CERTIFICATE/g)?.length, 2);
    const info = parseCertificate(leaf.certPem);
    assert.deepEqual(info.names, ["*.example.com", "example.com"]);
    assert.equal(info.issuer, parseCertificate(ca.rootCertPem).issuer);
  });
});

Deno.test("LocalCa.issue() backdates notBefore by 5 minutes and sets notAfter to now + lifetime", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const now = new Date("2030-06-01T12:00:00.000Z");
    const week = await ca.issue(["a.test"], { now });
    const weekInfo = parseCertificate(week.certPem);
    assert.equal(weekInfo.notBefore.toISOString(), "2030-06-01T11:55:00.000Z");
    assert.equal(weekInfo.notAfter.toISOString(), "2030-06-08T12:00:00.000Z");
    assert.equal(week.notAfter.toISOString(), "2030-06-08T12:00:00.000Z");
    const hour = await ca.issue(["a.test"], { now, lifetimeMs: 3600_000 });
    assert.equal(hour.notAfter.toISOString(), "2030-06-01T13:00:00.000Z");
  });
});

Deno.test("LocalCa.issue() never outlives the root and refuses once the root has expired", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const rootNotAfter = parseCertificate(ca.rootCertPem).notAfter;
    const nearEnd = new Date(rootNotAfter.getTime() - 24 * 3600_000);
    const leaf = await ca.issue(["late.test"], { now: nearEnd });
    assert.equal(leaf.notAfter.getTime(), rootNotAfter.getTime());
    await assert.rejects(
      ca.issue(["late.test"], { now: new Date(rootNotAfter.getTime() + 1000) }),
      /local CA root .*root\.crt" expired on .*delete it and root\.key/,
    );
  });
});

Deno.test("LocalCa.issue() rejects no names, invalid names and a non-positive lifetime", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    await assert.rejects(ca.issue([]), /at least one DNS name/);
    await assert.rejects(ca.issue(["bad name.test"]), /"bad name\.test": it is not a DNS name/);
    await assert.rejects(ca.issue(["a.*.test"]), /not a DNS name/);
    await assert.rejects(ca.issue(["trailing.test."]), /not a DNS name/);
    await assert.rejects(ca.issue(["bücher.test"]), /punycode/);
    await assert.rejects(ca.issue(["ok.test"], { lifetimeMs: 0 }), /lifetimeMs must be a positive/);
  });
});

Deno.test("LocalCa.issue() leaves the subject empty for a first name too long for a CN", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const name = `${"a".repeat(60)}.example.com`;
    const leaf = await ca.issue([name]);
    const leafPath = join(dir, "long.pem");
    await Deno.writeTextFile(leafPath, leaf.certPem);
    const verify = await openssl("verify", "-CAfile", ca.rootCertPath, leafPath);
    assert.ok(verify.ok, verify.output);
    const text = await openssl("x509", "-in", leafPath, "-noout", "-text");
    assert.match(text.output, /Subject Alternative Name: critical/);
    assert.deepEqual(parseCertificate(leaf.certPem).names, [name]);
  });
});

Deno.test("LocalCa leaf is accepted by a real TLS handshake that trusts only the root", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["localhost"]);
    using listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem });
    const serve = (async () => {
      using conn = await listener.accept();
      const buf = new Uint8Array(4);
      const n = await conn.read(buf);
      await conn.write(buf.subarray(0, n ?? 0));
    })();
    using client = await Deno.connectTls({
      hostname: "localhost",
      port: listener.addr.port,
      caCerts: [ca.rootCertPem],
    });
    await client.write(new TextEncoder().encode("ping"));
    const reply = new Uint8Array(4);
    let got = 0;
    while (got < 4) {
      const n = await client.read(reply.subarray(got));
      if (n === null) break;
      got += n;
    }
    assert.equal(new TextDecoder().decode(reply), "ping");
    await serve;
  });
});

Deno.test("LocalCa leaf is rejected by a TLS client that trusts a different root", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(join(dir, "one"));
    const other = await LocalCa.loadOrCreate(join(dir, "two"));
    const leaf = await ca.issue(["localhost"]);
    using listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem });
    const serve = (async () => {
      using conn = await listener.accept();
      await conn.handshake().catch(() => {});
    })();
    using client = await Deno.connectTls({
      hostname: "localhost",
      port: listener.addr.port,
      caCerts: [other.rootCertPem],
    });
    await assert.rejects(client.handshake(), /invalid peer certificate/);
    await serve;
  });
});

Deno.test("LocalCa.loadOrCreate() names a corrupt root.key without echoing its contents or replacing it", async () => {
  await withTempDir(async (dir) => {
    await LocalCa.loadOrCreate(dir);
    const keyPath = join(dir, "root.key");
    const corrupt = "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n";
    await Deno.writeTextFile(keyPath, corrupt);
    const err = await LocalCa.loadOrCreate(dir).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.ok(err.message.includes(`"${keyPath}"`), err.message);
    assert.match(err.message, /not a PKCS#8 PEM ECDSA P-256 private key/);
    for (const text of [err.message, String(err.cause)]) assert.ok(!text.includes("U0VDUkVU"), text);
    assert.equal(await Deno.readTextFile(keyPath), corrupt);
  });
});

Deno.test("LocalCa.loadOrCreate() names a corrupt root.crt", async () => {
  await withTempDir(async (dir) => {
    await LocalCa.loadOrCreate(dir);
    await Deno.writeTextFile(join(dir, "root.crt"), "not a certificate\n");
    await assert.rejects(LocalCa.loadOrCreate(dir), (err: Error) => {
      assert.ok(err.message.includes(`root certificate "${join(dir, "root.crt")}"`), err.message);
      return true;
    });
  });
});

Deno.test("LocalCa.loadOrCreate() refuses a lone root.crt instead of creating a new root", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    await Deno.remove(join(dir, "root.key"));
    await assert.rejects(LocalCa.loadOrCreate(dir), /root\.key" is missing/);
    assert.equal(await Deno.readTextFile(join(dir, "root.crt")), ca.rootCertPem);
    await assert.rejects(Deno.stat(join(dir, "root.key")), Deno.errors.NotFound);
  });
});

Deno.test("LocalCa.loadOrCreate() refuses a root.key that belongs to another root", async () => {
  await withTempDir(async (dir) => {
    await LocalCa.loadOrCreate(join(dir, "a"));
    await LocalCa.loadOrCreate(join(dir, "b"));
    await Deno.copyFile(join(dir, "b", "root.key"), join(dir, "a", "root.key"));
    await assert.rejects(LocalCa.loadOrCreate(join(dir, "a")), /the key does not belong to the certificate/);
  });
});
