import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { Logger } from "../log.ts";
import { CertStore } from "../tls/cert_store.ts";
import { AcmeSupervisor } from "./supervisor.ts";

function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const decoder = new TextDecoder();
  const sink = {
    writeSync(bytes: Uint8Array) {
      for (const line of decoder.decode(bytes).split("\n")) if (line) lines.push(JSON.parse(line));
      return bytes.length;
    },
  };
  return { log: new Logger({ format: "json", sink }), lines };
}

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
    http01: new Map(),
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
