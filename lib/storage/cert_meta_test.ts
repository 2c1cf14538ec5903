import assert from "node:assert/strict";
import { certDirName, type CertMeta, decodeMeta, encodeMeta, normalizeCertNames } from "./cert_meta.ts";

const META: CertMeta = {
  names: ["*.example.com", "example.com"],
  issuer: "acme",
  directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
  notBefore: new Date("2025-01-01T00:00:00Z"),
  notAfter: new Date("2025-04-01T00:00:00Z"),
  issuedAt: new Date("2025-01-01T00:05:00Z"),
  lastError: null,
  failures: 0,
  lastFailureAt: null,
  nextAttemptAt: null,
};

Deno.test("certDirName() names the directory after the first name, writing a leading * as wildcard_", () => {
  assert.equal(certDirName(["*.Example.com", "example.com"]), "wildcard_.example.com");
  assert.equal(certDirName(["example.com", "*.example.com"]), "example.com");
  assert.equal(certDirName(["xn--bcher-kva.example"]), "xn--bcher-kva.example");
});

Deno.test("normalizeCertNames() rejects names that could escape cert_dir or are not DNS names", () => {
  for (const bad of ["../etc", "a/b", "a..b", ".example.com", "example.com.", "*.*.example.com", "a b", ""]) {
    assert.throws(() => normalizeCertNames([bad]), /is not a DNS name/, bad);
  }
  assert.throws(() => normalizeCertNames([]), /for no names/);
});

Deno.test("encodeMeta() writes snake_case keys and ISO times that decodeMeta() reads back", () => {
  const text = encodeMeta(META);
  assert.match(text, /^\{\n {2}"names": \[/);
  assert.match(text, /"not_after": "2025-04-01T00:00:00.000Z"/);
  assert.ok(text.endsWith("}\n"));
  assert.deepEqual(decodeMeta(text, "meta.json"), META);
});

Deno.test("encodeMeta() cuts a runaway error message to 1000 characters", () => {
  const decoded = decodeMeta(encodeMeta({ ...META, lastError: "x".repeat(5000) }), "meta.json");
  assert.equal(decoded.lastError?.length, 1001);
});

Deno.test("decodeMeta() reads missing or malformed optional fields as null and 0", () => {
  const meta = decodeMeta('{"names":["a.example"],"failures":-3,"not_after":"soon","issuer":"other"}', "m");
  assert.deepEqual(meta, {
    ...META,
    names: ["a.example"],
    issuer: null,
    directoryUrl: null,
    notBefore: null,
    notAfter: null,
    issuedAt: null,
  });
});

Deno.test("decodeMeta() names the file, not its contents, when it is unusable", () => {
  assert.throws(
    () => decodeMeta("{ secret", "/certs/a/meta.json"),
    {
      message:
        'Cannot read "/certs/a/meta.json": it is not valid JSON (nexo rewrites it on the next renewal)',
    },
  );
  assert.throws(() => decodeMeta('{"names":[]}', "/certs/a/meta.json"), /"names" must be a non-empty list/);
});
