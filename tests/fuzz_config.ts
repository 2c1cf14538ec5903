// Random valid nexo configs for the fuzz tests: built as an object, serialized to YAML in a random style,
// together with what `parseConfig()` must make of it (an oracle written without the parser's code). Broken
// variants are tests/fuzz_config_faults.ts's.

import { stringify } from "yaml";
import type { Rng } from "./fuzz.ts";

/** What a generated route must come out as. */
export interface ExpectedRoute {
  /** The key as written in the YAML (random case). */
  key: string;
  /** Lowercased, as `Route.host` must be. */
  host: string;
  kind: "proxy" | "redirect";
  /** `URL.href` of the upstream or redirect target. */
  href: string;
  status: number;
  keepPath: boolean;
  cache: boolean;
  accessLog: boolean;
  maxBodyBytes: number;
  responseTimeoutMs: number;
}

/** A generated config: its YAML, the object it came from, and the values the parser must produce. */
export interface GeneratedConfig {
  yaml: string;
  doc: Record<string, unknown>;
  routes: ExpectedRoute[];
  wildcards: string[];
  listen: { hostname: string; port: number };
  limits: { maxBodyBytes: number; responseTimeoutMs: number; readTimeoutMs: number };
}

const TLDS = ["com", "org", "net", "dev", "io", "example", "test"];
/** Redirect targets live under .invalid, which no generated route uses, so none redirects to itself. */
const TARGET_TLD = "invalid";
const DURATION_UNITS: ReadonlyArray<[string, number]> = [["ms", 1], ["s", 1000], ["m", 60_000], [
  "h",
  3_600_000,
]];
const SIZE_UNITS: ReadonlyArray<[string, number]> = [
  ["", 1],
  ["B", 1],
  ["KB", 1000],
  ["MiB", 1024 ** 2],
  ["kib", 1024],
  ["GB", 1e9],
];

/** A valid LDH label: 1-63 characters, letters/digits with inner hyphens, in random case. */
export function randomLabel(rng: Rng, maxLength = 12): string {
  if (rng.chance(0.05)) return "xn--bcher-kva"; // a punycode label, valid as written
  const length = rng.chance(0.03) ? 63 : rng.between(1, maxLength);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let label = "";
  for (let i = 0; i < length; i++) {
    const inner = i > 0 && i < length - 1;
    label += inner && rng.chance(0.1) ? "-" : rng.pick([...alphabet]);
  }
  return label;
}

/** A valid host name of `labels` labels (random if omitted), as written (random case). */
export function randomHostname(rng: Rng, labels = rng.between(1, 4)): string {
  if (labels === 1) return rng.chance(0.5) ? "localhost" : randomLabel(rng).replace(/^\d+$/, "h$&");
  const parts = Array.from({ length: labels - 1 }, () => randomLabel(rng));
  return [...parts, rng.pick(TLDS)].join(".");
}

function randomDuration(rng: Rng): { text: string; ms: number } {
  const [unit, per] = rng.pick(DURATION_UNITS);
  const amount = rng.between(1, unit === "h" ? 500 : 5000);
  if (rng.chance(0.2)) return { text: `1h${amount}s`, ms: 3_600_000 + amount * 1000 };
  return { text: `${amount}${unit}`, ms: amount * per };
}

function randomSize(rng: Rng): { value: string | number; bytes: number } {
  const [unit, per] = rng.pick(SIZE_UNITS);
  const amount = rng.between(0, 4096);
  if (unit === "" && rng.chance(0.5)) return { value: amount, bytes: amount };
  return { value: `${amount}${rng.chance(0.2) ? " " : ""}${unit}`, bytes: amount * per };
}

function randomListen(rng: Rng): { value: string | number; hostname: string; port: number } {
  const port = rng.between(1, 65535);
  switch (rng.int(5)) {
    case 0:
      return { value: port, hostname: "", port };
    case 1:
      return { value: `:${port}`, hostname: "", port };
    case 2:
      return { value: `127.0.0.1:${port}`, hostname: "127.0.0.1", port };
    case 3:
      return { value: `[::1]:${port}`, hostname: "::1", port };
    default:
      return { value: `localhost:${port}`, hostname: "localhost", port };
  }
}

function randomCidr(rng: Rng): string {
  if (rng.chance(0.5)) {
    const octets = Array.from({ length: 4 }, () => rng.int(256)).join(".");
    return rng.chance(0.3) ? octets : `${octets}/${rng.between(0, 32)}`;
  }
  const groups = Array.from({ length: 8 }, () => rng.int(0x10000).toString(16));
  const text = rng.chance(0.5) ? groups.join(":") : `${groups.slice(0, 2).join(":")}::`;
  return rng.chance(0.3) ? text : `${text}/${rng.between(0, 128)}`;
}

function randomRoute(rng: Rng, key: string, host: string): [Record<string, unknown>, ExpectedRoute] {
  const body: Record<string, unknown> = {};
  const expected: ExpectedRoute = {
    key,
    host,
    kind: rng.chance(0.6) ? "proxy" : "redirect",
    href: "",
    status: 302,
    keepPath: false,
    cache: true,
    accessLog: true,
    maxBodyBytes: -1, // filled in from the global limits by the caller
    responseTimeoutMs: -1,
  };
  if (expected.kind === "proxy") {
    const scheme = rng.pick(["http", "https", "HTTP"]);
    const authority = rng.pick(["127.0.0.1", "[::1]", "backend.internal", "localhost", "10.0.0.7"]);
    const port = rng.chance(0.7) ? `:${rng.between(1, 65535)}` : "";
    const path = rng.pick(["", "/", "/api/v1", "/assets/"]);
    body.upstream = `${scheme}://${authority}${port}${path}`;
    expected.href = new URL(body.upstream as string).href;
    if (rng.chance(0.3)) {
      const timeout = randomDuration(rng);
      body.timeout = timeout.text;
      expected.responseTimeoutMs = timeout.ms;
    }
    if (rng.chance(0.3)) {
      const size = randomSize(rng);
      body.max_body = size.value;
      expected.maxBodyBytes = size.bytes;
    }
    if (rng.chance(0.3)) body.cache = expected.cache = rng.chance(0.5);
  } else {
    const target = `${randomLabel(rng).toLowerCase()}.${TARGET_TLD}${
      rng.pick(["", "/", "/blog", "/a/b?x=1"])
    }`;
    const scheme = rng.pick(["", "https://", "http://", "//"]);
    body.redirect = scheme + target;
    expected.href = new URL((scheme === "" ? "https://" : scheme === "//" ? "https:" : scheme) + target).href;
    if (rng.chance(0.4)) {
      expected.status = rng.pick([301, 302, 303, 307, 308]);
      body.status = rng.chance(0.8) ? expected.status : String(expected.status);
    }
    if (rng.chance(0.3)) body.keep_path = expected.keepPath = rng.chance(0.5);
  }
  if (rng.chance(0.2)) body.access_log = expected.accessLog = rng.chance(0.5);
  return [body, expected];
}

type Entries = Array<[string, unknown]>;

/** Wildcards, with Cloudflare or the internal issuer so that they can be certified. */
function randomCertificates(rng: Rng, entries: Entries): string[] {
  const wildcards = new Map<string, string>(); // lowercased -> as written
  for (let i = rng.chance(0.4) ? rng.between(1, 3) : 0; i > 0; i--) {
    const name = `*.${randomHostname(rng, rng.between(2, 3))}`;
    if (!wildcards.has(name.toLowerCase())) wildcards.set(name.toLowerCase(), name);
  }
  if (wildcards.size > 0) entries.push(["wildcards", [...wildcards.values()]]);
  const useCloudflare = rng.chance(0.5);
  if (useCloudflare) {
    const cloudflare: Record<string, unknown> = { api_token: `tok-${randomLabel(rng, 40)}-${rng.uint32()}` };
    if (rng.chance(0.3)) cloudflare.zone_id = rng.uint32().toString(16).padStart(8, "0").repeat(4);
    if (rng.chance(0.2)) cloudflare.api_base = "http://127.0.0.1:9000/client/v4/";
    entries.push(["cloudflare", cloudflare]);
  }
  if (wildcards.size > 0 && !useCloudflare) entries.push(["issuer", "internal"]);
  else if (rng.chance(0.3)) entries.push(["issuer", rng.pick(["acme", "internal"])]);
  return [...wildcards.keys()];
}

/** A `limits:` block (sometimes), and the limits routes inherit. */
function randomLimits(rng: Rng, entries: Entries): GeneratedConfig["limits"] {
  const limits = { maxBodyBytes: 10 * 1024 ** 2, responseTimeoutMs: 30_000, readTimeoutMs: 30_000 };
  if (!rng.chance(0.4)) return limits;
  const block: Record<string, unknown> = {};
  if (rng.chance(0.5)) {
    const size = randomSize(rng);
    block.max_body = size.value;
    limits.maxBodyBytes = size.bytes;
  }
  if (rng.chance(0.5)) {
    const timeout = randomDuration(rng);
    block.response_timeout = timeout.text;
    limits.responseTimeoutMs = timeout.ms;
  }
  if (rng.chance(0.5)) {
    const timeout = randomDuration(rng);
    block.read_timeout = timeout.text;
    limits.readTimeoutMs = timeout.ms;
  }
  if (rng.chance(0.3)) block.max_header = `${rng.between(1, 64)}KiB`;
  entries.push(["limits", block]);
  return limits;
}

/** The settings no oracle checks beyond "accepted": email, acme, trusted_proxies, admin, paths. */
function randomOtherSettings(rng: Rng, entries: Entries): void {
  if (rng.chance(0.3)) entries.push(["http_listen", randomListen(rng).value]);
  if (rng.chance(0.3)) {
    entries.push(["email", `${randomLabel(rng)}@${randomHostname(rng, rng.between(2, 3))}`]);
  }
  if (rng.chance(0.2)) entries.push(["staging", rng.chance(0.5)]);
  if (rng.chance(0.2)) entries.push(["base_dir", rng.pick(["/var/lib/nexo", "state", "./data/nexo"])]);
  if (rng.chance(0.3)) {
    const acme: Record<string, unknown> = {};
    if (rng.chance(0.5)) acme.directory = "https://localhost:14000/dir";
    if (rng.chance(0.5)) acme.renew_before = randomDuration(rng).text;
    if (rng.chance(0.5)) acme.dns_resolvers = ["1.1.1.1", "8.8.8.8:53", "[2606:4700:4700::1111]:53"];
    if (rng.chance(0.5)) acme.key_type = rng.pick(["ecdsa", "rsa", "RSA"]);
    entries.push(["acme", acme]);
  }
  if (rng.chance(0.3)) {
    entries.push(["trusted_proxies", Array.from({ length: rng.between(1, 3) }, () => randomCidr(rng))]);
  }
  if (rng.chance(0.2)) entries.push(["admin", { listen: randomListen(rng).value }]);
}

/** Up to `max` routes with distinct hosts, some one label under another route to pit exact against wildcard. */
function randomRoutes(rng: Rng, entries: Entries, max: number): ExpectedRoute[] {
  const proxies: Record<string, unknown> = {};
  const routes: ExpectedRoute[] = [];
  const count = rng.between(0, max);
  for (let i = 0; i < count; i++) {
    let key = rng.chance(0.25) ? `*.${randomHostname(rng, rng.between(2, 3))}` : randomHostname(rng);
    if (rng.chance(0.15) && routes.length > 0) {
      const base = rng.pick(routes).host.replace(/^\*\./, "");
      key = rng.chance(0.5) ? `${randomLabel(rng)}.${base}` : `*.${base}`;
      if (!key.replace(/^\*\./, "").includes(".")) continue;
    }
    const host = key.toLowerCase();
    if (host.length > 253 || routes.some((route) => route.host === host)) continue;
    const [body, expected] = randomRoute(rng, key, host);
    proxies[key] = body;
    routes.push(expected);
  }
  if (count > 0 || rng.chance(0.5)) entries.push(["proxies", proxies]);
  return routes;
}

/** Builds a random valid config and the values `parseConfig()` must read from it. */
export function randomConfig(rng: Rng, options: { maxRoutes?: number } = {}): GeneratedConfig {
  const entries: Entries = [];
  const listen = rng.chance(0.5) ? randomListen(rng) : null;
  if (listen) entries.push(["listen", listen.value]);
  randomOtherSettings(rng, entries);
  const wildcards = randomCertificates(rng, entries);
  const limits = randomLimits(rng, entries);
  const routes = randomRoutes(rng, entries, options.maxRoutes ?? 8);
  for (const route of routes) {
    if (route.maxBodyBytes < 0) route.maxBodyBytes = limits.maxBodyBytes;
    if (route.responseTimeoutMs < 0) route.responseTimeoutMs = limits.responseTimeoutMs;
  }
  // Key order is the user's business; the parser must not depend on it.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  const doc = Object.fromEntries(entries);
  return {
    yaml: toYaml(rng, doc),
    doc,
    routes,
    wildcards,
    listen: listen === null ? { hostname: "", port: 443 } : { hostname: listen.hostname, port: listen.port },
    limits,
  };
}

/** Serializes `doc` in a random but valid YAML style: block or flow, plain or quoted strings, 2-4 spaces. */
export function toYaml(rng: Rng, doc: unknown): string {
  if (Object.keys(doc as object).length === 0) return "{}\n";
  return stringify(doc, {
    collectionStyle: rng.pick(["any", "any", "block", "flow"] as const),
    defaultStringType: rng.pick(["PLAIN", "PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE"] as const),
    defaultKeyType: rng.pick([null, "PLAIN", "QUOTE_DOUBLE"] as const),
    indent: rng.between(2, 4),
    indentSeq: rng.chance(0.5),
    lineWidth: 0,
  });
}
