// End-to-end certificates: the real CLI with `issuer: acme` against real Pebble, DNS-01 through the fake
// Cloudflare API into pebble-challtestsrv, and curl verifying the served chain against Pebble's root. Also
// proves the ACME worker's sandbox: the permission set nexo gives it cannot read the config, reach other
// hosts or read the environment.

import assert from "node:assert/strict";
import { workerPermissions } from "../lib/acme/worker_permissions.ts";
import type { WorkerSettings } from "../lib/acme/messages.ts";
import { dns01Config } from "./acme_world.ts";
import { bundledMain } from "./bundle.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

const TOKEN = "e2e-token-5f1c2a9b7d3e4f60";

Deno.test("nexo obtains certificates from Pebble at start and serves them; restarts reuse them", async (t) => {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({
    token: TOKEN,
    zones: ["example.com", "other.org"],
    challtestsrv: dns,
  });
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const rootFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(rootFile, await pebble.issuerRootPem());
  const config = `${
    dns01Config({
      directoryUrl: pebble.directoryUrl,
      caFile,
      dnsServer: dns.dnsServer,
      apiBase: cloudflare.apiBase,
      token: TOKEN,
    })
  }email: admin@example.com
wildcards:
  - "*.example.com"
proxies:
  "app.example.com":
    upstream: ${app.url}
  "example.com":
    redirect: https://app.example.com
  "solo.other.org":
    upstream: ${app.url}
`;
  const curlVerified = async (port: number, host: string) => {
    const output = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--cacert",
        rootFile,
        "--resolve",
        `${host}:${port}:127.0.0.1`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `https://${host}:${port}/`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return `${new TextDecoder().decode(output.stdout)} ${new TextDecoder().decode(output.stderr)}`.trim();
  };
  const dir = await Deno.makeTempDir({ prefix: "nexo-acme-" });
  let pebbleStopped = false;
  try {
    const nexo = await startNexo(config, { dir });
    let certDir = "";
    try {
      await t.step(
        "a wildcard certificate and a single-host one are issued in the background and served",
        async () => {
          await nexo.waitForLog(
            (l) => l.msg === "certificate installed" && l.names === "*.example.com,example.com",
            60_000,
          );
          await nexo.waitForLog(
            (l) => l.msg === "certificate installed" && l.names === "solo.other.org",
            60_000,
          );
          assert.equal(await curlVerified(nexo.port, "app.example.com"), "200");
          assert.equal(await curlVerified(nexo.port, "example.com"), "302");
          assert.equal(await curlVerified(nexo.port, "solo.other.org"), "200");
          assert.deepEqual(
            cloudflare.records().filter((r) => r.type === "TXT"),
            [],
            "challenge records cleaned up",
          );
        },
      );
      await t.step("certificates, keys and the account are stored with private modes", async () => {
        certDir = `${nexo.dir}/certs`;
        const key = await Deno.stat(`${certDir}/wildcard_.example.com/privkey.pem`);
        assert.equal(key.mode! & 0o777, 0o600);
        const meta = JSON.parse(await Deno.readTextFile(`${certDir}/wildcard_.example.com/meta.json`));
        assert.deepEqual(meta.names, ["*.example.com", "example.com"]);
      });
      await t.step("nexo certs lists the managed certificates with expiry and renewal", async () => {
        const output = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            await bundledMain(),
            "certs",
            "--config",
            `${dir}/config.yaml`,
          ],
          stdout: "piped",
        }).output();
        const text = new TextDecoder().decode(output.stdout);
        assert.equal(output.code, 0);
        assert.match(text, /^NAMES\s+ISSUER\s+EXPIRES\s+RENEWAL\s+LAST ERROR/);
        assert.match(text, /\*\.example\.com,example\.com\s+acme\s+\d{4}-/);
        assert.match(text, /solo\.other\.org\s+acme/);
      });
      await t.step("the Cloudflare token never appears in nexo's output", () => {
        assert.ok(!nexo.output().includes(TOKEN));
      });
    } finally {
      await nexo.stop();
    }

    await t.step("a restart serves the stored certificates at once and places no new order", async () => {
      const ordersBefore = cloudflare.requests.filter((r) => r.method === "POST").length;
      const again = await startNexo(config, { dir });
      try {
        assert.equal(await curlVerified(again.port, "app.example.com"), "200");
        assert.equal(await curlVerified(again.port, "solo.other.org"), "200");
        assert.ok(
          !again.logs.some((l) => l.msg === "certificate job started"),
          "no job for valid certificates",
        );
        assert.equal(cloudflare.requests.filter((r) => r.method === "POST").length, ordersBefore);
      } finally {
        await again.stop();
      }
    });

    await t.step(
      "a failed issuance is logged with its next attempt, recorded, and leaves serving untouched",
      async () => {
        const broken = config.replace(TOKEN, "wrong-token-000000000000").replace(
          `  "solo.other.org":`,
          `  "new.other.org":\n    upstream: ${app.url}\n  "solo.other.org":`,
        );
        const again = await startNexo(broken, { dir });
        try {
          const failed = await again.waitForLog(
            (l) => l.msg === "certificate failed" && l.names === "new.other.org",
            30_000,
          );
          assert.equal(failed.failures, 1);
          assert.ok(
            Date.parse(String(failed.next_attempt)) > Date.now() + 30 * 60_000,
            "backs off by retry_interval",
          );
          assert.match(String(failed.error), /api_token|token/i);
          assert.equal(
            await curlVerified(again.port, "app.example.com"),
            "200",
            "working certificates still served",
          );
          assert.ok(!again.output().includes("wrong-token-000000000000"), "the token is never printed");
          const meta = JSON.parse(await Deno.readTextFile(`${dir}/certs/.new.other.org+pending/meta.json`));
          assert.equal(meta.failures, 1);
        } finally {
          await again.stop();
        }
      },
    );

    await t.step("with the ACME server down at start, stored certificates are served at once", async () => {
      await pebble.stop();
      pebbleStopped = true;
      const again = await startNexo(
        config.replace(
          `  "solo.other.org":`,
          `  "down.other.org":\n    upstream: ${app.url}\n  "solo.other.org":`,
        ),
        { dir },
      );
      try {
        assert.equal(await curlVerified(again.port, "app.example.com"), "200");
        assert.equal(await curlVerified(again.port, "solo.other.org"), "200");
        const failed = await again.waitForLog(
          (l) => l.msg === "certificate failed" && l.names === "down.other.org",
          30_000,
        );
        assert.match(String(failed.error), /refused the connection/);
        assert.ok(Date.parse(String(failed.next_attempt)) > Date.now(), "a retry is scheduled");
      } finally {
        await again.stop();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
    await app.close();
    if (!pebbleStopped) await pebble.stop();
    await cloudflare.close();
    await dns.stop();
    await Deno.remove(caFile);
    await Deno.remove(rootFile);
  }
});

Deno.test("without Cloudflare, nexo answers HTTP-01 on http_listen and serves the certificate", async () => {
  const dns = await startChallTestSrv();
  const httpPort = closedPort();
  const pebble = await startPebble({ dnsServer: dns.dnsServer, httpPort });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const rootFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(rootFile, await pebble.issuerRootPem());
  const nexo = await startNexo(`
issuer: acme
http_listen: "127.0.0.1:${httpPort}"
acme:
  directory: ${pebble.directoryUrl}
  ca_cert: ${caFile}
proxies:
  "plain.example.net":
    upstream: ${app.url}
`);
  try {
    await nexo.waitForLog(
      (l) => l.msg === "certificate installed" && l.names === "plain.example.net",
      60_000,
    );
    assert.ok(
      nexo.logs.some((l) => l.msg === "acme challenge served"),
      "Pebble fetched the HTTP-01 response",
    );
    const output = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--cacert",
        rootFile,
        "--resolve",
        `plain.example.net:${nexo.port}:127.0.0.1`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `https://plain.example.net:${nexo.port}/`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(output.stdout), "200");
  } finally {
    await nexo.stop();
    await app.close();
    await pebble.stop();
    await dns.stop();
    await Deno.remove(caFile);
    await Deno.remove(rootFile);
  }
});

Deno.test("the ACME worker's permissions keep it away from the config, other hosts and the environment", async () => {
  const dir = await Deno.makeTempDir();
  const configFile = await Deno.makeTempFile({ suffix: ".yaml" });
  const outside = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const settings: WorkerSettings = {
      directoryUrl: "https://localhost:14000/dir",
      caCertsPem: [],
      email: null,
      certDir: `${dir}/certs`,
      baseDir: dir,
      keyType: "ecdsa",
      eab: null,
      fallbacks: [],
      dns: {
        default: {
          provider: "cloudflare",
          apiToken: "x",
          apiBase: "https://api.cloudflare.com/client/v4",
          zoneId: null,
        },
        zones: [],
      },
      checkServers: { "": ["127.0.0.1:8053"] },
      http01: false,
      dnsResolvers: ["127.0.0.1:8053"],
      retryIntervalMs: 1000,
      propagationTimeoutMs: 1000,
      storage: null,
    };
    const worker = new Worker(new URL("./testdata/sandbox_probe_worker.ts", import.meta.url), {
      type: "module",
      // deno-lint-ignore no-explicit-any
      deno: { permissions: workerPermissions(settings) } as any,
    });
    const result = await new Promise<Record<string, string>>((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage({ configFile, outsidePort: outside.addr.port, baseDir: dir });
    });
    worker.terminate();
    assert.equal(result.readConfig, "NotCapable");
    assert.equal(result.connectOutside, "NotCapable");
    assert.equal(result.readEnv, "NotCapable");
    assert.equal(result.run, "NotCapable");
    // Only its own folders: not base_dir itself, where the config and the exec hook may live.
    assert.equal(result.writeBaseDir, "NotCapable");
    assert.equal(result.writeAccounts, "ok");
  } finally {
    outside.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(configFile);
  }
});
