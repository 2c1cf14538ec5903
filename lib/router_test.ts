import assert from "node:assert/strict";
import type { Route } from "./config/types.ts";
import { buildRouteTable, matchRoute, normalizeHost } from "./router.ts";

function redirect(host: string): Route {
  return {
    kind: "redirect",
    host,
    accessLog: true,
    hsts: null,
    access: null,
    position: { file: "test.yaml", line: 1, col: 1 },
    target: new URL("https://example.org/"),
    status: 302,
    keepPath: false,
  };
}

const table = buildRouteTable([
  redirect("api.example.com"),
  redirect("*.example.com"),
  redirect("example.com"),
  redirect("localhost"),
]);

Deno.test("matchRoute() prefers an exact host over a wildcard", () => {
  assert.equal(matchRoute(table, "api.example.com")?.host, "api.example.com");
  assert.equal(matchRoute(table, "blog.example.com")?.host, "*.example.com");
});

Deno.test("matchRoute() matches a wildcard one label deep only", () => {
  assert.equal(matchRoute(table, "a.b.example.com"), undefined);
  assert.equal(matchRoute(table, "example.com")?.host, "example.com");
  assert.equal(matchRoute(table, "otherexample.com"), undefined);
});

Deno.test("matchRoute() ignores case, port and a trailing dot", () => {
  assert.equal(matchRoute(table, "API.Example.COM:8443")?.host, "api.example.com");
  assert.equal(matchRoute(table, "blog.example.com.")?.host, "*.example.com");
  assert.equal(matchRoute(table, "localhost:443")?.host, "localhost");
});

Deno.test("matchRoute() returns undefined for empty, IP and garbage hosts without throwing", () => {
  for (
    const host of ["", ":", ".", "[::1]:443", "127.0.0.1", "\u0000", "a".repeat(10_000), "*.example.com:1"]
  ) {
    const route = matchRoute(table, host);
    assert.ok(route === undefined || route.host === "*.example.com", host);
  }
  assert.equal(matchRoute(table, "*.example.com"), undefined);
});

Deno.test("normalizeHost() keeps IPv6 literals bracketed and strips their port", () => {
  assert.equal(normalizeHost("[::1]:8443"), "[::1]");
  assert.equal(normalizeHost("[::1]"), "[::1]");
  assert.equal(normalizeHost("Example.com"), "example.com");
});

Deno.test("normalizeHost() rejects hosts that are not plain names or IP literals", () => {
  for (
    const bad of [
      "evil%2ecom/.example.com",
      "a b.example.com",
      "a/b",
      "x.example.com:99999",
      "x:y",
      "[::1",
      "[zz]",
    ]
  ) {
    assert.equal(normalizeHost(bad), "", bad);
  }
  assert.equal(matchRoute(table, "evil%2ecom/.example.com"), undefined);
  assert.equal(normalizeHost("App.Example.com:8443"), "app.example.com");
});

Deno.test("normalizeHost() rejects empty labels, so that normalizing twice changes nothing", () => {
  // Found by router_fuzz_test.ts: "example.com.." lost one dot per normalization, and the server (which
  // normalizes, then matches, which normalizes again) routed it to example.com while a lookup did not.
  for (
    const bad of ["localhost..", "example.com..", "a..example.com", ".example.com", "x.example.com..:443"]
  ) {
    assert.equal(normalizeHost(bad), "", bad);
    assert.equal(matchRoute(table, bad), undefined, bad);
  }
  assert.equal(normalizeHost("example.com.:443"), "example.com");
});
