import assert from "node:assert/strict";
import { DnsPropagationError, waitForTxt } from "./propagation.ts";
import { startChallTestSrv } from "../../tests/challtestsrv.ts";

const FAST = { intervalMs: 20, timeoutMs: 5_000, queryTimeoutMs: 1_000 };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A clock that moves only when waitForTxt() sleeps, so a 2-minute timeout passes in a few real ms. */
function virtualClock(): { now: () => number; sleep: (ms: number) => Promise<void>; polls: () => number } {
  let now = 0;
  let polls = 0;
  return {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      polls++;
      return delay(1);
    },
    polls: () => polls,
  };
}

Deno.test("waitForTxt() resolves once the value appears at the configured resolver", async () => {
  await using dns = await startChallTestSrv();
  let settled = false;
  const waiting = waitForTxt("_acme-challenge.example.com", "v1", { ...FAST, resolvers: [dns.dnsServer] })
    .finally(() => settled = true);
  await delay(100);
  assert.equal(settled, false);
  await dns.setTxt("_acme-challenge.example.com", "v1");
  await waiting;
});

Deno.test("waitForTxt() sees each of two values on one name (a wildcard and its apex)", async () => {
  await using dns = await startChallTestSrv();
  const options = { ...FAST, resolvers: [dns.dnsServer] };
  await dns.setTxt("_acme-challenge.example.com", "apex");
  await waitForTxt("_acme-challenge.example.com", "apex", options);
  let settled = false;
  const wildcard = waitForTxt("_ACME-Challenge.Example.com.", "wildcard", options).finally(() =>
    settled = true
  );
  await delay(100);
  assert.equal(settled, false);
  await dns.setTxt("_acme-challenge.example.com", "wildcard");
  await wildcard;
  await waitForTxt("_acme-challenge.example.com", "apex", options);
});

Deno.test("waitForTxt() times out after 2 minutes of 2 s polls, naming the record and each server that did not show it", async () => {
  await using good = await startChallTestSrv();
  await using stale = await startChallTestSrv();
  await good.setTxt("_acme-challenge.example.com", "wanted");
  await stale.setTxt("_acme-challenge.example.com", "old");
  const clock = virtualClock();
  const error = await waitForTxt("_acme-challenge.example.com", "wanted", {
    ...clock,
    resolvers: [good.dnsServer, stale.dnsServer],
  }).then(() => null, (error) => error);
  assert.ok(error instanceof DnsPropagationError);
  assert.equal(clock.polls(), 60);
  assert.equal(error.fqdn, "_acme-challenge.example.com");
  assert.deepEqual(error.pending, [`${stale.dnsServer}: other values "old"`]);
  assert.equal(
    error.message,
    `TXT record "_acme-challenge.example.com" with value "wanted" did not appear within 120 s at 1 of 2 DNS ` +
      `servers (${stale.dnsServer}: other values "old"); check that the DNS provider published it and that ` +
      `these servers serve its zone`,
  );
});

Deno.test("waitForTxt() reports each server's last real answer, not the final round's query cut short by the deadline", async () => {
  // A server that answers "no such record" after 5 ms: every round but the last has its full query time;
  // the last starts at the deadline, gets 1 ms, and is aborted.
  const resolveDns =
    ((_name: string, _type: string, options: { signal: AbortSignal }) =>
      new Promise((_resolve, reject) => {
        const timer = setTimeout(() => reject(new Deno.errors.NotFound("no record")), 5);
        options.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new DOMException("aborted", "AbortError"));
        });
      })) as unknown as typeof Deno.resolveDns;
  const error = await waitForTxt("_acme-challenge.example.com", "v", {
    ...virtualClock(),
    timeoutMs: 10_000,
    intervalMs: 1_000,
    resolvers: ["127.0.0.1:53"],
    resolveDns,
  }).then(() => null, (error) => error);
  assert.ok(error instanceof DnsPropagationError);
  assert.deepEqual(error.pending, ["127.0.0.1:53: no TXT record"]);
});

Deno.test("waitForTxt() reports a name with no TXT record at all", async () => {
  await using dns = await startChallTestSrv();
  const error = await waitForTxt("_acme-challenge.example.com", "v", {
    ...virtualClock(),
    timeoutMs: 10_000,
    intervalMs: 1_000,
    resolvers: [`localhost:${dns.dnsPort}`],
  }).then(() => null, (error) => error);
  assert.ok(error instanceof DnsPropagationError);
  assert.match(
    error.message,
    /within 10 s at 1 of 1 DNS servers \(127\.0\.0\.1:\d+ \(localhost\): no TXT record\)/,
  );
});

Deno.test("waitForTxt() asks the zone's authoritative nameservers, found with NS and A queries", async () => {
  await using dns = await startChallTestSrv();
  const asked: string[] = [];
  // System DNS is unreachable in tests: answer NS and A here, and send TXT queries to challtestsrv.
  const resolveDns = ((query: string, type: string, options?: Deno.ResolveDnsOptions) => {
    asked.push(`${type} ${query}`);
    if (type === "NS") {
      if (query === "example.com") return Promise.resolve(["ns1.example.net.", "ns2.example.net."]);
      return Promise.reject(new Deno.errors.NotFound(`no records found for ${query}`));
    }
    if (type === "A") return Promise.resolve(query === "ns1.example.net" ? ["127.0.0.1"] : ["127.0.0.2"]);
    assert.equal(type, "TXT");
    const ipAddr = options?.nameServer?.ipAddr ?? "";
    asked.push(`  to ${ipAddr}:${options?.nameServer?.port}`);
    if (ipAddr === "127.0.0.2") return Promise.resolve([["v"]]);
    return Deno.resolveDns(query, "TXT", { nameServer: { ipAddr: "127.0.0.1", port: dns.dnsPort } });
  }) as unknown as typeof Deno.resolveDns;
  await dns.setTxt("_acme-challenge.www.example.com", "v");
  await waitForTxt("_acme-challenge.www.example.com", "v", { ...FAST, resolveDns });
  assert.deepEqual(asked, [
    "NS www.example.com",
    "NS example.com",
    "A ns1.example.net",
    "A ns2.example.net",
    "TXT _acme-challenge.www.example.com",
    "  to 127.0.0.1:53",
    "TXT _acme-challenge.www.example.com",
    "  to 127.0.0.2:53",
  ]);
});

Deno.test("waitForTxt() uses the zone it is given instead of walking up the name", async () => {
  const asked: string[] = [];
  const resolveDns = ((query: string, type: string) => {
    asked.push(`${type} ${query}`);
    if (type === "NS") return Promise.resolve(["ns.example.net"]);
    if (type === "A") return Promise.resolve(["192.0.2.1"]);
    return Promise.resolve([["v"]]);
  }) as unknown as typeof Deno.resolveDns;
  await waitForTxt("_acme-challenge.a.b.example.com", "v", { ...FAST, zone: "Example.com.", resolveDns });
  assert.deepEqual(asked, ["NS example.com", "A ns.example.net", "TXT _acme-challenge.a.b.example.com"]);
});

Deno.test("waitForTxt() says when it finds no server to ask", async () => {
  const resolveDns = ((query: string) =>
    Promise.reject(
      new Deno.errors.NotFound(`no records found for ${query}`),
    )) as unknown as typeof Deno.resolveDns;
  const error = await waitForTxt("_acme-challenge.example.com", "v", { ...FAST, timeoutMs: 50, resolveDns })
    .then(() => null, (error) => error);
  assert.ok(error instanceof DnsPropagationError);
  assert.match(
    error.message,
    /^Cannot check TXT record "_acme-challenge\.example\.com" with value "v": found no DNS servers to ask within 50 ms \(no NS records found for any parent of _acme-challenge\.example\.com\); set acme\.dns_resolvers/,
  );
});

Deno.test("waitForTxt() stops when its signal aborts", async () => {
  await using dns = await startChallTestSrv();
  const controller = new AbortController();
  const waiting = waitForTxt("_acme-challenge.example.com", "never", {
    ...FAST,
    resolvers: [dns.dnsServer],
    signal: controller.signal,
  });
  await delay(50);
  controller.abort(new Error("shutting down"));
  await assert.rejects(waiting, /shutting down/);
});

Deno.test("waitForTxt() rejects a malformed resolver with a TypeError naming it", async () => {
  await assert.rejects(
    waitForTxt("_acme-challenge.example.com", "v", { ...FAST, resolvers: ["1.2.3.4:99999"] }),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message ===
        'invalid DNS resolver "1.2.3.4:99999": write it like "1.1.1.1", "127.0.0.1:8053" or "[::1]:53"',
  );
});
