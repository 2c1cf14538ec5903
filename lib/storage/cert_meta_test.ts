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
  renewalInfo: null,
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

Deno.test("encodeMeta() writes renewal_info only when there is one, and decodeMeta() reads it back", () => {
  assert.ok(!encodeMeta(META).includes("renewal_info"), "files without a window keep their shape");
  const renewalInfo = {
    certId: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    windowStart: new Date("2025-03-01T00:00:00Z"),
    windowEnd: new Date("2025-03-03T00:00:00Z"),
    renewAt: new Date("2025-03-02T11:12:13Z"),
    explanationUrl: "https://acme.example/docs/ari",
  };
  const text = encodeMeta({ ...META, renewalInfo });
  assert.match(text, /"renewal_info": \{\n {4}"cert_id": "aYhba4dGQEHhs3uEe6CuLN4ByNQ\.AIdlQyE"/);
  assert.match(text, /"renew_at": "2025-03-02T11:12:13.000Z"/);
  assert.deepEqual(decodeMeta(text, "meta.json"), { ...META, renewalInfo });
});

Deno.test("decodeMeta() reads an incomplete or inverted renewal_info as none", () => {
  const base = { names: ["a.example"] };
  const good = {
    cert_id: "x.y",
    window_start: "2025-03-01T00:00:00Z",
    window_end: "2025-03-03T00:00:00Z",
    renew_at: "2025-03-02T00:00:00Z",
  };
  const read = (info: unknown) =>
    decodeMeta(JSON.stringify({ ...base, renewal_info: info }), "m").renewalInfo;
  assert.equal(read(good)?.explanationUrl, null);
  for (const key of Object.keys(good)) {
    assert.equal(read({ ...good, [key]: undefined }), null, `without ${key}`);
  }
  assert.equal(read({ ...good, window_end: "2025-03-01T00:00:00Z" }), null, "end equal to start");
  assert.equal(read({ ...good, renew_at: "soon" }), null);
  assert.equal(read("2025-03-01"), null);
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
