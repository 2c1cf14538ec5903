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

/**
 * What to change for a TLS failure's reason (rustls's or node:tls's words): in the handshake, or in an alert
 * that arrives after it (TLS 1.3 servers refuse a client certificate only then).
 */
export function tlsFix(reason: string): string {
  if (/UnknownIssuer|self.signed|local issuer|unable to verify/i.test(reason)) {
    return "set upstream_tls.ca_file to the CA that signed its certificate";
  }
  if (/not valid for name|does not match|altnames|NotValidForName/i.test(reason)) {
    return "set upstream_tls.server_name to a name its certificate holds";
  }
  if (/CertificateRequired|certificate required/i.test(reason)) {
    return "it asks for a client certificate: set upstream_tls.client_cert_file and client_key_file";
  }
  if (/expired|NotValidYet|not yet valid/i.test(reason)) {
    return "its certificate is outside its validity period: renew it, or check this machine's clock";
  }
  if (/BadCertificate|UnknownCA|bad certificate|unknown ca|DecryptError/i.test(reason)) {
    return "it refused nexo's client certificate: check upstream_tls.client_cert_file against the CA it trusts";
  }
  return "check its certificate and upstream_tls";
}
