// nexo's HTTP/1.1 client for upstreams: the request/response contract the proxy codes against, and the pool
// that picks a kept-alive connection or opens one and retries once on a stale one. It replaces fetch, which
// decodes Content-Encoding, adds headers and hides why a connection failed. Wire details live in
// upstream_exchange.ts and upstream_conn.ts; mapping failures to 502/504 is forward.ts's.

import type { UpstreamTlsMaterial } from "../config/types.ts";
import { encodeRequestHead } from "./http1_parse.ts";
import { RequestControl } from "./request_control.ts";
import { connectUpstream, parseOrigin } from "./upstream_connect.ts";
import { READ_BUFFER_BYTES, type UpstreamConnection } from "./upstream_conn.ts";
import { UpstreamError } from "./upstream_error.ts";
import { runExchange } from "./upstream_exchange.ts";
import { IdleConnections } from "./upstream_pool.ts";

export { UpstreamError, type UpstreamErrorKind } from "./upstream_error.ts";

/** One request to send upstream. */
export interface UpstreamRequest {
  method: string;
  /** Absolute http: or https: URL of the upstream resource; its host:port is where we connect; path+query is the request-target. */
  url: URL;
  /**
   * Exactly the header lines to send, in order, names as given (the caller has already removed hop-by-hop
   * headers and set Host). The client adds only framing: Content-Length or Transfer-Encoding: chunked when a
   * body is sent (and Content-Length: 0 for a body-less POST, PUT or PATCH, RFC 9110 §8.6), nothing else.
   * Content-Length or Transfer-Encoding here is a TypeError.
   */
  headers: Iterable<[string, string]>;
  /** Request body or null. Streamed, never buffered whole. */
  body: ReadableStream<Uint8Array> | null;
  /** Length of body in bytes when known (sent as Content-Length); null means chunked encoding (RFC 9112 §7.1). */
  bodyLength: number | null;
  /**
   * Milliseconds allowed without progress to connect, to send the request (time spent waiting on `body` does
   * not count) and then to receive the response head; past it: UpstreamError("timeout"). Does not limit the
   * response body (`bodyTimeoutMs` does).
   */
  responseTimeoutMs: number;
  /**
   * Milliseconds each read of the response body may wait for the upstream (time the caller takes between
   * reads does not count); past it the body stream errors with UpstreamError("timeout") and the connection
   * is closed. Bounds how long a stalled upstream holds a socket and the client behind it. Not finite or
   * >= 2^31 means no limit.
   */
  bodyTimeoutMs: number;
  /** Aborts everything (connect, write, read, body stream) e.g. when the client went away. */
  signal?: AbortSignal;
  /**
   * How to connect when the URL is https: the route's CA, server name, client certificate (`upstream_tls`).
   * Connections are pooled per origin and these settings, so one made with a client certificate is never
   * reused for a request without it. Absent or null: the default roots and the URL's host.
   */
  tls?: UpstreamTlsMaterial | null;
  /**
   * Sends `*` as the request-target instead of the URL's path (asterisk-form, RFC 9112 §3.2.4: `OPTIONS *`
   * asks about the server, not a resource). Only for OPTIONS.
   */
  asteriskForm?: boolean;
}

/** The upstream's final response (interim 1xx responses other than 101 are skipped). */
export interface UpstreamResponse {
  status: number;
  statusText: string;
  /**
   * Response headers in order, names lowercased, hop-by-hop NOT removed (the caller does that). Content-Length
   * is dropped when Transfer-Encoding overrides it and collapsed to one line when repeated (RFC 9112 §6.3).
   */
  headers: Array<[string, string]>;
  /**
   * null for HEAD, 1xx, 204, 304 (RFC 9112 §6.3). Otherwise the decoded body (chunked framing removed; content
   * codings untouched: bytes exactly as the upstream sent them). It errors with UpstreamError ("reset" when
   * truncated, "protocol" on bad chunked framing, "timeout" past `bodyTimeoutMs`) or with the abort reason.
   * The caller must read it to the end or cancel it: cancelling closes the connection (not returned to the
   * pool).
   */
  body: ReadableStream<Uint8Array<ArrayBuffer>> | null;
  /**
   * Whether there is a body (`body` is not null). Reading `body` makes its stream; check this instead when
   * the body may be read with `bytes()`, which is cheaper without one. `body` throws after `bytes()`.
   */
  hasBody: boolean;
  /** Content-Length when the upstream framed the body with one, else null. */
  contentLength: number | null;
  /** Reads the whole body into one Uint8Array (for small bodies; the caller checks contentLength first); returns the connection to the pool. */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
}

/** Pool settings; every field has a default. */
export interface UpstreamPoolOptions {
  /**
   * Idle keep-alive connections kept per origin (scheme, host, port; and `upstream_tls` settings for https).
   * Default 64; 0 disables keep-alive.
   */
  maxIdlePerHost?: number;
  /**
   * Milliseconds an idle connection is kept. Default 60 000 (nginx upstreams keep 75 s); an upstream that closes
   * sooner (Node's default is 5 s) is noticed at once and its connection dropped from the pool.
   */
  idleTimeoutMs?: number;
  /** Extra PEM CA certificates trusted for https upstreams, besides the default roots. */
  caCerts?: string[];
  /** Largest response head accepted, in bytes; larger is UpstreamError("protocol"). Default 64 KiB. */
  maxHeaderBytes?: number;
}

const DEFAULT_MAX_IDLE_PER_HOST = 64;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
// RFC 9110 §8.6: a user agent SHOULD send Content-Length when the method defines a meaning for content.
const METHODS_WITH_CONTENT: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH"]);

/**
 * HTTP/1.1 client with keep-alive per origin, shared by all routes. A connection goes back to the pool only
 * when its response was read to the end, was not `Connection: close`, was framed by Content-Length or chunked,
 * and the request body was fully written. Requests may run concurrently; each uses its own connection.
 */
export class UpstreamPool {
  #idle: IdleConnections<UpstreamConnection>;
  #caCerts: string[] | undefined;
  #maxHeaderBytes: number;
  #closed = false;

  constructor(options: UpstreamPoolOptions = {}) {
    this.#idle = new IdleConnections({
      maxPerOrigin: options.maxIdlePerHost ?? DEFAULT_MAX_IDLE_PER_HOST,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    });
    this.#caCerts = options.caCerts;
    this.#maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** For tests/status: number of idle pooled connections. */
  get idleCount(): number {
    return this.#idle.size;
  }

  /**
   * Sends `req` and resolves once the response head arrived. Rejects with UpstreamError (kind "connect",
   * "reset", "timeout" or "protocol"; a failed request body is "reset" with the body's error as `cause`), with
   * `req.signal.reason` when aborted, or with TypeError for an invalid request (nothing is sent then).
   * A reused connection that fails before any response byte is retried once on a fresh one, only when
   * `req.body` is null.
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const origin = parseOrigin(req.url);
    const tls = origin.tls ? req.tls ?? null : null;
    const key = tls === null ? origin.key : `${origin.key}#${tls.id}`;
    if (this.#closed) {
      throw new UpstreamError(
        "connect",
        `cannot connect to upstream ${origin.authority}: the pool was closed`,
      );
    }
    const head = encodeRequestHead({
      method: req.method,
      target: req.asteriskForm && req.method === "OPTIONS" ? "*" : req.url.pathname + req.url.search,
      headers: req.headers,
      framing: requestFraming(req),
    });
    const control = new RequestControl({
      signal: req.signal,
      timeoutMs: req.responseTimeoutMs,
      bodyTimeoutMs: req.bodyTimeoutMs,
      authority: origin.authority,
    });
    try {
      let conn = this.#idle.take(key);
      for (;;) {
        const reused = conn !== null;
        if (conn === null) {
          control.watch("connect");
          conn = await connectUpstream(origin, {
            caCerts: this.#caCerts,
            tls,
            signal: control.connectSignal,
            bufferBytes: READ_BUFFER_BYTES,
          });
        }
        try {
          return await runExchange({
            req,
            head,
            conn,
            control,
            maxHeaderBytes: this.#maxHeaderBytes,
            release: (done) => this.#release(key, done),
          });
        } catch (error) {
          // A pooled connection the upstream closed just as we reused it (keep-alive race): nothing of a
          // response arrived and there is no body that could have been consumed. A retry is safe for
          // idempotent methods only (RFC 9110 §9.2.2): a POST may have reached the application.
          const stale = reused && req.body === null && IDEMPOTENT_METHODS.has(req.method) &&
            !control.aborted &&
            conn.received === 0 && error instanceof UpstreamError && error.kind === "reset";
          if (!stale) throw error;
          conn = null;
        }
      }
    } catch (error) {
      control.finish();
      throw control.aborted ? control.reason : error;
    }
  }

  /** Closes all idle connections; in-flight ones close when done. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#idle.closeAll();
  }

  #release(key: string, conn: UpstreamConnection): void {
    if (this.#closed) conn.close();
    else this.#idle.put(key, conn);
  }
}

/** Methods a client may repeat without a different effect (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** The one framing header line the client adds, or null (RFC 9112 §6.1, RFC 9110 §8.6). */
function requestFraming(req: UpstreamRequest): [string, string] | null {
  const length = req.bodyLength;
  if (length !== null && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new TypeError(
      `cannot send ${req.method} ${req.url.href}: bodyLength ${length} is not a byte count`,
    );
  }
  if (req.body !== null) {
    return length === null ? ["transfer-encoding", "chunked"] : ["content-length", `${length}`];
  }
  if (length !== null && length > 0) {
    throw new TypeError(
      `cannot send ${req.method} ${req.url.href}: bodyLength is ${length} but body is null`,
    );
  }
  return length === 0 || METHODS_WITH_CONTENT.has(req.method) ? ["content-length", "0"] : null;
}
