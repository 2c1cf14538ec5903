// One request/response exchange on one upstream connection: the head and request body sent while the response
// head is awaited, interim responses skipped, the response body stream, and the connection handed back only
// when it is clean. Timeouts and aborts are request_control.ts's; opening, pooling and retrying connections
// are upstream_client.ts's.

import { errorMessage } from "../error_message.ts";
import { concatBytes } from "../bytes.ts";
import { ChunkedDecoder, encodeChunk, LAST_CHUNK } from "./http1_chunked.ts";
import {
  type BodyFraming,
  detectBodyFraming,
  Http1SyntaxError,
  isPersistent,
  normalizeLengthHeaders,
  type ResponseHead,
} from "./http1_parse.ts";
import type { RequestControl } from "./request_control.ts";
import type { UpstreamRequest, UpstreamResponse } from "./upstream_client.ts";
import type { UpstreamConnection } from "./upstream_conn.ts";
import { UpstreamError } from "./upstream_error.ts";
import { startTimer, stopTimer, type Timer } from "../timers.ts";

/** Everything one exchange needs; `head` is the encoded request head (reused as is on a retry). */
export interface ExchangeOptions {
  req: UpstreamRequest;
  head: Uint8Array;
  conn: UpstreamConnection;
  control: RequestControl;
  /** Response head size limit in bytes. */
  maxHeaderBytes: number;
  /** Takes the connection back once a response completed on it cleanly; called at most once. */
  release: (conn: UpstreamConnection) => void;
}

/**
 * Sends `req` on `conn` and resolves with the final response once its head arrived; the request body keeps
 * streaming in the background. On failure the connection is closed and the promise rejects with the
 * UpstreamError (or `control`'s abort reason); `conn.received === 0` then tells the caller that nothing of a
 * response arrived.
 */
export async function runExchange(options: ExchangeOptions): Promise<UpstreamResponse> {
  const { req, conn, control } = options;
  control.attach(conn);
  if (control.aborted) throw control.reason;
  conn.resetReceived();
  control.watch("response");
  const sender = { done: false };
  sendRequest(options).then(
    () => {
      sender.done = true;
    },
    (error) => handleSendFailure(control, conn, error),
  );
  let head: ResponseHead;
  let framing: BodyFraming;
  try {
    head = await readFinalHead(conn, options.maxHeaderBytes);
    framing = head.status === 101 ? { kind: "none" } : detectBodyFraming(req.method, head);
  } catch (error) {
    conn.close();
    control.cancelBody(error);
    throw control.aborted ? control.reason : toProtocolError(error, conn.authority);
  }
  control.headReceived();
  // 101 Switching Protocols ends HTTP/1.1 on this connection; nexo does not upgrade here, so it is closed.
  const reusable = head.status !== 101 && isPersistent(head) && !mayTrailBody(req.method, head) &&
    (framing.kind === "length" || framing.kind === "none" ||
      (framing.kind === "chunked" && !framing.overridesLength));
  const end = (error: unknown) => {
    if (error === null && reusable && sender.done && conn.buffered === 0 && !control.aborted) {
      control.finish();
      options.release(conn);
      return;
    }
    conn.close();
    // Cancelling a body that was sent whole is a no-op; otherwise the upstream answered without reading it all.
    control.cancelBody(error ?? new Error("the upstream answered before reading the whole request body"));
    control.finish();
  };
  const next = framing.kind === "none" ? null : createBodyReader(conn, framing);
  if (next === null) end(null);
  // The stream is made only when asked for: a small body read whole with bytes() skips the ReadableStream and
  // its reader (creating and releasing them was ~5% of the serving thread on small responses).
  let stream: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  let read = false;
  return {
    status: head.status,
    statusText: head.statusText,
    headers: normalizeLengthHeaders(head.headers, framing),
    hasBody: next !== null,
    get body() {
      if (next === null) return null;
      if (read) throw new TypeError("the response body was already read with bytes()");
      return stream ??= createBodyStream(next, control, end);
    },
    contentLength: framing.kind === "length" ? framing.length : null,
    bytes: () => {
      if (next === null) return Promise.resolve(new Uint8Array(0));
      if (stream !== null) return readAll(stream);
      read = true;
      return readDirect(next, control, end);
    },
  };
}

/**
 * Whether a response framed without a body may still be followed by one: a HEAD answer (or a 204) that
 * declares a length or chunked coding. Buggy apps write that body anyway; on a pooled connection those bytes
 * would be read as the next request's response, another client's. Such connections are closed, not pooled.
 */
function mayTrailBody(method: string, head: ResponseHead): boolean {
  if (method !== "HEAD" && head.status !== 204) return false;
  for (const [name, value] of head.headers) {
    if (name === "transfer-encoding") return true;
    if (name === "content-length" && value.trim() !== "0") return true;
  }
  return false;
}

/** Reads heads until a final one: 1xx other than 101 are interim (RFC 9110 §15.2), e.g. 100, 103. */
async function readFinalHead(conn: UpstreamConnection, maxHeaderBytes: number): Promise<ResponseHead> {
  for (;;) {
    const head = await conn.readHead(maxHeaderBytes);
    if (head.status >= 200 || head.status === 101) return head;
  }
}

/** Wraps the request body stream's own failure, to tell it apart from the socket's. */
class BodyFailure extends Error {
  constructor(cause: unknown) {
    super("request body failed", { cause });
  }
}

function handleSendFailure(control: RequestControl, conn: UpstreamConnection, error: unknown): void {
  if (control.aborted || control.finished) return;
  if (error instanceof BodyFailure) {
    const cause = error.cause;
    const message = `request body for upstream ${conn.authority} failed (${
      errorMessage(cause)
    }); request aborted`;
    control.abort(new UpstreamError("reset", message, { cause }));
    return;
  }
  // The upstream stopped reading (it may have answered early, e.g. 413): the response read decides what
  // happened, within the response timeout.
  control.cancelBody(error);
  control.watch("response");
}

/**
 * Writes the head and the body: Content-Length framing when `bodyLength` is known (a body longer or shorter
 * than that fails as BodyFailure), chunked otherwise (RFC 9112 §7.1). The head goes out together with the
 * first body piece when that piece is ready within this turn of the event loop.
 */
async function sendRequest(options: ExchangeOptions): Promise<void> {
  const { req, conn, control } = options;
  if (req.body === null) return await conn.write(options.head);
  const reader = bodyReader(req.body);
  control.attachBody(reader.reader);
  const declared = req.bodyLength;
  const first = readBody(reader, control);
  first.catch(() => {});
  let prefix: Uint8Array | null = options.head;
  let result = await raceNextTurn(first);
  if (result === NOT_READY) {
    await conn.write(options.head);
    prefix = null;
    result = await first;
  }
  let sent = 0;
  for (; !result.done; result = await readBody(reader, control)) {
    const piece = result.value;
    if (piece.byteLength === 0) continue; // an empty chunk would end a chunked body
    sent += piece.byteLength;
    if (declared !== null && sent > declared) {
      throw new BodyFailure(
        new RangeError(`request body is longer than its declared length of ${declared} bytes`),
      );
    }
    const framed = declared === null ? encodeChunk(piece) : piece;
    // Written whole before the next read: with a BYOB reader, that read refills `piece`'s buffer.
    await conn.write(prefix === null ? framed : concatBytes([prefix, framed]));
    prefix = null;
  }
  if (declared !== null && sent < declared) {
    throw new BodyFailure(
      new RangeError(`request body ended after ${sent} of its declared ${declared} bytes`),
    );
  }
  if (declared === null) await conn.write(prefix === null ? LAST_CHUNK : concatBytes([prefix, LAST_CHUNK]));
  else if (prefix !== null) await conn.write(prefix);
}

/** Bytes a BYOB read of the request body may fill: TLS gives at most 16 KiB a read, plain HTTP/1.1 more. */
const BODY_BUFFER_BYTES = 64 * 1024;

/**
 * The request body's reader. A byte stream (Deno's request bodies, and limitBody's over them) is read with a
 * BYOB reader into one buffer reused for the whole body: every default read hands out a fresh ArrayBuffer
 * allocated outside V8's heap, which for a 1 GiB upload was 65,536 allocations of 16 KiB that only a GC
 * frees (1 GiB upload: RSS +33-42 MiB with a minor GC every 2 MiB; with the buffer reused, +21-27 MiB).
 */
type BodyReader =
  | { reader: ReadableStreamBYOBReader; buffer: Uint8Array<ArrayBuffer> }
  | { reader: ReadableStreamDefaultReader<Uint8Array>; buffer: null };

function bodyReader(body: ReadableStream<Uint8Array>): BodyReader {
  try {
    const reader = (body as ReadableStream<Uint8Array<ArrayBuffer>>).getReader({ mode: "byob" });
    return { reader, buffer: new Uint8Array(BODY_BUFFER_BYTES) };
  } catch {
    return { reader: body.getReader(), buffer: null }; // not a byte stream
  }
}

/** One read of the request body; waiting on the client does not count against the upstream's timeout. */
async function readBody(
  body: BodyReader,
  control: RequestControl,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  control.unwatch();
  try {
    if (body.buffer === null) return await body.reader.read();
    const result = await body.reader.read(body.buffer);
    // The read transferred the buffer: the next one reuses it through the view it came back in.
    if (result.value !== undefined) body.buffer = new Uint8Array(result.value.buffer);
    return result;
  } catch (error) {
    throw new BodyFailure(error);
  } finally {
    if (!control.aborted) control.watch("response");
  }
}

const NOT_READY = Symbol("not ready");

async function raceNextTurn<T>(promise: Promise<T>): Promise<T | typeof NOT_READY> {
  let timer: Timer | undefined;
  const turn = new Promise<typeof NOT_READY>((resolve) => timer = startTimer(() => resolve(NOT_READY), 0));
  try {
    return await Promise.race([promise, turn]);
  } finally {
    stopTimer(timer);
  }
}

/**
 * The response body as a pull stream (one read per consumer read, so the upstream is read only as fast as
 * the client takes it). `end(null)` after the last byte; `end(error)` on failure or cancel.
 */
function createBodyStream(
  next: () => Promise<Uint8Array<ArrayBuffer> | null>,
  control: RequestControl,
  end: (error: unknown) => void,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      let piece: Uint8Array<ArrayBuffer> | null;
      try {
        piece = await nextPiece(next, control, end);
      } catch (reason) {
        controller.error(reason);
        return;
      }
      if (piece === null) {
        end(null);
        controller.close();
      } else {
        controller.enqueue(piece);
      }
    },
    cancel(reason) {
      end(reason ?? new Error("response body cancelled"));
    },
  }, { highWaterMark: 0 });
}

function createBodyReader(
  conn: UpstreamConnection,
  framing: BodyFraming,
): () => Promise<Uint8Array<ArrayBuffer> | null> {
  if (framing.kind === "chunked") {
    const decoder = new ChunkedDecoder();
    return () => conn.readChunked(decoder);
  }
  if (framing.kind !== "length") return () => conn.readUntilClose();
  let remaining = framing.length;
  return async () => {
    if (remaining === 0) return null;
    const piece = await conn.readFixed(remaining);
    if (piece === null) {
      const got = framing.length - remaining;
      throw new UpstreamError(
        "reset",
        `upstream ${conn.authority} closed the connection after ${got} of ${framing.length} body bytes ` +
          `(Content-Length); the response is truncated`,
      );
    }
    remaining -= piece.byteLength;
    return piece;
  };
}

async function readAll(body: ReadableStream<Uint8Array<ArrayBuffer>>): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for await (const part of body) parts.push(part);
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}

/** The whole body without a stream: the same reads, deadlines and `end` calls as createBodyStream's pulls. */
async function readDirect(
  next: () => Promise<Uint8Array<ArrayBuffer> | null>,
  control: RequestControl,
  end: (error: unknown) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (
    let piece = await nextPiece(next, control, end);
    piece !== null;
    piece = await nextPiece(next, control, end)
  ) {
    parts.push(piece);
  }
  end(null);
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}

/**
 * One wait on the upstream for body bytes, under the body deadline: only this wait is timed, since a slow
 * client reads later, which is not the upstream's fault. A failure ends the exchange (`end(reason)`) and
 * rejects with the abort reason when the request was aborted, else with the error itself.
 */
async function nextPiece(
  next: () => Promise<Uint8Array<ArrayBuffer> | null>,
  control: RequestControl,
  end: (error: unknown) => void,
): Promise<Uint8Array<ArrayBuffer> | null> {
  control.watchBody();
  try {
    return await next();
  } catch (error) {
    const reason = control.aborted ? control.reason : error;
    end(reason);
    throw reason;
  } finally {
    control.unwatchBody();
  }
}

function toProtocolError(error: unknown, authority: string): unknown {
  if (!(error instanceof Http1SyntaxError)) return error;
  return new UpstreamError("protocol", `upstream ${authority} sent an invalid response: ${error.message}`, {
    cause: error,
  });
}
