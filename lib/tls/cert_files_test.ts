import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCertDir } from "./cert_files.ts";
import { CertStore } from "./cert_store.ts";
import { type IssuedCertificate, LocalCa } from "./local_ca.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_cert_files_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writePair(
  certsDir: string,
  name: string,
  files: { fullchain?: string; privkey?: string },
): Promise<string> {
  const dir = join(certsDir, name);
  await Deno.mkdir(dir, { recursive: true });
  if (files.fullchain !== undefined) await Deno.writeTextFile(join(dir, "fullchain.pem"), files.fullchain);
  if (files.privkey !== undefined) {
    await Deno.writeTextFile(join(dir, "privkey.pem"), files.privkey, { mode: 0o600 });
  }
  return dir;
}

function pair(cert: IssuedCertificate): { fullchain: string; privkey: string } {
  return { fullchain: cert.certPem, privkey: cert.keyPem };
}

Deno.test("loadCertDir() treats a missing directory as nothing to load", async () => {
  await withTempDir(async (tmp) => {
    const store = new CertStore();
    assert.deepEqual(await loadCertDir(join(tmp, "absent"), store), { loaded: [], errors: [] });
    assert.deepEqual(store.names(), []);
  });
});

Deno.test("loadCertDir() indexes a good pair by the certificate's own SANs, not the directory name", async () => {
  await withTempDir(async (tmp) => {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    const certs = join(tmp, "certs");
    const issued = await ca.issue(["*.Example.com", "example.com"]);
    const dir = await writePair(certs, "wildcard_.example.com", pair(issued));
    await Deno.writeTextFile(join(certs, "README"), "certbot leaves this here");
    const store = new CertStore();
    const result = await loadCertDir(certs, store);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.loaded, [{
      dir,
      names: ["*.example.com", "example.com"],
      notAfter: issued.notAfter,
    }]);
    const hit = store.lookup("www.example.com");
    assert.equal(hit?.source, "file");
    assert.equal(hit?.certPem, issued.certPem);
    assert.equal(hit?.keyPem, issued.keyPem);
    assert.ok(store.covers("example.com"));
  });
});

Deno.test("loadCertDir() reports mismatched, expired and incomplete directories and loads the rest", async () => {
  await withTempDir(async (tmp) => {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    const certs = join(tmp, "certs");
    const good = await ca.issue(["good.test"]);
    const other = await ca.issue(["other.test"]);
    const old = await ca.issue(["old.test"], { now: new Date(Date.now() - 30 * 24 * 3600_000) });
    const mismatched = await writePair(certs, "a-mismatch", {
      fullchain: good.certPem,
      privkey: other.keyPem,
    });
    const expired = await writePair(certs, "b-expired", pair(old));
    const nokey = await writePair(certs, "c-nokey", { fullchain: other.certPem });
    const corrupt = await writePair(certs, "d-corrupt", { fullchain: "garbage\n", privkey: other.keyPem });
    const okDir = await writePair(certs, "e-good", pair(good));
    await writePair(certs, ".hidden", {});

    const store = new CertStore();
    const result = await loadCertDir(certs, store);

    assert.deepEqual(result.loaded.map((l) => l.dir), [okDir]);
    assert.deepEqual(store.names(), ["good.test"]);
    assert.equal(result.errors.length, 4, result.errors.join("\n"));
    const [mismatchError, expiredError, nokeyError, corruptError] = result.errors;
    assert.ok(mismatchError?.includes(`Private key "${join(mismatched, "privkey.pem")}" does not belong to`));
    assert.ok(mismatchError?.includes(`certificate "${join(mismatched, "fullchain.pem")}"`));
    assert.ok(expiredError?.includes(`"${join(expired, "fullchain.pem")}": it expired on`), expiredError);
    assert.match(expiredError ?? "", /certbot renew/);
    assert.ok(nokeyError?.includes(`"${join(nokey, "privkey.pem")}": the file is missing`), nokeyError);
    assert.ok(
      corruptError?.includes(`"${join(corrupt, "fullchain.pem")}": no certificate found`),
      corruptError,
    );
    for (const message of result.errors) {
      for (const key of [good.keyPem, other.keyPem]) {
        const body = key.split("\n")[1] ?? "";
        assert.ok(!message.includes(body), message);
      }
    }
  });
});

Deno.test("loadCertDir() judges expiry at the given time", async () => {
  await withTempDir(async (tmp) => {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    const certs = join(tmp, "certs");
    const issued = await ca.issue(["soon.test"], { lifetimeMs: 3600_000 });
    await writePair(certs, "soon.test", pair(issued));
    const result = await loadCertDir(certs, new CertStore(), { now: new Date(Date.now() + 2 * 3600_000) });
    assert.equal(result.loaded.length, 0);
    assert.match(result.errors[0] ?? "", /expired on/);
  });
});

Deno.test("loadCertDir() lets the later-expiring certificate win a name two directories claim", async () => {
  await withTempDir(async (tmp) => {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    const certs = join(tmp, "certs");
    const longer = await ca.issue(["shared.test"], { lifetimeMs: 9 * 24 * 3600_000 });
    const shorter = await ca.issue(["shared.test", "extra.test"], { lifetimeMs: 24 * 3600_000 });
    await writePair(certs, "a", pair(longer));
    await writePair(certs, "b", pair(shorter));
    const store = new CertStore();
    const result = await loadCertDir(certs, store);
    assert.equal(result.loaded.length, 2);
    assert.equal(store.lookup("shared.test")?.certPem, longer.certPem);
    assert.equal(store.lookup("extra.test")?.certPem, shorter.certPem);
  });
});

Deno.test("loadCertDir() reports a file given as the directory", async () => {
  await withTempDir(async (tmp) => {
    const file = join(tmp, "certs.pem");
    await Deno.writeTextFile(file, "");
    const result = await loadCertDir(file, new CertStore());
    assert.deepEqual(result.loaded, []);
    assert.match(result.errors[0] ?? "", /"[^"]*certs\.pem": it is a file/);
  });
});
