import assert from "node:assert/strict";
import { issuesOf as issuesOfFile } from "./test_helpers.ts";
import type { ConfigIssue } from "./errors.ts";
import { DEFAULT_HSTS, hstsHeaderValue } from "./hsts.ts";
import { parseConfig } from "./parse.ts";

const FILE = "/srv/nexo/config.yaml";

/** Each route's host and Strict-Transport-Security value. */
function hstsOf(yaml: string): Record<string, string | null> {
  return Object.fromEntries(parseConfig(yaml, FILE).routes.map((route) => [route.host, route.hsts]));
}

const issuesOf = (yaml: string): ConfigIssue[] => issuesOfFile(yaml, FILE);

function assertIssues(yaml: string, expected: Array<{ line: number; col: number; message: RegExp }>): void {
  const issues = issuesOf(yaml);
  assert.equal(
    issues.length,
    expected.length,
    `expected ${expected.length} issue(s), got:\n${issues.map((i) => i.message).join("\n")}`,
  );
  issues.forEach((issue, i) => {
    const want = expected[i]!;
    assert.equal(issue.file, FILE);
    assert.deepEqual([issue.line, issue.col], [want.line, want.col], issue.message);
    assert.match(issue.message, want.message);
  });
}

const TWO_ROUTES = `proxies:
  "app.example.com":
    upstream: http://127.0.0.1:8080
  "example.com":
    redirect: app.example.com
`;

Deno.test("hstsHeaderValue() writes the directives in RFC 6797 order", () => {
  assert.equal(hstsHeaderValue(DEFAULT_HSTS), "max-age=31536000");
  assert.equal(
    hstsHeaderValue({ maxAgeSeconds: 63_072_000, includeSubdomains: true, preload: true }),
    "max-age=63072000; includeSubDomains; preload",
  );
  assert.equal(
    hstsHeaderValue({ maxAgeSeconds: 0, includeSubdomains: true, preload: false }),
    "max-age=0; includeSubDomains",
  );
});

Deno.test("parseConfig() gives every route one year of HSTS by default, without includeSubDomains or preload", () => {
  assert.deepEqual(hstsOf(TWO_ROUTES), {
    "app.example.com": "max-age=31536000",
    "example.com": "max-age=31536000",
  });
  assert.deepEqual(hstsOf(`hsts:\n${TWO_ROUTES}`), {
    "app.example.com": "max-age=31536000",
    "example.com": "max-age=31536000",
  }, "an empty hsts: is the default");
});

Deno.test("parseConfig() turns HSTS off with hsts: false, at the top level or per route", () => {
  assert.deepEqual(hstsOf(`hsts: false\n${TWO_ROUTES}`), { "app.example.com": null, "example.com": null });
  assert.deepEqual(
    hstsOf(`proxies:
  "app.example.com":
    upstream: http://127.0.0.1:8080
    hsts: false
  "example.com":
    redirect: app.example.com
`),
    { "app.example.com": null, "example.com": "max-age=31536000" },
  );
});

Deno.test("parseConfig() lets a route's hsts replace the top-level one as a whole", () => {
  const routes = hstsOf(`hsts:
  max_age: 8760h
  include_subdomains: true
proxies:
  "a.example.com":
    upstream: http://127.0.0.1:8080
  "b.example.com":
    upstream: http://127.0.0.1:8080
    hsts: {max_age: 300}
  "c.example.com":
    upstream: http://127.0.0.1:8080
    hsts: true
  "d.example.com":
    redirect: example.org
    hsts: false
`);
  assert.deepEqual(routes, {
    "a.example.com": "max-age=31536000; includeSubDomains",
    // Not merged: b's own mapping leaves include_subdomains at its default (off).
    "b.example.com": "max-age=300",
    "c.example.com": "max-age=31536000",
    "d.example.com": null,
  });
});

Deno.test("parseConfig() reads max_age as seconds or as a duration, 0 included", () => {
  const route = (hsts: string) =>
    hstsOf(`proxies:\n  "x.example.com":\n    redirect: example.org\n    hsts: ${hsts}\n`);
  assert.deepEqual(route("{max_age: 31536000}"), { "x.example.com": "max-age=31536000" });
  assert.deepEqual(route("{max_age: 17520h}"), { "x.example.com": "max-age=63072000" });
  assert.deepEqual(route(`{max_age: "1h30m"}`), { "x.example.com": "max-age=5400" });
  assert.deepEqual(route("{max_age: 0}"), { "x.example.com": "max-age=0" }, "0 withdraws the policy");
  assert.deepEqual(
    route("{max_age: 63072000, include_subdomains: true, preload: true}"),
    { "x.example.com": "max-age=63072000; includeSubDomains; preload" },
  );
  assert.deepEqual(
    route("{include_subdomains: true, preload: true}"),
    { "x.example.com": "max-age=31536000; includeSubDomains; preload" },
    "the default max_age meets the preload minimum",
  );
});

Deno.test("parseConfig() rejects preload without include_subdomains, naming the place and the fix", () => {
  assertIssues(
    `proxies:
  "example.com":
    upstream: http://127.0.0.1:8080
    hsts:
      preload: true
`,
    [{
      line: 5,
      col: 16,
      message:
        /^proxies\."example\.com"\.hsts\.preload needs proxies\."example\.com"\.hsts\.include_subdomains: true \(.*hstspreload\.org.*\): add include_subdomains: true, or remove preload$/,
    }],
  );
});

Deno.test("parseConfig() rejects preload with a max_age under a year, and both problems at once", () => {
  assertIssues(`hsts: {max_age: 720h, include_subdomains: true, preload: true}\n`, [{
    line: 1,
    col: 58,
    message:
      /^hsts\.preload needs hsts\.max_age of at least 31536000 seconds .*"8760h".*got 2592000: raise max_age, or remove preload$/,
  }]);
  assertIssues(`hsts: {max_age: 86400, preload: true}\n`, [
    { line: 1, col: 33, message: /hsts\.preload needs hsts\.include_subdomains: true/ },
    { line: 1, col: 33, message: /hsts\.preload needs hsts\.max_age of at least 31536000 seconds/ },
  ]);
});

Deno.test("parseConfig() rejects a bad max_age at its value, with an example", () => {
  const at = (value: string) => `hsts:\n  max_age: ${value}\n`;
  assertIssues(at("-1"), [{
    line: 2,
    col: 12,
    message: /must be a whole number of seconds, 0 or more, got -1/,
  }]);
  assertIssues(at("1.5"), [{ line: 2, col: 12, message: /must be a whole number of seconds.*"8760h"/ }]);
  assertIssues(at(`"1500ms"`), [{ line: 2, col: 12, message: /must be a whole number of seconds/ }]);
  assertIssues(at("soon"), [{ line: 2, col: 12, message: /^hsts\.max_age: invalid duration "soon"/ }]);
  assertIssues(at(`"31536000"`), [{ line: 2, col: 12, message: /it has no unit \(write "31536000s"/ }]);
  assertIssues(at("[1]"), [{ line: 2, col: 12, message: /must be seconds \(31536000\) or a duration/ }]);
});

Deno.test("parseConfig() rejects an hsts that is not a bool or a mapping, and unknown keys in it", () => {
  assertIssues(`hsts: "max-age=31536000"\n`, [{
    line: 1,
    col: 7,
    message:
      /^hsts must be true, false, or a mapping like \{max_age: 8760h, include_subdomains: true\}, got "max-age=31536000"$/,
  }]);
  assertIssues(`hsts:\n  includeSubDomains: true\n`, [{
    line: 2,
    col: 3,
    message: /unknown key "includeSubDomains" in hsts \(did you mean "include_subdomains"\?\)/,
  }]);
  assertIssues(`hsts:\n  preload: yes\n`, [{
    line: 2,
    col: 12,
    message: /must be true or false.*YAML 1\.2/,
  }]);
  assertIssues(`include_subdomains: true\n`, [{ line: 1, col: 1, message: /belongs in hsts:/ }]);
});

Deno.test("parseConfig() reports a bad route hsts and leaves the route out", () => {
  assertIssues(
    `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:8080\n    hsts: {max_age: 10, preload: true, include_subdomains: true}\n`,
    [{ line: 4, col: 34, message: /preload needs .*max_age of at least 31536000/ }],
  );
});
