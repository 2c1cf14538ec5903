import assert from "node:assert/strict";
import { ariCertId } from "./acme/ari_cert_id.ts";
import { certificatesReport } from "./certs_report.ts";
import { parseConfig } from "./config/parse.ts";
import { CertRepository } from "./storage/cert_repository.ts";
import { LocalCa } from "./tls/local_ca.ts";
import { parseCertificate } from "./tls/pem.ts";

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

Deno.test("certificatesReport() with issuer internal names the local CA and the hosts it serves", async () => {
  // `nexo certs` said "No certificates" while the local CA served every host: its leaves live in memory.
  const dir = await Deno.makeTempDir();
  try {
    const config = parseConfig(
      `base_dir: ${dir}\nissuer: internal\nproxies:\n  "app.localhost":\n    upstream: http://127.0.0.1:1\n` +
        `  "*.dev.localhost":\n    upstream: http://127.0.0.1:2\n`,
      `${dir}/config.yaml`,
    );
    const before = await certificatesReport(config);
    assert.match(before, /^Local CA: .*\/ca\/root\.crt \(not created yet: `nexo server` creates it\)\n/);
    assert.match(before, /7-day certificate minted in memory/);
    assert.match(before, /\n {2}app\.localhost\n {2}\*\.dev\.localhost\n$/);
    assert.doesNotMatch(before, /No certificates/);
    const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
    const root = parseCertificate(ca.rootCertPem);
    const after = await certificatesReport(config);
    assert.ok(
      after.startsWith(`Local CA: ${dir}/ca/root.crt (expires ${root.notAfter.toISOString().slice(0, 10)}`),
    );
    // With issuer acme and nothing stored, the old answer stands.
    const acme = parseConfig(
      `base_dir: ${dir}\ncloudflare:\n  api_token: t\nproxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
      `${dir}/config.yaml`,
    );
    assert.match(await certificatesReport(acme), /^No certificates in /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificatesReport() shows the time picked in the CA's renewal window, and ignores a stale one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
    const now = Date.now();
    const leaf = await ca.issue(["a.example.com"], { now: new Date(now), lifetimeMs: 90 * DAY_MS });
    const repository = CertRepository.open({ certDir: `${dir}/certs`, baseDir: dir });
    await repository.saveCertificate(["a.example.com"], {
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      issuer: "acme",
      directoryUrl: "https://acme.test/dir",
    });
    const config = parseConfig(
      `base_dir: ${dir}\nacme:\n  directory: https://acme.test/dir\n` +
        `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
      `${dir}/config.yaml`,
    );
    const window = {
      windowStart: new Date(now + 59 * DAY_MS),
      windowEnd: new Date(now + 61 * DAY_MS),
      renewAt: new Date(now + 60 * DAY_MS),
      explanationUrl: "https://acme.test/docs/ari",
    };
    await repository.recordRenewalInfo(["a.example.com"], { certId: ariCertId(leaf.certPem), ...window });
    const report = await certificatesReport(config, now);
    const day = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 16) + "Z";
    assert.match(report, new RegExp(`a\\.example\\.com .*${day(now + 60 * DAY_MS)} \\(CA window\\) \\*`));
    assert.match(
      report,
      new RegExp(
        `\\* a\\.example\\.com: picked in the CA's suggested renewal window ${day(now + 59 * DAY_MS)} to ` +
          `${day(now + 61 * DAY_MS)} \\(RFC 9773.*the CA explains it at https://acme\\.test/docs/ari\\n`,
      ),
    );

    // A window recorded for another certificate (the one this replaced) is not this one's.
    await repository.recordRenewalInfo(["a.example.com"], { certId: "b3RoZXI.AQ", ...window });
    const stale = await certificatesReport(config, now);
    assert.doesNotMatch(stale, /CA window/);
    assert.match(
      stale,
      /a\.example\.com\s+acme\s+\S+ \S+\s+\d{4}-\d\d-\d\d \d\d:\d\dZ\s+-\n/,
      "the fixed schedule",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
