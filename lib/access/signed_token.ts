// Tokens nexo hands to browsers for GitHub sign-in (the OAuth state, the hand-over ticket, the session
// cookie) and must later trust again: a JSON payload and its HMAC-SHA256 (RFC 2104) under a key only this
// server holds (session_key.ts). The payload is signed, not encrypted: it holds a GitHub login, a host and
// times, nothing secret. Verification is WebCrypto's, which compares the MAC in constant time.

/** A payload: a small flat object. Its `k` field says what kind of token it is, so no kind passes as another. */
export type TokenPayload = Record<string, string | number>;

const BASE64URL = { alphabet: "base64url" } as const;
/** Longer is not a token nexo made (a session is under 200 bytes): refused before any decoding. */
const MAX_TOKEN_LENGTH = 2048;

export class TokenSigner {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** A signer for `secret` (at least 32 random bytes). */
  static async create(secret: Uint8Array<ArrayBuffer>): Promise<TokenSigner> {
    const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    return new TokenSigner(key);
  }

  /** "<payload>.<mac>", both base64url without padding: safe in a cookie value and in a URL's query. */
  async sign(payload: TokenPayload): Promise<string> {
    const body = new TextEncoder().encode(JSON.stringify(payload)).toBase64({
      ...BASE64URL,
      omitPadding: true,
    });
    const mac = await crypto.subtle.sign("HMAC", this.#key, new TextEncoder().encode(body));
    return `${body}.${new Uint8Array(mac).toBase64({ ...BASE64URL, omitPadding: true })}`;
  }

  /** The payload of a token this signer made, or null (malformed, forged, or signed under another key). */
  async verify(token: string): Promise<TokenPayload | null> {
    if (token.length > MAX_TOKEN_LENGTH) return null;
    const dot = token.indexOf(".");
    if (dot <= 0) return null;
    const body = token.slice(0, dot);
    let mac: Uint8Array<ArrayBuffer>;
    try {
      mac = Uint8Array.fromBase64(token.slice(dot + 1), BASE64URL);
    } catch {
      return null;
    }
    if (!await crypto.subtle.verify("HMAC", this.#key, mac, new TextEncoder().encode(body))) return null;
    try {
      const payload: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(body, BASE64URL)));
      return typeof payload === "object" && payload !== null && !Array.isArray(payload)
        ? payload as TokenPayload
        : null;
    } catch {
      return null;
    }
  }
}

/** `bytes` random bytes as base64url: nonces for the OAuth state and tickets. */
export function randomToken(bytes = 16): string {
  return crypto.getRandomValues(new Uint8Array(bytes)).toBase64({ ...BASE64URL, omitPadding: true });
}
