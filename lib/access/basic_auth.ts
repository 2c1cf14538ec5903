// `basic_auth` (RFC 7617): a route's users and their bcrypt hashes. A bcrypt check costs 60-250 ms of CPU by
// design, so a verified user and password are remembered for a short while (a page with 50 assets costs one
// check, not 50), at most two checks run at once (the rest wait their turn instead of taking every core),
// and an unknown user costs the same check as a known one (no timing tells which names exist).

import { bcryptHash, bcryptVerify } from "../auth/bcrypt.ts";
import type { BasicAuth } from "../config/types.ts";

/** How long a verified user and password are taken without a new bcrypt check. */
const REMEMBER_MS = 5 * 60_000;
/** Verified pairs remembered at most; past it the oldest is forgotten (and checked again when it returns). */
const MAX_REMEMBERED = 1_000;
/** bcrypt checks running at once, per route. */
const MAX_CONCURRENT_CHECKS = 2;

/** Why a request is not signed in, for the log; null when it is. */
export type BasicAuthFailure = "no credentials" | "malformed credentials" | "wrong credentials";

export class BasicAuthGuard {
  readonly #config: BasicAuth;
  /** SHA-256 of "user:password:hash" -> when it stops being remembered. */
  readonly #remembered = new Map<string, number>();
  #running = 0;
  #checks = 0;
  #peakRunning = 0;
  readonly #waiting: Array<() => void> = [];
  /** A hash of the same cost as the users', checked for unknown users so that they take as long. */
  #decoy: Promise<string> | null = null;

  constructor(config: BasicAuth) {
    this.#config = config;
  }

  get realm(): string {
    return this.#config.realm;
  }

  get passCredentials(): boolean {
    return this.#config.passCredentials;
  }

  /** bcrypt checks run so far, and the most that ran at once (for tests and, later, metrics). */
  get stats(): { checks: number; peakRunning: number } {
    return { checks: this.#checks, peakRunning: this.#peakRunning };
  }

  /** Checks an Authorization header value at `nowMs`: null when it names a user with the right password. */
  async check(authorization: string | null, nowMs: number): Promise<BasicAuthFailure | null> {
    if (authorization === null) return "no credentials";
    const credentials = decodeCredentials(authorization);
    if (credentials === null) return "malformed credentials";
    const hash = Object.hasOwn(this.#config.users, credentials.user)
      ? this.#config.users[credentials.user]!
      : null;
    const key = await rememberKey(credentials.user, credentials.password, hash ?? "");
    const until = this.#remembered.get(key);
    if (hash !== null && until !== undefined && until > nowMs) return null;
    const ok = await this.#limited(async () =>
      hash === null
        ? (await bcryptVerify(credentials.password, await this.#decoyHash()), false)
        : await bcryptVerify(credentials.password, hash)
    );
    if (!ok) return "wrong credentials";
    this.#remembered.delete(key);
    if (this.#remembered.size >= MAX_REMEMBERED) {
      this.#remembered.delete(this.#remembered.keys().next().value!);
    }
    this.#remembered.set(key, nowMs + REMEMBER_MS);
    return null;
  }

  /** Runs `check` when fewer than MAX_CONCURRENT_CHECKS are running, else once one finishes. */
  async #limited<T>(check: () => Promise<T>): Promise<T> {
    if (this.#running >= MAX_CONCURRENT_CHECKS) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#running++;
    this.#checks++;
    this.#peakRunning = Math.max(this.#peakRunning, this.#running);
    try {
      return await check();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  #decoyHash(): Promise<string> {
    const costs = Object.values(this.#config.users).map((hash) => Number(hash.slice(4, 6)));
    this.#decoy ??= bcryptHash(crypto.getRandomValues(new Uint8Array(16)), Math.max(4, ...costs));
    return this.#decoy;
  }
}

/** The user and password of a `Basic` Authorization value (RFC 7617 §2), the password as raw bytes. */
export function decodeCredentials(authorization: string): { user: string; password: Uint8Array } | null {
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization);
  if (match === null) return null;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(match[1]!);
  } catch {
    return null;
  }
  const colon = bytes.indexOf(0x3a);
  if (colon === -1) return null;
  const user = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, colon));
  return { user, password: bytes.subarray(colon + 1) };
}

/** The header value that asks a browser to sign in (RFC 7617 §2.1: UTF-8 credentials). */
export function challenge(realm: string): string {
  return `Basic realm="${realm}", charset="UTF-8"`;
}

async function rememberKey(user: string, password: Uint8Array, hash: string): Promise<string> {
  const prefix = new TextEncoder().encode(`${user}\u0000${hash}\u0000`);
  const input = new Uint8Array(prefix.length + password.length);
  input.set(prefix);
  input.set(password, prefix.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return digest.toHex();
}
