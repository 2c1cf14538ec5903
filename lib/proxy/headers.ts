// Header rewriting between client and upstream: hop-by-hop headers removed both ways, the client's Host kept,
// and the X-Forwarded-* trio set. Pure functions over header lists, called once per proxied request.
// It does not decide caching (cache_control.ts) or framing (the upstream client adds Content-Length or
// Transfer-Encoding itself).

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus the legacy ones proxies have always dropped (Keep-Alive,
 * Proxy-Connection) and the proxy credentials meant for this hop only (RFC 9110 §11.7).
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  // HTTP/2 pseudo-header leftovers never belong on an HTTP/1.1 upstream request.
  "http2-settings",
]);

/** Facts about the client connection that become X-Forwarded-* headers. */
export interface ForwardedFor {
  /** The client's IP address as seen on the socket. */
  clientIp: string;
  /** The Host the client asked for, port included ("app.example.com:8443"). */
  host: string;
  /** "https" on the TLS listener. */
  proto: "http" | "https";
  /**
   * Whether the client is a trusted proxy (`trusted_proxies`): only then are the X-Forwarded-For chain,
   * X-Real-IP and Forwarded it sent passed on; otherwise they are client-supplied and dropped.
   */
  trusted: boolean;
}

/**
 * Builds the upstream request's header list from the client's headers: drops hop-by-hop headers and any header
 * the Connection header names (RFC 9110 §7.6.1), forwards the client's Host, appends the client's address to
 * X-Forwarded-For (RFC 7239 §5.2 describes the same list semantics for Forwarded) when the client is a trusted
 * proxy, else starts the list afresh and drops X-Real-IP and Forwarded (a client could forge them), and sets
 * X-Forwarded-Proto and X-Forwarded-Host. Content-Length and Expect are dropped too: the upstream client
 * frames the body and sends it without waiting for 100 Continue. Names containing "_" are dropped.
 */
export function buildUpstreamHeaders(
  incoming: Headers | HeaderList,
  forwarded: ForwardedFor,
): Array<[string, string]> {
  const list = incoming instanceof Headers ? [...incoming] : incoming;
  let connection: string | null = null;
  for (const [name, value] of list) if (name === "connection") connection = value;
  const named = connectionTokens(connection);
  const out: Array<[string, string]> = [["host", forwarded.host]];
  let priorFor: string | null = null;
  for (const [name, value] of list) {
    if (HOP_BY_HOP_HEADERS.has(name) || (named !== null && named.has(name))) continue;
    // CGI, WSGI, PHP and Rack fold "_" and "-" together (both become HTTP_X_REAL_IP), so X_Real_IP would
    // pass the scrub below and reach the app as X-Real-IP. nginx drops such names by default; so does nexo.
    if (name.includes("_")) continue;
    switch (name) {
      case "host":
      case "content-length":
      // hyper already answered the client's 100-continue; the upstream client sends the body right away.
      case "expect":
      case "x-forwarded-proto":
      case "x-forwarded-host":
        continue;
      case "x-forwarded-for":
        if (forwarded.trusted) priorFor = value;
        continue;
      case "x-real-ip":
      case "forwarded":
        if (!forwarded.trusted) continue;
    }
    out.push([name, value]);
  }
  out.push(["x-forwarded-for", priorFor ? `${priorFor}, ${forwarded.clientIp}` : forwarded.clientIp]);
  out.push(["x-forwarded-proto", forwarded.proto]);
  out.push(["x-forwarded-host", forwarded.host]);
  return out;
}

/**
 * Field-value characters no HTTP layer downstream of nexo accepts (RFC 9110 §5.5 allows only VCHAR, SP, HTAB
 * and obs-text): control characters other than HTAB, and anything past U+00FF (not one octet). Deno 2.9.6's
 * HTTP/1.1 writer panics on a response header value holding a control byte, which ends the whole process:
 * every site and every open WebSocket with it. HTTP/2 clients reset the stream instead.
 */
// deno-lint-ignore no-control-regex
const INVALID_FIELD_VALUE = /[\0-\x08\x0a-\x1f\x7f]|[^\0-\xff]/;
const INVALID_FIELD_VALUE_ALL = new RegExp(INVALID_FIELD_VALUE.source, "g");

/**
 * Longest header name passed on, in characters: Deno 2.9.6 panics on a response header name of 65,536 or
 * more over HTTP/2 (http's HeaderName limit). The upstream response head limit (64 KiB) keeps names below it
 * today; this keeps it so if that limit is ever raised.
 */
export const MAX_HEADER_NAME_LENGTH = 65_535;

/**
 * Builds the client response's headers from the upstream's header list: drops hop-by-hop headers and those the
 * upstream's Connection header names. Repeated fields (Set-Cookie) stay separate lines.
 *
 * Every byte from an upstream is hostile: a value with a control character (an app echoing a visitor's
 * `report%01.pdf` into Content-Disposition) has each such character replaced with SP, as RFC 9110 §5.5 has
 * recipients do for CR, LF and NUL, rather than the header being dropped, which would turn an attachment into
 * inline content or lose a Set-Cookie attribute. A name past MAX_HEADER_NAME_LENGTH is dropped. Each repaired
 * or dropped header is reported to `onRepaired` (for one log line) by name, truncated to 64 characters.
 */
export function buildResponseHeaders(
  upstream: ReadonlyArray<readonly [string, string]>,
  onRepaired?: (name: string) => void,
): Headers {
  let named: Set<string> | null = null;
  for (const [name, value] of upstream) {
    if (name === "connection") named = connectionTokens(value, named);
  }
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (HOP_BY_HOP_HEADERS.has(name) || (named !== null && named.has(name))) continue;
    if (name.length > MAX_HEADER_NAME_LENGTH) {
      onRepaired?.(name.slice(0, 64));
      continue;
    }
    if (INVALID_FIELD_VALUE.test(value)) {
      onRepaired?.(name.slice(0, 64));
      headers.append(name, value.replace(INVALID_FIELD_VALUE_ALL, " "));
      continue;
    }
    headers.append(name, value);
  }
  return headers;
}

/** The lowercased header names listed in a Connection value ("keep-alive, X-Foo"), or null when none. */
export function connectionTokens(value: string | null, into: Set<string> | null = null): Set<string> | null {
  if (!value) return into;
  const tokens = into ?? new Set<string>();
  for (const token of value.split(",")) {
    const name = token.trim().toLowerCase();
    if (name !== "") tokens.add(name);
  }
  return tokens;
}

/**
 * A request's headers as a list: lowercased names, repeated fields combined with ", " (Set-Cookie aside), as
 * iterating `Headers` gives them. Iterating a Deno 2.9.6 `Headers` costs ~7.5 µs for a browser's eight
 * fields (it sorts and combines every time), so the handler does it once per request and passes the list on.
 */
export type HeaderList = ReadonlyArray<readonly [string, string]>;

/** Sum of header name and value lengths plus 4 bytes per line (": " and CRLF), as a client sent them. */
export function headerBytes(headers: Iterable<readonly [string, string]>): number {
  let total = 0;
  for (const [name, value] of headers) total += name.length + value.length + 4;
  return total;
}
