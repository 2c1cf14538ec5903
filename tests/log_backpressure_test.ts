// End-to-end: nexo's stderr is a pipe nobody reads (a supervisor that stopped draining it, a `2>` into a
// stuck FIFO). Log writes used to be synchronous: once the pipe's 64 KiB filled, the event loop blocked and
// nexo stopped answering every site after ~300 logged requests. Now lines past a bounded buffer are dropped,
// counted in /metrics and reported once the reader is back; serving never waits for the log.

import assert from "node:assert/strict";
import { DENO_LOG_FILTER, V8_FLAGS } from "../lib/v8_flags.ts";
import { bundledMain } from "./bundle.ts";

const REQUESTS = 6000;

Deno.test("a stderr nobody reads never stalls serving: lines are dropped, counted and reported later", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-log-" });
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("ok"));
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `base_dir: ${dir}\nlisten: "127.0.0.1:0"\nissuer: internal\nadmin:\n  listen: "127.0.0.1:0"\n` +
      // "localhost" resolves without --resolve, so Deno's fetch can verify the local CA's certificate.
      `proxies:\n  "localhost":\n    upstream: http://127.0.0.1:${upstream.addr.port}\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", V8_FLAGS, await bundledMain(), "server", "--config", `${dir}/config.yaml`],
    env: { DENO_LOG: DENO_LOG_FILTER, NEXO_LOG_FORMAT: "json" },
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stderr.getReader();
  let client: Deno.HttpClient | null = null;
  try {
    // Read until both listeners are up, then stop reading: the pipe fills after ~300 request lines.
    let head = "";
    while (!/"protocol":"admin"/.test(head) || !/"protocol":"https"/.test(head)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `nexo exited:\n${head}`);
      head += new TextDecoder().decode(value);
    }
    const port = Number(/"addr":"127\.0\.0\.1:(\d+)","protocol":"https"/.exec(head)![1]);
    const adminPort = Number(/"addr":"127\.0\.0\.1:(\d+)","protocol":"admin"/.exec(head)![1]);
    client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca/root.crt`)] });
    let slowest = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const started = performance.now();
      const response: Response = await fetch(`https://localhost:${port}/r${i}`, {
        client,
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(await response.text(), "ok");
      slowest = Math.max(slowest, performance.now() - started);
    }
    assert.ok(slowest < 2_000, `a request took ${Math.round(slowest)} ms`);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const dropped = Number(/^nexo_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(dropped > 0 && dropped < REQUESTS, `dropped ${dropped} of ${REQUESTS} lines`);

    // The reader is back: what was kept arrives, with one line saying how many were dropped.
    let rest = "";
    const deadline = Date.now() + 10_000;
    while (!rest.includes('"msg":"log lines dropped"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    const report = rest.split("\n").find((line) => line.includes('"msg":"log lines dropped"'));
    assert.ok(report, "no report of the dropped lines");
    assert.ok(JSON.parse(report).count > 0);
  } finally {
    client?.close();
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
