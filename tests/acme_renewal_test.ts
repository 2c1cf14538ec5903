// End-to-end renewal and faults: Pebble issues 20-second certificates and rejects 30% of nonces, the fake
// Cloudflare API fails some requests with 500 and 429, and nexo still obtains a certificate, renews it live
// (a client making new TLS connections all along sees only successes and, in the end, the new certificate),
// and, with the ACME server gone, keeps serving what it has while retrying.

import assert from "node:assert/strict";
import { dns01Config, getLikeAClient } from "./acme_world.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { startEchoUpstream } from "./upstreams.ts";

const TOKEN = "renewal-token-8a7b6c5d4e3f";

Deno.test("nexo renews live without a failed request, survives a flaky DNS API and nonce rejections, and rides out a CA outage", async (t) => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({
    dnsServer: dns.dnsServer,
    validitySeconds: 20,
    env: { PEBBLE_WFE_NONCEREJECT: "30" },
  });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const root = await pebble.issuerRootPem();
  const dir = await Deno.makeTempDir({ prefix: "nexo-renewal-" });
  const setup = {
    directoryUrl: pebble.directoryUrl,
    caFile,
    dnsServer: dns.dnsServer,
    apiBase: cloudflare.apiBase,
    token: TOKEN,
  };
  const config = (hosts: string[]) =>
    `${dns01Config(setup, ["retry_interval: 1s", "renew_before: 720h"])}proxies:
${hosts.map((host) => `  "${host}":\n    upstream: ${app.url}\n`).join("")}`;
  let pebbleStopped = false;
  try {
    const nexo = await startNexo(config(["live.example.com"]), { dir });
    try {
      await t.step(
        "500 and 429 from Cloudflare are retried, in the call and then by the order's backoff, until a certificate arrives",
        async () => {
          // Three 500s in a row outlast one call's tries (the token check), so the attempt fails...
          cloudflare.failNext(3, { status: 500 });
          await nexo.waitForLog((l) => l.msg === "certificate failed", 30_000);
          // ...and a 429 with a short Retry-After is waited out inside the call.
          cloudflare.failNext(1, { status: 429, retryAfter: "1" });
          await nexo.waitForLog(
            (l) => l.msg === "certificate installed" && l.names === "live.example.com",
            60_000,
          );
        },
      );

      await t.step(
        "the certificate is renewed live; requests never fail and new connections end on the new certificate",
        async () => {
          const installs = () => nexo.logs.filter((l) => l.msg === "certificate installed").length;
          const before = installs();
          const serials = new Set<string>();
          let failures = 0;
          let requests = 0;
          const deadline = Date.now() + 40_000;
          while (installs() === before || serials.size < 2) {
            if (Date.now() > deadline) {
              throw new Error(`no renewal seen; ${serials.size} certificate(s) served`);
            }
            try {
              serials.add(await getLikeAClient(nexo.port, "live.example.com", root));
            } catch (error) {
              failures++;
              if (failures > 0) {
                throw new Error(`a request failed during renewal: ${error}\n${nexo.output()}`);
              }
            }
            requests++;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          assert.equal(failures, 0);
          assert.ok(requests > 10, `requests kept flowing (${requests})`);
          assert.deepEqual(
            cloudflare.records().filter((r) => r.type === "TXT"),
            [],
            "TXT records cleaned up",
          );
        },
      );
    } finally {
      await nexo.stop();
    }

    await t.step(
      "with the ACME server down, stored certificates are served and the new host is retried",
      async () => {
        await pebble.stop();
        pebbleStopped = true;
        const again = await startNexo(config(["live.example.com", "new.example.com"]), { dir });
        try {
          await again.waitForLog(
            (l) => l.msg === "certificate failed" && l.names === "new.example.com",
            30_000,
          );
          const first = again.logs.find((l) =>
            l.msg === "certificate failed" && l.names === "new.example.com"
          )!;
          assert.match(String(first.error), /refused the connection/);
          // The stored certificate may be expired by now (20 s lifetime): what matters is that nexo keeps
          // running and retrying, with a growing delay, not in a tight loop.
          await again.waitForLog(
            (l) => l.msg === "certificate failed" && l.names === "new.example.com" && Number(l.failures) >= 2,
            30_000,
          );
          const attempts = again.logs.filter((l) => l.msg === "certificate job started").length;
          assert.ok(attempts < 10, `no tight retry loop (${attempts} jobs)`);
        } finally {
          await again.stop();
        }
      },
    );
  } finally {
    if (!pebbleStopped) await pebble.stop();
    await app.close();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(caFile);
    await Deno.remove(dir, { recursive: true });
  }
});
