import assert from "node:assert/strict";
import { issuesOf as issuesOfFile } from "./test_helpers.ts";
import type { ConfigIssue } from "./errors.ts";
import { parseConfig } from "./parse.ts";
import type { ProxyRoute, RedirectRoute, Route } from "./types.ts";

const FILE = "/srv/nexo/config.yaml";

function routesOf(yaml: string): Route[] {
  return parseConfig(yaml, FILE).routes;
}

function proxyOf(yaml: string): ProxyRoute {
  const [route] = routesOf(yaml);
  assert.equal(route?.kind, "proxy");
  return route as ProxyRoute;
}

function redirectOf(yaml: string): RedirectRoute {
  const [route] = routesOf(yaml);
  assert.equal(route?.kind, "redirect");
  return route as RedirectRoute;
}

const issuesOf = (yaml: string): ConfigIssue[] => issuesOfFile(yaml, FILE);

function assertIssue(yaml: string, expected: { line: number; col: number; message: string | RegExp }): void {
  const issues = issuesOf(yaml);
  assert.equal(issues.length, 1, `expected one issue, got:\n${issues.map((i) => i.message).join("\n")}`);
  const [issue] = issues;
  assert.deepEqual([issue?.line, issue?.col], [expected.line, expected.col], issue?.message);
  if (typeof expected.message === "string") assert.equal(issue?.message, expected.message);
  else assert.match(issue?.message ?? "", expected.message);
}

/** A config with one route for "app.example.com" whose body is `body` (indented by the caller). */
function route(body: string): string {
  return `proxies:\n  "app.example.com":\n${body}`;
}

Deno.test("parseConfig() reads a proxy route with its defaults and the global limits", () => {
  const proxy = proxyOf(
    `limits:\n  max_body: 1MiB\n  response_timeout: 5s\n${route("    upstream: http://127.0.0.1:8080\n")}`,
  );
  assert.deepEqual(proxy, {
    kind: "proxy",
    host: "app.example.com",
    accessLog: true,
    hsts: "max-age=31536000",
    access: null,
    position: { file: FILE, line: 5, col: 3 },
    upstreams: [new URL("http://127.0.0.1:8080/")],
    balancing: null,
    upstreamTls: null,
    cache: true,
    limits: { maxBodyBytes: 1024 * 1024, responseTimeoutMs: 5_000, bodyTimeoutMs: 300_000 },
  });
});

Deno.test("parseConfig() lets a proxy route override max_body and the response and body timeouts", () => {
  const proxy = proxyOf(route(
    "    upstream: https://backend.internal:8443/api/v1\n    timeout: 2m\n    body_timeout: 30s\n    max_body: 100MB\n" +
      "    cache: false\n    access_log: false\n",
  ));
  assert.equal(proxy.upstreams[0]!.href, "https://backend.internal:8443/api/v1");
  assert.equal(proxy.upstreams[0]!.pathname, "/api/v1");
  assert.deepEqual(proxy.limits, {
    maxBodyBytes: 100_000_000,
    responseTimeoutMs: 120_000,
    bodyTimeoutMs: 30_000,
  });
  assert.equal(proxy.cache, false);
  assert.equal(proxy.accessLog, false);
});

Deno.test("parseConfig() adds https:// to a redirect target without a scheme", () => {
  const redirect = redirectOf(route("    redirect: github.com/yourusername\n"));
  assert.equal(redirect.target.href, "https://github.com/yourusername");
  assert.equal(redirect.status, 302);
  assert.equal(redirect.keepPath, false);
  assert.equal(redirect.accessLog, true);
  assert.equal(
    redirectOf(route("    redirect: http://example.org/x?y=1\n")).target.href,
    "http://example.org/x?y=1",
  );
});

Deno.test("parseConfig() reads a redirect route's status, keep_path and access_log", () => {
  const redirect = redirectOf(
    route("    redirect: example.org\n    status: 308\n    keep_path: true\n    access_log: false\n"),
  );
  assert.equal(redirect.status, 308);
  assert.equal(redirect.keepPath, true);
  assert.equal(redirect.accessLog, false);
  assert.equal(redirectOf(route(`    redirect: example.org\n    status: "301"\n`)).status, 301);
});

Deno.test("parseConfig() accepts an absent or empty proxies block as no routes", () => {
  assert.deepEqual(routesOf("email: a@b.co\n"), []);
  assert.deepEqual(routesOf("proxies:\n"), []);
  assert.deepEqual(routesOf("proxies: {}\n"), []);
});

Deno.test("parseConfig() lowercases route hosts, keeps file order and takes wildcard routes", () => {
  const routes = routesOf(`proxies:
  "B.Example.com":
    upstream: http://b
  "*.Example.com":
    redirect: example.org
  localhost:
    upstream: http://l
`);
  assert.deepEqual(routes.map((r) => [r.host, r.position.line]), [
    ["b.example.com", 2],
    ["*.example.com", 4],
    [
      "localhost",
      6,
    ],
  ]);
});

Deno.test("parseConfig() rejects route hosts that differ only by case, naming the first one's line", () => {
  assertIssue(
    `proxies:\n  "api.example.com":\n    upstream: http://a\n  "API.example.com":\n    upstream: http://b\n`,
    {
      line: 4,
      col: 3,
      message:
        `proxies."API.example.com" is the same host as "api.example.com" on line 2 (host names are case-insensitive); merge the two routes`,
    },
  );
});

Deno.test("parseConfig() rejects invalid route hosts and still checks what is inside", () => {
  const issues = issuesOf(
    `proxies:\n  "a..example.com":\n    upstrem: http://x\n  "10.0.0.1":\n    upstream: http://x\n`,
  );
  assert.deepEqual(issues.map((i) => [i.line, i.col]), [[2, 3], [3, 5], [4, 3]]);
  assert.match(
    issues[0]?.message ?? "",
    /^proxies: invalid hostname "a\.\.example\.com": it has an empty label/,
  );
  assert.match(issues[1]?.message ?? "", /did you mean "upstream"/);
  assert.match(
    issues[2]?.message ?? "",
    /^proxies: invalid hostname "10\.0\.0\.1": IP addresses cannot be used here/,
  );
  assertIssue(`proxies:\n  "*.com":\n    upstream: http://x\n`, {
    line: 2,
    col: 3,
    message: /invalid wildcard "\*\.com"/,
  });
});

Deno.test("parseConfig() rejects a route with both upstream and redirect, naming both", () => {
  assertIssue(route("    upstream: http://x\n    redirect: example.org\n"), {
    line: 2,
    col: 3,
    message:
      `proxies."app.example.com" has both upstream and redirect; a route either proxies (upstream) or redirects (redirect): remove one of them`,
  });
});

Deno.test("parseConfig() rejects a route with neither upstream nor redirect, naming both", () => {
  assertIssue(route("    cache: false\n"), {
    line: 2,
    col: 3,
    message: /^proxies\."app\.example\.com" needs an upstream \(to proxy.*or a redirect \(to redirect/,
  });
  assertIssue(`proxies:\n  "app.example.com":\n`, {
    line: 2,
    col: 3,
    message: /^proxies\."app\.example\.com" is empty; it needs an upstream/,
  });
});

Deno.test("parseConfig() says which kind of route takes a misplaced key", () => {
  assertIssue(route("    redirect: example.org\n    timeout: 5s\n"), {
    line: 4,
    col: 5,
    message:
      `proxies."app.example.com".timeout only applies to proxy routes (with upstream), and this route is a redirect; remove it`,
  });
  assertIssue(route("    upstream: http://x\n    keep_path: true\n"), {
    line: 4,
    col: 5,
    message:
      `proxies."app.example.com".keep_path only applies to redirect routes (with redirect), and this route proxies to an upstream; remove it`,
  });
});

Deno.test("parseConfig() suggests the closest key for a misspelled route key", () => {
  assertIssue(route("    upstream: http://x\n    max_bdy: 1MiB\n"), {
    line: 4,
    col: 5,
    message: `unknown key "max_bdy" in proxies."app.example.com" (did you mean "max_body"?)`,
  });
});

Deno.test("parseConfig() suggests http:// for an upstream without a scheme", () => {
  assertIssue(`proxies:\n  "api.example.com":\n    upstream: localhost:3000\n`, {
    line: 3,
    col: 15,
    message:
      `proxies."api.example.com".upstream must be an http(s) URL, got "localhost:3000" (add "http://": "http://localhost:3000")`,
  });
});

Deno.test("parseConfig() rejects upstreams that are not plain http(s) URLs", () => {
  const upstreamIssue = (value: string) => issuesOf(route(`    upstream: ${value}\n`))[0]?.message ?? "";
  assert.match(
    upstreamIssue("ftp://files.example.com"),
    /scheme "ftp" is not supported; use http:\/\/ or https:\/\//,
  );
  assert.match(upstreamIssue("unix:/run/app.sock"), /scheme "unix" is not supported/);
  assert.match(upstreamIssue("http://x/?a=1"), /remove the query and fragment/);
  assert.match(upstreamIssue("http://x/#top"), /remove the query and fragment/);
  assert.match(upstreamIssue("http://exa mple.com"), /it does not parse as a URL/);
  assert.match(upstreamIssue(`""`), /upstream is empty \(write a URL like "http:\/\/127\.0\.0\.1:8080"\)/);
  assert.match(
    upstreamIssue("{ url: http://x }"),
    /upstream must be a URL like "http:\/\/127\.0\.0\.1:8080" or a list of them, got a mapping/,
  );
});

Deno.test("parseConfig() rejects credentials in an upstream without repeating them", () => {
  const [issue] = issuesOf(route("    upstream: http://admin:hunter2@127.0.0.1:8080\n"));
  assert.match(issue?.message ?? "", /must not contain a user name or password/);
  assert.ok(!issue?.message.includes("hunter2"));
  const [noScheme] = issuesOf(route("    upstream: admin:hunter2@127.0.0.1:8080\n"));
  assert.match(noScheme?.message ?? "", /got "admin:\*\*\*@127\.0\.0\.1:8080"/);
  const [ftp] = issuesOf(route("    upstream: ftp://admin:hunter2@files\n"));
  assert.match(ftp?.message ?? "", /got "ftp:\/\/admin:\*\*\*@files" \(scheme "ftp" is not supported/);
});

Deno.test("parseConfig() rejects redirect targets that are not http(s)", () => {
  assertIssue(route("    redirect: mailto:admin@example.com\n"), {
    line: 3,
    col: 15,
    message:
      /redirect must be a URL or a host and path like "example\.org\/blog", got "mailto:admin@example\.com" \(scheme "mailto" is not supported/,
  });
  assertIssue(route("    redirect:\n"), { line: 3, col: 5, message: /redirect is empty/ });
});

Deno.test("parseConfig() rejects a redirect back to the route's own host", () => {
  assertIssue(route("    redirect: app.example.com/new\n"), {
    line: 3,
    col: 15,
    message: /redirect points back to app\.example\.com, which this route redirects again \(a loop\)/,
  });
  assertIssue(`proxies:\n  "*.example.com":\n    redirect: https://www.example.com\n`, {
    line: 3,
    col: 15,
    message: /a loop/,
  });
  assert.equal(redirectOf(route("    redirect: app.example.com:8443\n")).target.port, "8443");
  assert.equal(
    redirectOf(`proxies:\n  "*.example.com":\n    redirect: example.com\n`).target.host,
    "example.com",
  );
});

Deno.test("parseConfig() allows only the redirect statuses", () => {
  assertIssue(route("    redirect: example.org\n    status: 200\n"), {
    line: 4,
    col: 13,
    message: `proxies."app.example.com".status must be 301, 302, 303, 307 or 308, got 200`,
  });
});

Deno.test("parseConfig() shows how to nest a route written as a plain string", () => {
  assertIssue(`proxies:\n  "app.example.com": http://localhost:3000\n`, {
    line: 2,
    col: 22,
    message:
      `proxies."app.example.com" must be a mapping with an upstream or a redirect, got "http://localhost:3000" (put "upstream: http://localhost:3000" on the next line, indented)`,
  });
});

Deno.test("parseConfig() rejects proxies that is not a mapping", () => {
  assertIssue(`proxies:\n  - api.example.com\n`, {
    line: 2,
    col: 3,
    message: /^proxies must be a mapping of host names to routes.*, got a list$/,
  });
});

Deno.test("parseConfig() explains that YAML merge keys are not supported", () => {
  const issues = issuesOf(
    `proxies:\n  "a.example.com": &base\n    upstream: http://a\n  "b.example.com":\n    <<: *base\n`,
  );
  const merge = issues.find((issue) => issue.line === 5);
  assert.equal(merge?.col, 5);
  assert.match(
    merge?.message ?? "",
    /unknown key "<<" in proxies\."b\.example\.com" \(YAML merge keys are not supported/,
  );
});

Deno.test("parseConfig() reports a misspelt upstream or redirect once, as the unknown key with its fix", () => {
  for (const typo of ["upstrem", "Upstream_", "redirct"]) {
    const issues = issuesOf(`proxies:\n  "a.example.com":\n    ${typo}: http://x\n`);
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.match(issues[0]!.message, /^unknown key .* \(did you mean "(upstream|redirect)"\?\)$/);
  }
  // A key that is no typo of either still gets told what a route needs.
  const issues = issuesOf(`proxies:\n  "a.example.com":\n    timeout: 5s\n`);
  assert.match(issues.map((i) => i.message).join("\n"), /needs an upstream/);
});
