// An https upstream in its own process for tests/upstream_tls_test.ts: node:https with keep-alive, a
// certificate from a test CA, and optionally a client certificate required (mTLS). Each answer is JSON
// naming the client certificate's subject CN (null without one) and which TLS connection carried it.
// Usage: deno run --allow-net --allow-read tests/tls_upstream.ts PORT CERT KEY [CLIENT_CA]
// Prints "ready" once listening.

import { createServer } from "node:https";
import type { TLSSocket } from "node:tls";

const [port = "0", certFile = "", keyFile = "", clientCa] = Deno.args;
const connections = new WeakMap<object, number>();
let nextConnection = 1;

const server = createServer({
  cert: Deno.readTextFileSync(certFile),
  key: Deno.readTextFileSync(keyFile),
  ...(clientCa === undefined
    ? {}
    : { ca: Deno.readTextFileSync(clientCa), requestCert: true, rejectUnauthorized: true }),
  keepAlive: true,
}, (req, res) => {
  const socket = req.socket as TLSSocket;
  let connection = connections.get(socket);
  if (connection === undefined) connections.set(socket, connection = nextConnection++);
  const subject = socket.getPeerCertificate?.()?.subject as { CN?: string } | undefined;
  const big = /^\/big\?mib=(\d+)$/.exec(req.url ?? "");
  if (big) {
    // MiBs of a repeating pattern, written as fast as the reader takes them.
    const block = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    let left = Number(big[1]);
    res.setHeader("content-length", String(left * block.length));
    const more = () => {
      while (left > 0) {
        left--;
        if (!res.write(block)) return void res.once("drain", more);
      }
      res.end();
    };
    return more();
  }
  let received = 0;
  req.on("data", (chunk: Uint8Array) => received += chunk.length);
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ path: req.url, peer: subject?.CN ?? null, connection, received }));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => Deno.stdout.writeSync(new TextEncoder().encode("ready\n")));
