// Fuzzes parseConfig() with mutated real configs (examples/*.yaml, the test seed config) and with random
// configs built as objects and serialized to YAML. Whatever the input, it must return a sane Config or throw
// a ConfigError whose issues are well-formed: never another exception, never a hang.
// Seed and case count: NEXO_FUZZ_SEED, NEXO_FUZZ_RUNS (see tests/fuzz.ts); a failure prints both and the input.

import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { DEFAULT_FUZZ_SEED, Rng, runFuzz, showString, withinHangLimit } from "../../tests/fuzz.ts";
import { type ExpectedRoute, randomConfig, toYaml } from "../../tests/fuzz_config.ts";
import { breakConfig, confuseTypes } from "../../tests/fuzz_config_faults.ts";
import { mutateYaml } from "../../tests/fuzz_yaml.ts";
import { buildRouteTable, matchRoute, normalizeHost } from "../router.ts";
import { parseCidr } from "../cidr.ts";
import { ConfigError, formatIssue } from "./errors.ts";
import { DEFAULTS } from "./defaults.ts";
import { normalizeRouteHost, normalizeWildcard } from "./hostname.ts";
import { parseConfig } from "./parse.ts";
import type { Config, Route } from "./types.ts";

const FILE = "/srv/nexo/config.yaml";
const TOKEN = "Tk9-fuzz-secret-token-4f9a2b";

/** Every config shipped or tested: the mutation seeds. */
const SEEDS: readonly string[] = [
  ...[...Deno.readDirSync(new URL("../../examples/", import.meta.url))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".yaml"))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((entry) => Deno.readTextFileSync(new URL(`../../examples/${entry.name}`, import.meta.url))),
  Deno.readTextFileSync(new URL("../../tests/testdata/seed.yaml", import.meta.url)),
  Deno.readTextFileSync(new URL("../../tests/testdata/fuzz_seed.yaml", import.meta.url)),
];

/** Parses with the hang limit; returns the Config or the ConfigError, and fails on any other exception. */
function parseChecked(text: string): Config | ConfigError {
  return withinHangLimit("parseConfig()", () => {
    try {
      return parseConfig(text, FILE);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      const name = error instanceof Error ? error.name : typeof error;
      throw new Error(`parseConfig() threw ${name} instead of a ConfigError`, { cause: error });
    }
  });
}

/** Phrases that mean a library's or the runtime's message reached the user instead of nexo's own. */
const INTERNAL_PHRASES =
  /call stack|YAML\.\w+\(|should not happen|Tried to pop|\[object |TypeError|RangeError/;

/**
 * A ConfigError must be readable line by line: one issue per line, in file order, each at a real position of
 * this file, each message a single line (control characters would split it or garble a terminal) that does
 * not leak the API token, does not show JavaScript's "undefined"/"NaN" unless the input had them, and is not
 * a library's internal wording.
 */
function assertWellFormedError(text: string, error: ConfigError): void {
  assert.ok(error.issues.length > 0, "a ConfigError without issues");
  assert.equal(error.message, error.issues.map(formatIssue).join("\n"));
  assert.equal(error.message.split("\n").length, error.issues.length, "an issue spans several lines");
  const lines = text.split("\n");
  const lower = text.toLowerCase();
  let previous = { line: 0, col: 0 };
  for (const issue of error.issues) {
    const where = `${issue.line}:${issue.col} ${showString(issue.message)}`;
    assert.equal(issue.file, FILE, where);
    assert.ok(Number.isInteger(issue.line) && issue.line >= 1 && issue.line <= lines.length, `line ${where}`);
    const lineLength = lines[issue.line - 1]?.length ?? 0;
    assert.ok(
      Number.isInteger(issue.col) && issue.col >= 1 && issue.col <= lineLength + 1,
      `column ${where}`,
    );
    assert.ok(
      issue.line > previous.line || (issue.line === previous.line && issue.col >= previous.col),
      `issues out of file order at ${where}`,
    );
    previous = issue;
    const message = issue.message;
    // Only the start is checked: the YAML library quotes source after some messages, spaces included.
    assert.ok(message.trim() !== "" && message === message.trimStart(), `blank or indented message ${where}`);
    // deno-lint-ignore no-control-regex -- finding control characters is the point
    assert.doesNotMatch(message, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, `control character in ${where}`);
    assert.doesNotMatch(message, INTERNAL_PHRASES, `internal wording in message ${where}`);
    for (const word of ["undefined", "nan"]) {
      if (!lower.includes(word)) assert.ok(!message.toLowerCase().includes(word), `"${word}" in ${where}`);
    }
    if (text.includes(`api_token: ${TOKEN}`)) assert.ok(!message.includes(TOKEN), `token leaked ${where}`);
  }
}

/**
 * An accepted config must be usable as it stands: every route host normalized and reachable through the
 * router, every URL http(s), every number finite and in range, every list entry valid on its own.
 */
function assertSaneConfig(config: Config): void {
  assert.equal(config.file, FILE);
  const hosts = new Set<string>();
  const table = buildRouteTable(config.routes);
  for (const route of config.routes) {
    assert.equal(normalizeRouteHost(route.host), route.host, "route host not normalized");
    assert.ok(!hosts.has(route.host), `route host ${route.host} twice`);
    hosts.add(route.host);
    // The router must find every route the config accepted, under its own name.
    const probe = route.host.startsWith("*.") ? `fuzz-probe${route.host.slice(1)}` : route.host;
    assert.equal(normalizeHost(probe), probe, `router rejects ${probe}`);
    const found = matchRoute(table, probe);
    assert.ok(
      found === route || (route.host.startsWith("*.") && found?.host === probe),
      `unreachable ${probe}`,
    );
    assert.ok(route.position.line >= 1 && route.position.col >= 1);
    if (route.kind === "proxy") {
      assert.match(route.upstreams[0]!.protocol, /^https?:$/);
      assert.equal(
        route.upstreams[0]!.username + route.upstreams[0]!.password + route.upstreams[0]!.search,
        "",
      );
      assert.ok(Number.isSafeInteger(route.limits.maxBodyBytes) && route.limits.maxBodyBytes >= 0);
      assert.ok(Number.isFinite(route.limits.responseTimeoutMs) && route.limits.responseTimeoutMs >= 1);
      assert.ok(Number.isFinite(route.limits.bodyTimeoutMs) && route.limits.bodyTimeoutMs >= 1);
    } else if (route.kind === "redirect") {
      assert.match(route.target.protocol, /^https?:$/);
      assert.ok([301, 302, 303, 307, 308].includes(route.status));
    }
  }
  for (const wildcard of config.wildcards) assert.equal(normalizeWildcard(wildcard), wildcard);
  assert.equal(new Set(config.wildcards).size, config.wildcards.length);
  for (const cidr of config.trustedProxies) parseCidr(cidr);
  for (const address of [config.listen, config.httpListen, config.admin?.listen]) {
    if (address) assert.ok(Number.isInteger(address.port) && address.port >= 0 && address.port <= 65535);
  }
  const { limits, acme } = config;
  for (
    const ms of [
      limits.readTimeoutMs,
      limits.idleTimeoutMs,
      limits.responseTimeoutMs,
      limits.bodyTimeoutMs,
      acme.renewBeforeMs,
    ]
  ) {
    assert.ok(Number.isFinite(ms) && ms >= 1, `duration ${ms}`);
  }
  assert.ok(Number.isSafeInteger(limits.maxBodyBytes) && limits.maxBodyBytes >= 0);
  assert.ok(Number.isSafeInteger(limits.maxHeaderBytes) && limits.maxHeaderBytes > 0);
  assertNoControlCharacters(config, "config");
}

/** No accepted string may carry a control character: it would reach a file path, a header or a log line. */
function assertNoControlCharacters(value: unknown, path: string): void {
  if (typeof value === "string") {
    // deno-lint-ignore no-control-regex -- finding control characters is the point
    assert.doesNotMatch(value, /[\u0000-\u001f\u007f]/, `control character in ${path}: ${showString(value)}`);
  } else if (value instanceof URL) {
    assertNoControlCharacters(value.href, path);
  } else if (typeof value === "object" && value !== null) {
    for (const [key, child] of Object.entries(value)) assertNoControlCharacters(child, `${path}.${key}`);
  }
}

/** The fields a route of each kind has, from a parsed Route, for comparing with the generator's oracle. */
function projectRoute(route: Route): Record<string, unknown> {
  const base = { host: route.host, kind: route.kind, accessLog: route.accessLog };
  return route.kind === "proxy"
    ? { ...base, href: route.upstreams[0]!.href, cache: route.cache, ...route.limits }
    : route.kind === "redirect"
    ? { ...base, href: route.target.href, status: route.status, keepPath: route.keepPath }
    : base;
}

/** `projectRoute()` for what the generator says a route must be. */
function projectExpected(route: ExpectedRoute): Record<string, unknown> {
  const base = { host: route.host, kind: route.kind, accessLog: route.accessLog, href: route.href };
  return route.kind === "proxy"
    ? {
      ...base,
      cache: route.cache,
      maxBodyBytes: route.maxBodyBytes,
      responseTimeoutMs: route.responseTimeoutMs,
      // The generator never writes body_timeout: every route keeps the default.
      bodyTimeoutMs: DEFAULTS.bodyTimeoutMs,
    }
    : { ...base, status: route.status, keepPath: route.keepPath };
}

function checkParse(text: string): void {
  const result = parseChecked(text);
  if (result instanceof ConfigError) assertWellFormedError(text, result);
  else assertSaneConfig(result);
}

Deno.test("parseConfig() returns a sane Config or a well-formed ConfigError for mutated configs", () => {
  runFuzz({
    name: "parseConfig() returns a sane Config or a well-formed ConfigError for mutated configs",
    file: import.meta.url,
    defaultRuns: 2000,
    generate: (rng) => mutateYaml(rng, SEEDS),
    check: ({ text }) => checkParse(text),
    show: ({ text, steps }) => `${showString(text)} (mutations: ${steps.join(", ")})`,
  });
});

Deno.test("parseConfig() reads random valid configs exactly as generated", () => {
  runFuzz({
    name: "parseConfig() reads random valid configs exactly as generated",
    file: import.meta.url,
    defaultRuns: 1000,
    generate: (rng) => randomConfig(rng),
    show: (generated) => showString(generated.yaml),
    check: (generated) => {
      const result = parseChecked(generated.yaml);
      if (result instanceof ConfigError) assert.fail(`rejected a valid config: ${result.message}`);
      assertSaneConfig(result);
      assert.deepEqual(result.listen, generated.listen);
      assert.deepEqual(result.wildcards, generated.wildcards);
      assert.equal(result.limits.maxBodyBytes, generated.limits.maxBodyBytes);
      assert.equal(result.limits.readTimeoutMs, generated.limits.readTimeoutMs);
      assert.deepEqual(result.routes.map(projectRoute), generated.routes.map(projectExpected));
    },
  });
});

/** Every key known anywhere, to move keys between blocks ("upstream" at the top, "proxies" in a route). */
const ALL_KEYS = [
  ...new Set(SEEDS.flatMap((seed) => [...seed.matchAll(/^\s*"?([a-z_*.]+)"?:/gm)].map((m) => m[1] ?? ""))),
];

Deno.test("parseConfig() survives any value of any type under any key", () => {
  runFuzz({
    name: "parseConfig() survives any value of any type under any key",
    file: import.meta.url,
    defaultRuns: 1000,
    generate: (rng) => {
      const doc = parseYaml(rng.pick(SEEDS)) as unknown;
      for (let n = rng.between(1, 4); n > 0; n--) confuseTypes(rng, doc, ALL_KEYS);
      return toYaml(rng, doc);
    },
    show: showString,
    check: checkParse,
  });
});

Deno.test("parseConfig() names the broken setting in random configs with one fault", () => {
  runFuzz({
    name: "parseConfig() names the broken setting in random configs with one fault",
    file: import.meta.url,
    defaultRuns: 1000,
    generate: (rng) => breakConfig(rng, randomConfig(rng)),
    show: (broken) => `${showString(broken.yaml)} (fault: ${broken.fault})`,
    check: (broken) => {
      const result = parseChecked(broken.yaml);
      if (!(result instanceof ConfigError)) assert.fail(`accepted a config with ${broken.fault}`);
      assertWellFormedError(broken.yaml, result);
      assert.ok(
        result.issues.some((issue) => issue.message.includes(broken.mention)),
        `no issue mentions ${broken.mention}:\n${result.message}`,
      );
    },
  });
});

Deno.test("parseConfig() resolves YAML aliases without expanding them, however many there are", () => {
  // Deterministic worst cases beside the random ones: a 10^10-node bomb aimed at every list and mapping the
  // parser walks, and thousands of aliases in one file (each resolved once, not by rescanning the document).
  const cases: Array<[string, string]> = [];
  for (const target of ["proxies", "wildcards", "trusted_proxies", "limits", "acme", "cloudflare"]) {
    let bomb = `l0: &l0 [${Array(10).fill('"lol"').join(", ")}]\n`;
    for (let i = 1; i < 10; i++) bomb += `l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]\n`;
    cases.push([`an alias bomb at ${target}`, `${bomb}${target}: *l9\n`]);
  }
  const routes = Array.from({ length: 2000 }, (_, i) => `  h${i}.example.com: {upstream: *u}\n`).join("");
  cases.push([
    "2000 routes sharing one aliased upstream",
    `proxies:\n  example.com: {upstream: &u "http://127.0.0.1:3000"}\n${routes}`,
  ]);
  cases.push([
    "5000 aliased wildcards",
    `issuer: internal\nwildcards:\n  - &w "*.example.com"\n${"  - *w\n".repeat(5000)}`,
  ]);
  for (const [name, text] of cases) {
    try {
      checkParse(text);
    } catch (error) {
      throw new Error(`${name}: ${error instanceof Error ? error.message : error}`, { cause: error });
    }
  }
});

Deno.test("fuzz config generator: the seeds parse and the YAML styles vary", () => {
  // Guards the fuzzers themselves: mutations start from configs that parse, and the generator's output
  // covers block and flow YAML, so a passing run means something.
  for (const seed of SEEDS) assertSaneConfig(parseConfig(seed, FILE));
  const styles = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { yaml } = randomConfig(new Rng(DEFAULT_FUZZ_SEED, i));
    styles.add(yaml.trimStart().startsWith("{") ? "flow" : "block");
  }
  assert.deepEqual([...styles].sort(), ["block", "flow"]);
  assert.equal(toYaml(new Rng(DEFAULT_FUZZ_SEED), {}), "{}\n");
});
