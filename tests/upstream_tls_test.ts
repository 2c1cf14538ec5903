// End-to-end: `upstream_tls` against real TLS upstreams in their own processes, with a private PKI made by
// openssl (tests/test_pki.ts): node:https servers (tests/tls_upstream.ts), one of them requiring a client
// certificate, and `openssl s_server` requiring one (OpenSSL, not rustls, verifying nexo's certificate).
// A private CA and the name to verify, a wrong name and a missing CA refused with a clear 502 log line,
// mTLS, connections never shared between routes with different TLS settings, health checks made with the
// route's TLS, skipped verification, and a reload naming a missing file refused.

import assert from "node:assert/strict";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { makeTestPki, type TestPki } from "./test_pki.ts";
import { closedPort } from "./upstreams.ts";
import { maskedTextFrame, readHead, readTextFrame, upgradeRequest } from "./websocket_frames.ts";

const SCRIPT = new URL("./tls_upstream.ts", import.meta.url).pathname;

interface Upstream {
  url: string;
  stop(): Promise<void>;
}

async function startTlsUpstream(pki: TestPki, options: { clientCa?: string } = {}): Promise<Upstream> {
  const port = closedPort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      SCRIPT,
      String(port),
      pki.serverCert,
      pki.serverKey,
      ...(options.clientCa === undefined ? [] : [options.clientCa]),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  await waitForOutput(child, "ready");
  return { url: `https://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

/** `openssl s_server -www` requiring a client certificate from the test CA (-Verify: no certificate, no HTTP). */
async function startOpensslUpstream(pki: TestPki): Promise<Upstream> {
  const port = closedPort();
  const child = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-accept",
      `127.0.0.1:${port}`,
      "-cert",
      pki.serverCert,
      "-key",
      pki.serverKey,
      "-CAfile",
      pki.caCert,
      "-Verify",
      "1",
      "-verify_return_error",
      "-www",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  await waitForOutput(child, "ACCEPT");
  return { url: `https://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

async function waitForOutput(child: Deno.ChildProcess, marker: string): Promise<void> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the upstream exited before printing ${marker}: ${text}`);
    text += value;
  }
  reader.releaseLock();
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel().catch(() => {});
}

interface Answer {
  path: string;
  peer: string | null;
  connection: number;
}

async function answer(nexo: NexoProcess, host: string, path = "/"): Promise<Answer> {
  const result = await curl(nexo, host, path);
  assert.equal(result.status, 200, `${host}${path}: ${result.status} ${result.body}`);
  return JSON.parse(result.body);
}

/** The 502 for `host` and the "upstream failed" log line behind it. */
async function refused(nexo: NexoProcess, host: string): Promise<string> {
  const before = nexo.logs.length;
  const result = await curl(nexo, host, "/");
  assert.equal(result.status, 502, `${host}: ${result.status} ${result.body}`);
  const line = await nexo.waitForLog((l) =>
    nexo.logs.indexOf(l) >= before && l.host === host && typeof l.error === "string"
  );
  return String(line.error);
}

Deno.test("upstream_tls: private CA, server name, mTLS, per-settings pooling, checks and reload", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "nexo_upstream_tls_" });
  const pki = await makeTestPki(dir);
  const plain = await startTlsUpstream(pki);
  const mtls = await startTlsUpstream(pki, { clientCa: pki.caCert });
  const openssl = await startOpensslUpstream(pki);
  // WebSockets go through Deno's WebSocket client, which connects to the URL's host: a localhost certificate.
  const webSockets = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(pki.localhostCert),
    key: await Deno.readTextFile(pki.localhostKey),
    onListen() {},
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (event) => socket.send(`echo: ${event.data}`);
    return response;
  });
  const wss = `https://localhost:${webSockets.addr.port}`;
  const ca = `ca_file: ${pki.caCert}`;
  const client = `client_cert_file: ${pki.clientCert}, client_key_file: ${pki.clientKey}`;
  const config = `
proxies:
  "private-ca.test":
    upstream: ${plain.url}
    upstream_tls: { ${ca}, server_name: app.internal }
  "wrong-name.test":
    upstream: ${plain.url}
    upstream_tls: { ${ca}, server_name: other.internal }
  "no-ca.test":
    upstream: ${plain.url}
    upstream_tls: { server_name: app.internal }
  "skip-verify.test":
    upstream: ${plain.url}
    upstream_tls: { insecure_skip_verify: true }
  "mtls.test":
    upstream: ${mtls.url}
    upstream_tls: { ${ca}, server_name: app.internal, ${client} }
  "mtls-anonymous.test":
    upstream: ${mtls.url}
    upstream_tls: { ${ca}, server_name: app.internal }
  "mtls-rogue.test":
    upstream: ${mtls.url}
    upstream_tls: { ${ca}, server_name: app.internal, client_cert_file: ${pki.rogueClientCert}, client_key_file: ${pki.rogueClientKey} }
  "openssl.test":
    upstream: ${openssl.url}
    upstream_tls: { ${ca}, server_name: app.internal, ${client} }
  "ws-ca.test": { upstream: ${wss}, upstream_tls: { ${ca} } }
  "ws-no-ca.test": { upstream: ${wss} }
  "ws-skip-verify.test": { upstream: ${wss}, upstream_tls: { insecure_skip_verify: true } }
  "ws-mtls.test": { upstream: ${wss}, upstream_tls: { ${ca}, ${client} } }
  "checked.test":
    upstream: [${mtls.url}, ${plain.url}]
    health_check: { path: /health, interval: 1s, unhealthy_after: 1, healthy_after: 1 }
    upstream_tls: { ${ca}, server_name: app.internal, ${client} }
  "checked-anonymous.test":
    upstream: [${mtls.url}]
    health_check: { path: /health, interval: 1s, unhealthy_after: 1, healthy_after: 1 }
    upstream_tls: { ${ca}, server_name: app.internal }
`;
  const nexo = await startNexo(config);
  try {
    await t.step("a private CA and the name to verify: served", async () => {
      const first = await answer(nexo, "private-ca.test", "/one");
      assert.deepEqual([first.path, first.peer], ["/one", null]);
      const second = await answer(nexo, "private-ca.test", "/two");
      assert.equal(second.connection, first.connection, "the upstream connection was kept alive");
    });

    await t.step("a wrong name: 502, and the log names the name and the setting to fix", async () => {
      const error = await refused(nexo, "wrong-name.test");
      assert.match(error, /TLS handshake with upstream 127\.0\.0\.1:\d+ as other\.internal failed/);
      assert.match(error, /upstream_tls\.server_name/);
    });

    await t.step("no CA for a private certificate: 502, and the log says to set ca_file", async () => {
      const error = await refused(nexo, "no-ca.test");
      assert.match(error, /TLS handshake with upstream 127\.0\.0\.1:\d+ as app\.internal failed/);
      assert.match(error, /upstream_tls\.ca_file/);
    });

    await t.step("insecure_skip_verify: served without the CA or the name", async () => {
      assert.equal((await answer(nexo, "skip-verify.test")).peer, null);
    });

    await t.step("mTLS: the upstream sees nexo's client certificate", async () => {
      const first = await answer(nexo, "mtls.test");
      assert.equal(first.peer, "nexo-client");
      assert.equal((await answer(nexo, "mtls.test")).connection, first.connection);
    });

    await t.step(
      "mTLS carries large bodies both ways (node:tls, paused while nexo's client reads)",
      async () => {
        const down = await curl(nexo, "mtls.test", "/big?mib=24", [
          "-o",
          "/dev/null",
          "-w",
          "%{size_download}",
        ]);
        assert.equal(down.status, 200);
        assert.ok(down.body.endsWith(String(24 * 1024 * 1024)), down.body);
        const file = `${dir}/upload.bin`;
        await Deno.writeFile(file, new Uint8Array(8 * 1024 * 1024).fill(7));
        const up = await curl(nexo, "mtls.test", "/upload", ["-T", file]);
        assert.equal(up.status, 200, up.body);
        assert.equal(JSON.parse(up.body).received, 8 * 1024 * 1024);
        assert.equal(JSON.parse(up.body).peer, "nexo-client");
      },
    );

    await t.step(
      "a route without the client certificate never gets the other route's connection",
      async () => {
        // The mTLS route's connection to this same upstream sits idle in the pool now: were it shared, this
        // would be a 200 carrying nexo-client's identity. The upstream refuses after the TLS 1.3 handshake:
        // its alert, or (when the close wins the race) a bare close, or a reset when it closes with nexo's
        // request unread (seen once in a CI run). The 502 itself is asserted by refused().
        const error = await refused(nexo, "mtls-anonymous.test");
        assert.match(
          error,
          /CertificateRequired\); it asks for a client certificate: set upstream_tls\.client_cert_file|without sending TLS close_notify|closed the connection|failed while reading \(connection reset\)/,
          error,
        );
        assert.equal((await answer(nexo, "mtls.test")).peer, "nexo-client");
      },
    );

    await t.step("a client certificate from a CA the upstream does not trust: 502", async () => {
      const error = await refused(nexo, "mtls-rogue.test");
      assert.match(error, /upstream 127\.0\.0\.1:\d+/);
    });

    await t.step("mTLS to OpenSSL: it verifies nexo's chain and answers", async () => {
      const result = await curl(nexo, "openssl.test", "/");
      assert.equal(result.status, 200, result.body);
      assert.match(result.body, /Ciphers supported in s_server binary/);
    });

    await t.step(
      "WebSockets: the route's CA and skipped verification apply; a client certificate cannot",
      async () => {
        for (const host of ["ws-ca.test", "ws-skip-verify.test"]) {
          const conn = await connectTls(nexo, host);
          try {
            await conn.write(upgradeRequest(host, "/ws"));
            const { head, rest } = await readHead(conn);
            assert.match(head, /^HTTP\/1\.1 101/, `${host}: ${head}`);
            await conn.write(maskedTextFrame("over TLS"));
            assert.equal(await readTextFrame(conn, rest), "echo: over TLS");
          } finally {
            conn.close();
          }
        }
        const refusedUpgrade = async (host: string) => {
          const before = nexo.logs.length;
          const conn = await connectTls(nexo, host);
          try {
            await conn.write(upgradeRequest(host, "/ws"));
            assert.match((await readHead(conn)).head, /^HTTP\/1\.1 502/, host);
          } finally {
            conn.close();
          }
          return String(
            (await nexo.waitForLog((l) => nexo.logs.indexOf(l) >= before && l.host === host && "error" in l))
              .error,
          );
        };
        assert.match(await refusedUpgrade("ws-no-ca.test"), /UnknownIssuer/);
        assert.match(await refusedUpgrade("ws-mtls.test"), /cannot present a client certificate/);
      },
    );

    await t.step("health checks use the route's TLS: with the certificate up, without it down", async () => {
      const down = await nexo.waitForLog((l) =>
        l.msg === "upstream down" && l.routes === "checked-anonymous.test"
      );
      assert.match(String(down.error), /health check \/health failed/);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      assert.ok(
        !nexo.logs.some((l) => l.msg === "upstream down" && String(l.routes).includes("checked.test")),
        "the route with the client certificate stays up",
      );
      const peers = new Set<string | null>();
      for (let i = 0; i < 6; i++) peers.add((await answer(nexo, "checked.test")).peer);
      assert.deepEqual(peers, new Set(["nexo-client", null]), "both upstreams take requests");
    });

    await t.step(
      "a reload naming a missing file is refused with its line; the routes keep working",
      async () => {
        const path = `${nexo.dir}/config.yaml`;
        const before = await Deno.readTextFile(path);
        const missing = `${dir}/missing-ca.pem`;
        await Deno.writeTextFile(
          path,
          before.replace(
            `upstream_tls: { ${ca}, server_name: app.internal }\n  "wrong-name.test"`,
            `upstream_tls: { ca_file: ${missing}, server_name: app.internal }\n  "wrong-name.test"`,
          ),
        );
        const invalid = await nexo.waitForLog((l) => l.msg === "config invalid");
        assert.match(
          String(invalid.error),
          /proxies\."private-ca\.test"\.upstream_tls\.ca_file: cannot read .*missing-ca\.pem: it does not exist/,
        );
        assert.equal(invalid.line, before.split("\n").findIndex((line) => line.includes("upstream_tls")) + 1);
        assert.equal((await answer(nexo, "private-ca.test")).peer, null);
      },
    );
  } finally {
    await nexo.stop();
    await Promise.all([plain.stop(), mtls.stop(), openssl.stop(), webSockets.shutdown()]);
    await Deno.remove(dir, { recursive: true });
  }
});
