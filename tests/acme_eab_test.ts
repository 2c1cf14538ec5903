// External Account Binding (RFC 8555 §7.3.4) end to end: Pebble requiring it, as ZeroSSL and Google Trust
// Services do. With acme.eab's right key id and HMAC key nexo registers and obtains a certificate; without
// one, or with a wrong key, the failure names acme.eab and what to do, and the key never reaches the logs.

import assert from "node:assert/strict";
import { dns01Config } from "./acme_world.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { startEchoUpstream } from "./upstreams.ts";

const TOKEN = "eab-test-token-3b9d1c7e5a";
const KID = "kid-nexo-1";
// 48 bytes, base64url as CAs hand them out, with both characters base64url has and base64 has not.
const HMAC_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMT-_2W";
const WRONG_KEY = "Xq7dP3vN9sLm2bR8tK5wY1cF6hJ0gA4eU7iO3zQ9xV2nM8kL5jH1gF6dS4aP0o";

Deno.test("acme.eab registers with a CA that requires External Account Binding; a missing or wrong key is named", async (t) => {
  await using dns = await startChallTestSrv();
  await using cloudflare = await startFakeCloudflare({
    token: TOKEN,
    zones: ["example.com"],
    challtestsrv: dns,
  });
  const pebble = await startPebble({ dnsServer: dns.dnsServer, eabKeys: { [KID]: HMAC_KEY } });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const config = (eab: string[]) =>
    dns01Config(
      {
        directoryUrl: pebble.directoryUrl,
        caFile,
        dnsServer: dns.dnsServer,
        apiBase: cloudflare.apiBase,
        token: TOKEN,
      },
      ["retry_interval: 1h", ...eab],
    ) + `proxies:\n  "app.example.com":\n    upstream: ${app.url}\n`;
  const run = async (eab: string[], until: (line: Record<string, unknown>) => boolean) => {
    const nexo = await startNexo(config(eab));
    try {
      const line = await nexo.waitForLog(until, 60_000);
      return { line, output: nexo.output() };
    } finally {
      await nexo.stop(); // and removes its folder
    }
  };
  try {
    await t.step("the right kid and hmac_key: an account, then a certificate", async () => {
      const { output } = await run(
        ["eab:", `  kid: ${KID}`, `  hmac_key: ${HMAC_KEY}`],
        (l) => l.msg === "certificate installed" && l.names === "app.example.com",
      );
      assert.match(output, /"acme account created"/);
      assert.ok(!output.includes(HMAC_KEY), "the HMAC key is never logged");
    });

    await t.step("no acme.eab: the failure says the CA requires it and where it goes", async () => {
      const { line } = await run([], (l) => l.msg === "certificate failed");
      assert.match(
        String(line.error),
        /requires External Account Binding: set acme\.eab \{ kid, hmac_key \}/,
      );
      assert.equal(line.problem, "urn:ietf:params:acme:error:externalAccountRequired");
    });

    await t.step("a wrong hmac_key: the failure names acme.eab, and neither key is logged", async () => {
      const { line, output } = await run(
        ["eab:", `  kid: ${KID}`, `  hmac_key: ${WRONG_KEY}`],
        (l) => l.msg === "certificate failed",
      );
      assert.match(String(line.error), /check acme\.eab: the CA did not accept that kid and hmac_key/);
      assert.ok(!output.includes(WRONG_KEY) && !output.includes(HMAC_KEY), "no HMAC key in the logs");
    });
  } finally {
    await pebble.stop();
    await app.close();
    await Deno.remove(caFile);
  }
});
