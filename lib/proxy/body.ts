// Body streams on the proxy path: the request-body size limit counted as bytes flow, the eager read that turns
// small bodies of unknown length into one buffer, and the byte count behind the access log's `bytes` field.
// Nothing here buffers more than SMALL_BODY_BYTES; everything else stays a stream.

import { concatBytes } from "../bytes.ts";
import { cancelDeadline, type Deadline, startDeadline } from "../deadlines.ts";
import { errorMessage } from "../error_message.ts";
import { noteStreamed } from "../stream_gc.ts";
import { startTimer, stopTimer, type Timer } from "../timers.ts";

/**
 * Responses up to this size are sent as one buffer instead of a stream. A streamed response body through
 * Deno's TLS server goes out as a separate small write after the head, which Nagle's algorithm holds back
 * until the client's delayed ACK (~40 ms on Linux; denoland/deno#28256): a buffered body avoids it. 64 KiB
 * keeps the worst case at 256 connections to 16 MiB of buffers.
 */
export const SMALL_BODY_BYTES = 64 * 1024;

/** Thrown into a request body stream that grew past the route's limit; mapped to 413. */
export class BodyTooLargeError extends Error {
  /** Settles when the rest of the body has been drained (see drainBody); the 413 must not end before. */
  drained: Promise<void> = Promise.resolve();
  constructor(readonly limitBytes: number) {
    super(`request body exceeds the limit of ${limitBytes} bytes`);
    this.name = "BodyTooLargeError";
  }
}

/** Thrown into a request body stream when the client sent nothing for the read timeout; mapped to 408. */
export class BodyTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the client sent no request body bytes for ${timeoutMs} ms`);
    this.name = "BodyTimeoutError";
  }
}

/**
 * Thrown into a request body stream when reading the client's body failed: malformed chunked framing, or
 * the connection closed before the declared length arrived. The client's fault, so mapped to 400 (nginx
 * logs the same for a client that closes mid-body), never to a 502 that blames the upstream.
 */
export class BodyReadError extends Error {
  constructor(cause: unknown) {
    super(`the client's request body could not be read: ${errorMessage(cause)}`, { cause });
    this.name = "BodyReadError";
  }
}

export interface BodyLimits {
  /** More bytes than this error the stream with BodyTooLargeError. */
  maxBytes: number;
  /** No bytes for this many ms error the stream with BodyTimeoutError (a stalled or trickling upload). */
  readTimeoutMs: number;
}

/**
 * Wraps a request body so that it errors with BodyTooLargeError as soon as more than `maxBytes` have passed
 * (chunked uploads have no Content-Length to check up front), with BodyTimeoutError when the client stops
 * sending for `readTimeoutMs`, or with BodyReadError when the body itself fails. The timer runs only while
 * nexo waits for the client, never while the upstream is slow to take the bytes.
 */
export function limitBody(body: ReadableStream<Uint8Array>, limits: BodyLimits): ReadableStream<Uint8Array> {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = (body as ReadableStream<Uint8Array<ArrayBuffer>>).getReader({ mode: "byob" });
  } catch {
    // Not a byte stream: read with a default reader and pass its chunks on.
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader = byob ?? body.getReader();
  let seen = 0;
  // The read on `body` that has not settled yet, if any: cancelling must wait for it (see cancelAfterRead).
  let reading: Promise<unknown> | null = null;
  // Over a byte stream (Deno's request bodies are), this is one too: a consumer's BYOB read goes through to
  // `body` with the consumer's buffer, so no chunk is allocated (see upstream_exchange.ts's bodyReader).
  const source = {
    async pull(controller: ReadableStreamDefaultController<Uint8Array> | ReadableByteStreamController) {
      const request = byob === null ? null : (controller as ReadableByteStreamController).byobRequest;
      let deadline: Deadline | undefined;
      const stalled = new Promise<typeof STALLED>((resolve) => {
        deadline = startDeadline(limits.readTimeoutMs, () => resolve(STALLED));
      });
      const read: Promise<ReadableStreamReadResult<Uint8Array>> = byob === null
        ? (reader as ReadableStreamDefaultReader<Uint8Array>).read()
        : byob.read(
          (request?.view as Uint8Array<ArrayBuffer> | null | undefined) ?? new Uint8Array(BYOB_CHUNK_BYTES),
        );
      reading = read;
      let result;
      try {
        result = await Promise.race([read, stalled]);
      } catch (error) {
        reading = null;
        controller.error(new BodyReadError(error));
        return;
      } finally {
        cancelDeadline(deadline);
      }
      if (result === STALLED) {
        controller.error(new BodyTimeoutError(limits.readTimeoutMs));
        cancelAfterRead(reader, read);
        return;
      }
      reading = null;
      if (result.done) {
        controller.close();
        // A pending BYOB read is answered with its (transferred, empty) buffer.
        if (request && result.value) request.respondWithNewView(result.value);
        return;
      }
      seen += result.value.byteLength;
      noteStreamed(result.value.byteLength);
      if (seen > limits.maxBytes) {
        const error = new BodyTooLargeError(limits.maxBytes);
        // The client gets its 413 cleanly only if the rest of its upload is read (see drainBody).
        reader.releaseLock();
        error.drained = drainBody(body);
        controller.error(error);
        return;
      }
      if (request) request.respondWithNewView(result.value);
      else controller.enqueue(result.value);
    },
    cancel(reason: unknown) {
      if (reading === null) return reader.cancel(reason);
      cancelAfterRead(reader, reading, reason);
    },
  };
  if (byob === null) return new ReadableStream<Uint8Array>(source, { highWaterMark: 0 });
  return new ReadableStream({ type: "bytes", ...source }) as ReadableStream<Uint8Array>;
}

/** Chunk size when a byte-stream body is read by a default reader (a BYOB reader brings its own buffer). */
const BYOB_CHUNK_BYTES = 16 * 1024;

const STALLED = Symbol("stalled");

/**
 * Cancels `reader` once `read`, a read on it still pending, has settled; never throws. Deno 2.9.6 keeps a
 * request body's buffers for good (~64 KiB a request, measured with plain Deno.serve too) when its reader
 * is cancelled while a read is pending, so every stalled upload cut with 408 leaked: RSS grew by ~20 MiB per
 * 300 of them, without bound. The read settles when the client sends more or its connection ends.
 */
function cancelAfterRead(
  reader: ReadableStreamGenericReader,
  read: Promise<unknown>,
  reason?: unknown,
): void {
  read.then(() => reader.cancel(reason), () => {}).catch(() => {});
}

/**
 * Resolves to null when `body` turns out to be empty, else to a stream with the same bytes. Deno hands every
 * request but GET and HEAD a body stream, even when the client sent none; forwarding that as a chunked body
 * would give body-less DELETEs and OPTIONS a framing they never had (RFC 9110 §8.6). Waits for the first
 * chunk, which the caller would wait for anyway; errors of `body` (limits, timeouts) propagate.
 */
export async function nonEmptyBody(
  body: ReadableStream<Uint8Array>,
): Promise<ReadableStream<Uint8Array> | null> {
  const reader = body.getReader();
  let first = await reader.read();
  // Deno may deliver an empty chunk before the end of an empty body.
  while (!first.done && first.value.byteLength === 0) first = await reader.read();
  if (first.done) {
    reader.releaseLock();
    return null;
  }
  return replayThenContinue([first.value], null, reader);
}

/**
 * Reads a whole request body before anything goes upstream, for bodies declared at most SMALL_BODY_BYTES
 * long: a client trickling a small upload (a form post, an API call) then holds no upstream connection
 * while it does, which protects apps with small worker pools (nginx buffers request bodies for the same
 * reason). Errors of `body` (limit, read timeout, a client gone) reject. Larger bodies stay streams.
 */
export async function bufferBody(body: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return concatBytes(chunks);
}

/** A fresh stream over `bytes`, as many times as asked: a buffered body sent once per upstream tried. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * Bounds for discarding a rejected request body. A client still uploading when nexo answers 413 would
 * otherwise see a reset (HTTP/1.1) or an RST_STREAM (HTTP/2, which curl reports as a framing error) instead
 * of the answer; like nginx's lingering close, nexo reads and drops the rest for a while first. A client that
 * stopped sending (curl does on an early 4xx) is let go after DRAIN_IDLE_MS.
 */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;
const DRAIN_IDLE_MS = 1_000;

/**
 * Reads and discards what is left of a request body in the background, up to DRAIN_MAX_BYTES or
 * DRAIN_MAX_MS or until the client sent nothing for DRAIN_IDLE_MS, then cancels it. The promise settles
 * (never rejects) when draining stopped: a response that rejected the body must not end before that. Deno
 * 2.9.6 closes a request body once its response is complete, and over HTTP/2 that is an RST_STREAM
 * (NO_ERROR) with no more WINDOW_UPDATEs: a client that only reads the response after sending its whole body
 * (httpx/httpcore) then waits on a zero send window forever.
 */
export function drainBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (body === null || body.locked) return Promise.resolve();
  const reader = body.getReader();
  const deadline = Date.now() + DRAIN_MAX_MS;
  return (async () => {
    let drained = 0;
    while (drained <= DRAIN_MAX_BYTES) {
      const left = Math.min(DRAIN_IDLE_MS, deadline - Date.now());
      if (left <= 0) break;
      const read = reader.read();
      let timer: Timer | undefined;
      const idle = new Promise<typeof STALLED>((resolve) => timer = startTimer(() => resolve(STALLED), left));
      const result = await Promise.race([read, idle]).finally(() => stopTimer(timer));
      if (result === STALLED) {
        // Not cancelled while the read is pending (that leaks in Deno 2.9.6, see cancelAfterRead).
        cancelAfterRead(reader, read);
        return;
      }
      if (result.done) return;
      drained += result.value.byteLength;
    }
    await reader.cancel();
  })().catch(() => {});
}

/** The first error in `error`'s `cause` chain (itself included) that is a `type`, or undefined. */
export function findCause<T extends Error>(
  error: unknown,
  type: abstract new (...args: never[]) => T,
): T | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

/** What `readEagerly` found: the whole body, or the part that was ready plus the rest as a stream. */
export type EagerBody =
  | { complete: true; bytes: Uint8Array<ArrayBuffer> }
  | { complete: false; stream: ReadableStream<Uint8Array> };

/**
 * Reads what a body of unknown length has ready right now, up to SMALL_BODY_BYTES. If the body ends within
 * that (the usual case for a chunked page whose bytes already arrived), returns it whole; otherwise returns
 * a stream that replays what was read and continues with the rest, so event streams are never held back
 * longer than one turn of the event loop.
 */
export async function readEagerly(body: ReadableStream<Uint8Array>): Promise<EagerBody> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = reader.read();
  while (pending) {
    let timer: Timer | undefined;
    const notReady = new Promise<typeof NOT_READY>((resolve) =>
      timer = startTimer(() => resolve(NOT_READY), 0)
    );
    const result = await Promise.race([pending, notReady]);
    stopTimer(timer);
    if (result === NOT_READY) break;
    pending = null;
    if (result.done) {
      const only = chunks.length === 1 ? chunks[0]! : null;
      const bytes = only && only.buffer instanceof ArrayBuffer
        ? only as Uint8Array<ArrayBuffer>
        : concatBytes(chunks);
      return { complete: true, bytes };
    }
    chunks.push(result.value);
    size += result.value.byteLength;
    if (size > SMALL_BODY_BYTES) break;
    pending = reader.read();
  }
  return { complete: false, stream: replayThenContinue(chunks, pending, reader) };
}

const NOT_READY = Symbol("not ready");

function replayThenContinue(
  chunks: Uint8Array[],
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | null,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (index < chunks.length) return controller.enqueue(chunks[index++]!);
      const result = await (pending ?? reader.read());
      pending = null;
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * What a streamed response body errors with when its source failed after the head went out (an upstream
 * reset, truncated or stalled past its body timeout; `cause` says which). Erroring the stream is how the
 * client's response is aborted rather than ended: HTTP/1.1 closes the connection short of the length or the
 * last chunk, HTTP/2 resets the stream. Deno 2.9.6 hands the error to the server's onError as well, which must
 * not log it as a handler failure: nothing crashed, and `countBody`'s `onEnd` already reported it.
 */
export class ResponseBodyCutError extends Error {
  constructor(cause: unknown) {
    super(`response body cut short: ${errorMessage(cause)}`, { cause });
    this.name = "ResponseBodyCutError";
  }
}

/**
 * Passes a response body through and calls `onEnd(bytes, error)` exactly once: when it ends, fails, or the
 * client goes away (cancel). A failure of `body` errors the stream with ResponseBodyCutError. Used for the
 * access log of streamed responses.
 */
export function countBody(
  body: ReadableStream<Uint8Array>,
  onEnd: (bytes: number, error: unknown) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  const end = (error: unknown) => {
    if (ended) return;
    ended = true;
    onEnd(bytes, error);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        end(error);
        throw new ResponseBodyCutError(error);
      }
      if (result.done) {
        end(null);
        return controller.close();
      }
      bytes += result.value.byteLength;
      noteStreamed(result.value.byteLength);
      controller.enqueue(result.value);
    },
    cancel(reason) {
      end(reason ?? new Error("client went away"));
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
