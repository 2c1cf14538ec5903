import assert from "node:assert/strict";
import {
  coveringWildcard,
  isIpAddress,
  isWildcard,
  normalizeHostname,
  normalizeRouteHost,
  normalizeWildcard,
} from "./hostname.ts";

Deno.test("normalizeHostname() lowercases valid names, single-label ones included", () => {
  assert.equal(normalizeHostname("API.Example.com"), "api.example.com");
  assert.equal(normalizeHostname("localhost"), "localhost");
  assert.equal(normalizeHostname("a-b.c1.example"), "a-b.c1.example");
  assert.equal(normalizeHostname("xn--bcher-kva.example"), "xn--bcher-kva.example");
});

Deno.test("normalizeHostname() rejects empty labels", () => {
  assert.throws(() => normalizeHostname("a..com"), {
    name: "RangeError",
    message: /"a\.\.com": it has an empty label/,
  });
  assert.throws(() => normalizeHostname(".a.com"), { message: /empty label/ });
  assert.throws(() => normalizeHostname(""), { message: /empty hostname/ });
});

Deno.test("normalizeHostname() rejects a trailing dot, showing the name without it", () => {
  assert.throws(() => normalizeHostname("example.com."), {
    message: /remove the trailing dot: "example\.com"/,
  });
});

Deno.test("normalizeHostname() enforces the 63-character label and 253-character name limits", () => {
  assert.equal(normalizeHostname(`${"a".repeat(63)}.com`), `${"a".repeat(63)}.com`);
  assert.throws(() => normalizeHostname(`${"a".repeat(64)}.com`), { message: /longer than 63 characters/ });
  const long = Array.from({ length: 5 }, () => "a".repeat(50)).join("."); // 254 characters
  assert.throws(() => normalizeHostname(long), { message: /longer than 253 characters/ });
});

Deno.test("normalizeHostname() allows only letters, digits and inner hyphens", () => {
  assert.throws(() => normalizeHostname("foo_bar.com"), { message: /"_" is not allowed/ });
  assert.throws(() => normalizeHostname("-foo.com"), { message: /starts or ends with "-"/ });
  assert.throws(() => normalizeHostname("foo-.com"), { message: /starts or ends with "-"/ });
  assert.throws(() => normalizeHostname("foo bar.com"), { message: /" " is not allowed/ });
});

Deno.test("normalizeHostname() rejects IP addresses and all-digit last labels", () => {
  assert.throws(() => normalizeHostname("127.0.0.1"), { message: /IP addresses cannot be used here/ });
  assert.throws(() => normalizeHostname("::1"), { message: /IP addresses cannot be used here/ });
  assert.throws(() => normalizeHostname("[::1]"), { message: /IP addresses cannot be used here/ });
  assert.throws(() => normalizeHostname("example.123"), { message: /last label cannot be all digits/ });
});

Deno.test("normalizeHostname() suggests the punycode form of a unicode name", () => {
  assert.throws(() => normalizeHostname("bücher.example"), {
    message: /use its punycode form "xn--bcher-kva\.example"/,
  });
});

Deno.test("normalizeHostname() says to drop a scheme, path or port around the name", () => {
  assert.throws(() => normalizeHostname("https://Example.com/x"), {
    message: /without a scheme or path: "example\.com"/,
  });
  assert.throws(() => normalizeHostname("example.com/api"), { message: /without a scheme or path/ });
  assert.throws(() => normalizeHostname("example.com:8443"), { message: /remove the port: "example\.com"/ });
});

Deno.test("normalizeHostname() rejects a * anywhere", () => {
  assert.throws(() => normalizeHostname("*.example.com"), { message: /whole first label of a wildcard/ });
});

Deno.test("normalizeWildcard() accepts *. and a name of two or more labels, lowercased", () => {
  assert.equal(normalizeWildcard("*.example.com"), "*.example.com");
  assert.equal(normalizeWildcard("*.Dev.Example.COM"), "*.dev.example.com");
});

Deno.test("normalizeWildcard() rejects a wildcard over a top-level domain", () => {
  assert.throws(() => normalizeWildcard("*.com"), {
    message: /invalid wildcard "\*\.com": it would cover a whole top-level domain/,
  });
  assert.throws(() => normalizeWildcard("*.localhost"), { message: /whole top-level domain/ });
});

Deno.test("normalizeWildcard() rejects * that is not the whole first label", () => {
  assert.throws(() => normalizeWildcard("a.*.com"), { message: /"\*" must be a whole label/ });
  assert.throws(() => normalizeWildcard("*foo.com"), { message: /"\*" must be a whole label/ });
  assert.throws(() => normalizeWildcard("*.*.example.com"), { message: /only the first label may be "\*"/ });
  assert.throws(() => normalizeWildcard("*"), { message: /a wildcard is "\*\."/ });
  assert.throws(() => normalizeWildcard("*."), { message: /write a domain after "\*\."/ });
});

Deno.test("normalizeWildcard() applies the host name rules after *.", () => {
  assert.throws(() => normalizeWildcard("*.foo_bar.com"), {
    message: /invalid wildcard .*"_" is not allowed/,
  });
  assert.throws(() => normalizeWildcard("*.example.com."), { message: /trailing dot/ });
});

Deno.test("normalizeRouteHost() takes exact names and wildcards", () => {
  assert.equal(normalizeRouteHost("API.example.com"), "api.example.com");
  assert.equal(normalizeRouteHost("*.Example.com"), "*.example.com");
  assert.throws(() => normalizeRouteHost("a.*.com"), { message: /invalid wildcard/ });
});

Deno.test("isWildcard() looks only at the leading *.", () => {
  assert.equal(isWildcard("*.example.com"), true);
  assert.equal(isWildcard("example.com"), false);
  assert.equal(isWildcard("*example.com"), false);
});

Deno.test("isIpAddress() recognizes IPv4 and IPv6, bracketed or not", () => {
  assert.equal(isIpAddress("10.0.0.1"), true);
  assert.equal(isIpAddress("256.0.0.1"), false);
  assert.equal(isIpAddress("2606:4700::1111"), true);
  assert.equal(isIpAddress("[::1]"), true);
  assert.equal(isIpAddress("example.com"), false);
  assert.equal(isIpAddress("a:b:c"), false);
});

Deno.test("coveringWildcard() names the one wildcard a host name can match, one whole label up", () => {
  assert.equal(coveringWildcard("a.example.com"), "*.example.com");
  assert.equal(coveringWildcard("a-b.c.example.com"), "*.c.example.com", "one label, not two");
  assert.equal(coveringWildcard("example.com"), "*.com");
  for (const name of ["localhost", "", ".example.com", "a.", "*.example.com", "*x.example.com"]) {
    assert.equal(coveringWildcard(name), null, JSON.stringify(name));
  }
});
