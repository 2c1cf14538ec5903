// Broken configs for the fuzz tests: a generated valid config with one setting made wrong (and the path the
// error must name), and type confusion (any value of any type under any key) for configs without an oracle.

import type { Rng } from "./fuzz.ts";
import { type GeneratedConfig, toYaml } from "./fuzz_config.ts";

/** A config with one setting broken, and the text some issue's message must contain. */
export interface BrokenConfig {
  yaml: string;
  /** The key path (or phrase) the error must name, e.g. `limits.max_body` or `proxies."App.io".upstream`. */
  mention: string;
  fault: string;
}

type Fault = (
  doc: Record<string, unknown>,
  config: GeneratedConfig,
) => { mention: string; fault: string } | null;

function section(doc: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = doc[key];
  if (typeof existing === "object" && existing !== null && !Array.isArray(existing)) {
    return existing as Record<string, unknown>;
  }
  const block: Record<string, unknown> = {};
  doc[key] = block;
  return block;
}

/** Faults to inject, each writing one bad value and naming what the error must mention. */
function faults(rng: Rng): Fault[] {
  const routeFault =
    (key: string, bad: () => unknown, onlyKind?: "proxy" | "redirect"): Fault => (doc, c) => {
      const candidates = c.routes.filter((r) => onlyKind === undefined || r.kind === onlyKind);
      if (candidates.length === 0) return null;
      const route = rng.pick(candidates);
      const value = bad();
      ((doc.proxies as Record<string, Record<string, unknown>>)[route.key]!)[key] = value;
      return { mention: `proxies.${keyInPath(route.key)}.${key}`, fault: `${key}: ${JSON.stringify(value)}` };
    };
  return [
    (doc) => {
      doc[rng.pick(["emial", "listn", "proxy", "wildcard", "limit"])] = "x";
      return { mention: "unknown key", fault: "unknown top-level key" };
    },
    (doc) => {
      doc.email = rng.pick(["admin", "admin@localhost", "mailto:a@b.co", "a b@c.de"]);
      return { mention: "email", fault: `email: ${JSON.stringify(doc.email)}` };
    },
    (doc) => {
      doc.listen = rng.pick(["0.0.0.0", "99999", "[::1", "http://x:1", ":-1", "::1:443", "a b:1"]);
      return { mention: "listen", fault: `listen: ${JSON.stringify(doc.listen)}` };
    },
    (doc) => {
      const key = rng.pick(["read_timeout", "idle_timeout", "response_timeout"]);
      section(doc, "limits")[key] = rng.pick(["30", "-1s", "1x", "", "0", "1e9999h", "9".repeat(30) + "h"]);
      return { mention: `limits.${key}`, fault: `bad ${key}` };
    },
    (doc) => {
      section(doc, "limits").max_body = rng.pick(["10XB", "-1", "lots", "1.5", "1e400", "99999999999 GB"]);
      return { mention: "limits.max_body", fault: "bad max_body" };
    },
    routeFault(
      "upstream",
      () => rng.pick(["localhost:3000", "ftp://x", "http://u:p@x", "http://x/?q", "", "//x"]),
      "proxy",
    ),
    routeFault("status", () => rng.pick([300, 200, "abc", 3.01]), "redirect"),
    routeFault("timeout", () => rng.pick(["5", "soon", "-2m"]), "proxy"),
    routeFault(
      "redirect",
      () => rng.pick(["mailto:a@b.co", "ftp://x/y", "http://u:p@x.invalid/"]),
      "redirect",
    ),
    (doc) => {
      const key = rng.pick([
        "bad_host.com",
        "a..b.com",
        "-x.com",
        "1.2.3.4",
        "x.com:80",
        "ex ample.com",
        "*.com",
        "a.*.com",
        "b\u00fccher.de",
        "x.com.",
      ]);
      section(doc, "proxies")[key] = { upstream: "http://127.0.0.1:1" };
      return { mention: "proxies", fault: `host ${JSON.stringify(key)}` };
    },
    (doc, c) => {
      if (c.routes.length === 0) return null;
      const route = rng.pick(c.routes);
      const twin = route.key.toUpperCase() === route.key ? route.key.toLowerCase() : route.key.toUpperCase();
      if (twin === route.key) return null;
      section(doc, "proxies")[twin] = { upstream: "http://127.0.0.1:1" };
      return { mention: "same host", fault: `case twin ${twin}` };
    },
    (doc) => {
      doc.wildcards = [rng.pick(["*.com", "a.*.com", "*foo.com", "**.x.com"])];
      doc.issuer = "internal";
      return { mention: "wildcards[0]", fault: `wildcard ${JSON.stringify(doc.wildcards)}` };
    },
    (doc) => {
      doc.trusted_proxies = [rng.pick(["10.0.0.0/33", "x", "1.2.3.4/", "::1/129", "256.0.0.1"])];
      return {
        mention: "trusted_proxies[0]",
        fault: `trusted_proxies ${JSON.stringify(doc.trusted_proxies)}`,
      };
    },
    (doc) => {
      section(doc, "acme").dns_resolvers = [rng.pick(["2606:4700::1111", "1.1.1.1:0", "[x]:53", ""])];
      return { mention: "acme.dns_resolvers[0]", fault: "bad resolver" };
    },
  ];
}

/** A key as error messages write it in a path: bare when it is a plain word, else JSON-quoted. */
function keyInPath(key: string): string {
  return /^[a-z_][a-z0-9_]*$/i.test(key) ? key : JSON.stringify(key);
}

/** A copy of `config` with one setting broken; the error must name `mention`. */
export function breakConfig(rng: Rng, config: GeneratedConfig): BrokenConfig {
  const doc = structuredClone(config.doc);
  const all = faults(rng);
  for (;;) {
    const made = rng.pick(all)(doc, config);
    if (made !== null) return { yaml: toYaml(rng, doc), ...made };
  }
}

/** Values of every YAML type, for putting where another type belongs. */
const ANY_TYPE_VALUES: readonly unknown[] = [
  0,
  -1,
  1.5,
  1e21,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  null,
  "",
  " ",
  "x",
  "*.example.com",
  "http://127.0.0.1:1",
  "a".repeat(300),
  [],
  [1, "two", null],
  [[[]]],
  {},
  { a: 1 },
  { upstream: "http://127.0.0.1:1" },
  { redirect: 5 },
  new Date(0),
  new Uint8Array([0, 1, 2]),
];

/**
 * One edit of a config object in place: a value of another type, a key renamed to one of `knownKeys` (moving it
 * to a block where it does not belong), or an entry removed.
 */
export function confuseTypes(rng: Rng, doc: unknown, knownKeys: readonly string[]): void {
  const holders: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (value: unknown) => {
    if (typeof value !== "object" || value === null || value instanceof Date || ArrayBuffer.isView(value)) {
      return;
    }
    holders.push(value as Record<string, unknown>);
    for (const child of Object.values(value)) walk(child);
  };
  walk(doc);
  const holder = rng.pick(holders);
  const keys = Object.keys(holder);
  if (keys.length === 0) return;
  const key = rng.pick(keys);
  const record = holder as Record<string, unknown>;
  switch (rng.int(4)) {
    case 0:
    case 1:
      record[key] = structuredClone(rng.pick(ANY_TYPE_VALUES));
      break;
    case 2:
      if (!Array.isArray(holder)) {
        record[rng.pick(knownKeys)] = record[key];
        delete record[key];
      }
      break;
    default:
      if (Array.isArray(holder)) holder.splice(Number(key), 1);
      else delete record[key];
  }
}
