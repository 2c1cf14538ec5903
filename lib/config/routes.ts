// The `proxies:` block: host -> route, each either a proxy (upstream) or a redirect (redirect), validated
// and merged with the global limits into `Route`s. Reports into the Reader; does not match requests to
// routes (lib/router.ts) or forward them (lib/proxy/).

import type { Balancing, RedirectStatus, Route, RouteAccess, RouteLimits, UpstreamTls } from "./types.ts";
import { BALANCING_KEYS, readBalancing, readUpstreams } from "./upstreams.ts";
import { readUpstreamTls, UPSTREAM_TLS_KEY } from "./upstream_tls.ts";
import { isMap, isScalar } from "./yaml.ts";
import { DEFAULTS } from "./defaults.ts";
import { ACCESS_KEYS, readRouteAccess } from "./access.ts";
import { readHsts } from "./hsts.ts";
import { coveringWildcard, isWildcard, normalizeRouteHost } from "./hostname.ts";
import { describe, type Field, type Reader } from "./reader.ts";
import { HAS_SCHEME, OTHER_SCHEME, parseUrl, quoteUrl, readUrlText, UPSTREAM_EXAMPLE } from "./url.ts";
import { suggestKey } from "./suggest.ts";

const PROXY_KEYS = [
  "upstream",
  "timeout",
  "body_timeout",
  "max_body",
  "cache",
  ...BALANCING_KEYS,
  UPSTREAM_TLS_KEY,
] as const;
const REDIRECT_KEYS = ["redirect", "status", "keep_path"] as const;
/** Every key a route may have; which ones fit depends on the route's kind. */
export const ROUTE_KEYS: readonly string[] = [
  ...PROXY_KEYS,
  ...REDIRECT_KEYS,
  "access_log",
  "hsts",
  "admin",
  ...ACCESS_KEYS,
];
const REDIRECT_STATUSES: readonly RedirectStatus[] = [301, 302, 303, 307, 308];

/** Options for `readRoutes()`: the server-wide settings a route inherits unless it overrides them. */
export interface RouteDefaults {
  limits: RouteLimits;
  /** The Strict-Transport-Security value of routes without `hsts:` (the top-level one), or null for none. */
  hsts: string | null;
  /** The config file's directory, which relative paths (`upstream_tls` files) start from. */
  configDir: string;
}

/**
 * Reads the `proxies:` field into routes, in file order, each proxy route's limits being `options.limits`
 * with the route's `timeout` and `max_body` applied, and each route's `hsts` replacing `options.hsts` as a
 * whole. An empty or absent block gives no routes. Invalid routes are reported into `r` and left out, so the
 * caller must check `r.issues` before using the result.
 */
export function readRoutes(r: Reader, f: Field, options: RouteDefaults): Route[] {
  if (f.value === null) return [];
  const expected =
    `a mapping of host names to routes, like "api.example.com": {upstream: ${UPSTREAM_EXAMPLE}}`;
  const fields = r.readMapping(f, { known: null, expected });
  if (fields === null) return [];
  const routes: Route[] = [];
  const seen = new Map<string, Field>();
  for (const field of fields.values()) {
    let host: string;
    try {
      host = normalizeRouteHost(field.name);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      r.report(field.keyNode, `${f.path}: ${error.message}`);
      readRoute(r, field, field.name.toLowerCase(), options); // still report what is wrong inside it
      continue;
    }
    const first = seen.get(host);
    if (first !== undefined) {
      const line = r.positionOf(first.keyNode).line;
      r.report(
        field.keyNode,
        `${field.path} is the same host as "${first.name}" on line ${line} (host names are ` +
          `case-insensitive); merge the two routes`,
      );
      continue;
    }
    seen.set(host, field);
    const route = readRoute(r, field, host, options);
    if (route !== undefined) routes.push(route);
  }
  return routes;
}

/** Values a route's fields hold, each undefined when not given. */
interface RouteValues {
  upstreams?: URL[] | undefined;
  /** Read only for a proxy route whose upstreams are valid. */
  balancing?: Balancing | null | undefined;
  /** Read only for a proxy route whose upstreams are valid. */
  upstreamTls?: UpstreamTls | null | undefined;
  target?: URL | undefined;
  timeout?: number | undefined;
  bodyTimeout?: number | undefined;
  maxBody?: number | undefined;
  cache?: boolean | undefined;
  status?: RedirectStatus | undefined;
  keepPath?: boolean | undefined;
  accessLog?: boolean | undefined;
  /** A string or null (`hsts: false`) when given; undefined for the default. */
  hsts?: string | null | undefined;
  access: RouteAccess | null;
}

/** Reads one route; undefined when anything about it was reported (which is what makes it invalid). */
function readRoute(r: Reader, route: Field, host: string, defaults: RouteDefaults): Route | undefined {
  const issuesBefore = r.issues.length;
  if (route.value === null) {
    r.report(route.keyNode, `${route.path} is empty; it ${needsKind()}`);
    return undefined;
  }
  if (isScalar(route.value) && typeof route.value.value === "string") {
    const key = /^[a-z][a-z0-9+.-]*:\/\//i.test(route.value.value) ? "upstream" : "redirect";
    r.report(
      route.at,
      `${route.path} must be a mapping with an upstream or a redirect, got ${describe(route.value)} (put ` +
        `"${key}: ${route.value.value}" on the next line, indented)`,
    );
    return undefined;
  }
  const expected = `a mapping with an upstream or a redirect`;
  const fields = r.readMapping(route, { known: ROUTE_KEYS, expected });
  if (fields === null) return undefined;
  const kind = readKind(r, route, fields);
  const read = <T>(key: string, reader: (field: Field) => T | null | undefined): T | undefined => {
    const field = fields.get(key);
    return field === undefined ? undefined : reader(field) ?? undefined;
  };
  const hstsField = fields.get("hsts");
  const values: RouteValues = {
    upstreams: read("upstream", (field) => readUpstreams(r, field)),
    target: read("redirect", (field) => readTarget(r, field, host)),
    timeout: read("timeout", (field) => r.readDuration(field)),
    bodyTimeout: read("body_timeout", (field) => r.readDuration(field)),
    maxBody: read("max_body", (field) => r.readSize(field)),
    cache: read("cache", (field) => r.readBool(field)),
    status: read("status", (field) => readStatus(r, field)),
    keepPath: read("keep_path", (field) => r.readBool(field)),
    accessLog: read("access_log", (field) => r.readBool(field)),
    // Not through read(): its `?? undefined` would turn `hsts: false` (null) into "the default".
    hsts: hstsField === undefined ? undefined : readHsts(r, hstsField),
    access: readRouteAccess(r, fields),
  };
  if (kind === "proxy" && values.upstreams !== undefined) {
    values.balancing = readBalancing(r, fields, values.upstreams.length);
    values.upstreamTls = readUpstreamTls(
      r,
      fields.get(UPSTREAM_TLS_KEY),
      values.upstreams,
      defaults.configDir,
    );
  }
  if (r.issues.length > issuesBefore || kind === null) return undefined;
  return buildRoute(r, route, host, kind, values, defaults);
}

function buildRoute(
  r: Reader,
  route: Field,
  host: string,
  kind: "proxy" | "redirect" | "admin",
  values: RouteValues,
  defaults: RouteDefaults,
): Route | undefined {
  const { limits } = defaults;
  const base = {
    host,
    accessLog: values.accessLog ?? DEFAULTS.accessLog,
    hsts: values.hsts === undefined ? defaults.hsts : values.hsts,
    access: values.access,
    position: r.positionOf(route.keyNode),
  };
  if (kind === "admin") return { ...base, kind };
  if (kind === "proxy") {
    if (
      values.upstreams === undefined || values.balancing === undefined || values.upstreamTls === undefined
    ) {
      return undefined;
    }
    const routeLimits: RouteLimits = {
      maxBodyBytes: values.maxBody ?? limits.maxBodyBytes,
      responseTimeoutMs: values.timeout ?? limits.responseTimeoutMs,
      bodyTimeoutMs: values.bodyTimeout ?? limits.bodyTimeoutMs,
    };
    return {
      ...base,
      kind,
      upstreams: values.upstreams,
      balancing: values.balancing,
      upstreamTls: values.upstreamTls,
      cache: values.cache ?? DEFAULTS.cache,
      limits: routeLimits,
    };
  }
  if (values.target === undefined) return undefined;
  return {
    ...base,
    kind,
    target: values.target,
    status: values.status ?? DEFAULTS.redirectStatus,
    keepPath: values.keepPath ?? DEFAULTS.keepPath,
  };
}

/** Which kind of route this is; null (reported) when it has both or neither of upstream and redirect. */
function readKind(
  r: Reader,
  route: Field,
  fields: Map<string, Field>,
): "proxy" | "redirect" | "admin" | null {
  const hasUpstream = fields.has("upstream");
  const hasRedirect = fields.has("redirect");
  const adminField = fields.get("admin");
  if (adminField !== undefined) {
    const admin = r.readBool(adminField);
    if (admin === undefined) return null;
    if (!admin) {
      r.report(adminField.at, `${adminField.path}: false is the default; remove it, or write admin: true`);
      return null;
    }
    // Sign-in rules in front of the dashboard would be skipped by its own sign-in: refused, not ignored.
    const other = [...fields.values()].find((f) =>
      ["basic_auth", "github_auth", "forward_auth"].includes(f.name) ||
      PROXY_KEYS.includes(f.name as never) || REDIRECT_KEYS.includes(f.name as never)
    );
    if (other !== undefined) {
      r.report(
        other.keyNode,
        `${other.path} does not apply to a route with admin: true, which serves nexo's dashboard behind its ` +
          `own sign-in: remove it`,
      );
      return null;
    }
    return "admin";
  }
  if (hasUpstream && hasRedirect) {
    r.report(
      route.keyNode,
      `${route.path} has both upstream and redirect; a route either proxies (upstream) or redirects ` +
        `(redirect): remove one of them`,
    );
    return null;
  }
  if (!hasUpstream && !hasRedirect) {
    // A misspelt "upstrem:" was already reported as an unknown key with its fix: once is enough.
    const misspelt = isMap(route.value) && route.value.items.some(({ key }) => {
      const suggestion = isScalar(key) ? suggestKey(key.source, ROUTE_KEYS) : null;
      return suggestion === "upstream" || suggestion === "redirect";
    });
    if (!misspelt) r.report(route.keyNode, `${route.path} ${needsKind()}`);
    return null;
  }
  const kind = hasUpstream ? "proxy" : "redirect";
  reportMisplacedKeys(r, fields, kind);
  return kind;
}

function needsKind(): string {
  return `needs an upstream (to proxy, like upstream: ${UPSTREAM_EXAMPLE}) or a redirect (to redirect, ` +
    `like redirect: example.org/blog)`;
}

/** Reports keys that belong to the other kind of route, naming the kind that takes them. */
function reportMisplacedKeys(r: Reader, fields: Map<string, Field>, kind: "proxy" | "redirect"): void {
  const foreign: readonly string[] = kind === "proxy" ? REDIRECT_KEYS : PROXY_KEYS;
  for (const field of fields.values()) {
    if (!foreign.includes(field.name)) continue;
    const message = kind === "proxy"
      ? `${field.path} only applies to redirect routes (with redirect), and this route proxies to an upstream`
      : `${field.path} only applies to proxy routes (with upstream), and this route is a redirect`;
    r.report(field.keyNode, `${message}; remove it`);
  }
}

/** The redirect target, "https://" added when no scheme is written, or null when invalid (reported). */
function readTarget(r: Reader, f: Field, host: string): URL | null {
  const text = readUrlText(r, f, `"example.org/blog"`);
  if (text === undefined) return null;
  const fail = (reason: string) => {
    const expected = `a URL or a host and path like "example.org/blog"`;
    r.report(f.at, `${f.path} must be ${expected}, got ${quoteUrl(text, "redirect")} (${reason})`);
    return null;
  };
  const other = OTHER_SCHEME.exec(text)?.[1];
  if (other !== undefined) return fail(`scheme "${other}" is not supported; use http:// or https://`);
  const prefix = HAS_SCHEME.test(text) ? "" : text.startsWith("//") ? "https:" : "https://";
  const url = parseUrl(prefix + text);
  if (url === null) return fail("it does not parse as a URL");
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(`scheme "${url.protocol.slice(0, -1)}" is not supported; use http:// or https://`);
  }
  if (url.username !== "" || url.password !== "") {
    r.report(f.at, `${f.path} must not contain a user name or password`);
    return null;
  }
  if (url.port === "" && coversHost(host, url.hostname)) {
    r.report(
      f.at,
      `${f.path} points back to ${url.hostname}, which this route redirects again (a loop); redirect to ` +
        `another host`,
    );
    return null;
  }
  return url;
}

/** Reads a non-empty string for a URL field; undefined when empty or not a string (reported). */
function readStatus(r: Reader, f: Field): RedirectStatus | undefined {
  const text = r.readScalarText(f, "an HTTP redirect status: 301, 302, 303, 307 or 308");
  if (text === undefined) return undefined;
  const status = REDIRECT_STATUSES.find((code) => String(code) === text.trim());
  if (status === undefined) {
    r.report(f.at, `${f.path} must be 301, 302, 303, 307 or 308, got ${describe(f.value)}`);
  }
  return status;
}

/** Whether a request for `target` would be served by the route for `host` (exact or one-label wildcard). */
function coversHost(host: string, target: string): boolean {
  return host === target || (isWildcard(host) && coveringWildcard(target) === host);
}
