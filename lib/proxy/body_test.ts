import assert from "node:assert/strict";
import {
  BodyReadError,
  BodyTimeoutError,
  BodyTooLargeError,
  countBody,
  findCause,
  limitBody,
  nonEmptyBody,
  readEagerly,
  ResponseBodyCutError,
  SMALL_BODY_BYTES,
} from "./body.ts";

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  for await (const chunk of stream) total += chunk.byteLength;
  return total;
}

const LIMITS = { maxBytes: 10, readTimeoutMs: 5_000 };

Deno.test("limitBody() passes a body at the limit", async () => {
  assert.equal(await readAll(limitBody(streamOf(new Uint8Array(6), new Uint8Array(4)), LIMITS)), 10);
});

Deno.test("limitBody() errors with BodyTooLargeError one byte past the limit", async () => {
  const stream = limitBody(streamOf(new Uint8Array(6), new Uint8Array(5)), LIMITS);
  await assert.rejects(
    readAll(stream),
    (error) => error instanceof BodyTooLargeError && error.limitBytes === 10,
  );
});

Deno.test("limitBody() errors with BodyTimeoutError when the client stops sending", async () => {
  const stalled = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array(1)) });
  const stream = limitBody(stalled, { maxBytes: 10, readTimeoutMs: 50 });
  await assert.rejects(
    readAll(stream),
    (error) => error instanceof BodyTimeoutError && error.timeoutMs === 50,
  );
});

Deno.test("limitBody() errors with BodyReadError, caused by the failure, when the body fails", async () => {
  const broken = new TypeError("invalid HTTP/1 request: Invalid");
  const failing = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new Uint8Array(1)),
    pull: (c) => c.error(broken),
  });
  await assert.rejects(
    readAll(limitBody(failing, LIMITS)),
    (error) => error instanceof BodyReadError && error.cause === broken,
  );
});

Deno.test("limitBody() cancels a stalled body only once its pending read has settled", async () => {
  // Deno 2.9.6 leaks a request body's buffers when its reader is cancelled with a read pending.
  let cancelled = false;
  let sendMore: (() => void) | undefined;
  const source = new ReadableStream<Uint8Array>({
    pull: (c) =>
      new Promise<void>((resolve) => {
        sendMore = () => {
          c.enqueue(new Uint8Array(1));
          resolve();
        };
      }),
    cancel: () => {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  await assert.rejects(readAll(limitBody(source, { maxBytes: 10, readTimeoutMs: 50 })), BodyTimeoutError);
  assert.equal(cancelled, false, "cancelled while its read was pending");
  sendMore!();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(cancelled, true, "never cancelled after the read settled");
});

Deno.test("findCause() finds an error of a type through a cause chain", () => {
  const inner = new BodyTooLargeError(1);
  assert.equal(
    findCause(new Error("outer", { cause: new Error("mid", { cause: inner }) }), BodyTooLargeError),
    inner,
  );
  assert.equal(findCause(new Error("other"), BodyTooLargeError), undefined);
  assert.equal(findCause("text", BodyTooLargeError), undefined);
});

Deno.test("readEagerly() returns a body that is already complete as one buffer", async () => {
  const result = await readEagerly(streamOf(new TextEncoder().encode("ab"), new TextEncoder().encode("cd")));
  assert.equal(result.complete, true);
  if (result.complete) assert.equal(new TextDecoder().decode(result.bytes), "abcd");
});

Deno.test("readEagerly() hands back a stream when the body keeps coming, replaying what it read", async () => {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const source = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  controller.enqueue(new Uint8Array([1]));
  const result = await readEagerly(source);
  assert.equal(result.complete, false);
  if (result.complete) return;
  const reader = result.stream.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
  const next = reader.read();
  controller.enqueue(new Uint8Array([2]));
  assert.deepEqual((await next).value, new Uint8Array([2]));
  controller.close();
  assert.equal((await reader.read()).done, true);
});

Deno.test("readEagerly() streams a large ready body instead of buffering it", async () => {
  const result = await readEagerly(streamOf(new Uint8Array(SMALL_BODY_BYTES), new Uint8Array(10)));
  assert.equal(result.complete, false);
  if (!result.complete) assert.equal(await readAll(result.stream), SMALL_BODY_BYTES + 10);
});

Deno.test("countBody() reports the byte count once when the body ends", async () => {
  const seen: Array<[number, unknown]> = [];
  const stream = countBody(
    streamOf(new Uint8Array(3), new Uint8Array(4)),
    (bytes, error) => seen.push([bytes, error]),
  );
  assert.equal(await readAll(stream), 7);
  assert.deepEqual(seen, [[7, null]]);
});

Deno.test("countBody() reports a failing body once and errors with ResponseBodyCutError", async () => {
  const seen: Array<[number, unknown]> = [];
  const cause = new Error("upstream reset");
  let sent = false;
  const failing = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(cause);
      sent = true;
      controller.enqueue(new Uint8Array(5));
    },
  });
  const error = await readAll(countBody(failing, (bytes, e) => seen.push([bytes, e]))).catch((e) => e);
  assert.ok(error instanceof ResponseBodyCutError, String(error));
  assert.equal(error.cause, cause);
  assert.deepEqual(seen, [[5, cause]]);
});

Deno.test("countBody() reports an error when the client cancels", async () => {
  const seen: Array<[number, unknown]> = [];
  const stream = countBody(streamOf(new Uint8Array(3)), (bytes, error) => seen.push([bytes, error]));
  await stream.cancel(new Error("gone"));
  assert.equal(seen.length, 1);
  assert.ok(seen[0]![1] instanceof Error);
});

Deno.test("nonEmptyBody() returns null for an empty body, even one that yields an empty chunk", async () => {
  assert.equal(await nonEmptyBody(streamOf()), null);
  assert.equal(await nonEmptyBody(streamOf(new Uint8Array(0))), null);
  const body = await nonEmptyBody(streamOf(new Uint8Array(0), new Uint8Array(3), new Uint8Array(2)));
  assert.ok(body);
  assert.equal(await readAll(body), 5);
});
