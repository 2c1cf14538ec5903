// HTTP/1.1 message heads as bytes: encoding the request head nexo sends upstream, finding and parsing the
// response head, and deciding how the response body is framed and whether the connection may be reused.
// Pure functions over byte arrays; sockets, buffers and timeouts belong to upstream_conn.ts, chunked bodies
// to http1_chunked.ts.

/** Thrown for bytes that are not a valid HTTP/1.1 message; the connection layer wraps it as "protocol". */
export class Http1SyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Http1SyntaxError";
  }
}

/** A parsed response head. `headers` keeps the upstream's order and repeats, names lowercased. */
export interface ResponseHead {
  /** Minor version of "HTTP/1.x": 0 or 1 (any digit is accepted, RFC 9112 §2.3). */
  minorVersion: number;
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
}

/** How a response body is delimited (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  /** `overridesLength`: a Content-Length was present too and must be dropped (RFC 9112 §6.3 item 3). */
  | { kind: "chunked"; overridesLength: boolean }
  | { kind: "close" };

/** What `encodeRequestHead` needs; `framing` is the one header line the client adds itself, if any. */
export interface RequestHeadParts {
  method: string;
  /** origin-form request-target (RFC 9112 §3.2.1): absolute path plus query. */
  target: string;
  headers: Iterable<readonly [string, string]>;
  framing: readonly [string, string] | null;
}

const CR = 0x0d;
const LF = 0x0a;
// RFC 9110 §5.6.2: token = 1*tchar.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5: CR, LF and NUL are never valid in a field value; characters past U+00FF cannot be sent as
// one octet each.
const INVALID_VALUE = /[\0\r\n]|[^\0-\xff]/;
// RFC 9112 §2.2: every line ends with CRLF. A bare CR or LF, or a NUL, is rejected rather than guessed at,
// so nexo and the upstream can never disagree on where the head ends (response splitting, RFC 9112 §11.1).
const INVALID_HEAD_BYTES = /\0|\r(?!\n)|(?<!\r)\n/;
// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; the SP before an empty reason
// is often missing in practice and accepted. reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
const STATUS_LINE = /^HTTP\/1\.(\d) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const ASCII_ONLY = /^[\0-\x7f]*$/;
const encoder = new TextEncoder();

/**
 * Serialises a request line and header lines into bytes (RFC 9112 §3, §5), header names and values as given,
 * followed by `framing` and the empty line. Throws TypeError, before anything is sent, on a method or header
 * name that is not a token, a value holding CR, LF, NUL or a character past U+00FF, or a Content-Length or
 * Transfer-Encoding line among `headers` (the client frames the body itself; two framings invite request
 * smuggling, RFC 9112 §11.2).
 */
export function encodeRequestHead(parts: RequestHeadParts): Uint8Array {
  if (!TOKEN.test(parts.method)) {
    throw new TypeError(
      `cannot send request to upstream: method ${JSON.stringify(parts.method)} is not a token`,
    );
  }
  let text = `${parts.method} ${parts.target} HTTP/1.1\r\n`;
  for (const [name, value] of parts.headers) {
    if (!TOKEN.test(name)) {
      throw new TypeError(`cannot send header ${JSON.stringify(name)} to upstream: the name is not a token`);
    }
    if (INVALID_VALUE.test(value)) {
      throw new TypeError(
        `cannot send header "${name}" to upstream: its value contains CR, LF, NUL or a character past U+00FF`,
      );
    }
    const lower = name.toLowerCase();
    if (lower === "content-length" || lower === "transfer-encoding") {
      throw new TypeError(
        `cannot send header "${name}" to upstream: the upstream client frames the body itself (remove it)`,
      );
    }
    text += `${name}: ${value}\r\n`;
  }
  if (parts.framing !== null) text += `${parts.framing[0]}: ${parts.framing[1]}\r\n`;
  text += "\r\n";
  return encodeLatin1(text);
}

/**
 * Where the head in `bytes` ends: the index just past the CRLF CRLF that closes it, or -1 when it has not
 * arrived yet. `from` is where to resume a search that already scanned `bytes[0..from)` (pass the previous
 * length minus 3 so a terminator split across reads is still found).
 */
export function findHeadEnd(bytes: Uint8Array, from = 0): number {
  for (let i = bytes.indexOf(LF, Math.max(from, 3)); i !== -1; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
  }
  return -1;
}

const STATUS_LINE_PREFIX = encoder.encode("HTTP/1.");

/**
 * Whether `bytes`, the start of what an upstream sent where a response head belongs, can still begin a
 * status line (RFC 9112 §4): their first bytes, up to 7, must be "HTTP/1.". Lets the caller reject a non-HTTP
 * peer (an SSH, SMTP or h2c-only port, a line of text) as soon as it speaks, instead of waiting for a CRLF
 * CRLF that may never come (nginx answers 502 "upstream sent no valid HTTP/1.0 header" the same way).
 */
export function canStartStatusLine(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, STATUS_LINE_PREFIX.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== STATUS_LINE_PREFIX[i]) return false;
  }
  return true;
}

/**
 * Parses a complete response head (status line, field lines and the final empty line, as delimited by
 * `findHeadEnd`). Throws Http1SyntaxError on a malformed status line, obs-fold (RFC 9112 §5.2 lets a proxy
 * reject it with 502), a field name that is not a token or has whitespace before the colon (RFC 9112 §5.1),
 * or NUL, bare CR or bare LF anywhere.
 */
export function parseResponseHead(bytes: Uint8Array): ResponseHead {
  const text = decodeLatin1(bytes);
  if (INVALID_HEAD_BYTES.test(text)) {
    throw new Http1SyntaxError("response head contains NUL or a bare CR or LF");
  }
  const lines = text.split("\r\n");
  const statusLine = STATUS_LINE.exec(lines[0] ?? "");
  if (statusLine === null) {
    throw new Http1SyntaxError(`invalid status line ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  }
  const headers: Array<[string, string]> = [];
  // The head ends with CRLF CRLF, so the last two split entries are empty.
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i]!;
    const first = line.charCodeAt(0);
    // RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) continues the previous field.
    if (first === 0x20 || first === 0x09) {
      throw new Http1SyntaxError("obsolete line folding in a header field");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) {
      throw new Http1SyntaxError(`invalid header field line ${JSON.stringify(line.slice(0, 80))}`);
    }
    // RFC 9112 §5.1: the value is surrounded by optional whitespace (OWS = SP / HTAB), not part of it.
    headers.push([name.toLowerCase(), trimOws(line.slice(colon + 1))]);
  }
  return {
    minorVersion: Number(statusLine[1]),
    status: Number(statusLine[2]),
    statusText: statusLine[3] ?? "",
    headers,
  };
}

/**
 * How the body of a final response to `method` is framed (RFC 9112 §6.3). Throws Http1SyntaxError for a
 * Transfer-Encoding other than exactly "chunked" (other transfer codings would reach the client undecoded
 * once the hop-by-hop header is dropped) and for an invalid or conflicting Content-Length (RFC 9112 §6.3
 * item 5: a proxy answers 502).
 */
export function detectBodyFraming(method: string, head: ResponseHead): BodyFraming {
  // RFC 9112 §6.3 item 1: never a body after HEAD, 1xx, 204 or 304.
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) {
    return { kind: "none" };
  }
  const codings: string[] = [];
  const lengths: string[] = [];
  for (const [name, value] of head.headers) {
    if (name === "transfer-encoding") codings.push(...splitList(value));
    // Empty list elements stay in: an empty Content-Length is invalid, not absent.
    else if (name === "content-length") lengths.push(...value.split(",").map(trimOws));
  }
  // RFC 9112 §6.3 item 3: Transfer-Encoding overrides Content-Length.
  if (codings.length > 0) {
    if (codings.length !== 1 || codings[0]!.toLowerCase() !== "chunked") {
      throw new Http1SyntaxError(`unsupported Transfer-Encoding "${codings.join(", ")}" (only chunked is)`);
    }
    return { kind: "chunked", overridesLength: lengths.length > 0 };
  }
  if (lengths.length > 0) return { kind: "length", length: parseContentLength(lengths) };
  // RFC 9112 §6.3 item 8: otherwise the body runs until the server closes the connection.
  return { kind: "close" };
}

/**
 * The response headers to hand on, given the framing: without Content-Length when chunked overrides it (RFC
 * 9112 §6.3 item 3 requires a proxy to remove it), with repeated equal Content-Length values collapsed into
 * one line (RFC 9110 §8.6). Returns `headers` itself when nothing changes.
 */
export function normalizeLengthHeaders(
  headers: Array<[string, string]>,
  framing: BodyFraming,
): Array<[string, string]> {
  if (framing.kind === "chunked" && framing.overridesLength) {
    return headers.filter(([name]) => name !== "content-length");
  }
  if (framing.kind !== "length") return headers;
  const value = String(framing.length);
  const lines = headers.filter(([name]) => name === "content-length");
  if (lines.length === 1 && lines[0]![1] === value) return headers;
  const out: Array<[string, string]> = [];
  for (const entry of headers) {
    if (entry[0] !== "content-length") out.push(entry);
    else if (entry === lines[0]) out.push(["content-length", value]);
  }
  return out;
}

/**
 * Whether the connection may carry another request after this response (RFC 9112 §9.3): not when the
 * upstream sent `Connection: close`, and for HTTP/1.0 only with `Connection: keep-alive`.
 */
export function isPersistent(head: ResponseHead): boolean {
  let keepAlive = false;
  for (const [name, value] of head.headers) {
    if (name !== "connection") continue;
    for (const option of splitList(value)) {
      const lower = option.toLowerCase();
      if (lower === "close") return false;
      if (lower === "keep-alive") keepAlive = true;
    }
  }
  return head.minorVersion >= 1 || keepAlive;
}

/** RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values counts as one. */
function parseContentLength(values: string[]): number {
  const first = values[0]!;
  // At most 15 digits keeps the length a safe integer.
  if (values.some((v) => v !== first) || !/^\d{1,15}$/.test(first)) {
    throw new Http1SyntaxError(`invalid or conflicting Content-Length "${values.join(", ")}"`);
  }
  return Number(first);
}

/** Elements of a comma-separated list field (RFC 9110 §5.6.1), OWS trimmed, empty elements dropped. */
function splitList(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const item = trimOws(part);
    if (item !== "") out.push(item);
  }
  return out;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** Bytes to a string, one character per octet (obs-text survives as U+0080..U+00FF, as Headers expects). */
function decodeLatin1(bytes: Uint8Array): string {
  // A few thousand arguments per call stays far below engine argument limits.
  const step = 8192;
  if (bytes.length <= step) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let text = "";
  for (let i = 0; i < bytes.length; i += step) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + step) as unknown as number[]);
  }
  return text;
}

/** A string of characters up to U+00FF to one octet each (callers validated the range). */
function encodeLatin1(text: string): Uint8Array {
  if (ASCII_ONLY.test(text)) return encoder.encode(text);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
