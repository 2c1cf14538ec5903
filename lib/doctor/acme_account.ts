// `nexo doctor`'s lookup of a saved ACME account at its CA: one newAccount request with onlyReturnExisting
// (RFC 8555 §7.3.1), which finds the account by its key and never creates one, signed as a JWS with the key
// in the header (§6.2) through WebCrypto. Why not acme-client, which the worker uses: importing it from the
// main isolate put it in main.ts's module graph, which Deno installs at every start (`nexo check` on a fresh
// machine downloaded it), and its `debug` reads all of process.env, which the shipped flags refuse.

import { errorMessage } from "../error_message.ts";
import { splitPemBlocks } from "../tls/pem.ts";

const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;
const JOSE = "application/jose+json";

/** What the CA said of the account. */
export type AccountLookup =
  | { kind: "found"; url: string; status: string }
  | { kind: "gone" }
  | { kind: "failed"; reason: string };

interface SigningKey {
  alg: "ES256" | "RS256";
  key: CryptoKey;
  jwk: JsonWebKey;
}

/**
 * Asks the CA behind `directory` (its newNonce and newAccount URLs) whether the account of `keyPem` (PKCS#8,
 * ECDSA P-256 or RSA, as nexo saves it) exists. `client` carries extra CA certificates for a private CA.
 * Never throws: a failure is `{ kind: "failed" }` with the reason.
 */
export async function lookUpAccount(
  keyPem: string,
  options: { newNonce: string; newAccount: string; client?: Deno.HttpClient; timeoutMs: number },
): Promise<AccountLookup> {
  try {
    const key = await importAccountKey(keyPem);
    let nonce = await fetchNonce(options);
    // §6.5: a badNonce answer carries a fresh nonce; one retry with it is what every client does.
    for (let attempt = 1;; attempt++) {
      const response = await fetch(options.newAccount, {
        method: "POST",
        headers: { "content-type": JOSE },
        body: JSON.stringify(
          await signJws(key, { nonce, url: options.newAccount }, { onlyReturnExisting: true }),
        ),
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.client ? { client: options.client } : {}),
      });
      const body = await response.json().catch(() => ({})) as {
        type?: string;
        detail?: string;
        status?: string;
      };
      if (response.ok) {
        return { kind: "found", url: response.headers.get("location") ?? "", status: body.status ?? "valid" };
      }
      if (body.type === "urn:ietf:params:acme:error:accountDoesNotExist") return { kind: "gone" };
      const fresh = response.headers.get("replay-nonce");
      if (body.type === "urn:ietf:params:acme:error:badNonce" && fresh !== null && attempt < 2) {
        nonce = fresh;
        continue;
      }
      return {
        kind: "failed",
        reason: `HTTP ${response.status}: ${body.detail ?? body.type ?? "no problem document"}`,
      };
    }
  } catch (error) {
    return { kind: "failed", reason: errorMessage(error) };
  }
}

/** The PKCS#8 key as a WebCrypto signing key and its public JWK: P-256 first, else RSA. */
async function importAccountKey(pem: string): Promise<SigningKey> {
  const block = splitPemBlocks(pem).find((b) => b.label === "PRIVATE KEY");
  if (block === undefined) throw new Error("the saved account key is not a PKCS#8 PEM key");
  const der = new Uint8Array(block.der);
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
  throw new Error("the saved account key is neither ECDSA P-256 nor RSA");
}

async function fetchNonce(options: { newNonce: string; client?: Deno.HttpClient; timeoutMs: number }) {
  const response = await fetch(options.newNonce, {
    method: "HEAD",
    signal: AbortSignal.timeout(options.timeoutMs),
    ...(options.client ? { client: options.client } : {}),
  });
  const nonce = response.headers.get("replay-nonce");
  if (nonce === null) throw new Error(`the CA's newNonce (${options.newNonce}) sent no Replay-Nonce`);
  return nonce;
}

/** A flattened JWS (RFC 7515 §7.2.2) with `jwk` in the protected header (RFC 8555 §6.2). */
async function signJws(key: SigningKey, header: { nonce: string; url: string }, payload: unknown) {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).toBase64(BASE64URL);
  const protectedHeader = encode({ alg: key.alg, jwk: key.jwk, nonce: header.nonce, url: header.url });
  const body = encode(payload);
  const params = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  // WebCrypto's ECDSA signature is r || s, the form JWS wants for ES256 (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    params,
    key.key,
    new TextEncoder().encode(`${protectedHeader}.${body}`),
  );
  return {
    protected: protectedHeader,
    payload: body,
    signature: new Uint8Array(signature).toBase64(BASE64URL),
  };
}
