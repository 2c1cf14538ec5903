import assert from "node:assert/strict";
import { CloudflareDnsProvider, type CloudflareProviderOptions } from "./cloudflare.ts";
import { DnsProviderError } from "./provider.ts";
import { testDnsProviderConformance } from "./provider_conformance.ts";
import {
  type FakeCloudflare,
  type FakeCloudflareOptions,
  startFakeCloudflare,
} from "../../tests/fake_cloudflare.ts";

const TOKEN = "cf-test-token-0123456789abcdefSECRET";

/**
 * A fake Cloudflare and a provider for it. The provider's retry waits are recorded in `waits` and skipped on
 * a virtual clock, not slept (its real schedule is CALL_RETRY's).
 */
async function setup(
  fakeOptions: Partial<FakeCloudflareOptions> = {},
  providerOptions: Partial<CloudflareProviderOptions> = {},
): Promise<{ fake: FakeCloudflare; provider: CloudflareDnsProvider; waits: number[] }> {
  const fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], ...fakeOptions });
  const waits: number[] = [];
  // Waiting moves a virtual clock instead, so a rate-limit ban ends when its Retry-After was waited out.
  let skipped = 0;
  const provider = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: fake.apiBase,
    now: () => Date.now() + skipped,
    sleep: (ms) => {
      waits.push(ms);
      skipped += ms;
      return Promise.resolve();
    },
    ...providerOptions,
  });
  return { fake, provider, waits };
}

/** Runs `body`, expecting a DnsProviderError; returns it. */
async function providerError(body: () => Promise<unknown>): Promise<DnsProviderError> {
  try {
    await body();
  } catch (error) {
    assert.ok(error instanceof DnsProviderError, `expected a DnsProviderError, got ${error}`);
    assert.ok(!error.message.includes(TOKEN), `the token leaked into: ${error.message}`);
    return error;
  }
  assert.fail("expected the call to fail");
}

function txtValues(fake: FakeCloudflare, fqdn: string): string[] {
  return fake.records().filter((record) => record.type === "TXT" && record.name === fqdn).map((r) =>
    r.content
  );
}

testDnsProviderConformance("CloudflareDnsProvider", async () => {
  const { fake, provider } = await setup();
  return {
    provider,
    zone: "example.com",
    txtValues: (fqdn) => Promise.resolve(txtValues(fake, fqdn)),
    addStaleRecord: async (fqdn, value) => {
      await fake.addRecord("example.com", { name: fqdn, content: value });
    },
    close: () => fake.close(),
  };
});

Deno.test("CloudflareDnsProvider.verify() checks the token, zone access and DNS access", async () => {
  const { fake, provider } = await setup();
  try {
    await provider.verify(["_acme-challenge.www.example.com"]);
    assert.deepEqual(fake.requests.map((request) => `${request.method} ${request.path}`), [
      "GET /user/tokens/verify",
      "GET /zones?name=www.example.com",
      "GET /zones?name=example.com",
      `GET /zones/${fake.zoneId("example.com")}/dns_records?type=TXT&per_page=5`,
    ]);
    assert.equal(fake.requests[0]?.headers.authorization, `Bearer ${TOKEN}`);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.verify() reports a rejected token without quoting it", async () => {
  const { fake, provider } = await setup({ token: "some-other-token" });
  try {
    const error = await providerError(() => provider.verify());
    assert.equal(error.kind, "credentials");
    assert.equal(error.status, 401);
    assert.match(error.message, /Cannot verify the Cloudflare API token: Cloudflare answered HTTP 401/);
    assert.match(error.message, /code 1000 "Invalid API Token"/);
    assert.match(error.message, /check cloudflare\.api_token/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.verify() reports a disabled token", async () => {
  const { fake, provider } = await setup({ tokenStatus: "disabled" });
  try {
    const error = await providerError(() => provider.verify());
    assert.equal(error.kind, "credentials");
    assert.match(error.message, /The Cloudflare API token is disabled/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.verify() names Zone:Zone:Read when the token cannot read zones", async () => {
  const { fake, provider } = await setup({ scopes: ["dns:edit"] });
  try {
    for (const names of [[], ["_acme-challenge.example.com"]]) {
      const error = await providerError(() => provider.verify(names));
      assert.equal(error.kind, "credentials");
      assert.equal(error.status, 403);
      assert.match(error.message, /HTTP 403 \(code 9109 "Unauthorized to access requested resource"\)/);
      assert.match(error.message, /needs the Zone:Zone:Read permission/);
    }
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.verify() reports a token that can see no zone or not the name's zone", async () => {
  const { fake, provider } = await setup({ zones: ["example.com", "example.org"], tokenZones: [] });
  try {
    const none = await providerError(() => provider.verify());
    assert.equal(none.kind, "credentials");
    assert.match(
      none.message,
      /can read no zone: it lacks the Zone:Zone:Read permission, or its Zone Resources/,
    );
    const missing = await providerError(() => provider.verify(["_acme-challenge.www.example.com"]));
    assert.equal(missing.kind, "zone_not_found");
    assert.match(
      missing.message,
      /Cannot find the Cloudflare zone of "_acme-challenge\.www\.example\.com" \(looked up www\.example\.com, example\.com\)/,
    );
    assert.match(missing.message, /Zone Resources include it/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.verify() names Zone:DNS:Edit when the token has no DNS permission", async () => {
  const { fake, provider } = await setup({ scopes: ["zone:read"] });
  try {
    const error = await providerError(() => provider.verify());
    assert.equal(error.kind, "credentials");
    assert.match(error.message, /Cannot read the DNS records of Cloudflare zone example\.com/);
    assert.match(error.message, /lacks the Zone:DNS:Edit permission on example\.com/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.createTxtRecord() names Zone:DNS:Edit when the token may only read DNS", async () => {
  const { fake, provider } = await setup({ scopes: ["zone:read", "dns:read"] });
  try {
    await provider.verify();
    const error = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(error.kind, "credentials");
    assert.equal(error.status, 403);
    assert.equal(
      error.message,
      'Cannot create TXT record "_acme-challenge.example.com" in Cloudflare zone example.com: Cloudflare answered ' +
        'HTTP 403 (code 10000 "Authentication error") (the API token lacks the Zone:DNS:Edit permission on ' +
        "example.com: add it at https://dash.cloudflare.com/profile/api-tokens)",
    );
    assert.deepEqual(fake.records(), []);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider finds the most specific zone walking up the name, and caches it", async () => {
  const { fake, provider } = await setup({ zones: ["example.com", "sub.example.com"] });
  try {
    const deep = await provider.createTxtRecord("_acme-challenge.a.sub.example.com", "deep");
    assert.equal(deep.zone, "sub.example.com");
    assert.equal(deep.ref.zoneId, fake.zoneId("sub.example.com"));
    const www = await provider.createTxtRecord("_acme-challenge.www.example.com", "www");
    assert.equal(www.zone, "example.com");
    await provider.createTxtRecord("_acme-challenge.a.sub.example.com", "again");
    await provider.deleteTxtRecord(deep);
    const lookups = fake.requests.filter((request) => request.path.startsWith("/zones?")).map((r) => r.path);
    assert.deepEqual(lookups, [
      "/zones?name=a.sub.example.com",
      "/zones?name=sub.example.com",
      "/zones?name=www.example.com",
      "/zones?name=example.com",
    ]);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider shares one zone lookup between overlapping calls", async () => {
  const { fake, provider } = await setup();
  try {
    await Promise.all([
      provider.createTxtRecord("_acme-challenge.example.com", "a"),
      provider.createTxtRecord("_acme-challenge.example.com", "b"),
    ]);
    assert.equal(fake.requests.filter((request) => request.path === "/zones?name=example.com").length, 1);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider with a configured zone id skips the lookup by name", async () => {
  const { fake, provider } = await setup({ zones: ["example.com", "example.org"] }, {});
  const configured = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: fake.apiBase,
    zoneId: fake.zoneId("example.com"),
  });
  try {
    await configured.verify();
    const handle = await configured.createTxtRecord("_acme-challenge.www.example.com", "v");
    assert.equal(handle.zone, "example.com");
    assert.equal(handle.ref.zoneId, fake.zoneId("example.com"));
    assert.equal(await configured.findZone("_acme-challenge.example.com"), "example.com");
    assert.ok(fake.requests.every((request) => !request.path.startsWith("/zones?")));
    const outside = await providerError(() => configured.createTxtRecord("_acme-challenge.example.org", "v"));
    assert.equal(outside.kind, "zone_not_found");
    assert.match(outside.message, /"_acme-challenge\.example\.org": the name is outside that zone/);
    assert.equal(await provider.findZone("_acme-challenge.example.org"), "example.org");
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider with an unknown zone id says to check cloudflare.zone_id", async () => {
  const { fake } = await setup();
  const provider = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: fake.apiBase,
    zoneId: "0".repeat(32),
  });
  try {
    const error = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(error.kind, "credentials");
    assert.match(error.message, /Cannot read Cloudflare zone 0{32} \(cloudflare\.zone_id\)/);
    assert.match(error.message, /check cloudflare\.zone_id/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider creates with a JSON body and deletes without Content-Type or body", async () => {
  const { fake, provider } = await setup();
  try {
    const handle = await provider.createTxtRecord("_acme-challenge.example.com", "token-digest");
    const create = fake.requests.find((request) => request.method === "POST");
    assert.equal(create?.path, `/zones/${fake.zoneId("example.com")}/dns_records`);
    assert.equal(create?.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(create?.body ?? ""), {
      type: "TXT",
      name: "_acme-challenge.example.com",
      content: "token-digest",
      ttl: 120,
    });
    const [record] = fake.records();
    assert.equal(handle.ref.recordId, record?.id);
    await provider.deleteTxtRecord(handle);
    const remove = fake.requests.find((request) => request.method === "DELETE");
    assert.equal(remove?.path, `/zones/${fake.zoneId("example.com")}/dns_records/${record?.id}`);
    assert.equal(remove?.headers["content-type"], undefined);
    assert.equal(remove?.body, "");
    assert.deepEqual(fake.records(), []);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider.cleanupStale() reads every page of records", async () => {
  const { fake, provider } = await setup();
  try {
    for (let i = 0; i < 105; i++) {
      await fake.addRecord("example.com", { name: "_acme-challenge.example.com", content: `stale-${i}` });
    }
    await fake.addRecord("example.com", { name: "_acme-challenge.www.example.com", content: "other" });
    assert.equal(await provider.cleanupStale("_acme-challenge.example.com."), 105);
    assert.deepEqual(fake.records().map((record) => record.content), ["other"]);
    const pages = fake.requests.filter((request) =>
      request.method === "GET" && request.path.includes("dns_records")
    );
    assert.equal(pages.length, 2);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider turns a 429 into rate_limited with retryAfterMs and stops sending", async () => {
  let now = 1_000_000;
  const { fake, provider } = await setup({}, { now: () => now });
  try {
    fake.failNext(1, { status: 429, retryAfter: "30" });
    const first = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(first.kind, "rate_limited");
    assert.equal(first.status, 429);
    assert.equal(first.retryAfterMs, 30_000);
    assert.match(
      first.message,
      /Cloudflare answered HTTP 429 \(rate limited; nexo sends Cloudflare no requests for 30 s/,
    );
    const sent = fake.requests.length;
    now += 10_000;
    const second = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(second.kind, "rate_limited");
    assert.equal(second.retryAfterMs, 20_000);
    assert.equal(fake.requests.length, sent, "no request may be sent during the ban");
    now += 20_000;
    await provider.createTxtRecord("_acme-challenge.example.com", "v");
    assert.equal(fake.records().length, 1);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider waits 5 minutes after a 429 without Retry-After, and reads HTTP-dates", async () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const { fake, provider } = await setup({}, { now: () => now });
  const dated = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: fake.apiBase, now: () => now });
  try {
    fake.failNext(1, { status: 429 });
    const bare = await providerError(() => provider.findZone("_acme-challenge.example.com"));
    assert.equal(bare.retryAfterMs, 300_000);
    assert.match(bare.message, /code 971|for 300 s/);
    fake.failNext(1, { status: 429, retryAfter: "Thu, 01 Jan 2026 00:01:00 GMT" });
    const date = await providerError(() => dated.findZone("_acme-challenge.example.com"));
    assert.equal(date.retryAfterMs, 60_000);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider reports a 5xx that outlasts its tries as unavailable, JSON or HTML", async () => {
  const { fake, provider } = await setup();
  try {
    await provider.findZone("example.com");
    const isCreate = (r: { method: string }) => r.method === "POST";
    fake.startOutage({ status: 503, retryAfter: "5" }, isCreate);
    const json = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(json.kind, "unavailable");
    assert.equal(json.status, 503);
    assert.equal(json.retryAfterMs, 5_000);
    assert.match(json.message, /Cloudflare answered HTTP 503 \(code 10002 "An unknown error has occurred"\)/);
    assert.equal(fake.requests.filter(isCreate).length, 3, "three tries, then the order's backoff decides");
    fake.startOutage({ status: 502, html: true }, isCreate);
    const html = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    fake.endOutage();
    assert.equal(html.kind, "unavailable");
    assert.match(html.message, /HTTP 502 with a body that is not Cloudflare's JSON envelope/);
    await provider.createTxtRecord("_acme-challenge.example.com", "v");
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider treats success:false in a 200 answer as a failure", async () => {
  const { fake, provider } = await setup();
  try {
    await provider.findZone("example.com");
    fake.failNext(1, { status: 200, errors: [{ code: 1004, message: "DNS Validation Error" }] });
    const error = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "v"));
    assert.equal(error.kind, "rejected");
    assert.equal(error.status, 200);
    assert.match(error.message, /Cloudflare answered HTTP 200 \(code 1004 "DNS Validation Error"\)$/);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider reports an unreachable API as unavailable and redacts the token", async () => {
  const leakyFetch: typeof fetch = () =>
    Promise.reject(new TypeError(`connection refused (Bearer ${TOKEN})`));
  const provider = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: "http://api.invalid/v4",
    fetch: leakyFetch,
  });
  const error = await providerError(() => provider.verify());
  assert.equal(error.kind, "unavailable");
  assert.equal(error.status, null);
  assert.match(
    error.message,
    /Cloudflare API at http:\/\/api\.invalid\/v4 failed: connection refused \(Bearer \[redacted\]\)/,
  );
  assert.ok(error.cause instanceof Error && !error.cause.message.includes(TOKEN));
});

Deno.test("CloudflareDnsProvider gives up on a request after requestTimeoutMs", async () => {
  const hangingFetch: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) =>
      init?.signal?.addEventListener("abort", () => reject(init.signal?.reason))
    );
  const provider = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: "http://127.0.0.1:9/client/v4",
    fetch: hangingFetch,
    requestTimeoutMs: 20,
  });
  const error = await providerError(() => provider.findZone("_acme-challenge.example.com"));
  assert.equal(error.kind, "unavailable");
  assert.match(error.message, /no answer within 0\.02 s/);
});

Deno.test("CloudflareDnsProvider never puts the token in an error message", async () => {
  const { fake } = await setup({ token: "the-valid-token" });
  const provider = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: fake.apiBase });
  try {
    const calls = [
      () => provider.verify(),
      () => provider.findZone("_acme-challenge.example.com"),
      () => provider.createTxtRecord("_acme-challenge.example.com", TOKEN),
      () => provider.cleanupStale("_acme-challenge.example.com"),
      () =>
        provider.deleteTxtRecord({
          provider: "cloudflare",
          fqdn: "_acme-challenge.example.com",
          value: "v",
          zone: "example.com",
          ref: { zoneId: fake.zoneId("example.com"), recordId: "1".repeat(32) },
        }),
    ];
    for (const call of calls) {
      const error = await providerError(call);
      assert.equal(error.kind, "credentials");
    }
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider says to check cloudflare.api_base when the answer is not Cloudflare's", async () => {
  const htmlFetch: typeof fetch = () =>
    Promise.resolve(new Response("<html>Not Found</html>", { status: 404 }));
  const provider = new CloudflareDnsProvider({
    apiToken: TOKEN,
    apiBase: "http://proxy.test/v4",
    fetch: htmlFetch,
  });
  const error = await providerError(() => provider.verify());
  assert.equal(error.kind, "rejected");
  assert.equal(error.status, 404);
  assert.match(
    error.message,
    /HTTP 404 with a body that is not Cloudflare's JSON envelope \(check cloudflare\.api_base/,
  );
});

Deno.test("CloudflareDnsProvider looks a zone up again after Cloudflare refused a request on it", async () => {
  const { fake, provider } = await setup();
  try {
    await provider.createTxtRecord("_acme-challenge.example.com", "before");
    const zone = fake.zones[0]!;
    zone.id = "f".repeat(32); // the zone was deleted and added again: a new id
    const stale = await providerError(() => provider.createTxtRecord("_acme-challenge.example.com", "after"));
    assert.equal(stale.kind, "credentials");
    const handle = await provider.createTxtRecord("_acme-challenge.example.com", "after");
    assert.equal(handle.ref.zoneId, "f".repeat(32));
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider retries a 5xx, a short 429 and a refused connection within the call", async () => {
  const { fake, provider, waits } = await setup();
  try {
    fake.failNext(2, { status: 500 });
    assert.equal(await provider.findZone("_acme-challenge.example.com"), "example.com");
    assert.equal(waits.length, 2);
    // 1 s then 2 s, each with ±20% jitter.
    assert.ok(waits[0]! >= 800 && waits[0]! <= 1200 && waits[1]! >= 1600 && waits[1]! <= 2400, String(waits));
    fake.failNext(1, { status: 429, retryAfter: "4" });
    const handle = await provider.createTxtRecord("_acme-challenge.example.com", "v1");
    assert.ok(waits[2]! >= 4000, `Retry-After 4 is waited out: ${waits}`);
    fake.failNext(1, { status: 502, html: true });
    await provider.deleteTxtRecord(handle);
    assert.deepEqual(fake.records(), []);
  } finally {
    await fake.close();
  }
  // Refused connections: the fake is gone, and each of the three tries fails fast.
  const refused = await providerError(() => provider.findZone("other.example.com"));
  assert.equal(refused.kind, "unavailable");
  assert.equal(waits.length, 6);
});

Deno.test("CloudflareDnsProvider leaves a long Retry-After and other errors to the caller", async () => {
  const { fake, provider, waits } = await setup();
  try {
    fake.failNext(1, { status: 429, retryAfter: "60" });
    const limited = await providerError(() => provider.findZone("example.com"));
    assert.equal(limited.kind, "rate_limited");
    assert.deepEqual(waits, []);
    const sent = fake.requests.length;
    fake.failNext(1, { status: 400, errors: [{ code: 1004, message: "DNS Validation Error" }] });
    const rejected = await providerError(() => provider.findZone("example.com")).catch((e) => e);
    assert.equal(fake.requests.length, sent, "no request during the ban");
    assert.equal(rejected.kind, "rate_limited");
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider never duplicates a record whose create failed after Cloudflare stored it", async () => {
  const { fake, provider } = await setup();
  try {
    await provider.findZone("example.com");
    const isCreate = (r: { method: string }) => r.method === "POST";
    // The record is written, then the edge answers 500; the retry looks it up and adopts it.
    fake.failNext(1, { status: 500, afterWrite: true });
    const handle = await provider.createTxtRecord("_acme-challenge.example.com", "v1");
    assert.equal(fake.requests.filter(isCreate).length, 1, "no second POST for a record that exists");
    assert.deepEqual(txtValues(fake, "_acme-challenge.example.com"), ["v1"]);
    await provider.deleteTxtRecord(handle);
    // A create refused before the write is sent again.
    fake.failNext(1, { status: 503 });
    await provider.createTxtRecord("_acme-challenge.example.com", "v2");
    assert.equal(fake.requests.filter(isCreate).length, 3);
    assert.deepEqual(txtValues(fake, "_acme-challenge.example.com"), ["v2"]);
    assert.equal(fake.maxDuplicates, 1);
  } finally {
    await fake.close();
  }
});

Deno.test("CloudflareDnsProvider under 30% seeded 5xx answers creates and deletes every record exactly once", async () => {
  for (const seed of [1, 2, 3]) {
    const { fake, provider } = await setup({}, {
      retry: { tries: 3, firstDelayMs: 1, maxWaitMs: 10_000 },
      sleep: () => Promise.resolve(),
    });
    try {
      fake.startFlakiness(0.3, seed, (draw) => ({ status: 500, afterWrite: draw < 0.5 }));
      let created = 0;
      for (let i = 0; i < 20; i++) {
        const name = `_acme-challenge.h${i}.example.com`;
        let handle;
        // A call that fails all three tries fails the order; the order's retry runs it again.
        for (let order = 0; handle === undefined && order < 5; order++) {
          handle = await provider.createTxtRecord(name, `v${i}`).catch(() => undefined);
        }
        assert.ok(handle, `seed ${seed}: ${name} never created`);
        created++;
        for (let order = 0; order < 5; order++) {
          if (await provider.deleteTxtRecord(handle).then(() => true, () => false)) break;
        }
      }
      fake.endFlakiness();
      // An order that gave up may have left a record that was stored behind a 500: cleanupStale() finds it.
      for (let i = 0; i < 20; i++) await provider.cleanupStale(`_acme-challenge.h${i}.example.com`);
      assert.equal(created, 20);
      assert.deepEqual(fake.records(), [], `seed ${seed}`);
      assert.equal(fake.maxDuplicates, 1, `seed ${seed}: two records with one name and value existed`);
    } finally {
      await fake.close();
    }
  }
});
