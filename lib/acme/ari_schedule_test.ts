import assert from "node:assert/strict";
import {
  boundRenewalTime,
  failureDelayMs,
  LONG_TERM_ERROR_MS,
  MAX_POLL_MS,
  MIN_POLL_MS,
  parseRenewalInfo,
  pickRenewalTime,
  planRenewal,
  pollDelayMs,
  RenewalInfoError,
} from "./ari_schedule.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2025, 5, 1, 12);
const DAILY = DAY; // acme.check_interval's default
/** A 90-day certificate issued 55 days before NOW. */
const VALIDITY = { notBefore: new Date(NOW - 55 * DAY), notAfter: new Date(NOW + 35 * DAY) };

const iso = (ms: number) => new Date(ms).toISOString();
const answer = (start: number, end: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ suggestedWindow: { start: iso(start), end: iso(end) }, ...extra });

Deno.test("parseRenewalInfo() reads RFC 9773's example answer: window, explanation URL and Retry-After", () => {
  const body = `{
    "suggestedWindow": { "start": "2021-01-03T00:00:00Z", "end": "2021-01-07T00:00:00Z" },
    "explanationURL": "https://acme.example.com/docs/ari"
  }`;
  assert.deepEqual(parseRenewalInfo(body, "21600", NOW), {
    window: { start: Date.UTC(2021, 0, 3), end: Date.UTC(2021, 0, 7) },
    explanationUrl: "https://acme.example.com/docs/ari",
    retryAfterMs: 6 * HOUR,
  });
});

Deno.test("parseRenewalInfo() accepts RFC 3339 offsets and fractions, an HTTP-date Retry-After, and none", () => {
  const info = parseRenewalInfo(
    '{"suggestedWindow":{"start":"2025-06-02T01:00:00.5+01:00","end":"2025-06-03T00:00:00z"}}',
    new Date(NOW + 90_000).toUTCString(),
    NOW,
  );
  assert.deepEqual(info.window, { start: Date.UTC(2025, 5, 2, 0, 0, 0, 500), end: Date.UTC(2025, 5, 3) });
  const leap = '{"suggestedWindow":{"start":"2024-02-29T00:00:00Z","end":"2024-03-01T00:00:00Z"}}';
  assert.equal(parseRenewalInfo(leap, null, NOW).window.start, Date.UTC(2024, 1, 29));
  assert.equal(info.retryAfterMs, 90_000);
  assert.equal(info.explanationUrl, null);
  assert.equal(parseRenewalInfo(answer(NOW, NOW + DAY), null, NOW).retryAfterMs, null);
  assert.equal(parseRenewalInfo(answer(NOW, NOW + DAY), "soon", NOW).retryAfterMs, null);
  assert.equal(
    parseRenewalInfo(answer(NOW, NOW + DAY, { explanationURL: 7 }), null, NOW).explanationUrl,
    null,
  );
});

Deno.test("parseRenewalInfo() rejects malformed answers as long-term errors that say what is wrong", () => {
  const rejects = (body: string, message: RegExp) =>
    assert.throws(() => parseRenewalInfo(body, "60", NOW), (error: unknown) => {
      assert.ok(error instanceof RenewalInfoError, String(error));
      assert.equal(error.kind, "longTerm");
      assert.match(error.message, message);
      return true;
    });
  rejects("<html>Service Unavailable</html>", /not JSON \(it starts "<html>Service Unavailable<\/html>"\)/);
  rejects("", /not JSON \(it is empty\)/);
  rejects("null", /no "suggestedWindow" object/);
  rejects('{"suggestedWindow":"tomorrow"}', /no "suggestedWindow" object/);
  rejects('{"suggestedWindow":{"start":"2025-06-01T00:00:00Z"}}', /has no "end" time/);
  rejects('{"suggestedWindow":{"end":"2025-06-01T00:00:00Z"}}', /has no "start" time/);
  rejects(
    '{"suggestedWindow":{"start":"June 1","end":"2025-06-01T00:00:00Z"}}',
    /"start" is not an RFC 3339/,
  );
  rejects('{"suggestedWindow":{"start":"2025-06-01","end":"2025-06-02"}}', /"start" is not an RFC 3339/);
  rejects('{"suggestedWindow":{"start":"2025-02-29T00:00:00Z","end":"2025-06-02T00:00:00Z"}}', /RFC 3339/);
  rejects('{"suggestedWindow":{"start":"2025-13-01T00:00:00Z","end":"2025-06-02T00:00:00Z"}}', /RFC 3339/);
  // RFC 9773 §4.2: an end equal to or before the start makes the answer invalid.
  rejects(answer(NOW + DAY, NOW), /ends \(2025-06-01T12:00:00.000Z\) before it starts/);
  rejects(answer(NOW, NOW), /ends .* before it starts/);
});

Deno.test("pollDelayMs() obeys Retry-After within a minute and a day, and waits 6 hours without one", () => {
  assert.equal(pollDelayMs(6 * HOUR, DAILY), 6 * HOUR);
  assert.equal(pollDelayMs(0, DAILY), MIN_POLL_MS, "RFC 9773 §4.3.2: under a minute counts as a minute");
  assert.equal(pollDelayMs(10_000, DAILY), MIN_POLL_MS);
  assert.equal(pollDelayMs(7 * DAY, DAILY), MAX_POLL_MS, "over a day counts as a day");
  assert.equal(pollDelayMs(null, DAILY), LONG_TERM_ERROR_MS, "§4.3.3: no Retry-After is a long-term error");
  // A shorter check_interval lowers the floor (tests, a private CA) and the long-term default.
  assert.equal(pollDelayMs(1_000, 2_000), 2_000);
  assert.equal(pollDelayMs(3_000, 2_000), 3_000);
  assert.equal(pollDelayMs(null, HOUR), HOUR);
});

Deno.test("failureDelayMs() doubles after temporary errors for four tries, then waits like a long-term error", () => {
  const temporary = [1, 2, 3, 4, 5, 9].map((n) => failureDelayMs("temporary", n, DAILY));
  assert.deepEqual(temporary, [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE, 6 * HOUR, 6 * HOUR]);
  assert.equal(failureDelayMs("longTerm", 1, DAILY), LONG_TERM_ERROR_MS);
  assert.equal(failureDelayMs("temporary", 3, 2 * MINUTE), 2 * MINUTE, "never past the long-term delay");
  assert.equal(failureDelayMs("longTerm", 1, 1_000), 1_000);
});

Deno.test("pickRenewalTime() picks uniformly in [start, end) and keeps its pick while the window is unchanged", () => {
  const window = { start: NOW, end: NOW + 2 * DAY };
  assert.equal(pickRenewalTime(window, null, () => 0), NOW);
  assert.equal(pickRenewalTime(window, null, () => 0.5), NOW + DAY);
  assert.ok(pickRenewalTime(window, null, () => 0.9999999999) < window.end);
  const previous = { window: { ...window }, renewAt: NOW + 5 * HOUR };
  assert.equal(pickRenewalTime(window, previous, () => 0.5), NOW + 5 * HOUR, "same window: same pick");
  assert.equal(
    pickRenewalTime({ start: NOW, end: NOW + DAY }, previous, () => 0.5),
    NOW + 12 * HOUR,
    "a changed window is picked in afresh",
  );
});

Deno.test("planRenewal() renews at once for a window in the past, and at once or later for one around now", () => {
  const past = planRenewal({ start: NOW - 2 * DAY, end: NOW - DAY }, {
    now: NOW,
    validity: VALIDITY,
    previous: null,
    random: () => 0.5,
  });
  assert.deepEqual(past, { picked: NOW - 1.5 * DAY, renewAt: NOW - 1.5 * DAY, capped: false, due: true });

  const around = { start: NOW - HOUR, end: NOW + HOUR };
  const early = planRenewal(around, { now: NOW, validity: VALIDITY, previous: null, random: () => 0.25 });
  assert.equal(early.due, true, "a pick already passed is due now (RFC 9773 §4.2 step 2)");
  const late = planRenewal(around, { now: NOW, validity: VALIDITY, previous: null, random: () => 0.75 });
  assert.deepEqual(late, {
    picked: NOW + 30 * MINUTE,
    renewAt: NOW + 30 * MINUTE,
    capped: false,
    due: false,
  });
  const exact = planRenewal({ start: NOW, end: NOW + HOUR }, {
    now: NOW,
    validity: VALIDITY,
    previous: null,
    random: () => 0,
  });
  assert.equal(exact.due, true, "a pick equal to now is due");
});

Deno.test("planRenewal() waits for a window in the far future, but never past a tenth of the lifetime left", () => {
  const far = { start: NOW + 300 * DAY, end: NOW + 302 * DAY };
  const plan = planRenewal(far, { now: NOW, validity: VALIDITY, previous: null, random: () => 0.5 });
  const latest = VALIDITY.notAfter.getTime() - 9 * DAY; // 90-day certificate: 9 days left
  assert.deepEqual(plan, { picked: NOW + 301 * DAY, renewAt: latest, capped: true, due: false });
  const then = planRenewal(far, {
    now: latest,
    validity: VALIDITY,
    previous: { window: far, renewAt: plan.picked },
    random: () => 0,
  });
  assert.deepEqual(then, { ...plan, due: true }, "the pick is kept; the bound makes it due");
  // A window inside the lifetime is never moved.
  assert.deepEqual(boundRenewalTime(NOW + 5 * DAY, VALIDITY), { renewAt: NOW + 5 * DAY, capped: false });
});

Deno.test("failureDelayMs() never asks again sooner than a failed answer's Retry-After, capped at a day", () => {
  const hour = 3_600_000;
  assert.equal(failureDelayMs("temporary", 1, 24 * hour, hour), hour);
  assert.equal(failureDelayMs("temporary", 1, 24 * hour, 1_000), 60_000, "the backoff when it is longer");
  assert.equal(failureDelayMs("longTerm", 1, 24 * hour, 30 * 24 * hour), 24 * hour);
  assert.equal(failureDelayMs("temporary", 1, 24 * hour, null), 60_000);
});
