// `forward_auth`: before a request reaches a route's upstream, nexo asks an auth server (Authelia, Authentik,
// oauth2-proxy) with a GET that describes it in the headers these servers read (Traefik's and Caddy's
// convention: X-Forwarded-Method, -Uri, -Host, -Proto, -For) plus the client's cookies and credentials.
// A 2xx lets the request through with the `copy_headers` the auth server set; any other answer goes back to
// the client as it is (a 302 to the login page, a 401); an auth server that cannot answer is a 502, never an
// open door. The request goes through nexo's own HTTP/1.1 client, as proxied requests do.

import { concatBytes } from "../bytes.ts";
import type { ForwardAuth } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import { buildResponseHeaders, type HeaderList } from "../proxy/headers.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";

/** The client's headers the auth server gets besides the X-Forwarded-* ones: who it is and what it accepts. */
const CLIENT_HEADERS: ReadonlySet<string> = new Set([
  "cookie",
  "authorization",
  "accept",
  "accept-language",
  "user-agent",
]);

/** An auth server's refusal is a small page or a redirect; more than this is not an answer nexo relays. */
const MAX_ANSWER_BYTES = 64 * 1024;

export type AuthVerdict =
  /** Let through, with these header lines (lowercased names, from `copy_headers`) added. */
  | { kind: "allow"; copy: Array<[string, string]> }
  /** The auth server's answer, for the client as it is. */
  | { kind: "deny"; response: Response; bytes: number }
  | { kind: "unavailable"; error: string };

/** What the auth server is told about the request. */
export interface AuthRequest {
  method: string;
  url: URL;
  headerList: HeaderList;
  /** The client's address (after trusted_proxies). */
  client: string;
  signal: AbortSignal;
}

/** Asks the auth server about `request`. Never throws. */
export async function askAuthServer(
  pool: UpstreamPool,
  auth: ForwardAuth,
  request: AuthRequest,
): Promise<AuthVerdict> {
  const headers: Array<[string, string]> = [
    ["host", auth.url.host],
    ["x-forwarded-method", request.method],
    ["x-forwarded-proto", "https"],
    ["x-forwarded-host", request.url.host],
    ["x-forwarded-uri", request.url.pathname + request.url.search],
    ["x-forwarded-for", request.client],
  ];
  for (const [name, value] of request.headerList) if (CLIENT_HEADERS.has(name)) headers.push([name, value]);
  try {
    const answer = await pool.request({
      method: "GET",
      url: auth.url,
      headers,
      body: null,
      bodyLength: null,
      responseTimeoutMs: auth.timeoutMs,
      bodyTimeoutMs: auth.timeoutMs,
      signal: request.signal,
    });
    if (answer.contentLength !== null && answer.contentLength > MAX_ANSWER_BYTES) {
      answer.body?.cancel().catch(() => {});
      return { kind: "unavailable", error: `its answer is larger than ${MAX_ANSWER_BYTES} bytes` };
    }
    const body = answer.hasBody ? await readAtMost(answer.body!, MAX_ANSWER_BYTES) : new Uint8Array(0);
    if (body === null) {
      return { kind: "unavailable", error: `its answer is larger than ${MAX_ANSWER_BYTES} bytes` };
    }
    if (answer.status >= 200 && answer.status < 300) {
      const copy = answer.headers.filter(([name]) => auth.copyHeaders.includes(name));
      return { kind: "allow", copy };
    }
    const response = new Response(answer.status === 204 || answer.status === 304 ? null : body, {
      status: answer.status,
      statusText: answer.statusText,
      headers: buildResponseHeaders(answer.headers),
    });
    return { kind: "deny", response, bytes: body.length };
  } catch (error) {
    return { kind: "unavailable", error: errorMessage(error) };
  }
}

/**
 * The request's headers for the upstream: the client's own copies of `copy_headers` removed (a client must
 * not pass as the user the auth server names), then the auth server's lines added.
 */
export function withAuthHeaders(
  headerList: HeaderList,
  auth: ForwardAuth,
  copy: Array<[string, string]>,
): HeaderList {
  return [...headerList.filter(([name]) => !auth.copyHeaders.includes(name)), ...copy];
}

/** The whole body, or null (the stream cancelled) past `max` bytes. */
async function readAtMost(
  body: ReadableStream<Uint8Array>,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) return null;
    chunks.push(chunk);
  }
  return concatBytes(chunks);
}
