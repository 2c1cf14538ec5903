import assert from "node:assert/strict";
import {
  classifyAcmeError,
  MAX_RETRY_DELAY_MS,
  needsRenewal,
  nextCheckAt,
  parseRetryAfter,
  renewalDueAt,
  renewalThresholdMs,
  renewalWindowNote,
  retryDelayMs,
} from "./schedule.ts";

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const RENEW_BEFORE_DEFAULT = 720 * HOUR;
const T0 = Date.UTC(2025, 0, 1);

function cert(lifetimeDays: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(T0), notAfter: new Date(T0 + lifetimeDays * DAY) };
}

Deno.test("renewalThresholdMs() renews a 90-day certificate with 30 days left under the default 720h", () => {
  assert.equal(renewalThresholdMs(90 * DAY, RENEW_BEFORE_DEFAULT), 30 * DAY);
});

Deno.test("renewalThresholdMs() renews a 45-day certificate with 15 to 22.5 days left", () => {
  assert.equal(renewalThresholdMs(45 * DAY, RENEW_BEFORE_DEFAULT), 22.5 * DAY);
  assert.equal(renewalThresholdMs(45 * DAY, 360 * HOUR), 15 * DAY);
  assert.equal(renewalThresholdMs(45 * DAY, 1 * HOUR), 15 * DAY);
});

Deno.test("renewalThresholdMs() renews a 6-day certificate with 2 to 3 days left, whatever renew_before says", () => {
  assert.equal(renewalThresholdMs(6 * DAY, RENEW_BEFORE_DEFAULT), 3 * DAY);
  assert.equal(renewalThresholdMs(6 * DAY, 1 * HOUR), 2 * DAY);
  assert.equal(renewalThresholdMs(6 * DAY, 60 * HOUR), 60 * HOUR);
});

Deno.test("renewalThresholdMs() is 0 for a certificate with no positive lifetime", () => {
  assert.equal(renewalThresholdMs(0, RENEW_BEFORE_DEFAULT), 0);
  assert.equal(renewalThresholdMs(-DAY, RENEW_BEFORE_DEFAULT), 0);
});

Deno.test("needsRenewal() turns true exactly at notAfter minus the threshold", () => {
  const c = cert(90);
  const due = T0 + 60 * DAY;
  assert.equal(renewalDueAt(c, RENEW_BEFORE_DEFAULT), due);
  assert.equal(needsRenewal(c, { now: due - 1, renewBeforeMs: RENEW_BEFORE_DEFAULT }), false);
  assert.equal(needsRenewal(c, { now: due, renewBeforeMs: RENEW_BEFORE_DEFAULT }), true);
  assert.equal(needsRenewal(c, { now: T0 + 91 * DAY, renewBeforeMs: RENEW_BEFORE_DEFAULT }), true, "expired");
});

Deno.test("nextCheckAt() lands within a quarter interval either side, spread by the random source", () => {
  assert.equal(nextCheckAt(T0, DAY, { random: () => 0 }), T0 + 18 * HOUR);
  assert.equal(nextCheckAt(T0, DAY, { random: () => 0.5 }), T0 + DAY);
  assert.equal(nextCheckAt(T0, DAY, { random: () => 0.999999 }), T0 + 30 * HOUR - 43);
  for (let i = 0; i < 1000; i++) {
    const at = nextCheckAt(T0, DAY);
    assert.ok(at >= T0 + 18 * HOUR && at < T0 + 30 * HOUR);
  }
});

Deno.test("retryDelayMs() starts at retry_interval and doubles per failure", () => {
  const middle = { random: () => 0.5 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((failures) => retryDelayMs(failures, HOUR, middle)),
    [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR],
  );
  assert.equal(retryDelayMs(0, HOUR, middle), HOUR, "fewer than one failure counts as one");
});

Deno.test("retryDelayMs() never exceeds 24 hours, even after many failures or with jitter", () => {
  assert.equal(retryDelayMs(6, HOUR, { random: () => 0.5 }), MAX_RETRY_DELAY_MS);
  assert.equal(retryDelayMs(1000, HOUR, { random: () => 0.999 }), MAX_RETRY_DELAY_MS);
  assert.equal(retryDelayMs(1000, HOUR, { random: () => 0 }), 18 * HOUR);
  assert.equal(retryDelayMs(1, 48 * HOUR, { random: () => 0.5 }), MAX_RETRY_DELAY_MS);
});

Deno.test("retryDelayMs() spreads a delay over plus or minus a quarter", () => {
  assert.equal(retryDelayMs(2, HOUR, { random: () => 0 }), 1.5 * HOUR);
  assert.equal(retryDelayMs(2, HOUR, { random: () => 0.75 }), 2.25 * HOUR);
});

Deno.test("retryDelayMs() never retries before the server's Retry-After, even past the 24-hour cap", () => {
  assert.equal(retryDelayMs(1, HOUR, { random: () => 0.5, retryAfterMs: 3 * HOUR }), 3 * HOUR);
  assert.equal(retryDelayMs(1, HOUR, { random: () => 0.5, retryAfterMs: 60_000 }), HOUR);
  assert.equal(retryDelayMs(9, HOUR, { random: () => 0.5, retryAfterMs: 7 * DAY }), 7 * DAY);
});

Deno.test("classifyAcmeError() retries badNonce at once and nothing else", () => {
  const result = classifyAcmeError({ type: "urn:ietf:params:acme:error:badNonce", status: 400 });
  assert.deepEqual(result, {
    type: "badNonce",
    retryNow: true,
    permanent: false,
    hint: "stale anti-replay nonce; retried at once",
  });
  assert.equal(classifyAcmeError({ type: "urn:ietf:params:acme:error:serverInternal" }).retryNow, false);
});

Deno.test("classifyAcmeError() carries a rateLimited Retry-After in seconds or as an HTTP-date", () => {
  const type = "urn:ietf:params:acme:error:rateLimited";
  const seconds = classifyAcmeError({ type, status: 429 }, { retryAfter: "3600" });
  assert.equal(seconds.type, "rateLimited");
  assert.equal(seconds.permanent, false);
  assert.equal(seconds.retryAfterMs, HOUR);
  const date = classifyAcmeError({ type }, { retryAfter: new Date(T0 + 2 * HOUR).toUTCString(), now: T0 });
  assert.equal(date.retryAfterMs, 2 * HOUR);
  assert.equal("retryAfterMs" in classifyAcmeError({ type }), false, "absent without a header");
  const parsed = classifyAcmeError({ type, retryAfterMs: 5000 }, { retryAfter: "3600" });
  assert.equal(parsed.retryAfterMs, 5000, "a Retry-After the caller already parsed wins");
  assert.equal("retryAfterMs" in classifyAcmeError({ type, retryAfterMs: null }), false);
});

Deno.test("classifyAcmeError() marks what the same request can never fix as permanent", () => {
  for (
    const short of [
      "caa",
      "rejectedIdentifier",
      "badCSR",
      "malformed",
      "userActionRequired",
      "invalidContact",
    ]
  ) {
    const result = classifyAcmeError({ type: `urn:ietf:params:acme:error:${short}` });
    assert.equal(result.permanent, true, short);
    assert.equal(result.retryNow, false, short);
  }
  for (const short of ["dns", "connection", "unauthorized", "serverInternal", "incorrectResponse", "tls"]) {
    assert.equal(classifyAcmeError({ type: `urn:ietf:params:acme:error:${short}` }).permanent, false, short);
  }
});

Deno.test("classifyAcmeError() treats unknown types and missing problems as transient", () => {
  assert.deepEqual(classifyAcmeError(undefined), {
    type: "unknown",
    retryNow: false,
    permanent: false,
    hint: "retried later",
  });
  assert.equal(classifyAcmeError({ type: "urn:example:new-error", status: 400 }).permanent, false);
  assert.equal(classifyAcmeError({ status: 429 }, { retryAfter: "60" }).retryAfterMs, 60_000);
  assert.equal(classifyAcmeError({ type: "urn:acme:error:badNonce" }).retryNow, true, "ACME v1 prefix");
});

Deno.test("classifyAcmeError() makes a compound problem permanent when any subproblem is", () => {
  const prefix = "urn:ietf:params:acme:error:";
  const compound = {
    type: `${prefix}compound`,
    subproblems: [{ type: `${prefix}dns` }, { type: `${prefix}caa` }],
  };
  const result = classifyAcmeError(compound);
  assert.equal(result.type, "compound");
  assert.equal(result.permanent, true);
  assert.equal(result.retryNow, false);
  assert.match(result.hint, /CAA/);
  const transient = classifyAcmeError({ type: `${prefix}compound`, subproblems: [{ type: `${prefix}dns` }] });
  assert.equal(transient.permanent, false);
});

Deno.test("parseRetryAfter() ignores empty and unparseable values and never goes negative", () => {
  assert.equal(parseRetryAfter(undefined, T0), undefined);
  assert.equal(parseRetryAfter(" ", T0), undefined);
  assert.equal(parseRetryAfter("soon", T0), undefined);
  assert.equal(parseRetryAfter("120", T0), 120_000);
  assert.equal(parseRetryAfter(new Date(T0 - HOUR).toUTCString(), T0), 0);
});

Deno.test("renewalWindowNote() says when renew_before is capped at half the lifetime, and to what", () => {
  const day = 24 * 3_600_000;
  assert.equal(renewalWindowNote(90 * day, 720 * 3_600_000), null);
  assert.equal(renewalWindowNote(90 * day, 45 * day), null);
  assert.equal(
    renewalWindowNote(90 * day, 1200 * 3_600_000),
    "renew_before 1200h is more than half this certificate's 90-day lifetime; it renews 45 days before expiry",
  );
  assert.equal(
    renewalWindowNote(6 * day, 720 * 3_600_000),
    "renew_before 720h is more than half this certificate's 6-day lifetime; it renews 3 days before expiry",
  );
});
