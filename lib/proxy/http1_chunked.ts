// The chunked transfer coding (RFC 9112 §7.1) both ways: framing request body chunks for the upstream and
// decoding a chunked response body incrementally from whatever bytes have arrived. Pure: no I/O, and the
// decoder never copies (the connection layer copies the data it hands on).

import { Http1SyntaxError } from "./http1_parse.ts";

const CR = 0x0d;
const LF = 0x0a;
const encoder = new TextEncoder();

/**
 * Longest chunk-size line (with its extensions) and longest trailer line accepted, in bytes: real chunk
 * extensions are a few dozen bytes, and a bound keeps a hostile upstream from growing the read buffer.
 */
export const CHUNK_LINE_MAX_BYTES = 8 * 1024;
/** Total trailer section accepted, in bytes; trailers are skipped, so more would only cost memory. */
export const TRAILER_MAX_BYTES = 64 * 1024;

/** The last-chunk plus an empty trailer section that ends a chunked body (RFC 9112 §7.1). */
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");

/**
 * Frames one non-empty piece of a request body as a chunk: size line, data and CRLF in one buffer so the
 * connection writes it in one call. An empty `data` would end the body (a zero-size chunk is the last-chunk),
 * so callers skip empty pieces; this function throws RangeError on one.
 */
export function encodeChunk(data: Uint8Array): Uint8Array {
  if (data.byteLength === 0) throw new RangeError("cannot frame an empty chunk: it would end the body");
  const sizeLine = encoder.encode(`${data.byteLength.toString(16)}\r\n`);
  const out = new Uint8Array(sizeLine.length + data.byteLength + 2);
  out.set(sizeLine, 0);
  out.set(data, sizeLine.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

type DecoderState = "size" | "data" | "data-end" | "trailer" | "done";

/**
 * Decodes one chunked body (RFC 9112 §7.1) fed in arbitrary pieces: chunk extensions and trailer fields are
 * read and dropped. One decoder per response; not reusable.
 */
export class ChunkedDecoder {
  #state: DecoderState = "size";
  #remaining = 0;
  #trailerBytes = 0;

  /** True once the last-chunk and the trailer section's final CRLF were consumed. */
  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Consumes what it can of `input` and returns the number of bytes consumed; the rest (an incomplete line)
   * must be passed again, followed by more bytes. Appends the chunk data found to `out` as views of `input`,
   * valid only until the caller reuses that memory. Stops at the end of the body, so bytes after it are
   * left unconsumed. Throws Http1SyntaxError on malformed framing or an over-long line.
   */
  decode(input: Uint8Array, out: Uint8Array[]): number {
    let pos = 0;
    while (pos < input.length && this.#state !== "done") {
      if (this.#state === "data") {
        const end = Math.min(input.length, pos + this.#remaining);
        out.push(input.subarray(pos, end));
        this.#remaining -= end - pos;
        pos = end;
        if (this.#remaining === 0) this.#state = "data-end";
      } else if (this.#state === "data-end") {
        if (input.length - pos < 2) return pos;
        // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
        if (input[pos] !== CR || input[pos + 1] !== LF) {
          throw new Http1SyntaxError("chunk data is not followed by CRLF (chunk size and data disagree)");
        }
        pos += 2;
        this.#state = "size";
      } else {
        const lf = input.indexOf(LF, pos);
        const lineEnd = lf === -1 ? input.length : lf;
        if (lineEnd - pos > CHUNK_LINE_MAX_BYTES) {
          throw new Http1SyntaxError(`chunk-size or trailer line longer than ${CHUNK_LINE_MAX_BYTES} bytes`);
        }
        if (lf === -1) return pos;
        if (lf === pos || input[lf - 1] !== CR) throw new Http1SyntaxError("chunked line not ended by CRLF");
        if (this.#state === "size") this.#readSizeLine(input, pos, lf - 1);
        else this.#readTrailerLine(lf + 1 - pos, lf - 1 === pos);
        pos = lf + 1;
      }
    }
    return pos;
  }

  #readSizeLine(input: Uint8Array, start: number, end: number): void {
    const size = parseChunkSize(input, start, end);
    this.#remaining = size;
    // RFC 9112 §7.1: last-chunk = 1*("0") [ chunk-ext ] CRLF, then the trailer section.
    this.#state = size === 0 ? "trailer" : "data";
  }

  #readTrailerLine(lineBytes: number, empty: boolean): void {
    // RFC 9112 §7.1.2: trailer fields are dropped here; an empty line ends the body.
    this.#trailerBytes += lineBytes;
    if (this.#trailerBytes > TRAILER_MAX_BYTES) {
      throw new Http1SyntaxError(`chunked trailer section larger than ${TRAILER_MAX_BYTES} bytes`);
    }
    if (empty) this.#state = "done";
  }
}

/**
 * RFC 9112 §7.1: chunk-size = 1*HEXDIG, then optional chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
 * Extensions are skipped; the line must hold no CR or NUL.
 */
function parseChunkSize(input: Uint8Array, start: number, end: number): number {
  let size = 0;
  let i = start;
  for (; i < end; i++) {
    const digit = hexValue(input[i]!);
    if (digit < 0) break;
    size = size * 16 + digit;
    if (size > Number.MAX_SAFE_INTEGER) throw new Http1SyntaxError("chunk size is too large");
  }
  if (i === start) throw new Http1SyntaxError("chunk-size line does not start with a hex number");
  let j = i;
  while (j < end && (input[j] === 0x20 || input[j] === 0x09)) j++;
  if (j < end && input[j] !== 0x3b /* ; */) {
    throw new Http1SyntaxError("invalid characters after the chunk size");
  }
  for (; j < end; j++) {
    if (input[j] === CR || input[j] === 0) throw new Http1SyntaxError("CR or NUL in a chunk extension");
  }
  return size;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
