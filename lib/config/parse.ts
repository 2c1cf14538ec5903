// The user's YAML config -> the resolved `Config`: syntax, keys, types and values checked, defaults filled
// in, relative paths resolved against the config file's directory. Every problem is collected and thrown as
// one ConfigError. The blocks live in sections.ts and routes.ts; this file owns the top level and the I/O.

import { dirname, resolve } from "../path.ts";
import { isMap, LinePositions, parseYaml, type YamlSyntaxError } from "./yaml.ts";
import type { AdminConfig, Config, DnsConfig, Issuer, ListenAddress, Route, StorageConfig } from "./types.ts";
import { ConfigError, type ConfigIssue, sortIssues } from "./errors.ts";
import { DEFAULTS, LETS_ENCRYPT_DIRECTORY, LETS_ENCRYPT_STAGING_DIRECTORY } from "./defaults.ts";
import { parseListenAddress } from "./address.ts";
import { DEFAULT_HSTS, HSTS_KEYS, hstsHeaderValue, readHsts } from "./hsts.ts";
import { describe, type Field, Reader } from "./reader.ts";
import { readRoutes, ROUTE_KEYS } from "./routes.ts";
import {
  ACME_KEYS,
  CLOUDFLARE_KEYS,
  LIMITS_KEYS,
  readAcme,
  readLimits,
  readPath,
  readWildcards,
} from "./sections.ts";
import { didYouMean } from "./suggest.ts";
import { unreadableReason } from "./unreadable.ts";
import { readCidrList } from "./access.ts";
import { AUTH_KEYS, readSignIn, withSignInRoute } from "./sign_in.ts";
import { checkAcmeDnsNames, cloudflareShorthand, DNS_KEYS, readDns } from "./dns_provider.ts";
import { ACME_DNS_KEYS, EXEC_KEYS, RFC2136_KEYS } from "./dns_settings.ts";
import { providerFor } from "./dns_zones.ts";
import { readStorage, REDIS_KEYS, STORAGE_KEYS } from "./storage.ts";
import { ADMIN_KEYS, readAdmin } from "./admin.ts";

const TOP_KEYS = [
  "base_dir",
  "cert_dir",
  "email",
  "listen",
  "http_listen",
  "public_https_port",
  "staging",
  "issuer",
  "acme",
  "cloudflare",
  "dns",
  "wildcards",
  "limits",
  "trusted_proxies",
  "deny",
  "admin",
  "storage",
  "hsts",
  "auth",
  "proxies",
] as const;

const ISSUERS: readonly Issuer[] = ["acme", "internal"];

/**
 * Parses and validates a config file's text into a `Config`. `file` names the file in issues and anchors
 * relative paths (`base_dir`, `cert_dir`, `acme.ca_cert`): give it absolute, as `loadConfig()` does; a
 * relative one is resolved against the current directory. Pure apart from that. Throws `ConfigError` with
 * every issue found (YAML syntax, unknown keys, wrong types, bad values, inconsistent settings) in file
 * order; syntax errors alone are reported when there are any, since the rest would be guesswork.
 */
export function parseConfig(text: string, file: string): Config {
  const lines = new LinePositions(text);
  const doc = parseYaml(text);
  const r = new Reader(file, lines);
  const fail = (issues: ConfigIssue[]) =>
    new ConfigError(sortIssues(escapeControls(redactSecrets(issues, text))));
  if (doc.error) {
    reportSyntax(r, doc.error, lines, text);
    throw fail(r.issues);
  }
  const config = readTop(r, doc.root, resolve(file));
  if (config === null || r.issues.length > 0) throw fail(r.issues);
  return config;
}

/**
 * Reads the config file at `path` and parses it with `parseConfig()`, relative paths in it resolving against
 * the file's directory, then reads the files the config names for its upstreams' TLS (`upstream_tls`). Throws `ConfigError` for an invalid config, and also (as a single whole-file issue
 * naming the path and what to do) when the file does not exist, is a directory, or cannot be read for lack
 * of permission; other I/O errors are re-thrown as they are.
 */
export async function loadConfig(path: string): Promise<Config> {
  const file = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const reason = unreadableReason(error, {
      missing: "create it, or give the path of an existing config file",
      kind: "a YAML file",
      noun: "the config",
    });
    if (reason === null) throw error;
    throw new ConfigError([{ file, line: 0, col: 0, message: `cannot read the config file: ${reason}` }], {
      cause: error,
    });
  }
  return await checkConfigText(text, file);
}

/**
 * `parseConfig()` and then the checks of the files the config names (DNS provider secrets and hooks, upstream TLS
 * files, the shared store's files): what `loadConfig()` does once it has read the file, for a text that is not
 * on disk yet (the dashboard's editor). `file` must be absolute. Throws ConfigError as loadConfig does.
 */
export async function checkConfigText(text: string, file: string): Promise<Config> {
  const config = parseConfig(text, file);
  if (config.dns !== null) {
    const issues = await (await import("./dns_files.ts")).checkDnsFiles(config.dns);
    if (issues.length > 0) throw new ConfigError(sortIssues(escapeControls(issues)));
  }
  if (config.storage !== null) {
    // The password, CA and encryption key files are read now, so a missing or wrong one is a config error
    // rather than a server that cannot reach its certificates.
    const { readSharedStoreSettings } = await import("../storage/shared_store.ts");
    const position = config.storage.position;
    await readSharedStoreSettings(config.storage).catch((error: Error) => {
      throw new ConfigError(escapeControls([{ ...position, message: `storage: ${error.message}` }]));
    });
  }
  if (config.routes.some((route) => route.kind === "proxy" && route.upstreamTls !== null)) {
    const issues = await (await import("./upstream_tls_files.ts")).loadUpstreamTlsFiles(config);
    if (issues.length > 0) throw new ConfigError(sortIssues(escapeControls(issues)));
  }
  return config;
}

/** A YAML syntax error becomes an issue; an unquoted "*.example.com" anywhere gets its own hint too. */
function reportSyntax(r: Reader, error: YamlSyntaxError, lines: LinePositions, text: string): void {
  r.issues.push({
    file: r.file,
    ...lines.positionAt(error.offset),
    message: `invalid YAML: ${error.message}`,
  });
  text.split("\n").forEach((source, i) => {
    const match = /^(\s*(?:-\s+)?)(\*\.[^\s:"']+)/.exec(source);
    if (match === null) return;
    const [, indent = "", name = ""] = match;
    r.issues.push({
      file: r.file,
      line: i + 1,
      col: indent.length + 1,
      message: `${name} must be in quotes, since a leading "*" starts a YAML alias: write "${name}"`,
    });
  });
}

/** Reads the top-level mapping into a Config; null when the document is empty or not a mapping. */
function readTop(r: Reader, contents: unknown, file: string): Config | null {
  const root = r.resolve(contents);
  if (root === null || !isMap(root)) {
    const message = root === null
      ? `the config file is empty; write at least one setting, like a "proxies:" block with a host under it`
      : `the config must be a mapping of settings, like "proxies:" with a host under it; got ${
        describe(root)
      }`;
    r.issues.push({ ...(root === null ? { file: r.file, line: 1, col: 1 } : r.positionOf(root)), message });
    return null;
  }
  const rootField: Field = { name: "", path: "", keyNode: root, at: root, value: root };
  const fields = r.readMapping(rootField, {
    known: TOP_KEYS,
    expected: "a mapping of settings",
    hintUnknown: hintTopLevel,
  }) ?? new Map<string, Field>();
  const get = (key: (typeof TOP_KEYS)[number]) => fields.get(key);
  const configDir = dirname(file);
  const baseDir = readPath(r, get("base_dir"), { configDir }) ?? DEFAULTS.baseDir;
  const staging = optional(get("staging"), (f) => r.readBool(f)) ?? DEFAULTS.staging;
  const limits = readLimits(r, get("limits"));
  const dns = readDns(r, get("dns"), { configDir });
  const cloudflareField = get("cloudflare");
  if (cloudflareField !== undefined && get("dns") !== undefined) {
    r.report(
      cloudflareField.keyNode,
      `cloudflare: and dns: both name a DNS provider: keep one (cloudflare: is short for dns: { provider: ` +
        `cloudflare })`,
    );
  }
  const dnsConfig = cloudflareShorthand(cloudflareField, r) ?? dns;
  const issuer = optional(get("issuer"), (f) => readIssuer(r, f)) ?? DEFAULTS.issuer;
  const wildcards = readWildcards(r, get("wildcards"));
  const hsts = readTopHsts(r, get("hsts"));
  // A dns: block that did not read (reported above) names no provider; a cloudflare: one is judged alone.
  const dnsUnread = dnsConfig === null && (get("dns") !== undefined || cloudflareField !== undefined);
  if (!dnsUnread) checkWildcardsCanBeIssued(r, get("wildcards"), { wildcards, issuer, dns: dnsConfig });
  const auth = readSignIn(r, get("auth"));
  const routes = optional(get("proxies"), (f) => readRoutes(r, f, { limits, hsts, configDir })) ?? [];
  if (dns !== null && issuer === "acme") {
    checkAcmeDnsNames(r, get("dns")!, { dns, wildcards, hosts: routes.map((route) => route.host) });
  }
  const admin = readAdmin(r, get("admin"), {
    readListen: (f) => optional(f, (g) => readListen(r, g)),
    configDir,
  });
  checkAdminRoutes(r, routes, { admin });
  return {
    file,
    baseDir,
    certDir: readPath(r, get("cert_dir"), { configDir }) ?? resolve(baseDir, DEFAULTS.certDirName),
    email: optional(get("email"), (f) => readEmail(r, f)) ?? null,
    listen: optional(get("listen"), (f) => readListen(r, f)) ?? { ...DEFAULTS.listen },
    httpListen: optional(get("http_listen"), (f) => readListen(r, f)) ?? null,
    publicHttpsPort: optional(get("public_https_port"), (f) => readPort(r, f)) ?? DEFAULTS.publicHttpsPort,
    staging,
    issuer,
    acme: readAcme(r, get("acme"), {
      configDir,
      directory: staging ? LETS_ENCRYPT_STAGING_DIRECTORY : LETS_ENCRYPT_DIRECTORY,
    }),
    dns: dnsConfig,
    wildcards,
    limits,
    trustedProxies: readCidrList(r, get("trusted_proxies")),
    deny: readCidrList(r, get("deny")),
    admin,
    storage: readStorageFor(r, get("storage"), { configDir, issuer }),
    auth,
    routes: withSignInRoute(r, routes, { config: auth, field: get("auth"), hsts }),
  };
}

/**
 * The top-level `hsts:`, the default of every route without its own: on (one year) unless set. Every route is
 * HTTPS-only (http_listen only redirects to https), so every host can declare it (RFC 6797 §7.2).
 */
function readTopHsts(r: Reader, field: Field | undefined): string | null {
  const value = field === undefined ? undefined : readHsts(r, field);
  return value === undefined ? hstsHeaderValue(DEFAULT_HSTS) : value;
}

/** A route with admin: true serves the dashboard, which exists only with admin.password_hash. */
function checkAdminRoutes(
  r: Reader,
  routes: Route[],
  options: { admin: AdminConfig | null },
): void {
  if (options.admin?.passwordHash) return;
  for (const route of routes.filter((route) => route.kind === "admin")) {
    r.issues.push({
      ...route.position,
      message:
        `proxies."${route.host}" has admin: true, which serves nexo's dashboard, and the dashboard needs a ` +
        `password: add admin: { listen: "127.0.0.1:9090", password_hash: "..." } (\`nexo hash-password\` ` +
        `prints the hash)`,
    });
  }
}

/**
 * `storage:` (storage.ts). It shares what ACME obtains; `issuer: internal` mints from each instance's own
 * local CA, which a shared store would not make one.
 */
function readStorageFor(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string; issuer: Issuer },
): StorageConfig | null {
  const storage = readStorage(r, field, options);
  if (storage !== null && options.issuer === "internal") {
    r.report(
      field!.keyNode,
      `storage: shares certificates obtained through ACME, and issuer: internal obtains none (each instance ` +
        `has its own local CA): remove storage:, or use issuer: acme`,
    );
  }
  return storage;
}

/** Where a key that is unknown at the top level belongs, if it belongs somewhere else. */
function hintTopLevel(name: string): string | null {
  const blocks: [string, readonly string[]][] = [
    ["limits:", LIMITS_KEYS],
    ["acme:", ACME_KEYS],
    ["cloudflare:", CLOUDFLARE_KEYS],
    ["dns:", DNS_KEYS],
    ["dns.rfc2136:", RFC2136_KEYS],
    ["dns.exec:", EXEC_KEYS],
    ["dns.acme_dns:", ACME_DNS_KEYS],
    ["hsts:", HSTS_KEYS],
    ["admin:", ADMIN_KEYS],
    ["storage:", STORAGE_KEYS],
    ["storage.redis:", REDIS_KEYS],
    ["auth:", AUTH_KEYS],
    [`a route, under a host in proxies:`, ROUTE_KEYS],
  ];
  const home = blocks.find(([, keys]) => keys.includes(name));
  if (home !== undefined) return ` (${name} belongs in ${home[0]})`;
  return didYouMean(name, TOP_KEYS) || null;
}

/** ACME CAs issue wildcard certificates only through DNS-01 (RFC 8555 §7.1.3); nexo's DNS is Cloudflare. */
function checkWildcardsCanBeIssued(
  r: Reader,
  field: Field | undefined,
  options: { wildcards: string[]; issuer: Issuer; dns: DnsConfig | null },
): void {
  const { wildcards, issuer, dns } = options;
  if (field === undefined || issuer !== "acme") return;
  const uncovered = wildcards.filter((wildcard) => dns === null || providerFor(wildcard, dns) === null);
  if (uncovered.length === 0) return;
  r.report(
    field.keyNode,
    dns === null
      ? `wildcards need the ACME DNS-01 challenge, which nexo answers through a DNS provider: add a ` +
        `cloudflare: block with an api_token, or a dns: block (or set issuer: internal)`
      : `wildcards need the ACME DNS-01 challenge, and no dns.zones entry covers ${uncovered.join(", ")}: ` +
        `add its zone to dns.zones, or a dns.provider for every other name`,
  );
}

/** Reads an optional field: undefined when absent or empty (`key:`), or when invalid (then reported). */
function optional<T>(field: Field | undefined, read: (field: Field) => T | undefined): T | undefined {
  return field === undefined || field.value === null ? undefined : read(field);
}

function readIssuer(r: Reader, f: Field): Issuer | undefined {
  const value = r.readString(f);
  if (value === undefined) return undefined;
  const issuer = ISSUERS.find((known) => known === value);
  if (issuer === undefined) {
    r.report(
      f.at,
      `${f.path} must be "acme" or "internal", got ${JSON.stringify(value)}${didYouMean(value, ISSUERS)}`,
    );
  }
  return issuer;
}

function readEmail(r: Reader, f: Field): string | undefined {
  const value = r.readString(f)?.trim();
  if (value === undefined) return undefined;
  const mailto = value.toLowerCase().startsWith("mailto:");
  if (!mailto && /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/.test(value)) return value;
  const hint = mailto ? ` (remove "mailto:")` : "";
  r.report(
    f.at,
    `${f.path} must be an email address like "admin@example.com", got ${JSON.stringify(value)}${hint}`,
  );
  return undefined;
}

function readListen(r: Reader, f: Field): ListenAddress | undefined {
  const text = r.readScalarText(f, `an address like ":443" or "127.0.0.1:8443"`);
  if (text === undefined) return undefined;
  try {
    return parseListenAddress(text);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    r.report(f.at, `${f.path}: ${error.message}`);
    return undefined;
  }
}

/** A TCP port, 1-65535, written as a number or a string of digits. */
function readPort(r: Reader, f: Field): number | undefined {
  const text = r.readScalarText(f, "a port number like 443");
  if (text === undefined) return undefined;
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN;
  if (port >= 1 && port <= 65535) return port;
  r.report(f.at, `${f.path} must be a port number from 1 to 65535, got ${JSON.stringify(text)}`);
  return undefined;
}

/** C0 and C1 control characters and the Unicode line and paragraph separators. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Writes control characters in messages as escapes ("\n", "\u0085"). Messages quote what the user wrote
 * (a key, a label, a unit), and a raw newline there would split an issue over two lines of output, while
 * other controls garble a terminal or a text log.
 */
function escapeControls(issues: ConfigIssue[]): ConfigIssue[] {
  const escape = (c: string) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  return issues.map((issue) => ({ ...issue, message: issue.message.replace(CONTROL_CHARACTERS, escape) }));
}

/**
 * Replaces the secrets written in the config (Cloudflare's `api_token`, GitHub's `client_secret`, the EAB
 * `hmac_key`) with "<api_token>", "<client_secret>" and "<hmac_key>" in every message, should any message
 * have picked one up (a value quoted back, a mistyped key). They are found in the raw text, so this works
 * even when the YAML does not parse. Values under 6 characters are left alone: replacing them would garble
 * text.
 */
function redactSecrets(issues: ConfigIssue[], text: string): ConfigIssue[] {
  const secrets = [
    ...text.matchAll(/\b(api_token|client_secret|hmac_key|metrics_token)\s*:\s*["']?([^"'\s#,}\]]+)/g),
  ]
    // YAML ends a plain value at ": ", so "api_token: t0ken: x" quotes "t0ken" alone: redact that form too.
    .flatMap((match) => {
      const [, key = "", secret = ""] = match;
      return (secret.endsWith(":") ? [secret, secret.slice(0, -1)] : [secret]).map((value) => ({
        key,
        value,
      }));
    })
    .filter(({ value }) => value.length >= 6);
  if (secrets.length === 0) return issues;
  return issues.map((issue) => ({
    ...issue,
    message: secrets.reduce(
      (message, { key, value }) => message.replaceAll(value, `<${key}>`),
      issue.message,
    ),
  }));
}
