// End-to-end: Strict-Transport-Security as browsers see it through the real CLI. Every HTTPS response for a
// configured host carries the route's policy (proxied, redirect, nexo's own error pages), the config's value
// replaces an upstream's own, `hsts: false` leaves the upstream's alone, and plain HTTP never carries it.

import assert from "node:assert/strict";
import { curl, type NexoProcess, startNexo } from "./harness.ts";
import { closedPort } from "./upstreams.ts";

const ONE_YEAR = "max-age=31536000";
const PRELOAD = "max-age=63072000; includeSubDomains; preload";

/** An upstream that answers 200, with its own Strict-Transport-Security on /own-sts. */
function startStsUpstream(): { url: string; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const headers = new Headers({ "content-type": "text/plain" });
    if (new URL(req.url).pathname === "/own-sts") headers.set("strict-transport-security", "max-age=60");
    return new Response("from upstream", { headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** A plain-HTTP request to nexo's http_listen with `host`; the status and the lowercased header names. */
async function curlHttp(nexo: NexoProcess, host: string, path: string): Promise<{ head: string }> {
  const output = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-o",
      "/dev/null",
      "-D",
      "-",
      "-H",
      `Host: ${host}`,
      `http://127.0.0.1:${nexo.httpPort}${path}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return { head: new TextDecoder().decode(output.stdout) };
}

Deno.test("nexo sends each route's Strict-Transport-Security on every HTTPS response and never over HTTP", async (t) => {
  const app = startStsUpstream();
  const nexo = await startNexo(`
http_listen: "127.0.0.1:0"
limits:
  max_header: 8KiB
proxies:
  "app.test":
    upstream: ${app.url}
  "preload.test":
    upstream: ${app.url}
    hsts:
      max_age: 17520h
      include_subdomains: true
      preload: true
  "off.test":
    upstream: ${app.url}
    hsts: false
  "go.test":
    redirect: example.org/landing
  "down.test":
    upstream: http://127.0.0.1:${closedPort()}
  "other.test":
    upstream: ${app.url}
`);
  try {
    await t.step("proxied responses carry the default one-year policy over HTTP/1.1 and HTTP/2", async () => {
      for (const version of ["--http1.1", "--http2"]) {
        const res = await curl(nexo, "app.test", "/", [version]);
        assert.equal(res.status, 200, res.stderr);
        assert.equal(res.body, "from upstream");
        assert.equal(res.headers["strict-transport-security"], ONE_YEAR, version);
      }
    });

    await t.step("a route's own policy is sent as configured", async () => {
      const res = await curl(nexo, "preload.test", "/");
      assert.equal(res.headers["strict-transport-security"], PRELOAD);
    });

    await t.step("the config's policy replaces an upstream's own, never sent twice", async () => {
      const res = await curl(nexo, "app.test", "/own-sts");
      // curl's headers join repeated fields with ", ": one value here means one header line.
      assert.equal(res.headers["strict-transport-security"], ONE_YEAR);
    });

    await t.step("hsts: false sends none and passes the upstream's own untouched", async () => {
      assert.equal((await curl(nexo, "off.test", "/")).headers["strict-transport-security"], undefined);
      assert.equal(
        (await curl(nexo, "off.test", "/own-sts")).headers["strict-transport-security"],
        "max-age=60",
      );
    });

    await t.step("redirect routes carry the policy on the redirect itself", async () => {
      const res = await curl(nexo, "go.test", "/x");
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, "https://example.org/landing");
      assert.equal(res.headers["strict-transport-security"], ONE_YEAR);
    });

    await t.step("nexo's own error pages for a configured host carry it too (502, 431)", async () => {
      const down = await curl(nexo, "down.test", "/");
      assert.equal(down.status, 502);
      assert.equal(down.headers["strict-transport-security"], ONE_YEAR);
      const big = await curl(nexo, "app.test", "/", ["-H", `X-Big: ${"a".repeat(10_000)}`]);
      assert.equal(big.status, 431);
      assert.equal(big.headers["strict-transport-security"], ONE_YEAR);
    });

    await t.step("a host nexo does not serve on this connection gets no policy (404, 421)", async () => {
      const unknown = await curl(nexo, "app.test", "/", ["-H", "Host: nowhere.test"]);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.headers["strict-transport-security"], undefined);
      const misdirected = await curl(nexo, "app.test", "/", ["-H", "Host: other.test"]);
      assert.equal(misdirected.status, 421);
      assert.equal(misdirected.headers["strict-transport-security"], undefined);
    });

    await t.step("plain HTTP never carries it: not on the 308, the 404 or a challenge miss", async () => {
      for (
        const [host, path, status] of [
          ["app.test", "/p", "308"],
          ["preload.test", "/", "308"],
          ["nowhere.test", "/", "404"],
          ["app.test", "/.well-known/acme-challenge/none", "404"],
        ] as const
      ) {
        const { head } = await curlHttp(nexo, host, path);
        assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), `${host}${path}`);
        assert.doesNotMatch(head, /strict-transport-security/i, `${host}${path}`);
      }
    });

    await t.step("a reload that changes hsts applies to the next request", async () => {
      const file = `${nexo.dir}/config.yaml`;
      const text = await Deno.readTextFile(file);
      await Deno.writeTextFile(
        file,
        text.replace(`"app.test":\n`, `"app.test":\n    hsts: {max_age: 300}\n`),
      );
      const reloaded = await nexo.waitForLog((l) => l.msg === "config reloaded");
      assert.equal(reloaded.changed, "app.test");
      assert.equal((await curl(nexo, "app.test", "/")).headers["strict-transport-security"], "max-age=300");
    });
  } finally {
    const code = await nexo.stop();
    await app.close();
    assert.equal(code, 0);
  }
});
