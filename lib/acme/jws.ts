// The JSON Web Signatures an ACME client sends (RFC 8555 §6.2): the account key read from its PKCS#8 PEM into
// WebCrypto, requests signed as flattened JWS with the key (`jwk`) or the account URL (`kid`) in the protected
// header, the key's RFC 7638 thumbprint for challenge key authorizations (§8.1), and the HS256 External
// Account Binding (§7.3.4). Shared by the ACME worker's client (acme_client.ts) and `nexo doctor`'s account
// lookup; it does no I/O.

import { splitPemBlocks } from "../tls/pem.ts";

const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;

/** An account key ready to sign: the algorithm it signs with, the private key, and its public JWK. */
export interface AccountKey {
  alg: "ES256" | "RS256";
  key: CryptoKey;
  /** Only the public members, in the lexicographic order RFC 7638 §3.3 hashes them in. */
  jwk: JsonWebKey;
}

/** A flattened JWS (RFC 7515 §7.2.2), the body of every ACME POST. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

/** The account key in `pem` (PKCS#8, ECDSA P-256 or RSA, as nexo saves it) as a signing key. */
export async function importAccountKey(pem: string): Promise<AccountKey> {
  const der = splitPemBlocks(pem).find((block) => block.label === "PRIVATE KEY")?.der;
  if (der === undefined) throw new Error("the ACME account key is not a PKCS#8 PEM key (BEGIN PRIVATE KEY)");
  const attempts = [
    { alg: "ES256", params: { name: "ECDSA", namedCurve: "P-256" } },
    { alg: "RS256", params: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } },
  ] as const;
  for (const { alg, params } of attempts) {
    const key = await crypto.subtle.importKey("pkcs8", der, params, true, ["sign"]).catch(() => null);
    if (key === null) continue;
    const full = await crypto.subtle.exportKey("jwk", key);
    // Only the public members (RFC 7638 §3.2), which is also what a JWS header may carry.
    const members = alg === "ES256" ? ["crv", "kty", "x", "y"] as const : ["e", "kty", "n"] as const;
    const jwk: JsonWebKey = Object.fromEntries(members.map((name) => [name, full[name]]));
    return { alg, key, jwk };
  }
  throw new Error("the ACME account key is neither ECDSA P-256 nor RSA");
}

/** base64url without padding (RFC 7515 §2) of bytes, or of a string's UTF-8. */
export function base64url(data: Uint8Array | string): string {
  return (typeof data === "string" ? new TextEncoder().encode(data) : data).toBase64(BASE64URL);
}

/**
 * Signs `payload` for `url` (RFC 8555 §6.2). `payload` undefined is a POST-as-GET (§6.3: the empty string).
 * `kid` is the account URL; without it the public key goes in the header (newAccount, §6.2).
 */
export async function signJws(
  key: AccountKey,
  header: { nonce: string; url: string; kid?: string | null },
  payload: unknown,
): Promise<FlattenedJws> {
  const protectedHeader = base64url(JSON.stringify({
    alg: key.alg,
    ...(header.kid ? { kid: header.kid } : { jwk: key.jwk }),
    nonce: header.nonce,
    url: header.url,
  }));
  const body = payload === undefined ? "" : base64url(JSON.stringify(payload));
  const params = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  // WebCrypto's ECDSA signature is r || s, the form JWS wants for ES256 (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    params,
    key.key,
    new TextEncoder().encode(`${protectedHeader}.${body}`),
  );
  return { protected: protectedHeader, payload: body, signature: base64url(new Uint8Array(signature)) };
}

/** The key's JWK thumbprint (RFC 7638), base64url: the second half of every key authorization (§8.1). */
export async function thumbprint(key: AccountKey): Promise<string> {
  // `jwk` holds exactly the required members in lexicographic order, so JSON.stringify is the canonical form.
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(key.jwk)));
  return base64url(new Uint8Array(digest));
}

/**
 * The `externalAccountBinding` member of a newAccount payload (RFC 8555 §7.3.4): the account's public JWK,
 * signed with HS256 under the CA's key id and base64url MAC key, for `url` (the newAccount URL).
 */
export async function signExternalAccountBinding(
  key: AccountKey,
  eab: { kid: string; hmacKey: string },
  url: string,
): Promise<FlattenedJws> {
  const protectedHeader = base64url(JSON.stringify({ alg: "HS256", kid: eab.kid, url }));
  const body = base64url(JSON.stringify(key.jwk));
  const mac = await crypto.subtle.importKey(
    "raw",
    decodeMacKey(eab.hmacKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = await crypto.subtle.sign(
    "HMAC",
    mac,
    new TextEncoder().encode(`${protectedHeader}.${body}`),
  );
  return { protected: protectedHeader, payload: body, signature: base64url(new Uint8Array(signature)) };
}

/** CAs hand out the MAC key base64url-encoded (RFC 8555 §7.3.4); some add padding or use the +/ alphabet. */
function decodeMacKey(text: string): Uint8Array<ArrayBuffer> {
  const normalized = text.trim().replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  try {
    return Uint8Array.fromBase64(normalized, { alphabet: "base64url" });
  } catch {
    throw new Error("acme.eab.hmac_key is not base64url; copy it again from the CA's dashboard");
  }
}
