// Forwarding one request to a proxy route's upstream and shaping the response: target URL, header rewriting,
// the request-body limit, client and upstream failures mapped to 400/413/501/502/504 in this one place, the
// default Cache-Control, and small bodies sent as one buffer. WebSocket upgrades are websocket.ts's; routing
// and the access log are the caller's.

import { errorMessage } from "../error_message.ts";
import type { ProxyRoute, UpstreamTlsMaterial } from "../config/types.ts";
import {
  BodyReadError,
  BodyTimeoutError,
  BodyTooLargeError,
  bufferBody,
  bytesStream,
  countBody,
  drainBody,
  findCause,
  limitBody,
  nonEmptyBody,
  readEagerly,
  SMALL_BODY_BYTES,
} from "./body.ts";
import { defaultCacheControl } from "./cache_control.ts";
import { errorPage, reportPage } from "./error_page.ts";
import { buildResponseHeaders, buildUpstreamHeaders, type ForwardedFor, type HeaderList } from "./headers.ts";
import { UpstreamError, type UpstreamPool, type UpstreamResponse } from "./upstream_client.ts";

export interface ForwardOptions {
  pool: UpstreamPool;
  /** `req.url` parsed (the caller already needed it for routing). */
  url: URL;
  /** `req.headers` as a list (the caller already iterated them once, which is not cheap). */
  headerList: HeaderList;
  /** A request body that sends nothing for this many ms is cut off with 408 (server-wide `read_timeout`). */
  bodyReadTimeoutMs: number;
  forwarded: ForwardedFor;
  /**
   * Called once per request when the response is complete (or failed): for the access log. `bytes` counts
   * body bytes sent to the client; `error` explains a 5xx or a stream cut short.
   */
  onDone: (outcome: ForwardOutcome) => void;
  /**
   * Called for each upstream response header that was repaired (a control character replaced) or dropped
   * (a name too long) before it could reach the client; see buildResponseHeaders(). Optional.
   */
  onRepairedHeader?: (name: string) => void;
  /**
   * Where the request goes when the route has several upstreams or retries (lib/balance/): the dispatcher
   * picks an upstream, and another after a failure it may retry. Null: once, to the route's one upstream.
   */
  dispatch?: Dispatch | null;
}

/** One try: the request sent to `upstream`, with `timeoutMs` left for its response head. */
export type Attempt = (upstream: URL, timeoutMs: number) => Promise<UpstreamResponse>;

/** What a dispatcher knows of a request, to decide what it may send again. */
export interface DispatchContext {
  method: string;
  /** Whether the body can be sent again: there is none, or it was buffered whole. */
  replayable: boolean;
  /** Whether no byte of the body was read yet (true without one): a failed connect may go elsewhere. */
  untouched: () => boolean;
  /** The route's response timeout: the total for every try. */
  timeoutMs: number;
}

/** The response a dispatcher got, from which upstream, and what goes with it. */
export interface Dispatched {
  response: UpstreamResponse;
  upstream: URL;
  /** A Set-Cookie for the client (`lb: cookie` pins it to this upstream), or null. */
  setCookie: string | null;
  /** Called once when the response is complete or failed (least_conn counts requests in flight). */
  release: () => void;
}

export type Dispatch = (attempt: Attempt, context: DispatchContext) => Promise<Dispatched>;

export interface ForwardOutcome {
  status: number;
  bytes: number;
  /** Why nexo answered with an error page, or why a streamed body ended early; null when all went well. */
  error: string | null;
  /** The upstream that answered, when one did. */
  upstream?: URL;
}

/**
 * Sends `req` to the route's upstream and returns the response to give the client. Never throws: every
 * failure becomes an error page (400 malformed or cut-off request body, 413 body too large, 501 transfer
 * coding other than chunked, 502 upstream unreachable or broken, 504 no response head within the route's
 * timeout, or a small body stalled for the route's body_timeout). Once a streamed body has begun, a failure
 * aborts the response instead (HTTP/1.1: the connection closes before the declared length or the last
 * chunk; HTTP/2: RST_STREAM), so a client never takes a cut body for a whole one.
 */
export async function forwardRequest(
  req: Request,
  route: ProxyRoute,
  options: ForwardOptions,
): Promise<Response> {
  if (!isChunkedOrNone(req.headers.get("transfer-encoding"))) {
    drainBody(req.body);
    return fail(
      options,
      501,
      "The request's Transfer-Encoding is not supported; send the body chunked or with a Content-Length.",
      "unsupported transfer coding",
    );
  }
  const declaredLength = parseContentLength(req.headers.get("content-length"));
  if (declaredLength !== null && declaredLength > route.limits.maxBodyBytes) {
    // Answered at once: the client learns before uploading it all (HTTP/1.1 clients waiting on 100 Continue
    // send nothing). Over HTTP/2 Deno resets the stream (NO_ERROR) once the page is sent, which RFC 9113 §8.1
    // allows; a client that waits on flow control instead of reading the response can then stall (see
    // DEVELOPERS.md). Draining first would make every such client upload up to 64 MiB to hear "too large".
    drainBody(req.body);
    return fail(options, 413, `The request body is larger than this site accepts.`, "body too large");
  }
  let dispatched: Dispatched;
  try {
    const limited = req.body === null ? null : limitBody(req.body, {
      maxBytes: route.limits.maxBodyBytes,
      readTimeoutMs: options.bodyReadTimeoutMs,
    });
    const stream = limited !== null && declaredLength === null ? await nonEmptyBody(limited) : limited;
    const buffered = stream !== null && declaredLength !== null && declaredLength <= SMALL_BODY_BYTES
      ? await bufferBody(stream)
      : null;
    const attempt: Attempt = (upstream, timeoutMs) =>
      options.pool.request({
        method: req.method,
        url: upstreamUrl(upstream, options.url),
        headers: buildUpstreamHeaders(options.headerList, options.forwarded),
        body: buffered !== null ? bytesStream(buffered) : stream,
        bodyLength: stream === null ? null : declaredLength,
        responseTimeoutMs: timeoutMs,
        bodyTimeoutMs: route.limits.bodyTimeoutMs,
        signal: req.signal,
        tls: upstreamTlsOf(route),
        // Deno turns `OPTIONS *` into the path "/*" (a literal "/*" path looks the same and is treated
        // alike); RFC 9112 §3.2.4 has the proxy forward it to the origin as `*`.
        asteriskForm: req.method === "OPTIONS" && options.url.pathname === "/*" && options.url.search === "",
      });
    const timeoutMs = route.limits.responseTimeoutMs;
    dispatched = options.dispatch
      ? await options.dispatch(attempt, {
        method: req.method,
        replayable: stream === null || buffered !== null,
        untouched: () => stream === null || buffered !== null || !stream.locked,
        timeoutMs,
      })
      : {
        response: await attempt(route.upstreams[0]!, timeoutMs),
        upstream: route.upstreams[0]!,
        setCookie: null,
        release: () => {},
      };
  } catch (error) {
    return failFromError(req, options, error);
  }
  const { response: upstream, release } = dispatched;
  const onDone = options.onDone;
  options = {
    ...options,
    onDone: (outcome) => {
      release();
      onDone({ ...outcome, upstream: dispatched.upstream });
    },
  };
  if (upstream.status < 200 || upstream.status > 599) {
    await upstream.body?.cancel().catch(() => {});
    return fail(options, 502, BAD_GATEWAY, `upstream answered with status ${upstream.status}`);
  }
  const headers = buildResponseHeaders(upstream.headers, options.onRepairedHeader);
  if (dispatched.setCookie !== null) headers.append("set-cookie", dispatched.setCookie);
  // RFC 9110 §8.6: never a Content-Length on a 204; HTTP/2 clients reject the stream when one is there.
  if (upstream.status === 204) headers.delete("content-length");
  if (route.cache) {
    const value = defaultCacheControl(upstream.status, headers, {
      hasCredentials: req.headers.has("authorization") || req.headers.has("cookie"),
      path: options.url.pathname,
    });
    if (value !== null) headers.set("cache-control", value);
  }
  // No statusText: the upstream's reason phrase is not passed on (Deno writes the standard one), and one
  // the Response constructor refused would throw here.
  const init = { status: upstream.status, headers };
  if (!upstream.hasBody || req.method === "HEAD") {
    await upstream.body?.cancel().catch(() => {});
    options.onDone({ status: upstream.status, bytes: 0, error: null });
    return new Response(null, init);
  }
  // From here on there is a body (`upstream.body` is not null), read whole with bytes() or streamed.
  try {
    if (upstream.contentLength !== null && upstream.contentLength <= SMALL_BODY_BYTES) {
      const bytes = await upstream.bytes();
      options.onDone({ status: upstream.status, bytes: bytes.byteLength, error: null });
      return new Response(bytes, init);
    }
    if (upstream.contentLength === null) {
      const eager = await readEagerly(upstream.body!);
      if (eager.complete) {
        options.onDone({ status: upstream.status, bytes: eager.bytes.byteLength, error: null });
        return new Response(eager.bytes, init);
      }
      return new Response(countedStream(eager.stream, upstream.status, options), init);
    }
  } catch (error) {
    return failFromError(req, options, error);
  }
  return new Response(countedStream(upstream.body!, upstream.status, options), init);
}

const BAD_GATEWAY = "The upstream server for this site could not be reached or sent an invalid response.";

function countedStream(
  body: ReadableStream<Uint8Array>,
  status: number,
  options: ForwardOptions,
): ReadableStream<Uint8Array> {
  return countBody(body, (bytes, error) => {
    options.onDone({
      status,
      bytes,
      error: error === null ? null : `stream ended early: ${errorMessage(error)}`,
    });
  });
}

/**
 * How the route's https upstreams are connected to (`upstream_tls`), or null for the defaults. Throws a
 * TypeError when the config was parsed without `loadConfig()`, which reads the files: connecting without
 * them would verify against the wrong CA or leave out the client certificate.
 */
export function upstreamTlsOf(route: ProxyRoute): UpstreamTlsMaterial | null {
  const tls = route.upstreamTls;
  if (tls === null) return null;
  if (tls.material === null) {
    throw new TypeError(
      `proxies."${route.host}".upstream_tls has no files loaded (load the config with loadConfig())`,
    );
  }
  return tls.material;
}

/** The upstream URL for a request: the upstream's base path joined with the request's path, query kept. */
export function upstreamUrl(base: URL, requestUrl: URL): URL {
  // One parse of the joined string: the request's path is already normalized and percent-encoded by its own
  // parse, so this equals setting pathname and search on a copy of `base`, at a fifth of the cost (0.4 vs
  // 2.4 µs per request).
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  return new URL(base.origin + prefix + requestUrl.pathname + requestUrl.search);
}

/**
 * Parses a Content-Length value; null when absent or not one number (identical repeated lines arrive joined,
 * "5, 5", and the body is then forwarded chunked). hyper has already rejected malformed values but accepts
 * up to 2^64-1: a length past Number's exact range comes back rounded, still far over any body limit, so
 * the up-front 413 catches it instead of the body being streamed until the limit trips.
 */
function parseContentLength(value: string | null): number | null {
  if (value === null) return null;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/**
 * Whether a request's Transfer-Encoding is absent or exactly "chunked". hyper decodes only a final chunked
 * coding (RFC 9112 §6.1) and leaves the codings before it ("gzip, chunked") applied to the body, which nexo
 * would pass on without the header that says so: the upstream would take gzip bytes for the content. RFC
 * 9112 §6.1 answers a transfer coding the server does not implement with 501.
 */
function isChunkedOrNone(transferEncoding: string | null): boolean {
  return transferEncoding === null || transferEncoding.trim().toLowerCase() === "chunked";
}

function failFromError(req: Request, options: ForwardOptions, error: unknown): Response {
  if (req.signal.aborted) {
    // The client went away first; nobody receives this page. 499 is nginx's name for it in logs.
    options.onDone({ status: 499, bytes: 0, error: "client closed request" });
    return new Response(null, { status: 400 });
  }
  const tooLarge = findCause(error, BodyTooLargeError);
  if (tooLarge) {
    const page = `The request body is larger than this site accepts.`;
    return fail(options, 413, page, tooLarge.message, tooLarge.drained);
  }
  const stalled = findCause(error, BodyTimeoutError);
  if (stalled) return fail(options, 408, "The request body did not arrive in time.", stalled.message);
  const unreadable = findCause(error, BodyReadError);
  if (unreadable) {
    return fail(options, 400, "The request body is malformed or incomplete.", unreadable.message);
  }
  if (error instanceof UpstreamError && error.kind === "timeout") {
    // The message says which wait ran out: connect, response head or (for a small body) body bytes.
    return fail(options, 504, "The upstream server for this site did not answer in time.", error.message);
  }
  return fail(options, 502, BAD_GATEWAY, errorMessage(error));
}

function fail(
  options: ForwardOptions,
  status: number,
  page: string,
  reason: string,
  holdUntil?: Promise<void>,
): Response {
  return reportPage(errorPage(status, page, holdUntil), { error: reason, onDone: options.onDone });
}
