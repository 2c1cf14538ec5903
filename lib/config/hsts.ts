// The `hsts:` setting (top level and per route): validated and turned into the Strict-Transport-Security
// header value once, at config load, so serving a request costs one header set. RFC 6797 defines the header;
// the preload rules are hstspreload.org's. Sending the header is lib/server/handler.ts's job, not this file's.

import { isMap, isScalar } from "./yaml.ts";
import { parseDuration } from "./duration.ts";
import { describe, type Field, type Reader } from "./reader.ts";

/** An HSTS policy, before it becomes a header value. */
export interface HstsPolicy {
  /** How long browsers remember to use only HTTPS, in seconds; 0 tells them to forget (RFC 6797 §6.1.1). */
  maxAgeSeconds: number;
  /** Whether the policy covers every subdomain of the host too (RFC 6797 §6.1.2). */
  includeSubdomains: boolean;
  /** Whether the host asks to be put on the browsers' built-in preload list (hstspreload.org). */
  preload: boolean;
}

/**
 * One year, the value Let's Encrypt, Mozilla's server-side TLS guide and hstspreload.org recommend, and the
 * preload list's minimum. No includeSubDomains and no preload by default: both reach beyond the hosts nexo
 * serves (a subdomain on plain HTTP elsewhere would break), and leaving the preload list takes months.
 */
export const DEFAULT_HSTS: Readonly<HstsPolicy> = {
  maxAgeSeconds: 31_536_000,
  includeSubdomains: false,
  preload: false,
};

/** hstspreload.org's submission rule: max-age of at least one year. */
const PRELOAD_MIN_MAX_AGE_SECONDS = 31_536_000;

export const HSTS_KEYS: readonly string[] = ["max_age", "include_subdomains", "preload"];

const EXPECTED = `true, false, or a mapping like {max_age: 8760h, include_subdomains: true}`;

/** The Strict-Transport-Security header value for `policy`: "max-age=31536000; includeSubDomains; preload". */
export function hstsHeaderValue(policy: Readonly<HstsPolicy>): string {
  return `max-age=${policy.maxAgeSeconds}` + (policy.includeSubdomains ? "; includeSubDomains" : "") +
    (policy.preload ? "; preload" : "");
}

/**
 * Reads an `hsts:` field (top level or a route's) into the header value to send: a string, or null for
 * `hsts: false` (send none). Returns undefined when the field is empty (`hsts:`, meaning "the default") or
 * invalid (then reported into `r`), so the caller falls back to its default.
 */
export function readHsts(r: Reader, f: Field): string | null | undefined {
  if (f.value === null) return undefined;
  if (isScalar(f.value) && typeof f.value.value === "boolean") {
    return f.value.value ? hstsHeaderValue(DEFAULT_HSTS) : null;
  }
  if (!isMap(f.value)) {
    r.report(f.at, `${f.path} must be ${EXPECTED}, got ${describe(f.value)}`);
    return undefined;
  }
  const issuesBefore = r.issues.length;
  const fields = r.readMapping(f, { known: HSTS_KEYS, expected: EXPECTED });
  if (fields === null) return undefined;
  const present = (key: string) => {
    const field = fields.get(key);
    return field === undefined || field.value === null ? undefined : field;
  };
  const maxAgeField = present("max_age");
  const subdomainsField = present("include_subdomains");
  const preloadField = present("preload");
  const policy: HstsPolicy = {
    maxAgeSeconds: maxAgeField === undefined ? DEFAULT_HSTS.maxAgeSeconds : readMaxAge(r, maxAgeField) ?? 0,
    includeSubdomains: subdomainsField === undefined
      ? DEFAULT_HSTS.includeSubdomains
      : r.readBool(subdomainsField) ?? false,
    preload: preloadField === undefined ? DEFAULT_HSTS.preload : r.readBool(preloadField) ?? false,
  };
  if (r.issues.length > issuesBefore) return undefined;
  if (policy.preload && preloadField !== undefined) checkPreload(r, preloadField, policy);
  return r.issues.length > issuesBefore ? undefined : hstsHeaderValue(policy);
}

/**
 * hstspreload.org refuses a host whose header lacks includeSubDomains or has a max-age under a year, so a
 * preload directive without them does nothing but mislead; it is an error with the fix spelled out.
 */
function checkPreload(r: Reader, preload: Field, policy: HstsPolicy): void {
  const parent = preload.path.slice(0, -".preload".length);
  if (!policy.includeSubdomains) {
    r.report(
      preload.at,
      `${preload.path} needs ${parent}.include_subdomains: true (the preload list at hstspreload.org ` +
        `requires it): add include_subdomains: true, or remove preload`,
    );
  }
  if (policy.maxAgeSeconds < PRELOAD_MIN_MAX_AGE_SECONDS) {
    r.report(
      preload.at,
      `${preload.path} needs ${parent}.max_age of at least ${PRELOAD_MIN_MAX_AGE_SECONDS} seconds (one ` +
        `year, "8760h"; the preload list's minimum), got ${policy.maxAgeSeconds}: raise max_age, or remove ` +
        `preload`,
    );
  }
}

/**
 * Reads `max_age`: a number is seconds (the header's own unit), a string is a duration like the config's
 * others ("8760h", "30m"); either must be a whole number of seconds, 0 included (it withdraws the policy).
 * Undefined when invalid (reported).
 */
function readMaxAge(r: Reader, f: Field): number | undefined {
  const text = r.readScalarText(f, `seconds (31536000) or a duration like "8760h"`);
  if (text === undefined || !isScalar(f.value)) return undefined;
  let seconds: number;
  if (typeof f.value.value === "number") seconds = f.value.value;
  else {
    try {
      seconds = parseDuration(text) / 1000;
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      r.report(f.at, `${f.path}: ${error.message}`);
      return undefined;
    }
  }
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    r.report(
      f.at,
      `${f.path} must be a whole number of seconds, 0 or more, got ${describe(f.value)} (write ` +
        `31536000 or "8760h" for one year)`,
    );
    return undefined;
  }
  return seconds;
}
