// The one error type the upstream HTTP/1.1 client rejects with, and its failure kinds. Which client-facing
// status a kind becomes (502 or 504) is decided in forward.ts, not here.

/**
 * Why talking to an upstream failed:
 * - `connect`: no connection (refused, unreachable, DNS failure, TLS handshake failed);
 * - `reset`: the connection broke (EOF or reset) before or while the response arrived, or the request body
 *   failed while being sent (then `cause` is the body stream's error);
 * - `timeout`: no connection or no response head within the request's `responseTimeoutMs`, or no response
 *   body bytes within its `bodyTimeoutMs` (then raised by the body stream);
 * - `protocol`: the upstream sent something that is not valid HTTP/1.1.
 */
export type UpstreamErrorKind = "connect" | "reset" | "timeout" | "protocol";

/**
 * Thrown by `UpstreamPool.request()` and raised by response body streams. `kind` maps to the client-facing
 * status in one place elsewhere: connect/reset/protocol -> 502, timeout -> 504.
 */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind;

  constructor(kind: UpstreamErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UpstreamError";
    this.kind = kind;
  }
}
