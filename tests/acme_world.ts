// Real ACME around a nexo under test: Pebble (short-lived certificates on request), its DNS server, an
// upstream, and the config that points nexo at them with HTTP-01 on http_listen; plus a TLS client that
// verifies what nexo serves against Pebble's root and tells certificates apart by fingerprint.

import assert from "node:assert/strict";
import { startChallTestSrv } from "./challtestsrv.ts";
import type { NexoProcess } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

/** Pebble, its DNS, an upstream, and the config body that points nexo at them. */
export interface AcmeWorld {
  /** YAML for startNexo: `issuer: acme`, HTTP-01 on the port Pebble validates, one proxied host. */
  config: string;
  /** Pebble's issuing root, to verify what nexo serves. */
  rootPem: string;
  stop(): Promise<void>;
}

/**
 * Starts Pebble issuing certificates that live `validitySeconds`, with everything nexo needs around it to
 * obtain one for `host` over HTTP-01.
 */
export async function startAcmeWorld(host: string, validitySeconds: number): Promise<AcmeWorld> {
  const dns = await startChallTestSrv();
  const httpPort = closedPort();
  const pebble = await startPebble({ dnsServer: dns.dnsServer, httpPort, validitySeconds }).catch(
    async (error) => {
      await dns.stop();
      throw error;
    },
  );
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ prefix: "nexo-acme-ca-", suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const stop = async () => {
    await pebble.stop();
    await app.close();
    await dns.stop();
    await Deno.remove(caFile);
  };
  let rootPem: string;
  try {
    rootPem = await pebble.issuerRootPem();
  } catch (error) {
    await stop();
    throw error;
  }
  // retry_interval 1s: a failed renewal is retried after 1, 2, 4 ... s, so a test sees the retry succeed.
  const config = `
issuer: acme
http_listen: "127.0.0.1:${httpPort}"
acme:
  directory: ${pebble.directoryUrl}
  ca_cert: ${caFile}
  retry_interval: 1s
proxies:
  "${host}":
    upstream: ${app.url}
`;
  return { config, rootPem, stop };
}

/**
 * Opens a new TLS connection to nexo for `host`, verified against `rootPem` (so an expired or foreign
 * certificate fails here), sends GET / and expects 200. Returns the SHA-256 fingerprint of the served leaf.
 */
export async function servedFingerprint(nexo: NexoProcess, host: string, rootPem: string): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: nexo.port,
    caCerts: [rootPem],
    [internals.serverNameSymbol]: host,
  } as Deno.ConnectTlsOptions);
  try {
    await conn.handshake();
    // Deno's internal peer-certificate accessor, the one node:tls uses.
    const peer = (conn as unknown as Record<symbol, (detailed: boolean) => { fingerprint256: string }>)[
      internals.getPeerCertificate
    ]!;
    const fingerprint = peer.call(conn, false).fingerprint256;
    await conn.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const buffer = new Uint8Array(4096);
    let head = "";
    while (!head.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    assert.match(head, /^HTTP\/1\.1 200 /, `GET https://${host}/ through nexo`);
    return fingerprint;
  } finally {
    conn.close();
  }
}

/** Where nexo finds the ACME server and the fake Cloudflare for DNS-01. */
export interface Dns01Setup {
  /** Pebble's directory URL. */
  directoryUrl: string;
  /** A file holding Pebble's API certificate authority. */
  caFile: string;
  /** challtestsrv's DNS server, "127.0.0.1:port". */
  dnsServer: string;
  /** The fake Cloudflare's API base and its token. */
  apiBase: string;
  token: string;
}

/**
 * The config lines for `issuer: acme` through DNS-01 with the fake Cloudflare: `issuer`, the `acme:` block
 * (plus `acmeLines`, "retry_interval: 1s", each indented into it) and the `cloudflare:` block. Ends with a
 * newline; the caller adds routes and anything else.
 */
export function dns01Config(setup: Dns01Setup, acmeLines: string[] = []): string {
  return [
    "issuer: acme",
    "acme:",
    `  directory: ${setup.directoryUrl}`,
    `  ca_cert: ${setup.caFile}`,
    `  dns_resolvers: ["${setup.dnsServer}"]`,
    ...acmeLines.map((line) => `  ${line}`),
    "cloudflare:",
    `  api_token: ${setup.token}`,
    `  api_base: ${setup.apiBase}`,
  ].join("\n") + "\n";
}

/**
 * GET / on a new TLS connection verified against `root`, as HTTP clients do it: a connection closed before
 * any byte of a response is retried once on a fresh one (RFC 9110 §9.2.2 lets clients repeat idempotent
 * requests; browsers and curl do). That covers the one race of a listener swap: a connection the old
 * listener accepted just before its graceful shutdown, whose request had not arrived. Any error response or
 * a second failure counts as a failed request. Returns the serial number of the certificate served.
 */
export async function getLikeAClient(port: number, host: string, root: string): Promise<string> {
  try {
    return await fetchSerial(port, host, root);
  } catch (error) {
    if (!(error instanceof ClosedBeforeResponse)) throw error;
    return await fetchSerial(port, host, root);
  }
}

class ClosedBeforeResponse extends Error {}

/** Opens a new TLS connection verified against `root`, makes one request, returns the leaf's serial number. */
async function fetchSerial(port: number, host: string, root: string): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [root],
      [internals.serverNameSymbol]: host,
    } as Deno.ConnectTlsOptions);
    await conn.handshake();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) throw new ClosedBeforeResponse(String(error));
    throw error;
  }
  try {
    // Deno's internal peer-certificate accessor (what node:tls uses): the serial tells certificates apart.
    const peer = (conn as unknown as Record<symbol, (detailed: boolean) => { serialNumber: string }>)[
      internals.getPeerCertificate
    ];
    const serial = peer ? peer.call(conn, false).serialNumber : "unknown";
    await conn.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    // Read the response head only: at EOF Deno's TLS client reports the server's close_notify as an error.
    const buffer = new Uint8Array(4096);
    let text = "";
    try {
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } catch (error) {
      if (text === "") throw new ClosedBeforeResponse(String(error));
      throw error;
    }
    if (text === "") throw new ClosedBeforeResponse("closed before any response byte");
    if (!text.startsWith("HTTP/1.1 200")) throw new Error(text.split("\r\n")[0]);
    return serial;
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}
