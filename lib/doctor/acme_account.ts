// `nexo doctor`'s lookup of a saved ACME account at its CA: one newAccount request with onlyReturnExisting
// (RFC 8555 §7.3.1), which finds the account by its key and never creates one, signed as a JWS with the key
// in the header (§6.2), with lib/acme/jws.ts. Not the worker's full client (lib/acme/acme_client.ts): this
// one request must never register an account, and it reports instead of throwing.

import { errorMessage } from "../error_message.ts";
import { importAccountKey, signJws } from "../acme/jws.ts";

const JOSE = "application/jose+json";

/** What the CA said of the account. */
export type AccountLookup =
  | { kind: "found"; url: string; status: string }
  | { kind: "gone" }
  | { kind: "failed"; reason: string };

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
