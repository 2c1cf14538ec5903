// RESP2 on the wire (https://redis.io/docs/latest/develop/reference/protocol-spec/): commands encoded as
// arrays of bulk strings, replies parsed incrementally from whatever bytes have arrived, with bounds so a
// hostile or broken server cannot make nexo allocate or wait without end. No I/O: resp_client.ts does that.

/** A reply: simple string, integer, bulk string (bytes), null, or an array of replies. */
export type RespReply = string | number | Uint8Array | null | RespReply[];

/** An error reply from the server ("-ERR ...", "-WRONGPASS ..."): the command failed, the connection is fine. */
export class RespServerError extends Error {
  override name = "RespServerError";
}

/** The connection failed or broke (refused, reset, closed, timed out, a reply that does not parse). */
export class RespConnectionError extends Error {
  override name = "RespConnectionError";
}

const CRLF = new Uint8Array([13, 10]);
const encoder = new TextEncoder();

/** `*N CRLF` then each argument as `$len CRLF bytes CRLF` (RESP2 arrays of bulk strings). */
export function encodeCommand(args: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? encoder.encode(arg) : arg;
    parts.push(encoder.encode(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** What `ReplyReader.next()` returns while a reply has not all arrived. */
export const NEED_MORE: unique symbol = Symbol("need more bytes");

/**
 * Incremental RESP2 reply parser: `push` bytes as they arrive, `next` takes one complete reply (an error
 * reply as a RespServerError value) or NEED_MORE. Throws RespConnectionError for bytes that are no RESP.
 * Sizes are bounded (512 MiB is Redis's own bulk limit) so a hostile server cannot make it allocate more.
 */
export class ReplyReader {
  #buffer = new Uint8Array(0);
  #offset = 0;

  push(bytes: Uint8Array): void {
    const rest = this.#buffer.subarray(this.#offset);
    const merged = new Uint8Array(rest.length + bytes.length);
    merged.set(rest);
    merged.set(bytes, rest.length);
    this.#buffer = merged;
    this.#offset = 0;
  }

  next(): RespReply | RespServerError | typeof NEED_MORE {
    const start = this.#offset;
    const reply = this.#parse();
    if (reply === NEED_MORE) this.#offset = start;
    return reply;
  }

  #parse(): RespReply | RespServerError | typeof NEED_MORE {
    const line = this.#line();
    if (line === null) return NEED_MORE;
    const type = line[0];
    const rest = line.slice(1);
    switch (type) {
      case "+":
        return rest;
      case "-":
        return new RespServerError(rest);
      case ":":
        return this.#integer(rest);
      case "$": {
        const length = this.#integer(rest);
        if (length === -1) return null;
        if (length < 0 || length > MAX_BULK_BYTES) {
          throw new RespConnectionError(`a bulk length of ${length}`);
        }
        if (this.#buffer.length - this.#offset < length + 2) return NEED_MORE;
        const bytes = this.#buffer.slice(this.#offset, this.#offset + length);
        this.#offset += length + 2;
        return bytes;
      }
      case "*": {
        const count = this.#integer(rest);
        if (count === -1) return null;
        if (count < 0 || count > MAX_ARRAY_ITEMS) throw new RespConnectionError(`an array of ${count} items`);
        const items: RespReply[] = [];
        for (let i = 0; i < count; i++) {
          const item = this.#parse();
          if (item === NEED_MORE) return NEED_MORE;
          // An error inside an array (EXEC, EVAL results) is kept as its message text.
          items.push(item instanceof RespServerError ? item.message : item);
        }
        return items;
      }
      default:
        throw new RespConnectionError(`a reply starting with ${JSON.stringify(type)} is not RESP2`);
    }
  }

  /** The text up to the next CRLF (consumed), or null when it has not all arrived. */
  #line(): string | null {
    for (let i = this.#offset; i + 1 < this.#buffer.length; i++) {
      if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) {
        const line = new TextDecoder().decode(this.#buffer.subarray(this.#offset, i));
        this.#offset = i + 2;
        return line;
      }
      if (i - this.#offset > MAX_LINE_BYTES) throw new RespConnectionError("a reply line without an end");
    }
    return null;
  }

  #integer(text: string): number {
    if (!/^-?\d{1,18}$/.test(text)) {
      throw new RespConnectionError(`${JSON.stringify(text)} is not an integer`);
    }
    return Number(text);
  }
}

/** Redis's own limits: bulk strings up to 512 MiB; no reply nexo asks for has more than a million items. */
const MAX_BULK_BYTES = 512 * 1024 * 1024;
const MAX_ARRAY_ITEMS = 1_000_000;
const MAX_LINE_BYTES = 64 * 1024;
