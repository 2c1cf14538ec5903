import assert from "node:assert/strict";
import type { Route } from "../config/types.ts";
import { isOneLabelUnder, planCertificates } from "./plan.ts";

function routes(...hosts: string[]): Route[] {
  return hosts.map((host) => ({
    kind: "redirect",
    host,
    accessLog: true,
    hsts: null,
    access: null,
    position: { file: "t.yaml", line: 1, col: 1 },
    target: new URL("https://example.org/"),
    status: 302,
    keepPath: false,
  }));
}

Deno.test("planCertificates() gives the seed config one wildcard certificate covering its three hosts", () => {
  const plans = planCertificates({
    wildcards: ["*.example.com"],
    routes: routes("api.example.com", "blog.example.com", "example.com"),
  });
  assert.deepEqual(plans, [{ names: ["*.example.com", "example.com"] }]);
});

Deno.test("planCertificates() gives hosts outside every wildcard a certificate each", () => {
  const plans = planCertificates({
    wildcards: ["*.example.com"],
    routes: routes("api.example.com", "a.b.example.com", "other.org"),
  });
  assert.deepEqual(plans, [
    { names: ["*.example.com", "example.com"] },
    { names: ["a.b.example.com"] },
    { names: ["other.org"] },
  ]);
});

Deno.test("planCertificates() issues nothing for a wildcards entry with no host under it", () => {
  assert.deepEqual(planCertificates({ wildcards: ["*.unused.com"], routes: routes("a.example.com") }), [
    { names: ["a.example.com"] },
  ]);
});

Deno.test("planCertificates() covers a wildcard route key with its wildcards entry", () => {
  assert.deepEqual(planCertificates({ wildcards: ["*.example.com"], routes: routes("*.example.com") }), [
    { names: ["*.example.com", "example.com"] },
  ]);
});

Deno.test("isOneLabelUnder() accepts exactly one label", () => {
  assert.equal(isOneLabelUnder("a.example.com", "example.com"), true);
  assert.equal(isOneLabelUnder("a.b.example.com", "example.com"), false);
  assert.equal(isOneLabelUnder("example.com", "example.com"), false);
  assert.equal(isOneLabelUnder("badexample.com", "example.com"), false);
});
