import assert from "node:assert/strict";
import { type CaaContext, judgeCaa, type RelevantSet } from "./caa.ts";

const ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/123";
const LE: CaaContext = { identities: ["letsencrypt.org"], challenge: "http-01", accountUrl: ACCOUNT };
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
    set("example.com", ["issue", "LetsEncrypt.org; validationmethods=http-01,dns-01"]),
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

Deno.test("judgeCaa() applies RFC 8657: validationmethods must list nexo's challenge", () => {
  const dnsOnly = set("example.com", ["issue", "letsencrypt.org; validationmethods=dns-01"]);
  const refused = judgeCaa("a.example.com", dnsOnly, LE);
  assert.equal(refused.status, "problem");
  assert.match(refused.message, /allows only dns-01, and nexo validates with http-01/);
  assert.equal(judgeCaa("a.example.com", dnsOnly, { ...LE, challenge: "dns-01" }).status, "ok");
  // Any one record that lets nexo through is enough.
  const either = set("example.com", ["issue", "letsencrypt.org; validationmethods=dns-01"], [
    "issue",
    "letsencrypt.org",
  ]);
  assert.equal(judgeCaa("a.example.com", either, LE).status, "ok");
});

Deno.test("judgeCaa() applies RFC 8657: accounturi must be nexo's account, known or to be registered", () => {
  const pinned = (uri: string) => set("example.com", ["issue", `letsencrypt.org; accounturi=${uri}`]);
  assert.equal(judgeCaa("a.example.com", pinned(ACCOUNT), LE).status, "ok");
  const other = judgeCaa("a.example.com", pinned("https://acme-v02.api.letsencrypt.org/acme/acct/9"), LE);
  assert.equal(other.status, "problem");
  assert.match(other.message, /only the account .*acct\/9 may order, not nexo's/);
  const fresh = judgeCaa("a.example.com", pinned(ACCOUNT), { ...LE, accountUrl: null });
  assert.equal(fresh.status, "problem");
  assert.match(fresh.message, /nexo will register a new one/);
  assert.equal(
    judgeCaa("a.example.com", pinned(ACCOUNT), { ...LE, accountUrl: undefined }).status,
    "warning",
  );
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
  const unknown = { ...LE, identities: null };
  const unsure = judgeCaa("a.example.com", set("example.com", ["issue", "letsencrypt.org"]), unknown);
  assert.equal(unsure.status, "warning");
  assert.match(unsure.message, /does not say which CAA name it checks/);
  assert.equal(judgeCaa("a.example.com", null, unknown).status, "ok");
});
