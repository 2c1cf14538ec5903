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
 * frames the body and sends it without waiting for 100 Continue.
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
 * Builds the client response's headers from the upstream's header list: drops hop-by-hop headers and those the
 * upstream's Connection header names. Repeated fields (Set-Cookie) stay separate lines.
 */
export function buildResponseHeaders(upstream: ReadonlyArray<readonly [string, string]>): Headers {
  let named: Set<string> | null = null;
  for (const [name, value] of upstream) {
    if (name === "connection") named = connectionTokens(value, named);
  }
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (HOP_BY_HOP_HEADERS.has(name) || (named !== null && named.has(name))) continue;
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
