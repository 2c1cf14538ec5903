// One open HTTP/1.1 connection to an upstream: its reusable read buffer, reading a response head and body
// pieces by framing, writing bytes, and noticing the upstream closing it while it sits idle. Opening it is
// upstream_connect.ts's; reuse, timeouts and retries are upstream_exchange.ts's and upstream_client.ts's.

import { errorMessage } from "../error_message.ts";
import { concatBytes } from "../bytes.ts";
import type { ChunkedDecoder } from "./http1_chunked.ts";
import {
  canStartStatusLine,
  findHeadEnd,
  Http1SyntaxError,
  parseResponseHead,
  type ResponseHead,
} from "./http1_parse.ts";
import { tlsFix, UpstreamError } from "./upstream_error.ts";

/**
 * Size of each connection's read buffer, in bytes: it holds response heads (it grows for a larger one) and
 * small bodies. Every open and pooled connection keeps one, so it is small: with 64 KiB, peak RSS under
 * `wrk -c256` on small responses was 40 MiB higher (224 vs 184 MiB) for the same CPU per request.
 */
export const READ_BUFFER_BYTES = 16 * 1024;

/**
 * Large Content-Length bodies are read straight into fresh buffers of this size, which then travel to the
 * client without a copy: one read op per 64 KiB of a fast upstream's data. 1 MiB responses took 15% less
 * CPU per request than copying out of the connection's buffer (2.05 vs 2.4 ms).
 */
const LARGE_READ_BYTES = 64 * 1024;

/**
 * What a connection reads and writes through: a Deno.Conn, or node:tls's socket when a client certificate or
 * skipped verification needs it (upstream_node_tls.ts).
 */
export type ByteSocket = Pick<Deno.Conn, "read" | "write" | "close" | "ref" | "unref">;

/**
 * An open connection with one reusable read buffer. Calls must not overlap except one read with one write.
 * Read and write failures reject with UpstreamError "reset"; malformed data with "protocol". Every body
 * piece returned is fresh memory (a copy, or a buffer read into for it alone), never a view of the read buffer.
 */
export class UpstreamConnection {
  readonly authority: string;
  /** Response bytes read since `resetReceived()`: 0 means the upstream has not answered at all. */
  received = 0;
  #conn: ByteSocket;
  #buf: Uint8Array<ArrayBuffer>;
  #start = 0;
  #end = 0;
  #closed = false;
  #idle = false;
  /** A read started while idle; the next fill takes its result instead of reading again. */
  #pendingRead: Promise<number | null> | null = null;

  constructor(conn: ByteSocket, authority: string, bufferBytes: number) {
    this.#conn = conn;
    this.authority = authority;
    this.#buf = new Uint8Array(bufferBytes);
  }

  /** Bytes read but not consumed; a connection with any left after a response cannot be reused. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Closes the socket; pending reads and writes reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idle = false;
    this.#conn.close();
  }

  /** Starts counting response bytes from zero (at the start of each exchange). */
  resetReceived(): void {
    this.received = 0;
  }

  /**
   * Parks the connection: it stops keeping the process alive and a read stays pending, so that an upstream
   * closing the idle connection (or sending unasked-for bytes) is noticed at once and `onGone` is called
   * (the pool then closes it). `resume()` takes the connection back into use.
   */
  park(onGone: () => void): void {
    this.#start = this.#end = 0;
    this.#idle = true;
    this.#conn.unref();
    const read = this.#readSocket(this.#buf);
    this.#pendingRead = read;
    const gone = () => {
      if (this.#idle) onGone();
    };
    read.then(gone, gone);
  }

  /** Takes a parked connection back into use; its pending read becomes the first read of the response. */
  resume(): void {
    this.#idle = false;
    this.#conn.ref();
  }

  /** Writes all of `bytes`. Rejects with UpstreamError "reset" when the upstream closed or reset. */
  async write(bytes: Uint8Array): Promise<void> {
    try {
      for (let offset = 0; offset < bytes.length;) offset += await this.#conn.write(bytes.subarray(offset));
    } catch (error) {
      const message = `upstream ${this.authority} closed the connection while the request was sent`;
      throw new UpstreamError("reset", `${message} (${errorMessage(error)})`, { cause: error });
    }
  }

  /**
   * Reads one response head of at most `maxBytes` bytes. Rejects with UpstreamError "reset" when the
   * connection ends first, "protocol" when the head is malformed or too large, or at once when the first
   * bytes are not "HTTP/1." (a peer that is not an HTTP/1.x server may never send a CRLF CRLF).
   */
  async readHead(maxBytes: number): Promise<ResponseHead> {
    let scanned = 0;
    for (;;) {
      const view = this.#buf.subarray(this.#start, this.#end);
      if (!canStartStatusLine(view)) {
        const start = JSON.stringify(decodeForMessage(view.subarray(0, 40)));
        const message = `upstream ${this.authority} did not answer with HTTP/1.x (it sent ${start})`;
        throw new UpstreamError("protocol", `${message}; check the upstream's port and scheme`);
      }
      const end = findHeadEnd(view, scanned - 3);
      if (end !== -1 && end <= maxBytes) {
        this.#start += end;
        return this.#parse(() => parseResponseHead(view.subarray(0, end)), "response head");
      }
      if (end !== -1 || view.length >= maxBytes) {
        throw new UpstreamError(
          "protocol",
          `upstream ${this.authority} sent a response head larger than ${maxBytes} bytes (raise maxHeaderBytes)`,
        );
      }
      scanned = view.length;
      if (this.#end === this.#buf.length && this.#start === 0) this.#grow(maxBytes);
      if (!(await this.#fill())) {
        const what = this.received === 0
          ? "without sending a response"
          : "in the middle of the response head";
        throw new UpstreamError("reset", `upstream ${this.authority} closed the connection ${what}`);
      }
    }
  }

  /**
   * Up to `remaining` bytes of a Content-Length body (a copy, or a view of a fresh buffer nothing else uses),
   * or null when the connection ended first.
   */
  async readFixed(remaining: number): Promise<Uint8Array<ArrayBuffer> | null> {
    if (this.#start === this.#end && this.#pendingRead === null && remaining >= LARGE_READ_BYTES) {
      const into = new Uint8Array(LARGE_READ_BYTES);
      const n = await this.#readSocket(into);
      if (n === null) return null;
      this.received += n;
      return into.subarray(0, n);
    }
    if (this.#start === this.#end && !(await this.#fill())) return null;
    const n = Math.min(remaining, this.#end - this.#start);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /**
   * The next data of a chunked body (one copy holding every chunk's data already buffered), or null once the
   * body ended. Rejects with "reset" when the connection ends inside the body, "protocol" on bad framing.
   */
  async readChunked(decoder: ChunkedDecoder): Promise<Uint8Array<ArrayBuffer> | null> {
    for (;;) {
      const parts: Uint8Array[] = [];
      const view = this.#buf.subarray(this.#start, this.#end);
      this.#start += this.#parse(() => decoder.decode(view, parts), "chunked body");
      if (parts.length > 0) return concatBytes(parts);
      if (decoder.done) return null;
      if (!(await this.#fill())) {
        throw new UpstreamError(
          "reset",
          `upstream ${this.authority} closed the connection inside a chunked body`,
        );
      }
    }
  }

  /** The next piece of a body that runs until the upstream closes (a copy), or null at the end. */
  async readUntilClose(): Promise<Uint8Array<ArrayBuffer> | null> {
    return await this.readFixed(Infinity);
  }

  /** Reads more bytes into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const pending = this.#pendingRead;
    this.#pendingRead = null;
    // A parked read filled the buffer from offset 0, which is where the (then empty) buffer starts now.
    const n = await (pending ?? this.#readSocket(this.#buf.subarray(this.#end)));
    if (n === null) return false;
    this.#end += n;
    this.received += n;
    return true;
  }

  async #readSocket(into: Uint8Array): Promise<number | null> {
    try {
      return await this.#conn.read(into);
    } catch (error) {
      const reason = errorMessage(error);
      // A TLS alert (a refused client certificate arrives after a TLS 1.3 handshake) says what to change.
      const hint = /\balert\b/i.test(reason) ? `; ${tlsFix(reason)}` : "";
      throw new UpstreamError(
        "reset",
        `connection to upstream ${this.authority} failed while reading (${reason})${hint}`,
        { cause: error },
      );
    }
  }

  /** Grows a full buffer (only a large response head needs more than the initial size). */
  #grow(maxBytes: number): void {
    const bigger = new Uint8Array(Math.min(this.#buf.length * 2, maxBytes + 4));
    bigger.set(this.#buf.subarray(0, this.#end));
    this.#buf = bigger;
  }

  #parse<T>(parse: () => T, what: string): T {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof Http1SyntaxError)) throw error;
      const message = `upstream ${this.authority} sent a malformed ${what}: ${error.message}`;
      throw new UpstreamError("protocol", message, { cause: error });
    }
  }
}

/** Bytes an upstream sent, as printable text for an error message (other bytes as "."). */
function decodeForMessage(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes.map((b) => b >= 0x20 && b < 0x7f ? b : 0x2e));
}
