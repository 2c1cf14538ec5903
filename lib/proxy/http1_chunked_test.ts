import assert from "node:assert/strict";
import { CHUNK_LINE_MAX_BYTES, ChunkedDecoder, encodeChunk, LAST_CHUNK } from "./http1_chunked.ts";
import { Http1SyntaxError } from "./http1_parse.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Feeds `input` in pieces of `step` bytes, as a connection would, and returns the data and the leftover. */
function decodeInSteps(input: string, step: number): { data: string; rest: string; done: boolean } {
  const bytes = encoder.encode(input);
  const chunked = new ChunkedDecoder();
  let data = "";
  let pending = new Uint8Array(0);
  for (let offset = 0; offset < bytes.length && !chunked.done; offset += step) {
    const joined = new Uint8Array(pending.length + Math.min(step, bytes.length - offset));
    joined.set(pending);
    joined.set(bytes.subarray(offset, offset + step), pending.length);
    const out: Uint8Array[] = [];
    const used = chunked.decode(joined, out);
    for (const part of out) data += decoder.decode(part);
    pending = joined.subarray(used);
    if (chunked.done) {
      return {
        data,
        rest: decoder.decode(pending) + decoder.decode(bytes.subarray(offset + step)),
        done: true,
      };
    }
  }
  return { data, rest: decoder.decode(pending), done: chunked.done };
}

const BODY = '5;a=1;b="x y"\r\nhello\r\n1 ;c\r\n,\r\nc\r\n hello world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT';

Deno.test("ChunkedDecoder decodes the same body whatever the read boundaries", () => {
  for (const step of [1, 2, 3, 7, 16, BODY.length]) {
    assert.deepEqual(
      decodeInSteps(BODY, step),
      { data: "hello, hello world", rest: "NEXT", done: true },
      `${step}`,
    );
  }
});

Deno.test("ChunkedDecoder skips chunk extensions and trailer fields", () => {
  const result = decodeInSteps("3;ext\r\nabc\r\n000;last\r\na: 1\r\nb: 2\r\n\r\n", 5);
  assert.deepEqual(result, { data: "abc", rest: "", done: true });
});

Deno.test("ChunkedDecoder reports an unfinished body as not done", () => {
  assert.equal(decodeInSteps("5\r\nhel", 4).done, false);
  assert.equal(decodeInSteps("5\r\nhello\r\n0\r\n", 4).done, false);
});

Deno.test("ChunkedDecoder rejects malformed framing with Http1SyntaxError", () => {
  for (
    const input of [
      "z\r\n",
      "\r\n",
      "5 x\r\nhello\r\n",
      "5\nhello\r\n",
      "5\r\nhelloX\r\n",
      "5;a\rb\r\nhello\r\n",
      "fffffffffffffffff\r\n",
      `1;${"x".repeat(CHUNK_LINE_MAX_BYTES)}\r\n`,
    ]
  ) {
    assert.throws(
      () => new ChunkedDecoder().decode(encoder.encode(input), []),
      Http1SyntaxError,
      input.slice(0, 30),
    );
  }
});

Deno.test("encodeChunk() frames size line, data and CRLF in one buffer; empty chunks are refused", () => {
  assert.equal(decoder.decode(encodeChunk(encoder.encode("x".repeat(26)))), `1a\r\n${"x".repeat(26)}\r\n`);
  assert.equal(decoder.decode(LAST_CHUNK), "0\r\n\r\n");
  assert.throws(() => encodeChunk(new Uint8Array(0)), RangeError);
});
