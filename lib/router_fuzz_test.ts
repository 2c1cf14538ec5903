// Fuzzes the router with hostile Host headers and SNI names (case, ports, trailing dots, IDN, percent-encoding,
// control characters, IPv6 literals, over-long labels, "*") against route tables parsed from random valid
// configs. The answer is checked against a linear scan written from the matching rules, not from router.ts.
// Seed and case count: NEXO_FUZZ_SEED, NEXO_FUZZ_RUNS (see tests/fuzz.ts); a failure prints both and the input.

import assert from "node:assert/strict";
import { Rng, runFuzz, showString, withinHangLimit } from "../tests/fuzz.ts";
import { randomConfig, randomHostname, randomLabel } from "../tests/fuzz_config.ts";
import { normalizeRouteHost } from "./config/hostname.ts";
import { parseConfig } from "./config/parse.ts";
import type { Route } from "./config/types.ts";
import { buildRouteTable, matchRoute, normalizeHost } from "./router.ts";

const LOOKUPS_PER_TABLE = 60;

/**
 * Look-alikes and troublemakers: fullwidth and ideographic dots (URL parsers read them as "."), the Kelvin
 * sign and dotted I (which lowercase to ASCII or to two characters), zero-width and bidi marks, controls.
 */
const NASTY = [
  ..."\u0000\t\n\r \u007f\u0085\u00a0\u200b\u202e\ufeff\uff0e\u3002\u212a\u0130\u0131é中",
  ..."%/\\@#?*[]:;,_-.",
];

interface Lookup {
  input: string;
  /** How the input was made, for the failure report. */
  how: string;
}

interface Case {
  yaml: string;
  lookups: Lookup[];
}

/** The route the matching rules pick for a normalized host, by scanning every route. */
function expectedRoute(routes: readonly Route[], host: string): Route | undefined {
  if (host === "") return undefined;
  const exact = routes.find((route) => route.host === host);
  if (exact !== undefined) return exact;
  // "*.example.com" covers exactly one more label, and that label is a real one (not empty, not "*").
  return routes.find((route) => {
    if (!route.host.startsWith("*.")) return false;
    const suffix = route.host.slice(1);
    const label = host.slice(0, -suffix.length);
    return host.endsWith(suffix) && label !== "" && !label.includes(".") && label !== "*";
  });
}

function randomPort(rng: Rng): string {
  return rng.pick([
    String(rng.between(0, 65535)),
    "443",
    "65535",
    "65536",
    "99999",
    "0443",
    "-1",
    "",
    "44 3",
    "443a",
    "1".repeat(rng.between(6, 20)),
  ]);
}

const TRANSFORMS: ReadonlyArray<[string, (rng: Rng, host: string) => string]> = [
  ["change case", (rng, host) => [...host].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c)).join("")],
  ["add a port", (rng, host) => `${host}:${randomPort(rng)}`],
  ["add trailing dots", (rng, host) => host + ".".repeat(rng.between(1, 3))],
  ["prepend a label", (rng, host) => `${rng.chance(0.2) ? "*" : randomLabel(rng)}.${host}`],
  ["insert a nasty character", (rng, host) => {
    const at = rng.int(host.length + 1);
    return host.slice(0, at) + rng.pick(NASTY) + host.slice(at);
  }],
  ["percent-encode a character", (rng, host) => {
    if (host === "") return host;
    const at = rng.int(host.length);
    return `${host.slice(0, at)}%${host.charCodeAt(at).toString(16).padStart(2, "0")}${host.slice(at + 1)}`;
  }],
  ["swap in a unicode label", (_rng, host) => host.replace(/^[^.]*/, "b\u00fccher")],
  ["make a label very long", (rng, host) => host.replace(/^[^.]*/, "a".repeat(rng.pick([63, 64, 200, 300])))],
  ["make the whole name very long", (rng, host) => `${"a.".repeat(rng.between(120, 200))}${host}`],
  [
    "add a path or user",
    (rng, host) => rng.pick([`${host}/x`, `u@${host}`, `${host}?q`, `${host}#f`, `${host}\\`]),
  ],
  ["empty a label", (_rng, host) => host.replace(".", "..")],
  ["strip to a bare suffix", (_rng, host) => host.slice(host.indexOf(".") + 1)],
];

/** A Host or SNI value: mostly near a route's name, so that near-misses are tried, sometimes anything. */
function randomHost(rng: Rng, routes: readonly Route[]): Lookup {
  let host: string;
  let how: string;
  const kind = rng.int(10);
  if (kind < 6 && routes.length > 0) {
    const route = rng.pick(routes);
    host = route.host.startsWith("*.") && rng.chance(0.8)
      ? route.host.replace("*", rng.chance(0.9) ? randomLabel(rng) : rng.pick(["", "*", "a.b", "_x"]))
      : route.host;
    how = `from route ${route.host}`;
  } else if (kind < 8) {
    host = randomHostname(rng);
    how = "a random name";
  } else if (kind < 9) {
    host = rng.pick([
      "[::1]",
      "[::1]:443",
      "[::ffff:127.0.0.1]",
      "[::1",
      "::1",
      "[]",
      "[::1]x",
      "[v1.fe80::a]",
      "127.0.0.1",
      "127.0.0.1:8443",
      "",
      ":",
      ":443",
      ".",
      "*",
      "*.",
    ]);
    how = "an address or a degenerate value";
  } else {
    host = rng.repeat(
      rng.between(0, 40),
      () => rng.chance(0.7) ? rng.pick([..."abcxyz019.-"]) : rng.pick(NASTY),
    );
    how = "random characters";
  }
  const steps: string[] = [];
  for (let n = rng.between(0, 3); n > 0; n--) {
    const [name, transform] = rng.pick(TRANSFORMS);
    steps.push(name);
    host = transform(rng, host);
  }
  return { input: host, how: steps.length === 0 ? how : `${how}, then ${steps.join(", ")}` };
}

function generate(rng: Rng): Case {
  let yaml = "";
  let routes: Route[] = [];
  // Tables with routes are what the checks are about; an empty one is tried too, but rarely.
  for (let tries = 0; tries < 5 && routes.length === 0; tries++) {
    yaml = randomConfig(rng, { maxRoutes: 12 }).yaml;
    routes = parseConfig(yaml, "/fuzz/config.yaml").routes;
  }
  return { yaml, lookups: Array.from({ length: LOOKUPS_PER_TABLE }, () => randomHost(rng, routes)) };
}

function checkLookup(
  routes: readonly Route[],
  table: ReturnType<typeof buildRouteTable>,
  lookup: Lookup,
): void {
  const { input } = lookup;
  const host = normalizeHost(input);
  const what = `${showString(input)} (${lookup.how}) normalized to ${showString(host)}`;
  assert.equal(normalizeHost(host), host, `normalizeHost() is not idempotent: ${what}`);
  assert.ok(
    host === "" || (/^[a-z0-9_][a-z0-9_.-]*$/.test(host) && host.length <= 253) ||
      /^\[[0-9a-f:.]+\]$/.test(host),
    `normalizeHost() let through something that is not a lowercase name or IPv6 literal: ${what}`,
  );
  // Raw, as lib/server/run.ts passes an SNI name; normalized first, as lib/server/handler.ts passes a Host.
  const route = matchRoute(table, input);
  assert.equal(matchRoute(table, host), route, `matching the normalized host differs: ${what}`);
  assert.equal(route, expectedRoute(routes, host), `wrong route for ${what}: got ${route?.host}`);
  if (route !== undefined) assert.equal(normalizeRouteHost(route.host), route.host);
}

/** Names that must match: a route's own name in any case, with a valid port or one trailing dot. */
function checkReachable(rng: Rng, routes: readonly Route[], table: ReturnType<typeof buildRouteTable>): void {
  for (const route of routes) {
    // A long label under a long wildcard could pass 253 characters, which is no host name; keep it valid.
    const label = randomLabel(rng).toLowerCase();
    const name = route.host.replace("*", route.host.length + label.length > 254 ? "a" : label);
    const variant = [...name].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c)).join("") +
      rng.pick(["", ".", `:${rng.between(0, 65535)}`, `.:${rng.between(0, 65535)}`]);
    const exact = routes.find((other) => other.host === name);
    assert.equal(matchRoute(table, variant), exact ?? route, `route ${route.host} unreachable as ${variant}`);
  }
}

Deno.test("matchRoute() picks exactly the route the matching rules give, whatever the Host", () => {
  runFuzz({
    name: "matchRoute() picks exactly the route the matching rules give, whatever the Host",
    file: import.meta.url,
    defaultRuns: 600,
    generate,
    show: (c) =>
      `routes from ${showString(c.yaml)}; lookups: ${c.lookups.map((l) => showString(l.input)).join(", ")}`,
    check: (c) => {
      const routes = parseConfig(c.yaml, "/fuzz/config.yaml").routes;
      const table = buildRouteTable(routes);
      withinHangLimit(`${LOOKUPS_PER_TABLE} lookups`, () => {
        for (const lookup of c.lookups) checkLookup(routes, table, lookup);
      });
    },
  });
});

Deno.test("matchRoute() finds every configured route under its name, in any case, port or trailing dot", () => {
  runFuzz({
    name: "matchRoute() finds every configured route under its name, in any case, port or trailing dot",
    file: import.meta.url,
    defaultRuns: 400,
    generate: (rng) => ({ yaml: randomConfig(rng, { maxRoutes: 12 }).yaml, seed: rng.uint32() }),
    show: (c) => `${showString(c.yaml)} (variant seed ${c.seed})`,
    check: (c) => {
      const routes = parseConfig(c.yaml, "/fuzz/config.yaml").routes;
      checkReachable(new Rng(c.seed), routes, buildRouteTable(routes));
    },
  });
});
