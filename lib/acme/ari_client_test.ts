import assert from "node:assert/strict";
import { Logger } from "../log.ts";
import { capturingLogger } from "../log_capture.ts";
import { CertRepository } from "../storage/cert_repository.ts";
import { MemoryStorage } from "../storage/memory_storage.ts";
import { LocalCa } from "../tls/local_ca.ts";
import { withTempDir } from "../tls/test_helpers.ts";
import { type AdviceRequest, RenewalInfoClient } from "./ari_client.ts";
import { ariCertId } from "./ari_cert_id.ts";

const DIRECTORY = "https://acme.test/dir";
const RENEWAL_INFO = "https://acme.test/renewal-info";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** What the fake CA answers to renewalInfo requests, settable between calls. */
interface FakeCa {
  directory: Record<string, unknown>;
  answer: () => Response;
  requests: string[];
  fetch: typeof fetch;
}

function fakeCa(): FakeCa {
  const ca: FakeCa = {
    directory: { newOrder: "https://acme.test/new-order", renewalInfo: RENEWAL_INFO },
    answer: () => new Response("{}", { status: 404 }),
    requests: [],
    fetch: (input) => {
      const url = String(input);
      ca.requests.push(url);
      if (url === DIRECTORY) return Promise.resolve(Response.json(ca.directory));
      if (url.startsWith(`${RENEWAL_INFO}/`)) return Promise.resolve(ca.answer());
      return Promise.resolve(new Response("not found", { status: 404 }));
    },
  };
  return ca;
}

function windowAnswer(start: number, end: number, retryAfter = "3600"): () => Response {
  return () =>
    Response.json({
      suggestedWindow: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
      explanationURL: "https://acme.test/docs/ari",
    }, { headers: { "retry-after": retryAfter } });
}

interface World {
  ca: FakeCa;
  repository: CertRepository;
  clock: { now: number };
  request: () => Promise<AdviceRequest>;
  certId: string;
  client: (random?: () => number) => {
    client: RenewalInfoClient;
    lines: () => Array<Record<string, unknown>>;
  };
}

/** A 90-day certificate issued by a local CA and stored as an ACME one, a fake CA, and a settable clock. */
async function withWorld(fn: (world: World) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const local = await LocalCa.loadOrCreate(`${dir}/ca`);
    const clock = { now: Date.UTC(2025, 5, 1) };
    const leaf = await local.issue(["a.example.com"], { now: new Date(clock.now), lifetimeMs: 90 * DAY });
    const repository = new CertRepository({ certs: new MemoryStorage(), state: new MemoryStorage() });
    const saved = await repository.saveCertificate(["a.example.com"], {
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      issuer: "acme",
      directoryUrl: DIRECTORY,
    });
    const ca = fakeCa();
    const request = async (): Promise<AdviceRequest> => {
      const [stored] = (await repository.loadCertificates()).certificates;
      return {
        names: saved.names,
        certPem: leaf.certPem,
        location: saved.location,
        directoryUrl: DIRECTORY,
        validity: { notBefore: saved.notBefore!, notAfter: saved.notAfter! },
        stored: stored?.renewalInfo ?? null,
        fixedDueAt: clock.now + 60 * DAY,
      };
    };
    const clients: RenewalInfoClient[] = [];
    const client = (random = () => 0.5) => {
      const { log, flushed: lines } = capturingLogger();
      const made = new RenewalInfoClient({ log, fetch: ca.fetch, now: () => clock.now, random });
      clients.push(made);
      return { client: made, lines };
    };
    try {
      await fn({ ca, repository, clock, request, certId: ariCertId(leaf.certPem), client });
    } finally {
      for (const made of clients) made.close();
    }
  });
}

const context = (repository: CertRepository, checkIntervalMs = DAY) => ({
  repository,
  checkIntervalMs,
  caCertFor: () => null,
});

Deno.test("RenewalInfoClient asks the CA's renewalInfo URL, picks a time in the window and stores it", async () => {
  await withWorld(async ({ ca, repository, clock, request, certId, client }) => {
    const start = clock.now + 59 * DAY;
    ca.answer = windowAnswer(start, start + 2 * DAY, "21600");
    const { client: ari, lines } = client(() => 0.25);
    const [advice] = await ari.advise([await request()], context(repository));
    assert.deepEqual(advice, {
      replaces: certId,
      window: {
        start,
        end: start + 2 * DAY,
        renewAt: start + 12 * HOUR,
        capped: false,
        explanationUrl: "https://acme.test/docs/ari",
      },
      nextCheckAt: clock.now + 6 * HOUR,
    });
    assert.deepEqual(ca.requests, [DIRECTORY, `${RENEWAL_INFO}/${certId}`]);
    const [stored] = (await repository.loadCertificates()).certificates;
    assert.equal(stored?.renewalInfo?.renewAt.getTime(), start + 12 * HOUR, "the pick is in meta.json");
    assert.equal(stored?.renewalInfo?.certId, certId);
    const logged = lines().filter((l) => l.msg === "renewal window from CA");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.renews_at, new Date(start + 12 * HOUR).toISOString());
    assert.equal(logged[0]?.explanation_url, "https://acme.test/docs/ari");

    // Before Retry-After has passed the CA is not asked again; after it, it is, and the pick stays.
    clock.now += HOUR;
    await ari.advise([await request()], context(repository));
    assert.equal(ca.requests.length, 2);
    clock.now += 5 * HOUR;
    const [again] = await ari.advise([await request()], context(repository));
    assert.equal(ca.requests.length, 3);
    assert.equal(again?.window?.renewAt, start + 12 * HOUR);
    assert.equal(lines().filter((l) => l.msg === "renewal window from CA").length, 1, "logged once");
  });
});

Deno.test("RenewalInfoClient keeps a stored pick across a restart and picks afresh when the window moves", async () => {
  await withWorld(async ({ ca, repository, clock, request, client }) => {
    const start = clock.now + 59 * DAY;
    ca.answer = windowAnswer(start, start + 2 * DAY);
    await client(() => 0.25).client.advise([await request()], context(repository));
    const [restarted] = await client(() => 0.75).client.advise([await request()], context(repository));
    assert.equal(restarted?.window?.renewAt, start + 12 * HOUR, "a restart does not pick again");

    // The CA moves the window into the past (a revocation ahead): renewal is due at once.
    ca.answer = windowAnswer(clock.now - 2 * DAY, clock.now - DAY);
    clock.now += 2 * HOUR;
    const { client: ari, lines } = client(() => 0.5);
    const [moved] = await ari.advise([await request()], context(repository));
    assert.equal(moved?.window?.renewAt, clock.now - 2 * HOUR - 1.5 * DAY);
    assert.ok(moved!.window!.renewAt <= clock.now, "due now");
    assert.equal(lines().filter((l) => l.msg === "renewal window from CA").length, 1);
  });
});

Deno.test("RenewalInfoClient falls back to the fixed schedule on failures and warns once per kind of failure", async () => {
  await withWorld(async ({ ca, repository, clock, request, certId, client }) => {
    const { client: ari, lines } = client();
    const warnings = () => lines().filter((l) => l.msg === "renewal information unavailable");
    ca.answer = () =>
      new Response('{"type":"urn:ietf:params:acme:error:serverInternal","detail":"db down"}', {
        status: 500,
        headers: { "content-type": "application/problem+json" },
      });
    const [first] = await ari.advise([await request()], context(repository));
    assert.deepEqual(first, { replaces: certId, window: null, nextCheckAt: clock.now + MINUTE });
    assert.equal(warnings().length, 1);
    assert.match(
      String(warnings()[0]?.error),
      /^Cannot get the renewal window of a\.example\.com from https:\/\/acme\.test\/dir: the CA answered HTTP 500 for the renewal information: db down$/,
    );
    assert.equal(warnings()[0]?.fallback, "fixed schedule");
    // RFC 9773 §4.3.3: temporary errors back off exponentially.
    clock.now += MINUTE;
    const [second] = await ari.advise([await request()], context(repository));
    assert.equal(second?.nextCheckAt, clock.now + 2 * MINUTE);
    assert.equal(warnings().length, 1, "the same failure again is not logged again");

    ca.answer = () => new Response("<html>oops</html>", { status: 200 });
    clock.now += 2 * MINUTE;
    const [garbage] = await ari.advise([await request()], context(repository));
    assert.equal(garbage?.window, null);
    assert.equal(garbage?.nextCheckAt, clock.now + 6 * HOUR, "a malformed answer is a long-term error");
    assert.equal(warnings().length, 2);
    assert.match(String(warnings()[1]?.error), /the answer is not JSON/);

    ca.answer = () =>
      Response.json({ suggestedWindow: { start: "2025-08-02T00:00:00Z", end: "2025-08-01T00:00:00Z" } });
    clock.now += 6 * HOUR;
    assert.equal((await ari.advise([await request()], context(repository)))[0]?.window, null);
    assert.match(String(warnings()[2]?.error), /suggestedWindow ends .* before it starts/);

    ca.answer = windowAnswer(clock.now + DAY, clock.now + 2 * DAY);
    clock.now += 6 * HOUR;
    const [recovered] = await ari.advise([await request()], context(repository));
    assert.ok(recovered?.window !== null, "a good answer applies again");
    assert.equal(lines().filter((l) => l.msg === "renewal window from CA").length, 1);
  });
});

Deno.test("RenewalInfoClient asks nothing of a CA without renewalInfo, nor about an expired certificate", async () => {
  await withWorld(async ({ ca, repository, clock, request, client }) => {
    delete ca.directory.renewalInfo;
    const { client: ari, lines } = client();
    const none = { replaces: null, window: null, nextCheckAt: null };
    assert.deepEqual(await ari.advise([await request()], context(repository)), [none]);
    assert.deepEqual(ca.requests, [DIRECTORY]);
    clock.now += HOUR;
    assert.deepEqual(await ari.advise([await request()], context(repository)), [none]);
    assert.deepEqual(ca.requests, [DIRECTORY], "the directory is cached for a day");
    assert.equal(lines().filter((l) => l.msg === "renewal information not offered").length, 1);

    const fresh = fakeCa();
    const expired = new RenewalInfoClient({
      log: new Logger({ sink: { writeSync: (b) => b.length } }),
      fetch: fresh.fetch,
    });
    const request2 = { ...(await request()), validity: { notBefore: new Date(0), notAfter: new Date(1) } };
    try {
      assert.deepEqual(await expired.advise([request2], context(repository)), [none]);
      assert.deepEqual(fresh.requests, [], "RFC 9773 §4.3: an expired certificate is not asked about");
    } finally {
      expired.close();
    }
  });
});

Deno.test("RenewalInfoClient reports a network failure as temporary and a CA file it cannot read by name", async () => {
  await withWorld(async ({ repository, clock, request }) => {
    const { log, flushed: lines } = capturingLogger();
    const refused = new RenewalInfoClient({
      log,
      fetch: () => Promise.reject(new TypeError("error sending request: connection refused")),
      now: () => clock.now,
    });
    try {
      const [advice] = await refused.advise([await request()], context(repository));
      assert.equal(advice?.window, null);
      assert.match(String(lines()[0]?.error), /https:\/\/acme\.test\/dir cannot be reached \(.*refused\)/);
      clock.now += HOUR;
      const [missing] = await refused.advise([await request()], {
        ...context(repository, 1_000),
        caCertFor: () => "/nonexistent/ca.pem",
      });
      assert.equal(missing?.window, null);
      assert.match(
        String(lines()[1]?.error),
        /cannot read acme\.ca_cert "\/nonexistent\/ca\.pem" \(.*fix the path/,
      );
    } finally {
      refused.close();
    }
  });
});
