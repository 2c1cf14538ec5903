// ACME-side faults end to end (real Pebble, real pebble-challtestsrv, the fake Cloudflare API): an ACME server
// that is down or hangs, Cloudflare answering 429 and 5xx, and TXT records that never propagate. Each must end
// in bounded attempts spaced by lib/acme/schedule.ts's doubling backoff, a log line that says what failed and
// where (never a token), the certificate already on disk left byte for byte and still served, and success
// without a restart once the fault is gone.
//
// Covered elsewhere and not repeated here: retryDelayMs/Retry-After arithmetic (lib/acme/schedule_test.ts),
// the provider's 429 ban, 5xx kinds and token redaction (lib/dns/cloudflare_test.ts), waitForTxt's timeout
// message with injected DNS (lib/dns/propagation_test.ts), a refused connection as an AcmeError
// (tests/acme_issue_test.ts), a crashed worker's restart (lib/acme/supervisor_test.ts), and a CA outage with
// a new host (tests/acme_renewal_test.ts, tests/acme_e2e_test.ts).

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createAcmeClient, ensureAccount } from "../lib/acme/acme_client.ts";
import { createPrivateKey } from "../lib/acme/csr.ts";
import { AcmeSupervisor } from "../lib/acme/supervisor.ts";
import { parseConfig } from "../lib/config/parse.ts";
import type { Logger } from "../lib/log.ts";
import { capturingLogger, type LogLine } from "../lib/log_capture.ts";
import { serveTls } from "../lib/server/listen.ts";
import { CertRepository } from "../lib/storage/cert_repository.ts";
import { loadCertDir } from "../lib/tls/cert_files.ts";
import { CertStore } from "../lib/tls/cert_store.ts";
import { LocalCa } from "../lib/tls/local_ca.ts";
import { dns01Config } from "./acme_world.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { TcpGate } from "./tcp_gate.ts";
import { startEchoUpstream } from "./upstreams.ts";
import { LocalHttp01Tokens } from "../lib/http01_tokens.ts";

const TOKEN = "faults-token-3c9e1f5a7b2d4e60";
const HOUR_MS = 3_600_000;

Deno.test("with the ACME server unreachable, nexo keeps serving its due certificate, retries renewal and first issuance with a doubling backoff, and recovers without a restart", async () => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  // The gate is Pebble's network path: closed, connections to the directory's port are refused, as when the
  // CA is down; reopened, the same Pebble answers again with its state intact, as Let's Encrypt does.
  const gate = TcpGate.start(Number(new URL(pebble.directoryUrl).port));
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-faults-" });
  const directoryUrl = `https://localhost:${gate.port}/dir`;
  try {
    const caFile = `${dir}/pebble-api-ca.pem`;
    await Deno.writeTextFile(caFile, pebble.apiCaPem);
    const seeded = await seedDueCertificate(dir, "renew.example.com", directoryUrl);
    const before = await certificateFiles(dir, "renew.example.com");
    await gate.close();
    const nexo = await startNexo(
      `${
        dns01Config(
          { directoryUrl, caFile, dnsServer: dns.dnsServer, apiBase: cloudflare.apiBase, token: TOKEN },
          ["retry_interval: 1s"],
        )
      }proxies:
  "renew.example.com":
    upstream: ${app.url}
  "first.example.com":
    upstream: ${app.url}
`,
      { dir },
    );
    try {
      const served = await servedCertificate(nexo.port, "renew.example.com", seeded.rootPem);
      assert.deepEqual(served, { status: 200, serial: seeded.serial }, "the stored certificate is served");

      // Three failed attempts per certificate: 1 s, then 2 s, then 4 s apart (retry_interval 1s, ±25%).
      for (const name of ["renew.example.com", "first.example.com"]) {
        await nexo.waitForLog((l) => isFailure(l, name) && l.failures === 3, 30_000);
      }
      for (const name of ["renew.example.com", "first.example.com"]) {
        const failures = nexo.logs.filter((l) => isFailure(l, name));
        assert.deepEqual(failures.map((l) => l.failures), [1, 2, 3], `${name}: one failure per attempt`);
        for (const failure of failures) {
          assert.equal(
            failure.error,
            `Cannot register an ACME account at ${directoryUrl}: the ACME server at ${directoryUrl} refused ` +
              `the connection; check acme.directory and that the server is up`,
          );
        }
        assertBackoff(nexo.logs, name, 1000);
        assert.equal(attemptsOf(nexo.logs, name).length, 3, `${name}: no attempt besides the backoff's`);
      }
      assert.doesNotMatch(
        nexo.output(),
        /reading 'config'|AxiosError/,
        "no acme-client internals in the log",
      );
      assert.deepEqual(
        await certificateFiles(dir, "renew.example.com"),
        before,
        "certificate files untouched",
      );
      assert.deepEqual(
        await servedCertificate(nexo.port, "renew.example.com", seeded.rootPem),
        { status: 200, serial: seeded.serial },
        "the old certificate is still served",
      );

      gate.open();
      const root = await pebble.issuerRootPem();
      for (const name of ["renew.example.com", "first.example.com"]) {
        await nexo.waitForLog((l) => l.msg === "certificate installed" && l.names === name, 30_000);
        assert.equal(attemptsOf(nexo.logs, name).length, 4, `${name}: the next scheduled attempt succeeded`);
        const fresh = await servedCertificate(nexo.port, name, root);
        assert.equal(fresh.status, 200, `${name} is served with Pebble's certificate`);
      }
      assert.equal(nexo.logs.filter((l) => l.msg === "listening" && l.protocol === "https").length, 1);
    } finally {
      await nexo.stop();
    }
  } finally {
    await gate.close();
    await app.close();
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("during a renewal, a short Cloudflare 429 is waited out within the call and a persistent 502 ends each attempt after three tries, backing off until the API recovers; the token is never logged", async () => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-faults-" });
  const name = "renew.example.com";
  try {
    const caFile = `${dir}/pebble-api-ca.pem`;
    await Deno.writeTextFile(caFile, pebble.apiCaPem);
    const seeded = await seedDueCertificate(dir, name, pebble.directoryUrl);
    const before = await certificateFiles(dir, name);
    // The first request of the first attempt (the token check) is rate limited for 3 s: short enough to be
    // waited out inside the call (lib/dns/cloudflare_api.ts CALL_RETRY), with no request meanwhile.
    cloudflare.failNext(1, { status: 429, retryAfter: "3" });
    // Cloudflare's edge answers an outage with an HTML 502 page; only record creation fails, so each
    // attempt gets as far as a real ACME order before the API lets it down.
    const isCreate = (r: { method: string; path: string }) =>
      r.method === "POST" && r.path.endsWith("/dns_records");
    cloudflare.startOutage({ status: 502, html: true }, isCreate);
    const nexo = await startNexo(
      `${
        dns01Config(
          {
            directoryUrl: pebble.directoryUrl,
            caFile,
            dnsServer: dns.dnsServer,
            apiBase: cloudflare.apiBase,
            token: TOKEN,
          },
          ["retry_interval: 500ms"],
        )
      }proxies:
  "${name}":
    upstream: ${app.url}
`,
      { dir },
    );
    try {
      await nexo.waitForLog((l) => isFailure(l, name) && l.failures === 3, 60_000);
      const [rateLimited, afterBan] = cloudflare.requests;
      assert.ok(rateLimited && afterBan, "the token check was sent again");
      assert.ok(
        afterBan.at - rateLimited.at >= 3_000,
        `no request inside the ban (${afterBan.at - rateLimited.at} ms)`,
      );
      const failures = nexo.logs.filter((l) => isFailure(l, name));
      assert.deepEqual(failures.map((l) => l.failures), [1, 2, 3]);
      for (const failure of failures) {
        assert.equal(
          failure.error,
          `Cannot create TXT record "_acme-challenge.${name}" in Cloudflare zone example.com: Cloudflare ` +
            `answered HTTP 502 with a body that is not Cloudflare's JSON envelope (a failure on Cloudflare's ` +
            `side or in between; try again later)`,
        );
      }
      // Each failure schedules the next attempt by retry_interval: 0.5 s, 1 s, then 2 s after it.
      assertBackoff(nexo.logs, name, 500);
      assert.equal(
        cloudflare.requests.filter(isCreate).length,
        9,
        "three record creations per failed attempt",
      );
      assert.deepEqual(cloudflare.records(), [], "nothing left at Cloudflare");
      assert.deepEqual(await certificateFiles(dir, name), before, "certificate files untouched");
      assert.deepEqual(await servedCertificate(nexo.port, name, seeded.rootPem), {
        status: 200,
        serial: seeded.serial,
      });

      cloudflare.endOutage();
      await nexo.waitForLog((l) => l.msg === "certificate installed" && l.names === name, 30_000);
      assert.equal(attemptsOf(nexo.logs, name).length, 4, "the next scheduled attempt renewed");
      assert.equal((await servedCertificate(nexo.port, name, await pebble.issuerRootPem())).status, 200);
      assert.deepEqual(cloudflare.records(), [], "the challenge record was removed after validation");
      assert.ok(
        cloudflare.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`),
        "every request carried the token",
      );
      assert.ok(!nexo.output().includes(TOKEN), "the token is never logged");
    } finally {
      await nexo.stop();
    }
  } finally {
    await app.close();
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a CA that forgot nexo's account (a restarted Pebble) gets it registered again once, automatically, and the order succeeds", async () => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-faults-" });
  try {
    const caFile = `${dir}/pebble-api-ca.pem`;
    await Deno.writeTextFile(caFile, pebble.apiCaPem);
    const setup = {
      directoryUrl: pebble.directoryUrl,
      caFile,
      dnsServer: dns.dnsServer,
      apiBase: cloudflare.apiBase,
      token: TOKEN,
    };
    const config = (hosts: string[]) =>
      `${dns01Config(setup, ["retry_interval: 500ms"])}proxies:
${hosts.map((host) => `  "${host}":\n    upstream: ${app.url}\n`).join("")}`;
    const nexo = await startNexo(config(["first.example.com"]), { dir });
    try {
      await nexo.waitForLog(
        (l) => l.msg === "certificate installed" && l.names === "first.example.com",
        30_000,
      );
      const created = nexo.logs.find((l) => l.msg === "acme account created");
      assert.ok(created, "an account was registered for the first certificate");
      // Every account, order and key Pebble held is gone; the directory URL is the same.
      await pebble.restart();
      const file = `${dir}/config.yaml`;
      const base = (await Deno.readTextFile(file)).split("issuer: acme")[0]!;
      await Deno.writeTextFile(file, base + config(["first.example.com", "second.example.com"]));
      await nexo.waitForLog(
        (l) => l.msg === "certificate installed" && l.names === "second.example.com",
        30_000,
      );
      const reregistered = nexo.logs.filter((l) => l.msg === "acme account re-registered");
      assert.equal(reregistered.length, 1, "registered again exactly once");
      assert.equal(reregistered[0]!.level, "warn");
      assert.match(String(reregistered[0]!.reason), /accountDoesNotExist/);
      assert.equal(nexo.logs.filter((l) => l.msg === "certificate failed").length, 0, "no attempt was lost");
      // The new account is stored: a later job uses it without registering again.
      const stored = await CertRepository.open({ certDir: `${dir}/certs`, baseDir: dir }).loadAccount(
        pebble.directoryUrl,
      );
      assert.equal(stored?.url, reregistered[0]!.account);
    } finally {
      await nexo.stop();
    }
  } finally {
    await app.close();
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

// The propagation wait is bounded by `acme.propagation_timeout` (1.5 s here). This test runs the supervisor
// in-process, with its real sandboxed worker and the real TLS listener over the same CertStore, wired as
// lib/server/run.ts wires them, so that it can watch the store while the attempts fail.
Deno.test("TXT records that never propagate fail each attempt after the propagation bound, naming the record and the server asked, are deleted, and are retried by backoff while the old certificate is served", async () => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  // Cloudflare accepts and lists the records, but they never reach the DNS server.
  await cloudflare.setPublishing(false);
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  const dir = await Deno.makeTempDir({ prefix: "nexo-faults-" });
  const name = "renew.example.com";
  const record = `_acme-challenge.${name}`;
  const { log, lines } = capturingLogger();
  const store = new CertStore();
  let supervisor: AcmeSupervisor | null = null;
  const tls = serveTls({
    hostname: "127.0.0.1",
    port: 0,
    resolveCertificate: (serverName) => store.resolve(serverName),
    handler: () => new Response("served"),
    onError: () => new Response("handler failed", { status: 500 }),
  });
  try {
    const caFile = `${dir}/pebble-api-ca.pem`;
    await Deno.writeTextFile(caFile, pebble.apiCaPem);
    const seeded = await seedDueCertificate(dir, name, pebble.directoryUrl);
    const before = await certificateFiles(dir, name);
    const config = parseConfig(
      `base_dir: ${dir}
${
        dns01Config(
          {
            directoryUrl: pebble.directoryUrl,
            caFile,
            dnsServer: dns.dnsServer,
            apiBase: cloudflare.apiBase,
            token: TOKEN,
          },
          ["retry_interval: 500ms", "propagation_timeout: 1500ms"],
        )
      }proxies:
  "${name}":
    redirect: https://example.org
`,
      `${dir}/config.yaml`,
    );
    assert.deepEqual((await loadCertDir(config.certDir, store)).errors, []);
    supervisor = new AcmeSupervisor({
      config,
      store,
      log,
      http01: new LocalHttp01Tokens(),
      onInstalled: () => tls.refresh(),
    });
    supervisor.start();

    const failed = await waitForLine(lines, log, (l) => isFailure(l, name) && l.failures === 2, 30_000);
    const failures = lines.filter((l) => isFailure(l, name));
    const creates = cloudflare.requests.filter((r) => r.method === "POST");
    const deletes = cloudflare.requests.filter((r) => r.method === "DELETE");
    assert.equal(creates.length, 2, "one TXT record per attempt");
    assert.equal(deletes.length, 2, "each attempt deleted its record");
    assert.deepEqual(cloudflare.records(), [], "no record left at Cloudflare");
    for (const [i, failure] of failures.entries()) {
      assert.match(
        String(failure.error),
        new RegExp(
          `^TXT record "${escapeRegExp(record)}" with value "[\\w-]{43}" did not appear within 1500 ms ` +
            `at 1 of 1 DNS servers \\(${
              escapeRegExp(dns.dnsServer)
            }: no TXT record\\); check that the DNS provider published ` +
            `it and that these servers serve its zone$`,
        ),
      );
      // Bounded: from publishing the record to the failure's log line takes the 1.5 s bound plus deleting the
      // record and recording the failure (fsyncs on a busy machine), far from the 2-minute default.
      const waited = Date.parse(String(failure.time)) - creates[i]!.at;
      assert.ok(waited >= 1_500 && waited < 6_000, `attempt ${i + 1} gave up after ${waited} ms`);
    }
    assertBackoff(lines, name, 500);
    assert.equal(failed.failures, 2);
    assert.deepEqual(await certificateFiles(dir, name), before, "certificate files untouched");
    assert.deepEqual(await servedCertificate(tls.addr.port, name, seeded.rootPem), {
      status: 200,
      serial: seeded.serial,
    });
    assert.ok(!lines.some((l) => JSON.stringify(l).includes(TOKEN)), "the token is never logged");

    await cloudflare.setPublishing(true);
    await waitForLine(lines, log, (l) => l.msg === "certificate installed" && l.names === name, 30_000);
    assert.equal(attemptsOf(lines, name).length, 3, "the next scheduled attempt renewed");
    assert.equal((await servedCertificate(tls.addr.port, name, await pebble.issuerRootPem())).status, 200);
  } finally {
    supervisor?.stop();
    log.flush();
    await tls.shutdown(1_000);
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an ACME server that accepts connections and never answers fails the call after the request timeout, naming the directory", async () => {
  // Accepts and reads nothing, like a hung server or a firewall that drops replies.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  const directoryUrl = `https://127.0.0.1:${silent.addr.port}/dir`;
  try {
    const client = createAcmeClient({
      directoryUrl,
      accountKeyPem: await createPrivateKey("ecdsa"),
      requestTimeoutMs: 300,
    });
    // Without a request timeout the call never settles: a 5 s guard turns that hang into a failure.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      ensureAccount(client, null, directoryUrl).then(() => new Error("the call succeeded"), (error) => error),
      new Promise<string>((resolve) => guard = setTimeout(() => resolve("still waiting after 5 s"), 5_000)),
    ]).finally(() => clearTimeout(guard));
    assert.ok(outcome instanceof Error, String(outcome));
    assert.equal(outcome.name, "AcmeError");
    assert.equal(
      outcome.message,
      `Cannot register an ACME account at ${directoryUrl}: the ACME server at ${directoryUrl} did not ` +
        `answer (no answer within 300 ms); check that it is up and reachable from this host`,
    );
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test("an ACME server whose TLS certificate is not trusted is reported as a TLS failure with the acme.ca_cert hint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-faults-" });
  const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
  const leaf = await ca.issue(["localhost"]);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem, onListen: () => {} },
    () => new Response("{}"),
  );
  const directoryUrl = `https://localhost:${server.addr.port}/dir`;
  try {
    const client = createAcmeClient({ directoryUrl, accountKeyPem: await createPrivateKey("ecdsa") });
    await assert.rejects(ensureAccount(client, null, directoryUrl), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(
          `^Cannot register an ACME account at ${escapeRegExp(directoryUrl)}: TLS to ${
            escapeRegExp(directoryUrl)
          } failed \\(.+\\); ` +
            `for a private ACME server set acme\\.ca_cert$`,
        ),
      );
      return true;
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function isFailure(line: LogLine, name: string): boolean {
  return line.msg === "certificate failed" && line.names === name;
}

/** The "certificate job started" lines whose job included the certificate `name`. */
function attemptsOf(lines: LogLine[], name: string): LogLine[] {
  return lines.filter((l) =>
    l.msg === "certificate job started" && String(l.certificates).split(" ").includes(name)
  );
}

/**
 * Asserts that the n-th failure of `name` (from `options.from`, default 1) scheduled the next attempt
 * retryIntervalMs * 2^(n-1) later, within the ±25% jitter, and that the next job for it started no earlier.
 * The worker computes next_attempt after the attempt's job started and before its failure is logged, so it
 * is measured from the job's start for the lower bound and from the failure for the upper one: both exact.
 */
function assertBackoff(
  lines: LogLine[],
  name: string,
  retryIntervalMs: number,
  options: { from?: number } = {},
): void {
  const failures = lines.filter((l) => isFailure(l, name));
  const attempts = attemptsOf(lines, name);
  for (const [i, failure] of failures.entries()) {
    const n = Number(failure.failures);
    const nextAttempt = Date.parse(String(failure.next_attempt));
    if (n >= (options.from ?? 1)) {
      const base = retryIntervalMs * 2 ** (n - 1);
      const sinceStart = nextAttempt - Date.parse(String(attempts[i]!.time));
      const sinceFailure = nextAttempt - Date.parse(String(failure.time));
      assert.ok(
        sinceStart >= 0.75 * base && sinceFailure <= 1.25 * base,
        `${name}: failure ${n} schedules the next attempt ${sinceFailure} ms after it (${sinceStart} ms after ` +
          `the attempt began), expected ${base} ms ±25%`,
      );
    }
    const next = attempts[i + 1];
    if (next !== undefined) {
      // setTimeout may fire a millisecond early after rounding; anything more is an early retry.
      assert.ok(
        Date.parse(String(next.time)) >= nextAttempt - 5,
        `${name}: attempt ${i + 2} started before its scheduled time`,
      );
    }
  }
}

/**
 * Stores a certificate for `host` as nexo's ACME worker would have (managed, with meta.json), minted by a
 * throwaway CA 20 days ago with 30 days of life: valid for 10 more days but past the renewal point (a third
 * of its lifetime before expiry), so nexo tries to renew it at once. Returns the CA's root and the serial.
 */
async function seedDueCertificate(
  baseDir: string,
  host: string,
  directoryUrl: string,
): Promise<{ rootPem: string; serial: string }> {
  const ca = await LocalCa.loadOrCreate(`${baseDir}/seed-ca`);
  const leaf = await ca.issue([host], {
    now: new Date(Date.now() - 20 * 24 * HOUR_MS),
    lifetimeMs: 30 * 24 * HOUR_MS,
  });
  await CertRepository.open({ certDir: `${baseDir}/certs`, baseDir }).saveCertificate([host], {
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    issuer: "acme",
    directoryUrl,
  });
  return { rootPem: ca.rootCertPem, serial: new X509Certificate(leaf.certPem).serialNumber };
}

/**
 * The chain and key of `host`'s certificate directory, byte for byte. meta.json is left out on purpose: a
 * failed attempt records itself there (failures, last_error, next_attempt_at), never in the pair.
 */
async function certificateFiles(baseDir: string, host: string): Promise<Record<string, Uint8Array>> {
  return {
    "fullchain.pem": await Deno.readFile(`${baseDir}/certs/${host}/fullchain.pem`),
    "privkey.pem": await Deno.readFile(`${baseDir}/certs/${host}/privkey.pem`),
  };
}

/**
 * Opens a new TLS connection to 127.0.0.1:`port` with SNI `host`, verified against `rootPem` (never
 * unverified), sends GET /, and returns the response's status and the serial number of the leaf served.
 */
async function servedCertificate(
  port: number,
  host: string,
  rootPem: string,
): Promise<{ status: number; serial: string }> {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [rootPem],
    [internals.serverNameSymbol]: host,
  } as Deno.ConnectTlsOptions);
  try {
    await conn.handshake();
    // Deno's internal peer-certificate accessor (what node:tls uses), as in tests/acme_renewal_test.ts.
    const peer = (conn as unknown as Record<symbol, (detailed: boolean) => { serialNumber: string }>)[
      internals.getPeerCertificate
    ]!;
    const serial = peer.call(conn, false).serialNumber;
    await conn.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const buffer = new Uint8Array(1024);
    let head = "";
    while (!head.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), serial: serial.toUpperCase() };
  } finally {
    conn.close();
  }
}

/** Resolves with the first captured line matching `predicate`, flushing the logger while it waits. */
async function waitForLine(
  lines: LogLine[],
  log: Logger,
  predicate: (line: LogLine) => boolean,
  timeoutMs: number,
): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    log.flush();
    const found = lines.find(predicate);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `no matching log line within ${timeoutMs} ms:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
