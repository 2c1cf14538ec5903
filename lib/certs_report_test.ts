import assert from "node:assert/strict";
import { certificatesReport } from "./certs_report.ts";
import { parseConfig } from "./config/parse.ts";
import { CertRepository } from "./storage/cert_repository.ts";
import { LocalCa } from "./tls/local_ca.ts";

const DAY_MS = 24 * 3_600_000;

Deno.test("certificatesReport() shows the effective renewal time and says when renew_before is capped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
    const now = Date.now();
    const leaf = await ca.issue(["a.example.com"], { now: new Date(now), lifetimeMs: 90 * DAY_MS });
    await CertRepository.open({ certDir: `${dir}/certs`, baseDir: dir }).saveCertificate(["a.example.com"], {
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      issuer: "acme",
      directoryUrl: "https://acme.test/dir",
    });
    const report = async (renewBefore: string) =>
      await certificatesReport(
        parseConfig(
          `base_dir: ${dir}\nacme:\n  renew_before: ${renewBefore}\ncloudflare:\n  api_token: t\n` +
            `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
          `${dir}/config.yaml`,
        ),
        now,
      );
    const plain = await report("720h");
    const renewsOn = (text: string) => /a\.example\.com\s+\S+\s+\S+ \S+\s+(\S+)/.exec(text)?.[1];
    assert.equal(renewsOn(plain), new Date(leaf.notAfter.getTime() - 30 * DAY_MS).toISOString().slice(0, 10));
    assert.doesNotMatch(plain, /\*/);
    const capped = await report("1800h");
    // 75 days asked, 45 (half of 90) applied: the date shown is the one that applies.
    assert.equal(
      renewsOn(capped),
      new Date(leaf.notAfter.getTime() - 45 * DAY_MS).toISOString().slice(0, 10),
    );
    assert.match(
      capped,
      /\* a\.example\.com: renew_before 1800h is more than half this certificate's 90-day lifetime; it renews 45 days before expiry/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
