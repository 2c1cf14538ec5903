// AcmeDnsProvider against a scripted fetch: the request acme-dns expects, how each of its answers (and a
// proxy's) maps to a DnsProviderError, the spacing of updates, which values are sent again, and verify()'s
// CNAME check. tests/acme_dns_test.ts runs the conformance suite against a fake acme-dns and real DNS.

import assert from "node:assert/strict";
import { AcmeDnsProvider, type AcmeDnsProviderOptions } from "./acme_dns.ts";
import { AcmeDnsApi } from "./acme_dns_api.ts";
import { DnsProviderError, providerCapabilities } from "./provider.ts";

const USER = "c36f50e8-4632-44f0-83fe-e070fef28a10";
const KEY = "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z";
const SUB = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a";
const FULL = `${SUB}.auth.example.org`;
const NAME = "_acme-challenge.example.org";
const value = (label: string) => label.padEnd(43, "_");

interface Sent {
  url: string;
  headers: Headers;
  body: unknown;
}

/** A provider whose fetch answers from `answers` in turn (a Response, or an Error to throw), and a clock. */
function scripted(answers: Array<Response | Error>, options: Partial<AcmeDnsProviderOptions> = {}) {
  const sent: Sent[] = [];
  let clock = 1_000_000;
  const slept: number[] = [];
  const provider = new AcmeDnsProvider({
    api: "https://auth.example.org/",
    username: USER,
    password: KEY,
    subdomain: SUB,
    fulldomain: FULL,
    domain: "example.org",
    fetch: (input, init) => {
      sent.push({
        url: String(input),
        headers: new Headers(init?.headers),
        body: JSON.parse(String(init?.body)),
      });
      const answer = answers.shift() ?? echo(JSON.parse(String(init?.body)).txt);
      clock += 10;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    now: () => clock,
    sleep: (ms) => {
      slept.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    ...options,
  });
  return { provider, sent, slept };
}

/** acme-dns's 200: the value echoed. */
function echo(txt: string): Response {
  return new Response(`{"txt": "${txt}"}`, { status: 200 });
}

function acmeError(status: number, code: string, headers: Record<string, string> = {}): Response {
  return new Response(`{"error": "${code}"}`, { status, headers });
}

async function failure(promise: Promise<unknown>): Promise<DnsProviderError> {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof DnsProviderError, `expected a DnsProviderError, got ${error}`);
  return error;
}

Deno.test("AcmeDnsProvider sends acme-dns's update: POST <api>/update with X-Api-User, X-Api-Key and the JSON body", async () => {
  const { provider, sent } = scripted([]);
  const handle = await provider.createTxtRecord("_ACME-Challenge.Example.ORG.", value("a"));
  assert.deepEqual(handle, {
    provider: "acme-dns",
    fqdn: NAME,
    value: value("a"),
    zone: "example.org",
    ref: { subdomain: SUB },
  });
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.url, "https://auth.example.org/update");
  assert.equal(sent[0]!.headers.get("x-api-user"), USER);
  assert.equal(sent[0]!.headers.get("x-api-key"), KEY);
  assert.deepEqual(sent[0]!.body, { subdomain: SUB, txt: value("a") });
  assert.deepEqual(providerCapabilities(provider), { deletes: false, maxValuesPerName: 2 });
  assert.equal(provider.recordName(`${NAME}.`), FULL);
  assert.equal(provider.recordName("_acme-challenge.other.org"), "_acme-challenge.other.org");
});

Deno.test("AcmeDnsProvider reports acme-dns's 401 forbidden as credentials, with every cause acme-dns hides behind it and never the key", async () => {
  const { provider } = scripted([acmeError(401, "forbidden")]);
  const error = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.equal(error.kind, "credentials");
  assert.equal(error.status, 401);
  assert.match(
    error.message,
    /acme-dns at https:\/\/auth\.example\.org \(user "c36f50e8-4632-44f0-83fe-e070fef28a10"\)/,
  );
  assert.match(error.message, /answered HTTP 401 \{"error": "forbidden"\}/);
  assert.match(error.message, /allowfrom/);
  assert.match(error.message, /wrong username or password/);
  assert.ok(!error.message.includes(KEY) && !error.message.includes(KEY.slice(0, 8)));

  const short = scripted([acmeError(401, "forbidden")], { password: "too-short-secret" }).provider;
  const said = await failure(short.createTxtRecord(NAME, value("a")));
  assert.match(said.message, /the password has 16 characters, acme-dns's have 40/);
  assert.ok(!said.message.includes("too-short-secret"));
});

Deno.test("AcmeDnsProvider quotes acme-dns's 400 bad_txt and bad_subdomain as rejected, saying what it takes", async () => {
  const { provider } = scripted([acmeError(400, "bad_txt"), acmeError(400, "bad_subdomain")]);
  const badTxt = await failure(provider.createTxtRecord(NAME, "nexo-doctor-test"));
  assert.equal(badTxt.kind, "rejected");
  assert.match(
    badTxt.message,
    /\{"error": "bad_txt"\}: acme-dns takes exactly 43 characters .* got 16 characters/,
  );
  const badSub = await failure(provider.createTxtRecord(NAME, value("b")));
  assert.match(badSub.message, /bad_subdomain.*set subdomain to the UUID label \/register returned/);
});

Deno.test("AcmeDnsProvider backs off after a 429 without sending, and reports 5xx, network failures and timeouts as unavailable", async () => {
  const { provider, sent } = scripted([
    acmeError(429, "slow down", { "retry-after": "30" }),
  ]);
  const limited = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.equal(limited.kind, "rate_limited");
  assert.equal(limited.retryAfterMs, 30_000);
  const still = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.equal(still.kind, "rate_limited");
  assert.equal(sent.length, 1, "no request while the ban lasts");

  const down = scripted([
    acmeError(500, "db_error"),
    new TypeError(`error sending request: connection refused (key ${KEY})`),
  ]).provider;
  const dbError = await failure(down.createTxtRecord(NAME, value("a")));
  assert.equal(dbError.kind, "unavailable");
  assert.match(dbError.message, /answered HTTP 500 \{"error": "db_error"\}/);
  const refused = await failure(down.createTxtRecord(NAME, value("a")));
  assert.equal(refused.kind, "unavailable");
  assert.match(refused.message, /failed: error sending request: connection refused \(key \[redacted\]\)/);
  assert.ok(!String((refused.cause as Error).message).includes(KEY), "the cause is redacted too");

  const hung = new AcmeDnsApi({
    api: "https://auth.example.org",
    username: USER,
    password: KEY,
    subdomain: SUB,
    requestTimeoutMs: 50,
    fetch: (_input, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")))
      ),
  });
  const timedOut = await failure(hung.update(value("a"), "publish"));
  assert.equal(timedOut.kind, "unavailable");
  assert.match(timedOut.message, /failed: no answer within 0\.05 s/);
});

Deno.test("AcmeDnsProvider says when the api URL is not acme-dns's: a 404, a redirect, a 200 without the echo", async () => {
  const { provider } = scripted([
    new Response("404 page not found\n", { status: 404 }),
    new Response(null, { status: 308, headers: { location: "https://acme.example.org/update" } }),
    new Response("<html>welcome</html>", { status: 200 }),
  ]);
  const notFound = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.equal(notFound.kind, "rejected");
  assert.match(
    notFound.message,
    /answered HTTP 404 404 page not found: check that https:\/\/auth\.example\.org is the base URL/,
  );
  const moved = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.match(moved.message, /it redirects to "https:\/\/acme\.example\.org\/update"/);
  const html = await failure(provider.createTxtRecord(NAME, value("a")));
  assert.match(html.message, /without acme-dns's \{"txt": \.\.\.\} echo/);
});

Deno.test("AcmeDnsProvider spaces updates a second apart and does not resend the newest value, which would overwrite the other", async () => {
  const { provider, sent, slept } = scripted([]);
  await provider.createTxtRecord(NAME, value("apex"));
  await provider.createTxtRecord(NAME, value("wildcard"));
  assert.equal(slept.length, 1);
  assert.ok(slept[0]! > 900 && slept[0]! <= 1000, `waited ${slept[0]} ms`);
  await provider.createTxtRecord(NAME, value("wildcard"));
  assert.equal(sent.length, 2, "the newest value is not sent again");
  // The older value is sent again: it overwrites itself and becomes the newer one.
  await provider.createTxtRecord(NAME, value("apex"));
  assert.equal(sent.length, 3);
  await provider.createTxtRecord(NAME, value("apex"));
  assert.equal(sent.length, 3);
  assert.deepEqual(sent.map((s) => (s.body as { txt: string }).txt), [
    value("apex"),
    value("wildcard"),
    value("apex"),
  ]);
});

Deno.test("AcmeDnsProvider forgets which values are served after an update whose outcome is unknown", async () => {
  const { provider, sent } = scripted([echo(value("a")), new Response("bad gateway", { status: 502 })]);
  await provider.createTxtRecord(NAME, value("a"));
  const unknown = await failure(provider.createTxtRecord(NAME, value("b")));
  assert.equal(unknown.kind, "unavailable");
  // "b" may have been stored, pushing "a" into the older slot, or not: both are sent again.
  await provider.createTxtRecord(NAME, value("a"));
  await provider.createTxtRecord(NAME, value("b"));
  assert.deepEqual(sent.map((s) => (s.body as { txt: string }).txt), [
    value("a"),
    value("b"),
    value("a"),
    value("b"),
  ]);
});

Deno.test("AcmeDnsProvider serves exactly _acme-challenge.<domain>: other names are zone_not_found without a request", async () => {
  const { provider, sent } = scripted([]);
  assert.equal(await provider.findZone("EXAMPLE.org."), "example.org");
  for (const name of ["_acme-challenge.www.example.org", "_acme-challenge.example.net", "example.org"]) {
    const error = await failure(provider.createTxtRecord(name, value("a")));
    assert.equal(error.kind, "zone_not_found");
    assert.match(
      error.message,
      /serves only "_acme-challenge\.example\.org" \(a CNAME to 8e5700ea-.*\.auth\.example\.org\)/,
    );
  }
  assert.equal(
    (await failure(provider.cleanupStale("_acme-challenge.www.example.org"))).kind,
    "zone_not_found",
  );
  assert.equal((await failure(provider.verify(["_acme-challenge.www.example.org"]))).kind, "zone_not_found");
  await assert.rejects(provider.cleanupStale("example.org"), TypeError);
  assert.equal(await provider.cleanupStale(NAME), 0);
  assert.equal(sent.length, 0);
});

Deno.test("AcmeDnsProvider.verify() checks the account with an update acme-dns refuses, and the CNAME when it can resolve", async () => {
  const cname = (answer: string[] | Error) =>
    (() =>
      answer instanceof Error
        ? Promise.reject(answer)
        : Promise.resolve(answer)) as unknown as typeof Deno.resolveDns;
  const ok = scripted([acmeError(400, "bad_txt"), acmeError(400, "bad_txt")], {
    resolveDns: cname([`${FULL.toUpperCase()}.`]),
  });
  await ok.provider.verify();
  await ok.provider.verify([NAME]);
  assert.deepEqual(ok.sent.map((s) => s.body), [{ subdomain: SUB, txt: "" }, { subdomain: SUB, txt: "" }]);

  const denied = scripted([acmeError(401, "forbidden")]);
  assert.equal((await failure(denied.provider.verify())).kind, "credentials");

  const missing = scripted([acmeError(400, "bad_txt")], {
    resolveDns: cname(new Deno.errors.NotFound("no records found")),
  });
  const none = await failure(missing.provider.verify([NAME]));
  assert.equal(none.kind, "zone_not_found");
  assert.match(
    none.message,
    /"_acme-challenge\.example\.org" has no CNAME record: .* set "_acme-challenge\.example\.org\. CNAME 8e5700ea-.*\.auth\.example\.org\." in the zone of example\.org/,
  );

  const elsewhere = scripted([acmeError(400, "bad_txt")], { resolveDns: cname(["other.auth.example.org."]) });
  assert.match(
    (await failure(elsewhere.provider.verify([NAME]))).message,
    /is a CNAME to "other\.auth\.example\.org", not to 8e5700ea-/,
  );

  // Without the fulldomain, the CNAME must point at a name starting with the subdomain.
  const unknownFull = scripted([acmeError(400, "bad_txt")], {
    fulldomain: null,
    resolveDns: cname([`${SUB}.acme.example.net.`]),
  });
  await unknownFull.provider.verify([NAME]);
  assert.equal(unknownFull.provider.recordName(NAME), NAME);

  const broken = scripted([acmeError(400, "bad_txt")], {
    resolveDns: cname(new Error("connection refused")),
  });
  assert.equal((await failure(broken.provider.verify([NAME]))).kind, "unavailable");
});

Deno.test("AcmeDnsProvider refuses an api that is not an http(s) URL and a fulldomain not below the subdomain", () => {
  const options = {
    api: "https://auth.example.org",
    username: USER,
    password: KEY,
    subdomain: SUB,
    fulldomain: FULL,
    domain: "example.org",
  };
  assert.throws(() => new AcmeDnsProvider({ ...options, api: "auth.example.org" }), TypeError);
  assert.throws(() => new AcmeDnsProvider({ ...options, api: "ftp://auth.example.org" }), TypeError);
  assert.throws(
    () => new AcmeDnsProvider({ ...options, fulldomain: "other.auth.example.org" }),
    /does not start with the subdomain/,
  );
});

Deno.test("AcmeDnsProvider without a domain serves every _acme-challenge name, all sharing the account's two values", async () => {
  const checked: string[] = [];
  const resolveDns = ((name: string) => {
    checked.push(name);
    return Promise.resolve([`${FULL}.`]);
  }) as unknown as typeof Deno.resolveDns;
  const { provider, sent } = scripted([acmeError(400, "bad_txt")], { domain: null, resolveDns });
  await provider.verify(["_acme-challenge.example.org", "_acme-challenge.www.example.net"]);
  assert.deepEqual(checked, ["_acme-challenge.example.org", "_acme-challenge.www.example.net"]);
  assert.equal(await provider.findZone("_acme-challenge.www.example.net"), "www.example.net");
  const handle = await provider.createTxtRecord("_acme-challenge.www.example.net", value("www"));
  assert.equal(handle.zone, "www.example.net");
  assert.equal(provider.recordName("_acme-challenge.www.example.net"), FULL);
  // The newest value is the account's, whatever name it was created for.
  await provider.createTxtRecord("_acme-challenge.example.org", value("www"));
  assert.equal(sent.length, 2, "one probe and one update");
  const error = await failure(provider.createTxtRecord("example.org", value("a")));
  assert.equal(error.kind, "zone_not_found");
  assert.match(error.message, /publishes only "_acme-challenge\." names/);
});
