// Opening connections to upstreams: where a URL's origin is, TCP with TCP_NODELAY, TLS verified against the
// default roots plus configured CAs with SNI (a route's `upstream_tls`), and failures worded as "cannot
// connect to upstream host:port (reason)" with the setting that fixes them. What happens on an open
// connection is upstream_conn.ts's.

import type { UpstreamTlsMaterial } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import { UpstreamConnection } from "./upstream_conn.ts";
import { tlsFix, UpstreamError } from "./upstream_error.ts";

/** Where to connect for an upstream URL: scheme, host and port. */
export interface UpstreamOrigin {
  /** Pool key: "https://example.com:443". */
  key: string;
  /** "example.com:443" or "[::1]:8080", for error messages. */
  authority: string;
  /** Host name or IP literal without IPv6 brackets; also the TLS server name (SNI). */
  hostname: string;
  port: number;
  tls: boolean;
}

/** The origin of an http: or https: URL. Throws TypeError for any other scheme. */
export function parseOrigin(url: URL): UpstreamOrigin {
  const tls = url.protocol === "https:";
  if (!tls && url.protocol !== "http:") {
    throw new TypeError(`cannot proxy to upstream URL "${url.href}": only http: and https: are supported`);
  }
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const authority = `${url.hostname}:${port}`;
  return { key: `${url.protocol}//${authority}`, authority, hostname, port, tls };
}

/** What `connectUpstream` needs besides the origin. */
export interface ConnectOptions {
  /** Extra PEM CA certificates trusted for https upstreams, besides the default roots. */
  caCerts: string[] | undefined;
  /** The route's `upstream_tls` for an https origin (its CA, server name, client certificate), or null. */
  tls?: UpstreamTlsMaterial | null;
  /** Aborts the connect and the TLS handshake; the promise then rejects with `signal.reason`. */
  signal: AbortSignal;
  /** Initial read buffer size in bytes; it grows up to the head limit only for larger heads. */
  bufferBytes: number;
}

/**
 * Opens a connection to `origin` (TCP_NODELAY on; for https a TLS handshake verified against the default
 * roots plus `caCerts` and the route's CA, SNI and verified name = `tls.serverName` or the hostname). A client
 * certificate or skipped verification goes through node:tls (upstream_node_tls.ts, loaded only then).
 * Rejects with UpstreamError "connect" naming the upstream and the reason (refused, DNS failure,
 * certificate, with the `upstream_tls` setting that fixes it), or with `signal.reason` once the signal aborted.
 */
export async function connectUpstream(
  origin: UpstreamOrigin,
  options: ConnectOptions,
): Promise<UpstreamConnection> {
  const { signal } = options;
  const tlsSettings = origin.tls ? options.tls ?? null : null;
  if (tlsSettings !== null && (tlsSettings.clientCert !== null || tlsSettings.insecureSkipVerify)) {
    const { connectNodeTls } = await import("./upstream_node_tls.ts");
    const socket = await connectNodeTls(origin, tlsSettings, { caCerts: options.caCerts ?? [], signal });
    return new UpstreamConnection(socket, origin.authority, options.bufferBytes);
  }
  let tcp: Deno.TcpConn;
  try {
    tcp = await Deno.connect({ hostname: origin.hostname, port: origin.port, signal });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw connectFailure(origin, error);
  }
  // Request heads and small bodies go out in one write each; Nagle would hold them for the peer's ACK.
  tcp.setNoDelay(true);
  if (!origin.tls) return new UpstreamConnection(tcp, origin.authority, options.bufferBytes);
  const serverName = tlsSettings?.serverName ?? origin.hostname;
  const caCerts = [...options.caCerts ?? [], ...tlsSettings?.caCerts ?? []];
  // Deno.startTls on our own TCP connection (rather than Deno.connectTls) keeps TCP_NODELAY and the abort;
  // its `hostname` is only the SNI and verified name, since the connection is already made.
  const tls = await Deno.startTls(tcp, {
    hostname: serverName,
    ...(caCerts.length === 0 ? {} : { caCerts }),
  });
  let closed = false;
  const abort = () => {
    if (!closed) tls.close();
    closed = true;
  };
  if (signal.aborted) abort();
  else signal.addEventListener("abort", abort, { once: true });
  try {
    await tls.handshake();
  } catch (error) {
    abort();
    if (signal.aborted) throw signal.reason;
    throw handshakeFailure(origin, serverName, error);
  } finally {
    signal.removeEventListener("abort", abort);
  }
  return new UpstreamConnection(tls, origin.authority, options.bufferBytes);
}

/** UpstreamError "connect" for a TCP connection that could not be made. */
export function connectFailure(origin: UpstreamOrigin, error: unknown): UpstreamError {
  const message = `cannot connect to upstream ${origin.authority} (${connectReason(error)})`;
  return new UpstreamError("connect", message, { cause: error });
}

/**
 * UpstreamError "connect" for a failed TLS handshake, naming the name verified when it is not the URL's host
 * and the `upstream_tls` setting that fixes the usual causes (rustls and node:tls word them differently).
 */
export function handshakeFailure(origin: UpstreamOrigin, serverName: string, error: unknown): UpstreamError {
  const reason = errorMessage(error);
  const as = serverName === origin.hostname ? "" : ` as ${serverName}`;
  return new UpstreamError(
    "connect",
    `TLS handshake with upstream ${origin.authority}${as} failed (${reason}); ${tlsFix(reason)}`,
    { cause: error },
  );
}

function connectReason(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.TimedOut) return "connect timed out";
  const message = errorMessage(error);
  // Deno reports resolver failures as a plain Error with the resolver's text.
  if (/lookup address|name or service|nodename nor servname|no such host/i.test(message)) {
    return `cannot resolve the host name: ${message}`;
  }
  return message;
}
