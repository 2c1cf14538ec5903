// DNS-01 end to end below the ACME layer: CloudflareDnsProvider -> the fake Cloudflare API -> pebble-challtestsrv
// -> real DNS queries (Deno.resolveDns) against challtestsrv's port, the way Pebble's validation sees records.

import assert from "node:assert/strict";
import { CloudflareDnsProvider } from "../lib/dns/cloudflare.ts";
import { challengeRecordName } from "../lib/dns/provider.ts";
import { testDnsProviderConformance } from "../lib/dns/provider_conformance.ts";
import { waitForTxt } from "../lib/dns/propagation.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";

const TOKEN = "e2e-token-abcdef0123456789";

testDnsProviderConformance("CloudflareDnsProvider through DNS", async () => {
  const dns = await startChallTestSrv();
  const fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  return {
    provider: new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: fake.apiBase }),
    zone: "example.com",
    txtValues: (fqdn) => dns.txtValues(fqdn),
    addStaleRecord: async (fqdn, value) => {
      await fake.addRecord("example.com", { name: fqdn, content: value });
    },
    close: async () => {
      await fake.close();
      await dns.stop();
    },
  };
});

Deno.test("DNS-01 records created through Cloudflare resolve over DNS, a wildcard beside its apex, and vanish on delete", async () => {
  await using dns = await startChallTestSrv();
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const provider = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: fake.apiBase });
  await provider.verify(["example.com", "*.example.com"]);
  const fqdn = challengeRecordName("*.example.com");
  assert.equal(fqdn, challengeRecordName("example.com"));

  const apex = await provider.createTxtRecord(fqdn, "apex-key-authorization-digest");
  const wildcard = await provider.createTxtRecord(fqdn, "wildcard-key-authorization-digest");
  const resolvers = [dns.dnsServer];
  await waitForTxt(fqdn, "apex-key-authorization-digest", { resolvers, intervalMs: 20, timeoutMs: 5_000 });
  await waitForTxt(fqdn, "wildcard-key-authorization-digest", {
    resolvers,
    intervalMs: 20,
    timeoutMs: 5_000,
  });
  const answer = await Deno.resolveDns(fqdn, "TXT", {
    nameServer: { ipAddr: "127.0.0.1", port: dns.dnsPort },
  });
  assert.deepEqual(answer.map((chunks) => chunks.join("")).sort(), [
    "apex-key-authorization-digest",
    "wildcard-key-authorization-digest",
  ]);

  await provider.deleteTxtRecord(apex);
  assert.deepEqual(await dns.txtValues(fqdn), ["wildcard-key-authorization-digest"]);
  await provider.deleteTxtRecord(wildcard);
  await assert.rejects(
    Deno.resolveDns(fqdn, "TXT", { nameServer: { ipAddr: "127.0.0.1", port: dns.dnsPort } }),
    Deno.errors.NotFound,
  );
});

Deno.test("cleanupStale() through Cloudflare removes a crashed run's records from DNS", async () => {
  await using dns = await startChallTestSrv();
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const provider = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: fake.apiBase });
  await fake.addRecord("example.com", { name: "_acme-challenge.example.com", content: "left-over" });
  assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), ["left-over"]);
  assert.equal(await provider.cleanupStale("_acme-challenge.example.com"), 1);
  assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), []);
});
