// TLS to an upstream through node:tls, for what Deno 2.9.6's own API cannot do on a connection nexo made:
// present a client certificate (mTLS) and skip verification (`insecure_skip_verify`). Deno.startTls takes
// neither; Deno.connectTls takes a client certificate but its connection cannot have TCP_NODELAY, so every
// request whose body follows its head would wait on Nagle. Both end in the same rustls as Deno.startTls.
// Imported only when a route's upstream_tls needs it: node:tls costs about 7 MiB of RSS (measured).

import { connect, type TLSSocket } from "node:tls";
import type { UpstreamTlsMaterial } from "../config/types.ts";
import { ipVersion } from "../ip_address.ts";
import type { ByteSocket } from "./upstream_conn.ts";
import { connectFailure, handshakeFailure, type UpstreamOrigin } from "./upstream_connect.ts";

/** Bytes read ahead of the reader before the socket is paused (the reader takes them in its own buffer). */
const READ_AHEAD_BYTES = 64 * 1024;

/**
 * A verified (unless `insecureSkipVerify`) TLS connection to `origin`, with `tls`'s client certificate,
 * TCP_NODELAY on. Rejects like `connectUpstream`: UpstreamError "connect" for a refused connection or a
 * failed handshake, `signal.reason` once aborted.
 */
export function connectNodeTls(
  origin: UpstreamOrigin,
  tls: UpstreamTlsMaterial,
  options: { caCerts: readonly string[]; signal: AbortSignal },
): Promise<ByteSocket> {
  const { signal } = options;
  if (signal.aborted) return Promise.reject(signal.reason);
  const serverName = tls.serverName ?? origin.hostname;
  const caCerts = [...options.caCerts, ...tls.caCerts];
  const socket = connect({
    host: origin.hostname,
    port: origin.port,
    // SNI carries names only (RFC 6066 §3); an IP is then verified as the IP.
    servername: ipVersion(serverName) === 0 ? serverName : undefined,
    ...(caCerts.length === 0 ? {} : { ca: caCerts }),
    ...(tls.clientCert === null ? {} : { cert: tls.clientCert.cert, key: tls.clientCert.key }),
    rejectUnauthorized: !tls.insecureSkipVerify,
    ALPNProtocols: ["http/1.1"],
  });
  socket.setNoDelay(true);
  return new Promise((resolve, reject) => {
    let connected = false;
    const settle = (error: unknown) => {
      signal.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
      socket.off("secureConnect", onSecure);
      socket.off("error", onError);
      if (error === null) return resolve(new NodeTlsSocket(socket));
      socket.destroy();
      reject(error);
    };
    const onAbort = () => settle(signal.reason);
    const onConnect = () => connected = true;
    const onSecure = () => settle(null);
    const onError = (error: Error) =>
      settle(connected ? handshakeFailure(origin, serverName, error) : connectFailure(origin, error));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("connect", onConnect);
    socket.on("secureConnect", onSecure);
    socket.on("error", onError);
  });
}

/**
 * A node:tls socket read and written like a Deno.Conn: `read()` takes what arrived (the socket pauses once
 * READ_AHEAD_BYTES wait), `write()` resolves once node has handed the bytes on, and `null` from `read()`
 * is the end. One read at a time, as UpstreamConnection does.
 */
class NodeTlsSocket implements ByteSocket {
  readonly #socket: TLSSocket;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#queue.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= READ_AHEAD_BYTES) socket.pause();
      this.#notify();
    });
    socket.on("end", () => this.#finish(null));
    socket.on("close", () => this.#finish(null));
    socket.on("error", (error: Error) => this.#finish(error));
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0) {
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const first = this.#queue[0]!;
    const n = Math.min(into.length, first.length);
    into.set(first.subarray(0, n));
    if (n === first.length) this.#queue.shift();
    else this.#queue[0] = first.subarray(n);
    this.#queued -= n;
    if (this.#queued < READ_AHEAD_BYTES && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(new Error("the connection is closed"));
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error) => error ? reject(error) : resolve(bytes.length));
    });
  }

  close(): void {
    this.#finish(null);
    this.#socket.destroy();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  #finish(error: Error | null): void {
    if (error !== null && this.#error === null && !this.#ended) this.#error = error;
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
