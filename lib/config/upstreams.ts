// A proxy route's upstreams (issue 16): `upstream` as one URL or a list, and how a list shares the requests
// (`lb`), notices a dead member (`health_check`, `passive_health`) and tries another (`retry`), validated into
// plain data. The balancing itself is lib/balance/'s, loaded only when a route has any of this.

import type {
  Balancing,
  HealthCheck,
  LbPolicy,
  PassiveHealth,
  RetryCondition,
  RetryPolicy,
  StatusRange,
} from "./types.ts";
import { describe, type Field, type Reader } from "./reader.ts";
import { readHttpUrl, UPSTREAM_EXAMPLE } from "./url.ts";
import { isScalar, isSeq } from "./yaml.ts";

/** The route keys this module reads besides `upstream`. */
export const BALANCING_KEYS = ["lb", "health_check", "passive_health", "retry"] as const;

const LB_POLICIES: readonly LbPolicy[] = ["round_robin", "least_conn", "ip_hash", "cookie", "first"];
const HEALTH_KEYS = ["path", "interval", "timeout", "status", "healthy_after", "unhealthy_after"] as const;
const PASSIVE_KEYS = ["max_fails", "fail_window"] as const;
const RETRY_KEYS = ["tries", "on"] as const;
const HEALTH_EXAMPLE = "{ path: /healthz, interval: 10s }";
const RETRY_EXAMPLE = "{ tries: 2, on: [connect_error, 502, 503] }";
/** Caddy's and nginx's defaults: a check every 10 s, allowed 2 s; two passes back in, three failures out. */
const HEALTH_DEFAULTS = { intervalMs: 10_000, timeoutMs: 2_000, healthyAfter: 2, unhealthyAfter: 3 };
/** Three failures within 30 s rest an upstream for 30 s (nginx's max_fails=1 fail_timeout=10s is twitchier). */
const PASSIVE_DEFAULTS: PassiveHealth = { maxFails: 3, failWindowMs: 30_000 };
/** Where a route with several upstreams and no `retry` tries one other upstream: only when unreachable. */
const DEFAULT_RETRY_ON: RetryCondition[] = ["connect_error"];
const RETRY_WORDS = ["connect_error", "timeout"] as const;
/** Checks more often than this cost more than they tell. */
const MIN_INTERVAL_MS = 1_000;
const MAX_COUNT = 100;

/**
 * Reads `upstream`: one URL, or a list of at least one. Each invalid entry is reported; undefined when any
 * was (or the list is empty).
 */
export function readUpstreams(r: Reader, f: Field): URL[] | undefined {
  if (f.value !== null && !isSeq(f.value) && !isScalar(f.value)) {
    r.report(
      f.at,
      `${f.path} must be a URL like ${UPSTREAM_EXAMPLE} or a list of them, got ${describe(f.value)}`,
    );
    return undefined;
  }
  if (f.value === null || !isSeq(f.value)) {
    const url = readHttpUrl(r, f);
    return url === null ? undefined : [url];
  }
  const issuesBefore = r.issues.length;
  const urls: URL[] = [];
  const seen = new Set<string>();
  f.value.items.forEach((item, i) => {
    const node = item ?? f.at;
    const value = r.resolve(item);
    const url = readHttpUrl(r, { name: `[${i}]`, path: `${f.path}[${i}]`, keyNode: node, at: node, value });
    if (url === null) return;
    if (seen.has(url.href)) r.report(node, `${f.path}[${i}] repeats ${url.href}; list each upstream once`);
    seen.add(url.href);
    urls.push(url);
  });
  if (f.value.items.length === 0) {
    r.report(
      f.at,
      `${f.path} is an empty list; write one upstream URL, like ${UPSTREAM_EXAMPLE}, or several`,
    );
  }
  return r.issues.length > issuesBefore ? undefined : urls;
}

/**
 * Reads `lb`, `health_check`, `passive_health` and `retry` for a route with `upstreamCount` upstreams: null
 * when there is one and none of them is set (the plain proxy path); undefined when any is invalid (reported).
 * Several upstreams get round robin, passive health and one retry on a connection failure by default.
 */
export function readBalancing(
  r: Reader,
  fields: Map<string, Field>,
  upstreamCount: number,
): Balancing | null | undefined {
  const lbField = fields.get("lb");
  const healthField = fields.get("health_check");
  const passiveField = fields.get("passive_health");
  const retryField = fields.get("retry");
  if (upstreamCount === 1 && [lbField, healthField, passiveField, retryField].every((f) => f === undefined)) {
    return null;
  }
  const issuesBefore = r.issues.length;
  const lb = lbField === undefined ? "round_robin" : readLb(r, lbField);
  const healthCheck = healthField === undefined ? null : readHealthCheck(r, healthField);
  const passiveHealth = passiveField === undefined
    ? (upstreamCount > 1 ? PASSIVE_DEFAULTS : null)
    : readPassiveHealth(r, passiveField);
  const retry = retryField === undefined
    ? { tries: Math.min(2, upstreamCount), on: DEFAULT_RETRY_ON }
    : readRetry(r, retryField);
  if (
    r.issues.length > issuesBefore || lb === undefined || healthCheck === undefined ||
    passiveHealth === undefined || retry === undefined
  ) {
    return undefined;
  }
  return { lb, healthCheck, passiveHealth, retry };
}

function readLb(r: Reader, f: Field): LbPolicy | undefined {
  const text = r.readString(f)?.trim().toLowerCase();
  if (text === undefined) return undefined;
  const policy = LB_POLICIES.find((known) => known === text);
  if (policy === undefined) {
    r.report(f.at, `${f.path} must be one of ${LB_POLICIES.join(", ")}, got ${JSON.stringify(text)}`);
  }
  return policy;
}

function readHealthCheck(r: Reader, f: Field): HealthCheck | undefined {
  const fields = r.readMapping(f, { known: HEALTH_KEYS, expected: `a mapping like ${HEALTH_EXAMPLE}` });
  if (fields === null) return undefined;
  const pathField = fields.get("path");
  if (pathField === undefined) {
    r.report(f.at, `${f.path} needs the path to ask, like ${HEALTH_EXAMPLE}`);
    return undefined;
  }
  const path = r.readString(pathField)?.trim();
  if (path !== undefined && (!path.startsWith("/") || /[\s#]/.test(path))) {
    r.report(
      pathField.at,
      `${pathField.path} must be a path starting with "/", like /healthz, got ${JSON.stringify(path)}`,
    );
  }
  const duration = (key: string, fallback: number) => {
    const field = fields.get(key);
    return field === undefined ? fallback : r.readDuration(field);
  };
  const intervalMs = duration("interval", HEALTH_DEFAULTS.intervalMs);
  // A short interval alone (`interval: 1s`) shortens the default timeout with it, rather than clash with it.
  const timeoutMs = duration("timeout", Math.min(HEALTH_DEFAULTS.timeoutMs, intervalMs ?? Infinity));
  const intervalField = fields.get("interval");
  if (intervalMs !== undefined && intervalMs < MIN_INTERVAL_MS) {
    r.report(intervalField!.at, `${intervalField!.path} must be at least 1s`);
  } else if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs > intervalMs) {
    const at = fields.get("timeout") ?? f;
    r.report(
      at.at,
      `${f.path}.timeout must not be longer than its interval (a check would overlap the next)`,
    );
  }
  const statusField = fields.get("status");
  const status = statusField === undefined ? { min: 200, max: 399 } : readStatusRange(r, statusField);
  const count = (key: string, fallback: number) => {
    const field = fields.get(key);
    return field === undefined ? fallback : readCount(r, field, MAX_COUNT);
  };
  const healthyAfter = count("healthy_after", HEALTH_DEFAULTS.healthyAfter);
  const unhealthyAfter = count("unhealthy_after", HEALTH_DEFAULTS.unhealthyAfter);
  if (
    path === undefined || intervalMs === undefined || timeoutMs === undefined || status === undefined ||
    healthyAfter === undefined || unhealthyAfter === undefined
  ) {
    return undefined;
  }
  return { path, intervalMs, timeoutMs, status, healthyAfter, unhealthyAfter };
}

/** `2xx` (a class), `200` (one status) or `200-299` (a range). */
function readStatusRange(r: Reader, f: Field): StatusRange | undefined {
  const text = r.readScalarText(f, `a status like 200, a class like 2xx, or a range like 200-399`)?.trim();
  if (text === undefined) return undefined;
  const lower = text.toLowerCase();
  let range: StatusRange | undefined;
  const classMatch = /^([1-5])xx$/.exec(lower);
  const rangeMatch = /^(\d{3})\s*-\s*(\d{3})$/.exec(lower);
  if (classMatch) range = { min: Number(classMatch[1]) * 100, max: Number(classMatch[1]) * 100 + 99 };
  else if (rangeMatch) range = { min: Number(rangeMatch[1]), max: Number(rangeMatch[2]) };
  else if (/^\d{3}$/.test(lower)) range = { min: Number(lower), max: Number(lower) };
  if (range === undefined || range.min < 100 || range.max > 599 || range.min > range.max) {
    r.report(
      f.at,
      `${f.path} must be a status like 200, a class like 2xx, or a range like 200-399, got ${
        JSON.stringify(text)
      }`,
    );
    return undefined;
  }
  return range;
}

function readPassiveHealth(r: Reader, f: Field): PassiveHealth | null | undefined {
  if (isFalse(f)) return null;
  const example = "{ max_fails: 3, fail_window: 30s } (or false)";
  const fields = r.readMapping(f, { known: PASSIVE_KEYS, expected: `a mapping like ${example}` });
  if (fields === null) return undefined;
  const maxFailsField = fields.get("max_fails");
  const windowField = fields.get("fail_window");
  const maxFails = maxFailsField === undefined
    ? PASSIVE_DEFAULTS.maxFails
    : readCount(r, maxFailsField, MAX_COUNT);
  const failWindowMs = windowField === undefined
    ? PASSIVE_DEFAULTS.failWindowMs
    : r.readDuration(windowField);
  if (maxFails === undefined || failWindowMs === undefined) return undefined;
  return { maxFails, failWindowMs };
}

function readRetry(r: Reader, f: Field): RetryPolicy | undefined {
  if (isFalse(f)) return { tries: 1, on: [] };
  const fields = r.readMapping(f, { known: RETRY_KEYS, expected: `a mapping like ${RETRY_EXAMPLE}` });
  if (fields === null) return undefined;
  const triesField = fields.get("tries");
  const tries = triesField === undefined ? 2 : readCount(r, triesField, 10);
  const onField = fields.get("on");
  let on: RetryCondition[] | undefined = DEFAULT_RETRY_ON;
  if (onField !== undefined) {
    on = [];
    const issuesBefore = r.issues.length;
    if (onField.value !== null && isSeq(onField.value)) {
      onField.value.items.forEach((item, i) => {
        const value = r.resolve(item);
        const text = value === null ? "" : scalarText(value);
        const word = RETRY_WORDS.find((known) => known === text.toLowerCase());
        if (word !== undefined) on!.push(word);
        else if (/^5\d\d$/.test(text)) on!.push(Number(text));
        else {
          r.report(
            item ?? onField.at,
            `${onField.path}[${i}] must be connect_error, timeout or a 5xx status like 503, got ${
              JSON.stringify(text)
            }`,
          );
        }
      });
    } else {
      r.report(
        onField.at,
        `${onField.path} must be a list like [connect_error, 502, 503], got ${describe(onField.value)}`,
      );
    }
    if (r.issues.length > issuesBefore) on = undefined;
  }
  if (tries === undefined || on === undefined) return undefined;
  return { tries, on };
}

/** A whole number from 1 to `max`; undefined when not (reported). */
function readCount(r: Reader, f: Field, max: number): number | undefined {
  const text = r.readScalarText(f, `a whole number from 1 to ${max}`);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (/^\d+$/.test(text.trim()) && n >= 1 && n <= max) return n;
  r.report(f.at, `${f.path} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}`);
  return undefined;
}

/** `passive_health: false`, `retry: false`: the feature turned off. */
function isFalse(f: Field): boolean {
  return isScalar(f.value) && f.value.value === false;
}

/** A scalar's value as text ("" for anything else). */
function scalarText(node: unknown): string {
  return isScalar(node) && node.value !== null ? String(node.value) : "";
}
