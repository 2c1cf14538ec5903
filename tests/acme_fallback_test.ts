// The fallback CA (`acme.issuers`) against two real Pebbles: the first refuses nexo (it requires External
// Account Binding, which the config does not give it, as ZeroSSL would), the second issues; nexo logs the
// first CA's refusal, installs the second's certificate and records which CA issued it.

import assert from "node:assert/strict";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { startEchoUpstream } from "./upstreams.ts";

const TOKEN = "fallback-token-abcdef0123456789";

Deno.test("a certificate the first CA refuses is issued by the next one in acme.issuers", async () => {
  await using dns = await startChallTestSrv();
  await using cloudflare = await startFakeCloudflare({
    token: TOKEN,
    zones: ["example.com"],
    challtestsrv: dns,
  });
  const refusing = await startPebble({
    dnsServer: dns.dnsServer,
    eabKeys: { "kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W" },
  });
  const issuing = await startPebble({ dnsServer: dns.dnsServer });
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-fallback-" });
  try {
    await Deno.writeTextFile(`${dir}/refusing.pem`, refusing.apiCaPem);
    await Deno.writeTextFile(`${dir}/issuing.pem`, issuing.apiCaPem);
    const nexo = await startNexo(
      [
        "issuer: acme",
        "acme:",
        `  dns_resolvers: ["${dns.dnsServer}"]`,
        "  issuers:",
        `    - { directory: "${refusing.directoryUrl}", ca_cert: ${dir}/refusing.pem }`,
        `    - { directory: "${issuing.directoryUrl}", ca_cert: ${dir}/issuing.pem }`,
        "cloudflare:",
        `  api_token: ${TOKEN}`,
        `  api_base: ${cloudflare.apiBase}`,
        "proxies:",
        `  "app.example.com": { upstream: "${app.url}" }`,
        "",
      ].join("\n"),
      { dir },
    );
    try {
      const fellBack = await nexo.waitForLog(
        (l) => l.msg === "certificate issuer failed, trying the next",
        60_000,
      );
      assert.equal(fellBack.directory, refusing.directoryUrl);
      assert.equal(fellBack.next, issuing.directoryUrl);
      assert.match(String(fellBack.error), /externalAccountRequired|External Account Binding/i);
      await nexo.waitForLog(
        (l) => l.msg === "certificate installed" && l.names === "app.example.com",
        60_000,
      );
      const metas: string[] = [];
      for await (const entry of Deno.readDir(`${dir}/certs`)) {
        if (entry.isDirectory && !entry.name.startsWith(".")) {
          metas.push(await Deno.readTextFile(`${dir}/certs/${entry.name}/meta.json`));
        }
      }
      assert.equal(metas.length, 1);
      assert.equal(
        JSON.parse(metas[0]!).directory_url,
        issuing.directoryUrl,
        "the CA that issued it is recorded",
      );
    } finally {
      await nexo.stop();
    }
  } finally {
    await refusing.stop();
    await issuing.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
