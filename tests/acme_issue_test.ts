// End-to-end issuance: lib/acme/issue.ts against real Pebble, with DNS-01 records published through the
// Cloudflare provider into the fake Cloudflare API, which pushes them to pebble-challtestsrv, the DNS server
// Pebble validates against. Nothing is mocked between nexo's code and a real ACME server's validation.

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createAcmeClient, ensureAccount } from "../lib/acme/acme_client.ts";
import { createPrivateKey } from "../lib/acme/csr.ts";
import { closedPort } from "./upstreams.ts";
import { issueCertificate } from "../lib/acme/issue.ts";
import { dnsSolver } from "../lib/acme/solvers.ts";
import { CloudflareDnsProvider } from "../lib/dns/cloudflare.ts";
import { waitForTxt } from "../lib/dns/propagation.ts";
import { parseCertificate } from "../lib/tls/pem.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startPebble } from "./pebble.ts";

const TOKEN = "test-token-0123456789abcdef";

Deno.test("issueCertificate() obtains a wildcard plus apex certificate from Pebble through Cloudflare DNS-01", async (t) => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  try {
    const client = createAcmeClient({
      directoryUrl: pebble.directoryUrl,
      accountKeyPem: await createPrivateKey("ecdsa"),
      caCertsPem: [pebble.apiCaPem],
    });
    await ensureAccount(client, "admin@example.com", pebble.directoryUrl);
    const provider = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: cloudflare.apiBase });
    const published: string[] = [];
    const waitVisible = async (fqdn: string, value: string) =>
      await waitForTxt(fqdn, value, { resolvers: [dns.dnsServer], timeoutMs: 10_000, intervalMs: 100 });
    const options = {
      client,
      directoryUrl: pebble.directoryUrl,
      solver: dnsSolver(provider, waitVisible),
      keyType: "ecdsa" as const,
      onProgress: (event: string, fields: Record<string, string>) => {
        if (event === "challenge response published") published.push(fields.for!);
      },
    };

    await t.step("both TXT values coexist on _acme-challenge and are deleted after validation", async () => {
      const chain = await issueCertificate(["*.example.com", "example.com"], options);
      const info = parseCertificate(chain.certPem);
      assert.deepEqual(info.names.sort(), ["*.example.com", "example.com"]);
      assert.deepEqual(published.sort(), ["*.example.com", "example.com"]);
      const posted = cloudflare.requests.filter((r) =>
        r.method === "POST" && r.path.includes("/dns_records")
      );
      assert.equal(posted.length, 2, "two TXT values on _acme-challenge.example.com");
      assert.deepEqual(cloudflare.records().filter((r) => r.type === "TXT"), [], "records deleted");
      assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), []);
      // The chain verifies against Pebble's issuing root: a real certificate, not a stub.
      const leaf = new X509Certificate(chain.certPem);
      const blocks = chain.certPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
      assert.ok(blocks.length >= 2, "leaf and intermediate");
      assert.ok(leaf.verify(new X509Certificate(blocks[1]!).publicKey), "leaf signed by the intermediate");
      assert.match(chain.keyPem, /BEGIN PRIVATE KEY/);
    });

    await t.step("an RSA-2048 key is used when asked for", async () => {
      const chain = await issueCertificate(["www.example.com"], { ...options, keyType: "rsa" });
      const leaf = new X509Certificate(chain.certPem);
      assert.equal(leaf.publicKey.asymmetricKeyType, "rsa");
    });

    await t.step(
      "a failed validation is an AcmeError with the server's problem, and records are still deleted",
      async () => {
        const failing = {
          ...options,
          // Publish a wrong value: Pebble's validation fails with an unauthorized problem.
          solver: dnsSolver({
            createTxtRecord: (fqdn, _value) => provider.createTxtRecord(fqdn, "wrong-value"),
            deleteTxtRecord: (handle) => provider.deleteTxtRecord(handle),
          }, async () => {}),
        };
        await assert.rejects(
          issueCertificate(["bad.example.com"], failing),
          (error: Error & { problem?: { type: string } }) => {
            assert.equal(error.name, "AcmeError");
            assert.equal(error.problem?.type, "urn:ietf:params:acme:error:unauthorized");
            assert.match(error.message, /validate bad\.example\.com/);
            return true;
          },
        );
        assert.deepEqual(cloudflare.records().filter((r) => r.type === "TXT"), []);
      },
    );
  } finally {
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
  }
});

Deno.test("a refused ACME connection is a clear AcmeError naming the server", async () => {
  // Not a port on fetch's blocked list (9 is): fetch refuses those itself, before connecting.
  const directoryUrl = `https://127.0.0.1:${closedPort()}/dir`;
  const client = createAcmeClient({ directoryUrl, accountKeyPem: await createPrivateKey("ecdsa") });
  await assert.rejects(ensureAccount(client, null, directoryUrl), (error: Error) => {
    assert.equal(error.name, "AcmeError");
    assert.equal(
      error.message,
      `Cannot register an ACME account at ${directoryUrl}: the ACME server at ${directoryUrl} refused the ` +
        `connection; check acme.directory and that the server is up`,
    );
    return true;
  });
});

Deno.test("badNonce rejections are retried at once and the order still succeeds", async () => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  // Pebble rejects 20% of nonces at random (RFC 8555 §6.5): each request fails six times in a row with
  // probability 0.2^6, so a handful of requests never exhausts the client's five retries in practice.
  const pebble = await startPebble({ dnsServer: dns.dnsServer, env: { PEBBLE_WFE_NONCEREJECT: "20" } });
  try {
    const client = createAcmeClient({
      directoryUrl: pebble.directoryUrl,
      accountKeyPem: await createPrivateKey("ecdsa"),
      caCertsPem: [pebble.apiCaPem],
    });
    await ensureAccount(client, null, pebble.directoryUrl);
    const provider = new CloudflareDnsProvider({ apiToken: TOKEN, apiBase: cloudflare.apiBase });
    const chain = await issueCertificate(["nonce.example.com"], {
      client,
      directoryUrl: pebble.directoryUrl,
      solver: dnsSolver(
        provider,
        (fqdn, value) => waitForTxt(fqdn, value, { resolvers: [dns.dnsServer], intervalMs: 100 }),
      ),
      keyType: "ecdsa",
    });
    assert.deepEqual(parseCertificate(chain.certPem).names, ["nonce.example.com"]);
  } finally {
    await pebble.stop();
    await cloudflare.close();
    await dns.stop();
  }
});
