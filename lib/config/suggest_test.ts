import assert from "node:assert/strict";
import { didYouMean, editDistance, suggestKey } from "./suggest.ts";

const TOP = ["base_dir", "cert_dir", "email", "listen", "http_listen", "proxies", "limits"];

Deno.test("editDistance() counts insertions, deletions and substitutions", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("upstrem", "upstream"), 1);
  assert.equal(editDistance("same", "same"), 0);
});

Deno.test("suggestKey() finds the known key a typo was meant to be", () => {
  assert.equal(suggestKey("upstrem", ["upstream", "redirect", "timeout"]), "upstream");
  assert.equal(suggestKey("cert_dr", TOP), "cert_dir");
  assert.equal(suggestKey("proxy", TOP), null);
  assert.equal(suggestKey("proxes", TOP), "proxies");
});

Deno.test("suggestKey() ignores case and treats - as _", () => {
  assert.equal(suggestKey("Cert-Dir", TOP), "cert_dir");
  assert.equal(suggestKey("httpListen", TOP), "http_listen");
});

Deno.test("suggestKey() suggests nothing for words that are not near any key", () => {
  assert.equal(suggestKey("ttl", TOP), null);
  assert.equal(suggestKey("database", TOP), null);
  assert.equal(suggestKey("x", ["y"]), "y"); // one edit is always a plausible typo
});

Deno.test("suggestKey() prefers the closest key, then the earlier one", () => {
  assert.equal(suggestKey("limit", ["listen", "limits"]), "limits");
  assert.equal(suggestKey("ab", ["ac", "ad"]), "ac");
});

Deno.test("didYouMean() formats a suggestion as a message suffix, or nothing", () => {
  assert.equal(didYouMean("upstrem", ["upstream"]), ' (did you mean "upstream"?)');
  assert.equal(didYouMean("ttl", ["upstream"]), "");
});
