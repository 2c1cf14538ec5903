import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { capturingLogger } from "../log_capture.ts";
import { CertStore } from "../tls/cert_store.ts";
import { AcmeSupervisor } from "./supervisor.ts";
import { LocalHttp01Tokens } from "../http01_tokens.ts";

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("AcmeSupervisor restarts a crashed worker after a backoff and runs the job again", async () => {
  const dir = await Deno.makeTempDir();
  const config = parseConfig(
    `base_dir: ${dir}\nissuer: acme\nacme:\n  directory: https://localhost:14000/dir\n` +
      `proxies:\n  "a.example.com":\n    redirect: https://example.org\n`,
    `${dir}/config.yaml`,
  );
  const { log, lines } = capturingLogger();
  const supervisor = new AcmeSupervisor({
    config,
    store: new CertStore(),
    log,
    http01: new LocalHttp01Tokens(),
    workerUrl: new URL("../../tests/testdata/crashing_worker.ts", import.meta.url),
  });
  try {
    supervisor.start();
    await until(() => (log.flush(), lines.some((l) => l.msg === "certificate failed")), 10_000);
    const crash = lines.find((l) => l.msg === "acme worker crashed");
    assert.ok(crash, "the crash was logged");
    assert.match(String(crash.error), /simulated worker crash/);
    assert.equal(crash.restart_in_ms, 1000);
    const jobs = lines.filter((l) => l.msg === "certificate job started");
    assert.equal(jobs.length, 2, "the job ran again after the restart");
    const failed = lines.find((l) => l.msg === "certificate failed");
    assert.equal(failed?.names, "a.example.com");
  } finally {
    supervisor.stop();
    log.flush();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("missingPermissionFlags() names the --allow-* flags nexo lacks for its ACME worker", async () => {
  const probe = new URL("../../tests/testdata/worker_permissions_probe.ts", import.meta.url).pathname;
  const settings = {
    directoryUrl: "https://127.0.0.1:14000/dir",
    caCertsPem: [],
    email: null,
    certDir: "/tmp/nexo-probe/certs",
    baseDir: "/tmp/nexo-probe",
    keyType: "ecdsa",
    fallbacks: [],
    dns: {
      default: {
        provider: "cloudflare",
        apiToken: "t",
        apiBase: "https://127.0.0.1:15000/client/v4",
        zoneId: null,
      },
      zones: [{
        zone: "example.org",
        provider: {
          provider: "exec",
          command: ["/etc/nexo/dns-hook", "--quiet"],
          timeoutMs: 1000,
          zone: null,
        },
      }],
    },
    http01: false,
    dnsResolvers: ["127.0.0.1:8053"],
    retryIntervalMs: 1000,
    propagationTimeoutMs: 1000,
    storage: null,
  };
  const run = async (flags: string[], given: unknown = settings) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", ...flags, probe, JSON.stringify(given)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    return JSON.parse(new TextDecoder().decode(output.stdout));
  };
  // Without a permission the worker needs, Deno refuses it with "Can't escalate parent thread permissions",
  // which says nothing of what to change: the missing flag is named instead.
  assert.deepEqual(await run(["--allow-net", "--allow-read", "--allow-write", "--allow-env"]), [
    "--allow-run=/etc/nexo/dns-hook",
  ]);
  // The exec hook (dns.zones' exec provider) is the one program the worker may run: exactly its path.
  assert.deepEqual(
    await run(["--allow-net", "--allow-read", "--allow-write", "--allow-sys", "--allow-run=/usr/bin/true"]),
    ["--allow-run=/etc/nexo/dns-hook"],
  );
  const all = ["--allow-net", "--allow-read", "--allow-write", "--allow-sys"];
  assert.deepEqual(await run([...all, "--allow-run=/etc/nexo/dns-hook"]), []);
  assert.deepEqual(
    await run([
      "--allow-net=127.0.0.1:14000",
      "--allow-read",
      "--allow-write=/tmp/nexo-probe",
      "--allow-sys",
      "--allow-run=/etc/nexo/dns-hook",
    ]),
    ["--allow-net=127.0.0.1:15000,127.0.0.1:8053"],
  );
  assert.deepEqual(await run(["--allow-net", "--allow-read=/etc/nexo", "--allow-sys", "--allow-run"]), [
    "--allow-read=/tmp/nexo-probe,/tmp/nexo-probe/certs",
    "--allow-write=/tmp/nexo-probe/acme,/tmp/nexo-probe/.locks,/tmp/nexo-probe/certs",
  ]);
  // With a shared store the worker reaches exactly the Redis address, and writes nothing.
  const shared = {
    ...settings,
    storage: {
      url: "redis://:pw@127.0.0.1:16379/0",
      prefix: "nexo",
      password: null,
      caCertsPem: [],
      encryptionKey: null,
    },
  };
  assert.deepEqual(
    await run([
      "--allow-net=127.0.0.1:14000,127.0.0.1:15000,127.0.0.1:8053",
      "--allow-read",
      "--allow-sys",
      "--allow-run=/etc/nexo/dns-hook",
    ], shared),
    ["--allow-net=127.0.0.1:16379"],
  );
});
