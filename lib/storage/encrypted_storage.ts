// Private keys encrypted at rest (storage.encryption_key_file): a Storage wrapping another that seals the
// values stored with `{ private: true }` with AES-256-GCM (WebCrypto) and opens them on load. It does not
// read the key file (the caller does, then calls parseEncryptionKey); keys, listings, renames and locks pass
// straight to the wrapped storage.

import type { LockOptions, Storage, StorageKey, StorageLock, StoreOptions } from "./storage.ts";
import { StorageError } from "./storage.ts";

/** Marks a sealed value; the version lets a later format be told apart from this one. */
const MAGIC = new TextEncoder().encode("nexo-aes256gcm-v1\n");
/** Leading bytes of SHA-256(raw key): tells "another key" apart from "damaged" without revealing the key. */
const KEY_ID_BYTES = 8;
/** Random 96-bit IVs (NIST SP 800-38D §8.2.2); §8.3 allows 2^32 of them per key, far more than nexo seals. */
const IV_BYTES = 12;
/** The GCM authentication tag WebCrypto appends by default (128 bits). */
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + IV_BYTES;

/**
 * The raw 32-byte AES-256 key in the text of a key file: 44 base64 characters with padding (what
 * `openssl rand -base64 32` prints) or 64 hex digits, surrounding whitespace ignored. `source` is the file's
 * path, for the message. Throws an Error naming `source` and how to make a key; the message never quotes the
 * text or any part of it.
 */
export function parseEncryptionKey(text: string, source: string): Uint8Array {
  const trimmed = text.trim();
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return Uint8Array.fromBase64(trimmed);
  if (/^[0-9A-Fa-f]{64}$/.test(trimmed)) return Uint8Array.fromHex(trimmed);
  const why = trimmed === ""
    ? "it is empty"
    : "it is neither 32 bytes in base64 (44 characters, as openssl prints them) nor in hex (64 digits)";
  throw new Error(
    `Cannot use ${source} as storage.encryption_key_file: ${why} ` +
      `(make a key with \`openssl rand -base64 32 > ${source} && chmod 600 ${source}\`)`,
  );
}

/**
 * Encrypts private values on their way into `inner` and decrypts them on their way out.
 *
 * - `store(key, value, { private: true })` stores MAGIC, the key id, a fresh random IV and the AES-GCM
 *   ciphertext with its tag, passing `private` on to `inner`; any other `store` passes the value unchanged.
 * - `load` decrypts a value that starts with MAGIC and returns any other value unchanged. So private keys
 *   written before encryption was turned on still load (as plaintext, until they are next stored), and a
 *   stored value must not start with MAGIC by chance (PEM and JSON never do).
 * - A sealed value under another key id rejects with a StorageError asking for the key file it was written
 *   with; one under our key id that does not authenticate (altered or truncated) rejects as damaged. Neither
 *   message contains the value or the key.
 * - No additional data ties a value to its storage key, because dir_swap.ts renames values between keys.
 * - Turning encryption off again leaves sealed values unreadable as keys: decrypt them first.
 */
export class EncryptedStorage implements Storage {
  readonly #inner: Storage;
  readonly #key: CryptoKey;
  readonly #keyId: Uint8Array;

  private constructor(inner: Storage, key: CryptoKey, keyId: Uint8Array) {
    this.#inner = inner;
    this.#key = key;
    this.#keyId = keyId;
  }

  /**
   * Wraps `inner` with `rawKey` (32 bytes, from parseEncryptionKey). Throws a TypeError for another length;
   * the key is imported non-extractable, so nothing can read it back out of this object.
   */
  static async create(inner: Storage, rawKey: Uint8Array): Promise<EncryptedStorage> {
    if (rawKey.length !== KEY_BYTES) {
      throw new TypeError(
        `EncryptedStorage.create() needs a ${KEY_BYTES}-byte key, got ${rawKey.length} bytes ` +
          `(read the key file with parseEncryptionKey)`,
      );
    }
    const raw = new Uint8Array(rawKey);
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
    raw.fill(0);
    return new EncryptedStorage(inner, key, digest.slice(0, KEY_ID_BYTES));
  }

  describe(key: StorageKey): string {
    return this.#inner.describe(key);
  }

  async load(key: StorageKey): Promise<Uint8Array | null> {
    const stored = await this.#inner.load(key);
    if (stored === null || !startsWith(stored, MAGIC)) return stored;
    const where = this.#inner.describe(key);
    const keyId = stored.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES);
    if (keyId.length === KEY_ID_BYTES && !equalBytes(keyId, this.#keyId)) {
      throw new StorageError(
        `Cannot decrypt ${where}: it was encrypted with another key than storage.encryption_key_file ` +
          `(restore the key file it was written with, or delete the value so nexo obtains a new one)`,
      );
    }
    if (stored.length < HEADER_BYTES + TAG_BYTES) throw damaged(where);
    const iv = stored.slice(MAGIC.length + KEY_ID_BYTES, HEADER_BYTES);
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv },
        this.#key,
        stored.slice(HEADER_BYTES),
      );
      return new Uint8Array(plain);
    } catch (error) {
      if (error instanceof DOMException && error.name === "OperationError") throw damaged(where, error);
      throw error;
    }
  }

  async store(key: StorageKey, value: Uint8Array | string, options: StoreOptions = {}): Promise<void> {
    if (options.private !== true) return this.#inner.store(key, value, options);
    const plain = typeof value === "string" ? new TextEncoder().encode(value) : value.slice();
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, this.#key, plain));
    const bytes = new Uint8Array(HEADER_BYTES + sealed.length);
    bytes.set(MAGIC);
    bytes.set(this.#keyId, MAGIC.length);
    bytes.set(iv, MAGIC.length + KEY_ID_BYTES);
    bytes.set(sealed, HEADER_BYTES);
    return this.#inner.store(key, bytes, options);
  }

  delete(key: StorageKey): Promise<boolean> {
    return this.#inner.delete(key);
  }

  list(prefix: StorageKey): Promise<string[]> {
    return this.#inner.list(prefix);
  }

  rename(from: StorageKey, to: StorageKey): Promise<void> {
    return this.#inner.rename(from, to);
  }

  lock(name: string, options?: LockOptions): Promise<StorageLock> {
    return this.#inner.lock(name, options);
  }
}

function damaged(where: string, cause?: unknown): StorageError {
  return new StorageError(
    `Cannot decrypt ${where}: the encrypted value is damaged (truncated or altered since it was written) ` +
      `(restore it from a backup, or delete the value so nexo obtains a new one)`,
    cause === undefined ? {} : { cause },
  );
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && equalBytes(bytes.subarray(0, prefix.length), prefix);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
