// Host routing: which configured route answers a request's Host. Pure and allocation-light, built once per
// config and swapped whole on reload. Exact hosts win over one-label wildcards ("*.example.com" matches
// "a.example.com", not "example.com" nor "b.a.example.com"); case and port are ignored.
// It does not know about certificates or upstreams; lib/server/handler.ts acts on the route it returns.

import type { Route } from "./config/types.ts";
import { coveringWildcard, isWildcard } from "./config/hostname.ts";

/** An immutable host -> route index. */
export interface RouteTable {
  readonly exact: ReadonlyMap<string, Route>;
  /** Wildcard routes keyed by their host ("*.example.com"). */
  readonly wildcard: ReadonlyMap<string, Route>;
  readonly routes: readonly Route[];
}

/** Builds the index. Route hosts are already lowercased and unique (lib/config/parse.ts guarantees it). */
export function buildRouteTable(routes: readonly Route[]): RouteTable {
  const exact = new Map<string, Route>();
  const wildcard = new Map<string, Route>();
  for (const route of routes) {
    if (isWildcard(route.host)) wildcard.set(route.host, route);
    else exact.set(route.host, route);
  }
  return { exact, wildcard, routes };
}

/**
 * Returns the route for a Host header or :authority value ("Api.Example.com:443"), or undefined when no route
 * matches. Never throws, whatever the input.
 */
export function matchRoute(table: RouteTable, hostHeader: string): Route | undefined {
  const host = normalizeHost(hostHeader);
  if (host === "") return undefined;
  const route = table.exact.get(host);
  if (route) return route;
  const wildcard = coveringWildcard(host);
  return wildcard === null ? undefined : table.wildcard.get(wildcard);
}

/**
 * Lowercases a Host value and strips its port and a trailing dot. Returns "" for anything that is not a
 * plain host name (letters, digits, "-", "_" and dots) or a bracketed IPv6 literal, so that a crafted Host
 * ("evil%2ecom/.example.com") can neither match a wildcard route nor reach a Location header. IPv6 literals
 * come back bracketed ("[::1]"), which no route key can equal.
 */
export function normalizeHost(hostHeader: string): string {
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === 0x5b /* [ */) {
    const close = hostHeader.indexOf("]");
    if (close === -1) return "";
    end = close + 1;
    const literal = hostHeader.slice(0, end);
    return IPV6_LITERAL.test(literal) && isPortOrNothing(hostHeader.slice(end)) ? literal.toLowerCase() : "";
  }
  const colon = hostHeader.indexOf(":");
  if (colon !== -1) {
    if (!isPortOrNothing(hostHeader.slice(colon))) return "";
    end = colon;
  }
  if (end > 0 && hostHeader.charCodeAt(end - 1) === 0x2e /* . */) end--;
  const host = end === hostHeader.length ? hostHeader : hostHeader.slice(0, end);
  return HOST_NAME.test(host) ? host.toLowerCase() : "";
}

/**
 * RFC 3986 §3.2.2 reg-name restricted to what DNS names use ("_" appears in real-world service names), at
 * most 253 characters, with no empty label: "a..b" is no name, and allowing one let "example.com.." lose one
 * dot per normalization, so the server (which normalizes, then matches) routed it while a lookup did not.
 */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$/;
const IPV6_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/;

function isPortOrNothing(rest: string): boolean {
  return rest === "" || (/^:\d{1,5}$/.test(rest) && Number(rest.slice(1)) <= 65535);
}
