import assert from "node:assert/strict";
import { judgeCaa, type RelevantSet } from "./caa.ts";

const LE = ["letsencrypt.org"];
const set = (owner: string, ...records: Array<[string, string, boolean?]>): RelevantSet => ({
  owner,
  records: records.map(([tag, value, critical]) => ({ tag, value, critical: critical ?? false })),
});

Deno.test("judgeCaa() allows any CA without records, or with only iodef", () => {
  assert.equal(judgeCaa("a.example.com", null, LE).status, "ok");
  assert.equal(
    judgeCaa("a.example.com", set("example.com", ["iodef", "mailto:x@example.com"]), LE).status,
    "ok",
  );
});

Deno.test("judgeCaa() reads the issuer domain before ';' and ignores case (RFC 8659 §4.2)", () => {
  const allowed = judgeCaa(
    "a.example.com",
    set("example.com", ["issue", "LetsEncrypt.org; validationmethods=dns-01"]),
    LE,
  );
  assert.equal(allowed.status, "ok");
  const other = judgeCaa(
    "a.example.com",
    set("example.com", ["issue", "sectigo.com"], ["issue", "pki.goog"]),
    LE,
  );
  assert.equal(other.status, "problem");
  assert.match(other.message, /lets only sectigo\.com, pki\.goog issue/);
  assert.equal(other.fix, `add example.com. CAA 0 issue "letsencrypt.org"`);
});

Deno.test("judgeCaa() lets issuewild govern wildcards, and issue where there is no issuewild (§4.3)", () => {
  const records = set("example.com", ["issue", "letsencrypt.org"], ["issuewild", "sectigo.com"]);
  assert.equal(judgeCaa("example.com", records, LE).status, "ok");
  assert.equal(judgeCaa("*.example.com", records, LE).status, "problem");
  assert.equal(judgeCaa("*.example.com", set("example.com", ["issue", "letsencrypt.org"]), LE).status, "ok");
  const none = judgeCaa(
    "*.example.com",
    set("example.com", ["issue", "letsencrypt.org"], ["issuewild", ";"]),
    LE,
  );
  assert.match(none.message, /lets only no CA issue wildcards/);
  // issuewild never restricts a name that is not a wildcard.
  assert.equal(judgeCaa("example.com", set("example.com", ["issuewild", ";"]), LE).status, "ok");
});

Deno.test("judgeCaa() refuses on a critical tag no CA knows, and not on a known critical one", () => {
  const unknown = judgeCaa("a.example.com", set("example.com", ["tbs", "x", true]), LE);
  assert.equal(unknown.status, "problem");
  assert.match(unknown.message, /critical property "tbs"/);
  assert.equal(
    judgeCaa("a.example.com", set("example.com", ["issue", "letsencrypt.org", true]), LE).status,
    "ok",
  );
  assert.equal(judgeCaa("a.example.com", set("example.com", ["tbs", "x", false]), LE).status, "ok");
});

Deno.test("judgeCaa() warns, not fails, when the CA's CAA name is unknown", () => {
  const unsure = judgeCaa("a.example.com", set("example.com", ["issue", "letsencrypt.org"]), null);
  assert.equal(unsure.status, "warning");
  assert.match(unsure.message, /does not say which CAA name it checks/);
  assert.equal(judgeCaa("a.example.com", null, null).status, "ok");
});
