import assert from "node:assert/strict";
import { parseConfig } from "./parse.ts";
import { issuesOf } from "./test_helpers.ts";
import type { ProxyRoute } from "./types.ts";

const FILE = "/srv/nexo/config.yaml";
const route = (body: string) => `proxies:\n  "app.example.com":\n${body}`;
const proxyOf = (body: string) => parseConfig(route(body), FILE).routes[0] as ProxyRoute;
const messages = (body: string) => issuesOf(route(body), FILE).map((i) => `${i.line}:${i.col} ${i.message}`);

Deno.test("upstream: one URL keeps the plain proxy path; a list gets round robin, passive health and a retry", () => {
  const one = proxyOf("    upstream: http://127.0.0.1:3000\n");
  assert.deepEqual([one.upstreams.map((u) => u.href), one.balancing], [["http://127.0.0.1:3000/"], null]);
  const two = proxyOf('    upstream: [http://10.0.0.5:3000, "http://10.0.0.6:3000/base"]\n');
  assert.deepEqual(two.upstreams.map((u) => u.href), ["http://10.0.0.5:3000/", "http://10.0.0.6:3000/base"]);
  assert.deepEqual(two.balancing, {
    lb: "round_robin",
    healthCheck: null,
    passiveHealth: { maxFails: 3, failWindowMs: 30_000 },
    retry: { tries: 2, on: ["connect_error"] },
  });
  // One upstream with a setting of its own is balanced too (a health check, retries on a flaky app).
  assert.deepEqual(proxyOf("    upstream: http://a\n    retry: { tries: 3 }\n").balancing?.retry, {
    tries: 3,
    on: ["connect_error"],
  });
});

Deno.test("lb, health_check, passive_health and retry are read with their defaults", () => {
  const balanced = proxyOf(
    "    upstream:\n      - http://10.0.0.5:3000\n      - http://10.0.0.6:3000\n    lb: LEAST_CONN\n" +
      "    health_check: { path: /healthz, interval: 5s, timeout: 1s, status: 2xx, healthy_after: 1 }\n" +
      "    passive_health: { max_fails: 5, fail_window: 1m }\n" +
      "    retry: { tries: 3, on: [connect_error, timeout, 502, 503] }\n",
  );
  assert.deepEqual(balanced.balancing, {
    lb: "least_conn",
    healthCheck: {
      path: "/healthz",
      intervalMs: 5_000,
      timeoutMs: 1_000,
      status: { min: 200, max: 299 },
      healthyAfter: 1,
      unhealthyAfter: 3,
    },
    passiveHealth: { maxFails: 5, failWindowMs: 60_000 },
    retry: { tries: 3, on: ["connect_error", "timeout", 502, 503] },
  });
  const off = proxyOf("    upstream: [http://a, http://b]\n    passive_health: false\n    retry: false\n");
  assert.deepEqual([off.balancing?.passiveHealth, off.balancing?.retry], [null, { tries: 1, on: [] }]);
  const status = (value: string) =>
    proxyOf(`    upstream: http://a\n    health_check: { path: /, status: ${value} }\n`).balancing
      ?.healthCheck?.status;
  assert.equal(
    proxyOf("    upstream: http://a\n    health_check: { path: /, interval: 1s }\n").balancing?.healthCheck
      ?.timeoutMs,
    1_000,
    "a short interval alone shortens the default timeout with it",
  );
  assert.deepEqual(status("204"), { min: 204, max: 204 });
  assert.deepEqual(status("200-399"), { min: 200, max: 399 });
  assert.deepEqual(
    proxyOf("    upstream: http://a\n    health_check: { path: / }\n").balancing?.healthCheck?.status,
    {
      min: 200,
      max: 399,
    },
  );
});

Deno.test("bad upstream lists and balancing settings are reported at their line, with the fix", () => {
  assert.deepEqual(messages("    upstream: []\n"), [
    `3:15 proxies."app.example.com".upstream is an empty list; write one upstream URL, like "http://127.0.0.1:8080", or several`,
  ]);
  assert.deepEqual(messages("    upstream: [http://a, ftp://b, http://a]\n"), [
    `3:26 proxies."app.example.com".upstream[1] must be an http(s) URL, got "ftp://b" (scheme "ftp" is not supported; use http:// or https://)`,
    `3:35 proxies."app.example.com".upstream[2] repeats http://a/; list each upstream once`,
  ]);
  assert.deepEqual(messages("    upstream: [http://a, http://a/]\n"), [
    `3:26 proxies."app.example.com".upstream[1] repeats http://a/; list each upstream once`,
  ]);
  assert.deepEqual(messages("    upstream: [http://a, http://b]\n    lb: random\n"), [
    `4:9 proxies."app.example.com".lb must be one of round_robin, least_conn, ip_hash, cookie, first, got "random"`,
  ]);
  assert.deepEqual(messages("    upstream: http://a\n    health_check: { interval: 5s }\n"), [
    `4:19 proxies."app.example.com".health_check needs the path to ask, like { path: /healthz, interval: 10s }`,
  ]);
  assert.deepEqual(messages("    upstream: http://a\n    health_check: { path: healthz }\n"), [
    `4:27 proxies."app.example.com".health_check.path must be a path starting with "/", like /healthz, got "healthz"`,
  ]);
  assert.deepEqual(
    messages("    upstream: http://a\n    health_check: { path: /, interval: 2s, timeout: 5s }\n"),
    [
      `4:53 proxies."app.example.com".health_check.timeout must not be longer than its interval (a check would overlap the next)`,
    ],
  );
  assert.deepEqual(messages("    upstream: http://a\n    health_check: { path: /, interval: 100ms }\n"), [
    `4:40 proxies."app.example.com".health_check.interval must be at least 1s`,
  ]);
  assert.deepEqual(messages("    upstream: http://a\n    health_check: { path: /, status: 2xy }\n"), [
    `4:38 proxies."app.example.com".health_check.status must be a status like 200, a class like 2xx, or a range like 200-399, got "2xy"`,
  ]);
  assert.deepEqual(messages("    upstream: http://a\n    retry: { tries: 0 }\n"), [
    `4:21 proxies."app.example.com".retry.tries must be a whole number from 1 to 10, got "0"`,
  ]);
  assert.deepEqual(messages("    upstream: http://a\n    retry: { on: [connect_error, 404] }\n"), [
    `4:34 proxies."app.example.com".retry.on[1] must be connect_error, timeout or a 5xx status like 503, got "404"`,
  ]);
  assert.deepEqual(messages("    redirect: example.org\n    lb: first\n"), [
    `4:5 proxies."app.example.com".lb only applies to proxy routes (with upstream), and this route is a redirect; remove it`,
  ]);
});
