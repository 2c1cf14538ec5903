import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/types.ts";
import { LocalHttp01Tokens } from "../http01_tokens.ts";
import { Logger } from "../log.ts";
import { UpstreamPool } from "../proxy/upstream_client.ts";
import { CertStore } from "../tls/cert_store.ts";
import { Listeners } from "./listeners.ts";
import { ServingState } from "./serving_state.ts";

const CONFIG = parseConfig(
  `base_dir: /srv/nexo\nlisten: "127.0.0.1:0"\nhttp_listen: "127.0.0.1:0"\nissuer: internal\n` +
    `proxies:\n  "a.test":\n    redirect: https://example.com\n`,
  "/srv/nexo/config.yaml",
);

async function start() {
  const written: string[] = [];
  const log = new Logger({
    format: "json",
    sink: {
      writeSync: (p) => {
        written.push(new TextDecoder().decode(p));
        return p.length;
      },
    },
  });
  /** The log's lines so far (it writes asynchronously: settled first). */
  const lines = async (): Promise<Array<Record<string, unknown>>> => {
    await log.settle();
    return written.flatMap((chunk) => chunk.split("\n")).filter((line) => line !== "").map((line) =>
      JSON.parse(line)
    );
  };
  const state = await ServingState.create(CONFIG, { pool: new UpstreamPool(), log });
  const listeners = await Listeners.start({
    config: CONFIG,
    current: () => state.config,
    snapshot: () => state.snapshot,
    store: new CertStore(),
    handler: () => new Response("ok"),
    http01: new LocalHttp01Tokens(),
    log,
  });
  return { listeners, lines };
}

/**
 * The status of a plain-HTTP GET for a.test to `port` on 127.0.0.1 (raw, since fetch sends its own Host): 308
 * (to HTTPS) from nexo's HTTP listener.
 */
async function httpStatus(port: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"),
    );
    const buffer = new Uint8Array(512);
    const read = await conn.read(buffer);
    return Number(/^HTTP\/1\.1 (\d{3}) /.exec(new TextDecoder().decode(buffer.subarray(0, read ?? 0)))?.[1]);
  } finally {
    conn.close();
  }
}

function at(config: Config, port: number, httpPort: number): Config {
  return {
    ...config,
    listen: { hostname: "127.0.0.1", port },
    httpListen: { hostname: "127.0.0.1", port: httpPort },
  };
}

Deno.test("listeners that cannot move to a busy address keep serving where they were, and say why", async () => {
  const { listeners, lines } = await start();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const httpsPort = listeners.https.addr.port;
    const httpPort = listeners.http!.addr.port;
    const current = at(CONFIG, httpsPort, httpPort);
    const failed = listeners.move(current, at(CONFIG, busy.addr.port, busy.addr.port));
    assert.deepEqual(failed, ["listen", "httpListen"]);
    assert.equal(listeners.https.addr.port, httpsPort);
    assert.equal(listeners.http!.addr.port, httpPort);
    assert.equal(await httpStatus(httpPort), 308, "the old HTTP listener still redirects");
    const errors = (await lines()).filter((line) => line.level === "error").map((line) =>
      `${line.msg}: ${line.error}`
    );
    assert.equal(errors.length, 2, errors.join("\n"));
    assert.match(
      errors[0]!,
      /^listen not changed: .*already in use; stop the other server or choose another listen$/,
    );
    assert.match(errors[1]!, /^http_listen not changed: .*already in use.*choose another http_listen$/);
  } finally {
    busy.close();
    await listeners.shutdown(100);
  }
});

Deno.test("a moved HTTP listener answers on its new address, and without http_listen it goes", async () => {
  const { listeners, lines } = await start();
  try {
    const httpsPort = listeners.https.addr.port;
    const oldPort = listeners.http!.addr.port;
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const newPort = free.addr.port;
    free.close();
    const failed = listeners.move(at(CONFIG, httpsPort, oldPort), at(CONFIG, httpsPort, newPort));
    assert.deepEqual(failed, []);
    assert.equal(listeners.http!.addr.port, newPort);
    assert.equal(await httpStatus(newPort), 308);
    assert.ok(
      (await lines()).some((line) => line.msg === "listening" && line.addr === `127.0.0.1:${newPort}`),
    );
    // Without http_listen, the HTTP listener goes.
    assert.deepEqual(
      listeners.move(at(CONFIG, httpsPort, newPort), { ...at(CONFIG, httpsPort, newPort), httpListen: null }),
      [],
    );
    assert.equal(listeners.http, null);
  } finally {
    await listeners.shutdown(100);
  }
});
