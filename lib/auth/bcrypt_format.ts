// What a bcrypt hash looks like ($2a$, $2b$, $2y$, cost, salt and digest in bcrypt's base64), without the
// algorithm: the config reads hashes at every load, and only a route with basic_auth loads lib/auth/bcrypt.ts
// and its Blowfish tables.

/** The versions nexo reads; all are computed as $2b$ (see the module comment for where they differ). */
export type BcryptVersion = "2a" | "2b" | "2y";

/** What `parseBcryptHash()` tells about a hash: its version ("2b") and its cost (log2 of the rounds). */
export interface BcryptHashInfo {
  version: BcryptVersion;
  cost: number;
}

// `$2b$12$` + 22 salt characters + 31 digest characters; cost 04..31 as OpenBSD accepts.
const HASH_PATTERN = /^\$2([aby])\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

/**
 * Tells a bcrypt hash from any other string: `$2a$`, `$2b$` or `$2y$`, a two-digit cost 04..31, `$`, then
 * exactly 53 characters of bcrypt's base64 alphabet and nothing after. Returns null for anything else (config
 * validation calls it on every `basic_auth` user). Does not check that the padding bits of the salt's last
 * character are zero; such a hash parses but never verifies, as with OpenBSD.
 */
export function parseBcryptHash(hash: string): BcryptHashInfo | null {
  const match = HASH_PATTERN.exec(hash);
  if (!match) return null;
  return { version: `2${match[1]}` as BcryptVersion, cost: Number(match[2]) };
}
