// GitHub sign-in in the config (issue 14): the top-level `auth:` block (the sign-in host, the GitHub OAuth
// app, the session lifetime), each route's `github_auth: { allowed_users }`, and the checks that tie them
// together. The sign-in host becomes a route of its own ("sign-in"), so it is routed and certified like any
// other host. The flow itself is lib/access/github_auth.ts's.

import type { GitHubApp, GitHubAuth, Route, SignInConfig, SignInRoute } from "./types.ts";
import { isWildcard, normalizeHostname } from "./hostname.ts";
import type { Field, Reader } from "./reader.ts";
import { readHttpUrl } from "./url.ts";

export const AUTH_KEYS: readonly string[] = ["host", "github", "session_ttl"];
const GITHUB_KEYS = ["client_id", "client_secret", "api_base", "oauth_base"] as const;
const GITHUB_AUTH_KEYS = ["allowed_users"] as const;

const AUTH_EXAMPLE = `{ host: auth.example.com, github: { client_id: "...", client_secret: "..." } }`;
const GITHUB_AUTH_EXAMPLE = "{ allowed_users: [octocat] }";
const GITHUB_API_BASE = "https://api.github.com";
const GITHUB_OAUTH_BASE = "https://github.com";
/** A day: a person signs in once a day at most, as with oauth2-proxy's default cookie (168h there). */
const DEFAULT_SESSION_TTL_MS = 24 * 3_600_000;
/** A minute: a session shorter than the sign-in round trip would never be used. */
const MIN_SESSION_TTL_MS = 60_000;
/** A GitHub login: letters, digits and single hyphens inside, at most 39 characters. */
const GITHUB_LOGIN = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$/i;

/** Reads `auth:`; null when absent. Invalid values are reported (the caller checks `r.issues`). */
export function readSignIn(r: Reader, field: Field | undefined): SignInConfig | null {
  if (field === undefined || field.value === null) return null;
  const fields = r.readMapping(field, { known: AUTH_KEYS, expected: `a mapping like ${AUTH_EXAMPLE}` });
  if (fields === null) return null;
  const hostField = fields.get("host");
  let host: string | undefined;
  if (hostField === undefined) {
    r.report(field.at, `${field.path} needs the host that serves sign-in pages, like ${AUTH_EXAMPLE}`);
  } else {
    const text = r.readString(hostField);
    if (text !== undefined && isWildcard(text.trim())) {
      r.report(
        hostField.at,
        `${hostField.path} must be one host name, like auth.example.com, not a wildcard`,
      );
    } else if (text !== undefined) {
      try {
        host = normalizeHostname(text);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        r.report(hostField.at, `${hostField.path}: ${error.message}`);
      }
    }
  }
  const githubField = fields.get("github");
  const github = githubField === undefined ? null : readGitHubApp(r, githubField);
  const ttlField = fields.get("session_ttl");
  let sessionTtlMs: number | undefined = DEFAULT_SESSION_TTL_MS;
  if (ttlField !== undefined) {
    sessionTtlMs = r.readDuration(ttlField);
    if (sessionTtlMs !== undefined && sessionTtlMs < MIN_SESSION_TTL_MS) {
      r.report(ttlField.at, `${ttlField.path} must be at least 1m (a session must outlive its sign-in)`);
    }
  }
  if (host === undefined || sessionTtlMs === undefined) return null;
  return { host, github: github ?? null, sessionTtlMs };
}

/** Reads `auth.github`; undefined when invalid (reported). */
function readGitHubApp(r: Reader, field: Field): GitHubApp | undefined {
  const example = `{ client_id: "...", client_secret: "..." } (from https://github.com/settings/developers)`;
  const fields = r.readMapping(field, { known: GITHUB_KEYS, expected: `a mapping like ${example}` });
  if (fields === null) return undefined;
  const idField = fields.get("client_id");
  const secretField = fields.get("client_secret");
  if (idField === undefined || secretField === undefined) {
    const missing = idField === undefined ? "client_id" : "client_secret";
    r.report(field.at, `${field.path} needs ${missing}, like ${example}`);
    return undefined;
  }
  const clientId = r.readString(idField)?.trim();
  const clientSecret = r.readString(secretField, { secret: true })?.trim();
  const base = (key: "api_base" | "oauth_base", fallback: string) => {
    const f = fields.get(key);
    return f === undefined ? new URL(fallback) : readHttpUrl(r, f);
  };
  const apiBase = base("api_base", GITHUB_API_BASE);
  const oauthBase = base("oauth_base", GITHUB_OAUTH_BASE);
  if (!clientId || !clientSecret || apiBase === null || oauthBase === null) return undefined;
  return { clientId, clientSecret, apiBase, oauthBase };
}

/** Reads a route's `github_auth: { allowed_users: [...] }`; undefined when invalid (reported). */
export function readGitHubAuth(r: Reader, field: Field): GitHubAuth | undefined {
  const fields = r.readMapping(field, {
    known: GITHUB_AUTH_KEYS,
    expected: `a mapping like ${GITHUB_AUTH_EXAMPLE}`,
  });
  if (fields === null) return undefined;
  const usersField = fields.get("allowed_users");
  if (usersField === undefined || usersField.value === null) {
    r.report(
      field.at,
      `${field.path} needs allowed_users, the GitHub logins let in, like ${GITHUB_AUTH_EXAMPLE}`,
    );
    return undefined;
  }
  const issuesBefore = r.issues.length;
  const allowedUsers: string[] = [];
  for (const { value, node, path } of r.readStringList(usersField, "octocat")) {
    const login = value.trim().replace(/^@/, "");
    if (GITHUB_LOGIN.test(login)) allowedUsers.push(login.toLowerCase());
    else {
      r.report(
        node,
        `${path} must be a GitHub login (letters, digits and single hyphens, at most 39), got ` +
          JSON.stringify(value),
      );
    }
  }
  if (r.issues.length > issuesBefore) return undefined;
  if (allowedUsers.length === 0) {
    r.report(usersField.at, `${usersField.path} is empty, which would refuse everyone; list GitHub logins`);
    return undefined;
  }
  return { allowedUsers };
}

/**
 * The routes with the sign-in host added: checks that every `github_auth` route has `auth` with `github` to
 * sign in through, and that the sign-in host is not also a route of its own. Reports and returns `routes`
 * unchanged when something is wrong.
 */
export function withSignInRoute(
  r: Reader,
  routes: Route[],
  auth: { config: SignInConfig | null; field: Field | undefined; hsts: string | null },
): Route[] {
  const { config, field } = auth;
  for (const route of routes) {
    if ((route.access?.githubAuth ?? null) === null || (config?.github ?? null) !== null) continue;
    r.issues.push({
      ...route.position,
      message: `proxies."${route.host}".github_auth needs GitHub sign-in set up at the top level: add ` +
        (config === null
          ? `auth: ${AUTH_EXAMPLE}`
          : `auth.github: { client_id: "...", client_secret: "..." }`),
    });
  }
  if (config === null || field === undefined) return routes;
  const clash = routes.find((route) => route.host === config.host);
  if (clash !== undefined) {
    r.issues.push({
      ...clash.position,
      message: `proxies."${clash.host}" is also auth.host, which serves only nexo's sign-in pages; ` +
        `choose another auth.host (like "auth.${clash.host}") or remove this route`,
    });
    return routes;
  }
  const signIn: SignInRoute = {
    kind: "sign-in",
    host: config.host,
    accessLog: true,
    hsts: auth.hsts,
    access: null,
    position: r.positionOf(field.keyNode),
  };
  return [...routes, signIn];
}
