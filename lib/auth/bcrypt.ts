// bcrypt password hashes ($2a$, $2b$, $2y$) for basic_auth: making one, checking a password against one,
// and telling one apart from any other string. Plain TypeScript because the main isolate loads no npm
// package (DEVELOPERS.md, memory). Not here: where hashes come from, or how many checks may run at once.
//
// The algorithm is Provos and Mazieres, "A Future-Adaptable Password Scheme" (USENIX 1999), as OpenBSD's
// bcrypt.c implements it for $2b$. Versions, as nexo treats them (all three are computed as $2b$):
// - $2b$ (OpenBSD since 2014): the password's UTF-8 bytes plus a NUL, cut to 72 bytes. nexo matches it.
// - $2y$ (crypt_blowfish, PHP): the same algorithm as $2b$ under another name; nexo matches it.
// - $2a$: OpenBSD's bcrypt.c keeps a $2a$ key length in one byte (the bug $2b$ was made for, in 2014), so a
//   password of 255 bytes or more wraps around (260 bytes are keyed by their first 5); nexo does not reproduce
//   that, so such $2a$ hashes made by OpenBSD fail to verify. crypt_blowfish's $2a$ flips one key-schedule bit
//   for some passwords containing the byte 0xFF (its guard against the old $2x$ sign-extension bug on bytes
//   >= 0x80); 0xFF never occurs in UTF-8, so for UTF-8 passwords its $2a$ equals $2b$. nexo computes $2a$ as
//   OpenBSD does for passwords under 255 bytes (the test pins the 0xFF case).
// - Embedded NUL bytes are kept as key bytes, as bcryptjs does; C implementations stop at the first NUL.

import { BLOWFISH_INITIAL_STATE } from "./blowfish_constants.ts";
import { type BcryptHashInfo, parseBcryptHash } from "./bcrypt_format.ts";
import { timingSafeEqual } from "./constant_time.ts";
import { startTimer } from "../timers.ts";

export { type BcryptHashInfo, type BcryptVersion, parseBcryptHash } from "./bcrypt_format.ts";

/** Longest password prefix bcrypt uses, in bytes (UTF-8): the rest is ignored, as every bcrypt does. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

/** Tuning for `bcryptHash()` and `bcryptVerify()`. */
export interface BcryptOptions {
  /**
   * How long one slice of the expensive loop may hold the event loop, in ms (default 25: see
   * `DEFAULT_SLICE_MS`). Between slices the event loop runs timers and I/O, so the proxy keeps serving during a
   * 250 ms cost-12 check. A positive number; `Infinity` runs the loop in one go (benchmarks, the CLI).
   */
  sliceMs?: number;
}

const MIN_COST = 4;
const MAX_COST = 31;
const SALT_BYTES = 16;
// bcrypt keeps 23 of the 24 ciphertext bytes: the original OpenBSD code encoded only 23, and every
// implementation since is bug-compatible with it (31 base64 characters instead of 32).
const DIGEST_BYTES = 23;
// Between slices the computation awaits startTimer(0), the only way found on Deno 2.9.6 to let timers and I/O
// run: it parks the event loop, which then polls the sockets. A message through a MessageChannel, a resolved
// promise or a fast async op (crypto.subtle.digest) resumes at once and starves both (measured over 250 ms of
// sliced work: 0-1 interval ticks and 1 local HTTP request served, against 45-60 and 240-310 with a timer).
// But startTimer(0) takes 2.1-2.5 ms on an idle loop, so the slice sets the overhead there. Measured against
// one straight loop (cost 10 and 12, paired runs): 5 ms slices +41%, 10 ms +21%, 20 ms +10%, 25 ms +7-8%.
// 25 keeps the cost under 10%; it is also the longest that other requests wait for a running check.
const DEFAULT_SLICE_MS = 25;

// "OrpheanBeholderScryDoubt" as six big-endian words: the 192-bit plaintext that the expensive key schedule
// encrypts 64 times. Any fixed string would do; this is the one the paper chose, so it is the one every hash uses.
const MAGIC_TEXT = "OrpheanBeholderScryDoubt";

// bcrypt's base64 is not RFC 4648's: another alphabet ("./" first, then A-Z a-z 0-9), same bit order, no padding.
const BASE64_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// Blowfish's state as one Int32Array: P-array at 0..17, then S-boxes S0..S3 of 256 words each.
const P_WORDS = 18;
const S0 = 18;
const S1 = S0 + 256;
const S2 = S1 + 256;
const S3 = S2 + 256;
const STATE_WORDS = S3 + 256;
const INITIAL_STATE = Int32Array.from(BLOWFISH_INITIAL_STATE);

const encoder = new TextEncoder();

/**
 * A new `$2b$` hash of `password` with a random 16-byte salt (`crypto.getRandomValues`). `cost` is log2 of
 * the rounds, an integer 4..31 (RangeError otherwise); each step doubles the time (cost 12: ~0.2 s of CPU,
 * letting the event loop run every 25 ms). A string is UTF-8 encoded; only the first 72 bytes count.
 */
export async function bcryptHash(
  password: string | Uint8Array,
  cost: number,
  options: BcryptOptions = {},
): Promise<string> {
  if (!Number.isInteger(cost) || cost < MIN_COST || cost > MAX_COST) {
    throw new RangeError(`bcrypt cost must be an integer from ${MIN_COST} to ${MAX_COST}, got ${cost}`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  return await computeHash(password, { version: "2b", cost }, salt, options);
}

/**
 * Whether `password` matches `hash` ($2a$, $2b$ or $2y$, all computed as $2b$). Recomputes the hash with
 * the stored salt and cost and compares the whole 60-character string in constant time, as OpenBSD does (a
 * hash whose unused padding bits are set never matches). Returns false, never throws, for a string that
 * `parseBcryptHash()` refuses. Takes as long as the hash's cost says (cost 31: about a day): bound the
 * cost where hashes are accepted.
 */
export async function bcryptVerify(
  password: string | Uint8Array,
  hash: string,
  options: BcryptOptions = {},
): Promise<boolean> {
  const info = parseBcryptHash(hash);
  if (!info) return false;
  const salt = decodeBase64(hash.slice(7, 29), SALT_BYTES);
  const computed = await computeHash(password, info, salt, options);
  return timingSafeEqual(encoder.encode(computed), encoder.encode(hash));
}

async function computeHash(
  password: string | Uint8Array,
  info: BcryptHashInfo,
  salt: Uint8Array,
  options: BcryptOptions,
): Promise<string> {
  const key = passwordKey(password);
  const digest = await eksBlowfishDigest(key, salt, info.cost, options.sliceMs ?? DEFAULT_SLICE_MS);
  key.fill(0); // best effort: the caller's string and V8's copies are out of reach
  const cost = String(info.cost).padStart(2, "0");
  return `$${info.version}$${cost}$${encodeBase64(salt)}${encodeBase64(digest)}`;
}

/**
 * The Blowfish key: the password's bytes, a terminating NUL (bcrypt hashes C strings), then cut to 72 bytes.
 * OpenBSD's $2b$ takes min(length, 72) + 1 bytes, but only 72 are ever read (18 words of 4), so a NUL at
 * index 72 never counts: a 72-byte password and its 73-byte extensions hash alike.
 */
function passwordKey(password: string | Uint8Array): Uint8Array {
  const bytes = typeof password === "string" ? encoder.encode(password) : password;
  const length = Math.min(bytes.length + 1, BCRYPT_MAX_PASSWORD_BYTES);
  const key = new Uint8Array(length); // the byte after the password stays 0: the NUL
  key.set(bytes.subarray(0, length));
  if (typeof password === "string") bytes.fill(0);
  return key;
}

/**
 * EksBlowfish ("expensive key schedule") then the 64-fold encryption of the magic text: 23 digest bytes.
 *
 * EksBlowfishSetup (paper §5): start from pi's digits, mix in salt and key once (ExpandKey(state, salt,
 * key)), then 2^cost times ExpandKey(state, 0, key) and ExpandKey(state, 0, salt). That loop is the cost; it
 * runs in slices of `sliceMs`, yielding between them, so one check never holds the event loop for long.
 */
async function eksBlowfishDigest(
  key: Uint8Array,
  salt: Uint8Array,
  cost: number,
  sliceMs: number,
): Promise<Uint8Array> {
  const state = INITIAL_STATE.slice();
  const block = new Int32Array(2);
  const keyWords = streamWords(key);
  const saltWords = streamWords(salt);
  expandKey(state, keyWords, saltWords, block);
  const rounds = 2 ** cost;
  let round = 0;
  while (round < rounds) {
    const sliceEnd = performance.now() + sliceMs;
    do {
      expandKey(state, keyWords, null, block);
      expandKey(state, saltWords, null, block);
      round++;
    } while (round < rounds && performance.now() < sliceEnd);
    if (round < rounds) await yieldToEventLoop();
  }
  const text = streamWords(encoder.encode(MAGIC_TEXT), 6);
  // ECB over three independent blocks, so "64 times each block" equals OpenBSD's "64 times the whole text".
  for (let i = 0; i < 6; i += 2) {
    block[0] = text[i]!;
    block[1] = text[i + 1]!;
    for (let n = 0; n < 64; n++) encipher(state, block);
    text[i] = block[0];
    text[i + 1] = block[1];
  }
  state.fill(0);
  keyWords.fill(0);
  const digest = new Uint8Array(24);
  const view = new DataView(digest.buffer);
  for (let i = 0; i < 6; i++) view.setInt32(4 * i, text[i]!); // big-endian, as bcrypt.c's output bytes
  return digest.subarray(0, DIGEST_BYTES);
}

/**
 * Blowfish's ExpandKey as bcrypt uses it: XOR the P-array with the key's byte stream (cycled, always from its
 * first byte), then replace P and all four S-boxes, two words at a time, by encrypting a running block that
 * starts at zero; with a salt, the block is first XORed with the salt's next two words (cycling over its
 * four, continuing from the P-array into the S-boxes). Without one this is the plain Blowfish key schedule.
 */
function expandKey(
  state: Int32Array,
  keyWords: Int32Array,
  salt: Int32Array | null,
  block: Int32Array,
): void {
  for (let i = 0; i < P_WORDS; i++) state[i]! ^= keyWords[i]!;
  block[0] = 0;
  block[1] = 0;
  for (let i = 0; i < STATE_WORDS; i += 2) {
    if (salt) {
      block[0]! ^= salt[i & 3]!;
      block[1]! ^= salt[(i + 1) & 3]!;
    }
    encipher(state, block);
    state[i] = block[0]!;
    state[i + 1] = block[1]!;
  }
}

/**
 * Encrypts `block` (left, right) in place: Blowfish's 16 Feistel rounds with F(x) = ((S0[a] + S1[b]) ^
 * S2[c]) + S3[d] over the bytes of x, big-endian (Schneier 1993). Int32 arithmetic wraps mod 2^32 through the
 * `^`, which is what Blowfish's unsigned additions need.
 */
function encipher(s: Int32Array, block: Int32Array): void {
  let left = block[0]! ^ s[0]!;
  let right = block[1]!;
  for (let i = 1; i < 17; i += 2) {
    right ^= ((s[S0 + (left >>> 24)]! + s[S1 + ((left >>> 16) & 0xff)]!) ^ s[S2 + ((left >>> 8) & 0xff)]!) +
        s[S3 + (left & 0xff)]! ^ s[i]!;
    left ^= ((s[S0 + (right >>> 24)]! + s[S1 + ((right >>> 16) & 0xff)]!) ^ s[S2 + ((right >>> 8) & 0xff)]!) +
        s[S3 + (right & 0xff)]! ^ s[i + 1]!;
  }
  block[0] = right ^ s[17]!;
  block[1] = left;
}

/** `count` big-endian words read from `bytes` as a stream that wraps to its start (the key or salt stream). */
function streamWords(bytes: Uint8Array, count = P_WORDS): Int32Array {
  const words = new Int32Array(count);
  let j = 0;
  for (let i = 0; i < count; i++) {
    let word = 0;
    for (let k = 0; k < 4; k++) {
      word = (word << 8) | bytes[j]!;
      j = (j + 1) % bytes.length;
    }
    words[i] = word;
  }
  return words;
}

/** bcrypt's base64 of `bytes`: 16 bytes give 22 characters, 23 give 31; the last one's spare bits are 0. */
function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i]!;
    const b1 = bytes[i + 1] ?? 0;
    const b2 = bytes[i + 2] ?? 0;
    out += BASE64_ALPHABET[b0 >> 2]! + BASE64_ALPHABET[((b0 & 0x03) << 4) | (b1 >> 4)]!;
    if (i + 1 < bytes.length) out += BASE64_ALPHABET[((b1 & 0x0f) << 2) | (b2 >> 6)]!;
    if (i + 2 < bytes.length) out += BASE64_ALPHABET[b2 & 0x3f]!;
  }
  return out;
}

/** The first `length` bytes that bcrypt-base64 `text` encodes (callers pass text `parseBcryptHash()` accepted). */
function decodeBase64(text: string, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let bits = 0;
  let bitCount = 0;
  let n = 0;
  for (let i = 0; i < text.length && n < length; i++) {
    bits = ((bits << 6) | BASE64_ALPHABET.indexOf(text[i]!)) & 0xffff; // at most 14 bits are pending
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      bytes[n++] = (bits >> bitCount) & 0xff;
    }
  }
  return bytes;
}

/** Lets the event loop run due timers and ready I/O (see `DEFAULT_SLICE_MS` for why a timer). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => startTimer(resolve, 0));
}
