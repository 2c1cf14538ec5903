// `dns.zones` end to end: one nexo whose names live at two DNS hosts, example.com at Cloudflare (the faithful
// fake) and example.net delegated to acme-dns (its faithful fake) by a CNAME, each publishing into the DNS
// server Pebble validates against. Both certificates are issued, each provider got only its own names, and
// no secret reaches the log. Also the router's unit behaviour: the most specific zone wins.

import assert from "node:assert/strict";
import { ZonedDnsProvider } from "../lib/dns/zoned.ts";
import { delegationTarget } from "../lib/acme/worker_settings.ts";
import { fallsBack } from "../lib/acme/issuers.ts";
import { AcmeError } from "../lib/acme/acme_client.ts";
import { type DnsProvider, DnsProviderError, type TxtRecordHandle } from "../lib/dns/provider.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeAcmeDns } from "./fake_acme_dns.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { runDoctor, startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

const TOKEN = "zones-token-abcdef0123456789";

Deno.test("nexo issues through the provider of each name's zone: Cloudflare for one, acme-dns for the other", async () => {
  await using dns = await startChallTestSrv();
  await using cloudflare = await startFakeCloudflare({
    token: TOKEN,
    zones: ["example.com"],
    challtestsrv: dns,
  });
  await using acmeDns = await startFakeAcmeDns({ challtestsrv: dns });
  const account = await acmeDns.register();
  await acmeDns.delegate("example.net", account);
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-zones-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, pebble.apiCaPem);
    await Deno.writeTextFile(`${dir}/acme-dns.pass`, account.password + "\n", { mode: 0o600 });
    const nexo = await startNexo(
      [
        "issuer: acme",
        "acme:",
        `  directory: ${pebble.directoryUrl}`,
        `  ca_cert: ${dir}/ca.pem`,
        `  dns_resolvers: ["${dns.dnsServer}"]`,
        "dns:",
        "  zones:",
        "    example.com:",
        "      provider: cloudflare",
        `      cloudflare: { api_token: ${TOKEN}, api_base: "${cloudflare.apiBase}" }`,
        "    example.net:",
        "      provider: acme-dns",
        "      acme_dns:", // no fulldomain: nexo learns it from the CNAME
        `        api: ${acmeDns.api}`,
        `        username: ${account.username}`,
        `        password_file: ${dir}/acme-dns.pass`,
        `        subdomain: ${account.subdomain}`,
        // A zone whose provider refuses nexo fails its own certificate only.
        "    example.org:",
        "      provider: cloudflare",
        `      cloudflare: { api_token: wrong-token-0123456789, api_base: "${cloudflare.apiBase}" }`,
        `wildcards: ["*.example.com", "*.example.net"]`,
        "proxies:",
        `  "app.example.com": { upstream: "${app.url}" }`,
        `  "app.example.net": { upstream: "${app.url}" }`,
        `  "app.example.org": { upstream: "${app.url}" }`,
        "",
      ].join("\n"),
      { dir },
    );
    try {
      for (const zone of ["example.com", "example.net"]) {
        await nexo.waitForLog(
          (l) => l.msg === "certificate installed" && l.names === `*.${zone},${zone}`,
          60_000,
        );
      }
      const refused = await nexo.waitForLog((l) =>
        l.msg === "certificate failed" && l.names === "app.example.org"
      );
      assert.match(String(refused.error), /token/i);
      const cloudflareNames = cloudflare.requests
        .filter((r) => r.method === "POST")
        .map((r) => String(JSON.parse(r.body).name));
      assert.ok(
        cloudflareNames.length >= 2 && cloudflareNames.every((n) => n === "_acme-challenge.example.com"),
        cloudflareNames.join(),
      );
      const updates = acmeDns.requests.filter((r) => r.path === "/update" && JSON.parse(r.body).txt !== "");
      assert.equal(updates.length, 2, "the apex and the wildcard value, at acme-dns");
      assert.ok(!nexo.output().includes(account.password), "the acme-dns password is never logged");
      assert.ok(!nexo.output().includes(TOKEN), "the Cloudflare token is never logged");
    } finally {
      await nexo.stop();
    }
  } finally {
    await pebble.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A provider that records which names reach it. */
function recording(name: string, calls: string[]): DnsProvider {
  return {
    name,
    verify: (fqdns) => (calls.push(`${name} verify ${fqdns?.join(",") ?? ""}`), Promise.resolve()),
    findZone: (fqdn) => Promise.resolve(fqdn.split(".").slice(-2).join(".")),
    createTxtRecord: (fqdn, value) => {
      calls.push(`${name} create ${fqdn}`);
      return Promise.resolve({ provider: name, fqdn, value, zone: "", ref: {} } satisfies TxtRecordHandle);
    },
    deleteTxtRecord: (handle) => (calls.push(`${name} delete ${handle.fqdn}`), Promise.resolve()),
    cleanupStale: (fqdn) => (calls.push(`${name} cleanup ${fqdn}`), Promise.resolve(0)),
  };
}

Deno.test("ZonedDnsProvider sends each name to the most specific zone's provider, else the default, else refuses", async () => {
  const calls: string[] = [];
  const router = new ZonedDnsProvider({
    default: recording("fallback", calls),
    zones: [
      { zone: "lab.example.org", provider: recording("lab", calls) },
      { zone: "example.org", provider: recording("org", calls) },
    ],
  });
  await router.createTxtRecord("_acme-challenge.x.lab.example.org", "1");
  await router.createTxtRecord("_acme-challenge.example.org", "2");
  await router.createTxtRecord("_acme-challenge.notexample.org", "3");
  await router.verify([
    "_acme-challenge.lab.example.org",
    "_acme-challenge.www.example.org",
    "_acme-challenge.a.org",
  ]);
  assert.deepEqual(calls, [
    "lab create _acme-challenge.x.lab.example.org",
    "org create _acme-challenge.example.org",
    "fallback create _acme-challenge.notexample.org",
    "lab verify _acme-challenge.lab.example.org",
    "org verify _acme-challenge.www.example.org",
    "fallback verify _acme-challenge.a.org",
  ]);
  const zonesOnly = new ZonedDnsProvider({
    default: null,
    zones: [{ zone: "example.org", provider: recording("org", []) }],
  });
  await assert.rejects(
    zonesOnly.createTxtRecord("_acme-challenge.example.net", "x"),
    (e) =>
      e instanceof DnsProviderError && e.kind === "zone_not_found" &&
      /No DNS provider serves "example\.net"/.test(e.message),
  );
});

Deno.test("nexo doctor checks each zone's provider: an exec hook writes and deletes, acme-dns's account and CNAME", async () => {
  await using dns = await startChallTestSrv();
  await using acmeDns = await startFakeAcmeDns({ challtestsrv: dns });
  const account = await acmeDns.register();
  await acmeDns.delegate("example.net", account);
  const dir = await Deno.makeTempDir({ prefix: "nexo-doctor-zones-" });
  try {
    // A hook that keeps its records in challtestsrv, as a hook would at any DNS host's API.
    const api = `${dns.managementUrl}`;
    await Deno.writeTextFile(
      `${dir}/dns-hook`,
      `#!/bin/sh\nset -eu\nname=$2 value=$3\n` +
        `if [ "$1" = present ]; then curl -fsS -d "{\\"host\\":\\"$name\\",\\"value\\":\\"$value\\"}" ${api}/set-txt\n` +
        `else curl -fsS -d "{\\"host\\":\\"$name\\"}" ${api}/clear-txt; fi\n`,
      { mode: 0o755 },
    );
    await Deno.writeTextFile(`${dir}/acme-dns.pass`, account.password, { mode: 0o600 });
    const doctor = async (password: string) => {
      await Deno.writeTextFile(`${dir}/acme-dns.pass`, password, { mode: 0o600 });
      const config = [
        `base_dir: ${dir}/base`,
        `listen: "127.0.0.1:${closedPort()}"`,
        "acme:",
        `  directory: https://localhost:${closedPort()}/dir`,
        `  dns_resolvers: ["${dns.dnsServer}"]`,
        "dns:",
        "  zones:",
        `    example.org: { provider: exec, exec: { command: [${dir}/dns-hook], timeout: 10s } }`,
        "    example.net:",
        "      provider: acme-dns",
        `      acme_dns: { api: "${acmeDns.api}", username: ${account.username}, password_file: ${dir}/acme-dns.pass, subdomain: ${account.subdomain}, fulldomain: ${account.fulldomain} }`,
        "proxies:",
        `  "app.example.org": { upstream: "http://127.0.0.1:9" }`,
        `  "example.net": { upstream: "http://127.0.0.1:9" }`,
        "",
      ].join("\n");
      const { findings } = await runDoctor(dir, config, { args: ["--write-test"] });
      return findings.filter((f) => f.area === "dns provider");
    };
    const checked = await doctor(account.password);
    assert.deepEqual(checked.map((f) => [f.subject, f.status]), [
      [`hook ${dir}/dns-hook`, "ok"],
      ["DNS edit for app.example.org", "ok"],
      [`acme-dns at ${acmeDns.api}`, "ok"],
      ["DNS edit for example.net", "ok"],
    ], JSON.stringify(checked, null, 1));
    assert.match(checked[1]!.message, /seen by the name servers in [\d.]+ s; deleted again/);
    assert.match(checked[3]!.message, /left for the provider to replace/);
    assert.deepEqual(await dns.txtValues("_acme-challenge.app.example.org"), []);
    const refused = await doctor("w".repeat(40));
    const acme = refused.find((f) => f.subject === `acme-dns at ${acmeDns.api}`);
    assert.equal(acme?.status, "problem", JSON.stringify(refused));
    assert.ok(!JSON.stringify(refused).includes("w".repeat(40)), "the password is never shown");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without fulldomain, nexo learns an acme-dns account's domain from the _acme-challenge CNAME", async () => {
  await using dns = await startChallTestSrv();
  await using acmeDns = await startFakeAcmeDns({ challtestsrv: dns });
  const account = await acmeDns.register();
  await acmeDns.delegate("example.net", account);
  const resolvers = [dns.dnsServer];
  assert.equal(await delegationTarget(["*.example.net"], account.subdomain, resolvers), account.fulldomain);
  // A CNAME to another account, or none, teaches nothing.
  assert.equal(await delegationTarget(["example.net"], "another-subdomain", resolvers), null);
  assert.equal(await delegationTarget(["example.org"], account.subdomain, resolvers), null);
});

Deno.test("a challenge the CA could not validate is not retried at the next CA; its outages and refusals are", () => {
  const failure = (type: string | null) =>
    new AcmeError(
      "Cannot validate",
      type === null
        ? null
        : { type: `urn:ietf:params:acme:error:${type}`, status: 400, detail: "", retryAfterMs: null },
    );
  for (const type of ["unauthorized", "dns", "connection", "incorrectResponse", "tls"]) {
    assert.equal(fallsBack(failure(type)), false, type);
  }
  for (
    const type of [
      null,
      "caa",
      "externalAccountRequired",
      "rateLimited",
      "serverInternal",
      "rejectedIdentifier",
    ]
  ) {
    assert.equal(fallsBack(failure(type)), true, String(type));
  }
  assert.equal(fallsBack(new Error("disk full")), false);
});
