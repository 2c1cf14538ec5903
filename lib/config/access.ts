// Who may reach a route: the top-level `deny` and each route's `allow`, `deny`, `rate_limit`, `basic_auth`,
// `github_auth` (sign_in.ts) and `forward_auth` (issue 14), validated into plain data. Reports into the Reader; the checks themselves run in lib/access/.

import { parseCidr } from "../cidr.ts";
import { parseBcryptHash } from "../auth/bcrypt_format.ts";
import type { BasicAuth, Config, ForwardAuth, RateLimit, RouteAccess } from "./types.ts";
import { readGitHubAuth } from "./sign_in.ts";
import { readHttpUrl } from "./url.ts";
import type { Field, Reader } from "./reader.ts";

/** The route keys this module reads. */
export const ACCESS_KEYS = [
  "allow",
  "deny",
  "rate_limit",
  "basic_auth",
  "github_auth",
  "forward_auth",
] as const;

const RATE_LIMIT_KEYS = ["requests", "per", "burst"] as const;
const FORWARD_AUTH_KEYS = ["url", "copy_headers", "timeout"] as const;
const BASIC_AUTH_KEYS = ["users", "realm", "pass_credentials"] as const;
const BASIC_AUTH_EXAMPLE = `{ users: { alice: "$2b$12$..." } } (nexo hash-password makes a hash)`;
/**
 * Costliest bcrypt hash accepted: each check of a password runs 2^cost rounds, about 1 s of CPU at 14 on a
 * small VPS (cost 12: 0.25 s measured here), and a wrong password is never cached.
 */
const MAX_BCRYPT_COST = 14;
const FORWARD_AUTH_EXAMPLE = `{ url: "http://127.0.0.1:9091/api/verify", copy_headers: [Remote-User] }`;
/** How long nexo waits for an auth server's answer unless `forward_auth.timeout` says otherwise. */
const DEFAULT_FORWARD_AUTH_TIMEOUT_MS = 10_000;
/** The realm of `basic_auth` without one: what the browser's sign-in prompt names. */
const DEFAULT_REALM = "restricted";
/** A header field name (RFC 9110 §5.1: a token). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RATE_LIMIT_EXAMPLE = "{ requests: 100, per: 1m }";
/** Above this a limit no longer limits anything a proxy on a small VPS could serve. */
const MAX_REQUESTS = 1_000_000;

/** Whether a config has any access rule or a sign-in host (and so needs lib/access/ loaded). */
export function usesAccessRules(config: Config): boolean {
  return config.deny.length > 0 || config.auth !== null ||
    config.routes.some((route) => route.access !== null);
}

/**
 * Reads a list of CIDRs or addresses (`trusted_proxies`, `allow`, `deny`): each invalid entry is reported and
 * left out. Entries are kept as written (trimmed); lib/cidr.ts parses them again where they are used.
 */
export function readCidrList(r: Reader, field: Field | undefined): string[] {
  if (field === undefined || field.value === null) return [];
  const out: string[] = [];
  for (const { value, node, path } of r.readStringList(field, `"192.0.2.0/24"`)) {
    try {
      parseCidr(value);
      out.push(value.trim());
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      r.report(node, `${path}: ${error.message}`);
    }
  }
  return out;
}

/** A route's access rules from its fields; null when it has none (nothing is loaded or checked for it). */
export function readRouteAccess(r: Reader, fields: Map<string, Field>): RouteAccess | null {
  const allowField = fields.get("allow");
  const denyField = fields.get("deny");
  const rateField = fields.get("rate_limit");
  const authField = fields.get("forward_auth");
  const basicField = fields.get("basic_auth");
  const githubField = fields.get("github_auth");
  if ([allowField, denyField, rateField, authField, basicField, githubField].every((f) => f === undefined)) {
    return null;
  }
  let allow: string[] | null = null;
  if (allowField !== undefined) {
    const issuesBefore = r.issues.length;
    allow = readCidrList(r, allowField);
    if (allow.length === 0 && r.issues.length === issuesBefore) {
      r.report(
        allowField.at,
        `${allowField.path} is empty, which would refuse every client; list the networks to let in, like ` +
          `["192.0.2.0/24"], or remove it`,
      );
    }
  }
  return {
    allow,
    deny: readCidrList(r, denyField),
    rateLimit: rateField === undefined ? null : readRateLimit(r, rateField) ?? null,
    basicAuth: basicField === undefined ? null : readBasicAuth(r, basicField) ?? null,
    githubAuth: githubField === undefined ? null : readGitHubAuth(r, githubField) ?? null,
    forwardAuth: authField === undefined ? null : readForwardAuth(r, authField) ?? null,
  };
}

/** Reads `basic_auth: { users: {name: hash}, realm, pass_credentials }`; undefined when invalid (reported). */
function readBasicAuth(r: Reader, field: Field): BasicAuth | undefined {
  const fields = r.readMapping(field, {
    known: BASIC_AUTH_KEYS,
    expected: `a mapping like ${BASIC_AUTH_EXAMPLE}`,
  });
  if (fields === null) return undefined;
  const usersField = fields.get("users");
  if (usersField === undefined || usersField.value === null) {
    r.report(field.at, `${field.path} needs users, like ${BASIC_AUTH_EXAMPLE}`);
    return undefined;
  }
  const issuesBefore = r.issues.length;
  const users: Record<string, string> = {};
  const entries = r.readMapping(usersField, {
    known: null,
    expected: `a mapping of user names to bcrypt hashes, like ${BASIC_AUTH_EXAMPLE}`,
  });
  for (const user of entries?.values() ?? []) {
    // deno-lint-ignore no-control-regex -- control characters are what is refused
    if (user.name === "" || user.name.includes(":") || /[\0-\x1f\x7f]/.test(user.name)) {
      r.report(
        user.keyNode,
        `${user.path}: a user name must not be empty or contain ":" or control characters`,
      );
      continue;
    }
    const hash = readBcryptHash(r, user);
    if (hash !== undefined) users[user.name] = hash;
  }
  if (entries !== null && entries.size === 0) {
    r.report(usersField.at, `${usersField.path} is empty, which would refuse every client; add a user`);
  }
  const realmField = fields.get("realm");
  const realm = realmField === undefined ? DEFAULT_REALM : r.readString(realmField);
  if (realm !== undefined && /["\\]/.test(realm)) {
    r.report(realmField!.at, `${realmField!.path} must not contain '"' or '\\' (it is sent quoted)`);
  }
  const passField = fields.get("pass_credentials");
  const passCredentials = passField === undefined ? false : r.readBool(passField);
  if (r.issues.length > issuesBefore || realm === undefined || passCredentials === undefined) {
    return undefined;
  }
  return { users, realm, passCredentials };
}

/** Reads `forward_auth: { url, copy_headers, timeout }`; undefined when invalid (reported). */
function readForwardAuth(r: Reader, field: Field): ForwardAuth | undefined {
  const fields = r.readMapping(field, {
    known: FORWARD_AUTH_KEYS,
    expected: `a mapping like ${FORWARD_AUTH_EXAMPLE}`,
  });
  if (fields === null) return undefined;
  const urlField = fields.get("url");
  if (urlField === undefined) {
    r.report(field.at, `${field.path} needs the auth server's url, like ${FORWARD_AUTH_EXAMPLE}`);
    return undefined;
  }
  const url = readHttpUrl(r, urlField);
  const copyHeaders: string[] = [];
  const copyField = fields.get("copy_headers");
  if (copyField !== undefined) {
    for (const { value, node, path } of r.readStringList(copyField, "Remote-User")) {
      if (FIELD_NAME.test(value)) copyHeaders.push(value.toLowerCase());
      else r.report(node, `${path} must be a header name like Remote-User, got ${JSON.stringify(value)}`);
    }
  }
  const timeoutField = fields.get("timeout");
  const timeoutMs = timeoutField === undefined
    ? DEFAULT_FORWARD_AUTH_TIMEOUT_MS
    : r.readDuration(timeoutField);
  if (url === null || timeoutMs === undefined) return undefined;
  return { url, copyHeaders, timeoutMs };
}

/** Reads `rate_limit: { requests: N, per: DURATION, burst: M }`; undefined when invalid (reported). */
function readRateLimit(r: Reader, field: Field): RateLimit | undefined {
  const fields = r.readMapping(field, {
    known: RATE_LIMIT_KEYS,
    expected: `a mapping like ${RATE_LIMIT_EXAMPLE}`,
  });
  if (fields === null) return undefined;
  const requestsField = fields.get("requests");
  const perField = fields.get("per");
  if (requestsField === undefined || perField === undefined) {
    const missing = requestsField === undefined ? "requests" : "per";
    r.report(field.at, `${field.path} needs ${missing}, like ${RATE_LIMIT_EXAMPLE}`);
    return undefined;
  }
  const requests = readCount(r, requestsField);
  const perMs = r.readDuration(perField);
  const burstField = fields.get("burst");
  const burst = burstField === undefined ? requests : readCount(r, burstField);
  if (requests === undefined || perMs === undefined || burst === undefined) return undefined;
  return { requests, perMs, burst };
}

/** A whole number of requests from 1 to MAX_REQUESTS; undefined when not (reported). */
function readCount(r: Reader, f: Field): number | undefined {
  const text = r.readScalarText(f, "a whole number of requests, like 100");
  if (text === undefined) return undefined;
  const n = Number(text);
  if (/^\d+$/.test(text.trim()) && n >= 1 && n <= MAX_REQUESTS) return n;
  r.report(f.at, `${f.path} must be a whole number from 1 to ${MAX_REQUESTS}, got ${JSON.stringify(text)}`);
  return undefined;
}

/**
 * A bcrypt hash as `nexo hash-password` prints it (a basic_auth user's, admin.password_hash); undefined when
 * absent or unusable (reported). The hash is a secret: it is never quoted.
 */
export function readBcryptHash(r: Reader, field: Field): string | undefined {
  const hash = r.readString(field, { secret: true })?.trim();
  if (hash === undefined) return undefined;
  const info = parseBcryptHash(hash);
  if (info === null) {
    r.report(
      field.at,
      `${field.path} must be a bcrypt hash (60 characters starting "$2b$"); make one with ` +
        `"nexo hash-password" and paste it in quotes`,
    );
    return undefined;
  }
  if (info.cost > MAX_BCRYPT_COST) {
    r.report(
      field.at,
      `${field.path} has bcrypt cost ${info.cost}, which takes seconds of CPU per check; use a cost from 4 to ` +
        `${MAX_BCRYPT_COST} ("nexo hash-password" uses 12)`,
    );
    return undefined;
  }
  return hash;
}
