import assert from "node:assert/strict";
import { EncryptedStorage, parseEncryptionKey } from "./encrypted_storage.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { loadText, StorageError } from "./storage.ts";
import { runStorageConformance } from "./storage_conformance.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
const SECRET = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n";
const MAGIC = "nexo-aes256gcm-v1\n";

runStorageConformance("EncryptedStorage", async () => {
  return { storage: await EncryptedStorage.create(new MemoryStorage(), KEY), close: () => Promise.resolve() };
}, { crossProcess: false });

async function open(key = KEY): Promise<{ inner: MemoryStorage; storage: EncryptedStorage }> {
  const inner = new MemoryStorage();
  return { inner, storage: await EncryptedStorage.create(inner, key) };
}

const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes ?? new Uint8Array());

Deno.test("EncryptedStorage.store() seals a private value: magic first, no plaintext", async () => {
  const { inner, storage } = await open();
  await storage.store("example.com/privkey.pem", SECRET, { private: true });
  const raw = decode(await inner.load("example.com/privkey.pem"));
  assert.ok(raw.startsWith(MAGIC));
  assert.ok(!raw.includes("PRIVATE KEY"));
  assert.ok(!raw.includes("MIGHAgEAMBMG"));
  assert.equal(
    inner.isPrivate("example.com/privkey.pem"),
    true,
    "the private option reaches the inner storage",
  );
});

Deno.test("EncryptedStorage.store() passes a non-private value through byte-identical", async () => {
  const { inner, storage } = await open();
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  await storage.store("example.com/cert.pem", bytes);
  await storage.store("example.com/meta.json", '{"a":1}');
  assert.deepEqual(await inner.load("example.com/cert.pem"), bytes);
  assert.equal(await loadText(inner, "example.com/meta.json"), '{"a":1}');
  assert.equal(inner.isPrivate("example.com/cert.pem"), false);
});

Deno.test("EncryptedStorage.load() returns a private value as stored, strings and bytes alike", async () => {
  const { storage } = await open();
  await storage.store("k.pem", SECRET, { private: true });
  assert.equal(await loadText(storage, "k.pem"), SECRET);
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) % 256);
  await storage.store("bin", bytes, { private: true });
  assert.deepEqual(await storage.load("bin"), bytes);
  await storage.store("empty", "", { private: true });
  assert.deepEqual(await storage.load("empty"), new Uint8Array());
});

Deno.test("EncryptedStorage.store() of one value twice gives different ciphertexts (random IV)", async () => {
  const { inner, storage } = await open();
  await storage.store("a", SECRET, { private: true });
  await storage.store("b", SECRET, { private: true });
  assert.notDeepEqual(await inner.load("a"), await inner.load("b"));
  assert.equal(await loadText(storage, "a"), await loadText(storage, "b"));
});

Deno.test("EncryptedStorage.load() of a value sealed under another key asks for that key file", async () => {
  const inner = new MemoryStorage();
  const writer = await EncryptedStorage.create(inner, OTHER_KEY);
  const reader = await EncryptedStorage.create(inner, KEY);
  await writer.store("acme/account.key", SECRET, { private: true });
  const error = await reader.load("acme/account.key").then(() => null, (error: unknown) => error);
  assert.ok(error instanceof StorageError);
  assert.equal(
    error.message,
    "Cannot decrypt memory:acme/account.key: it was encrypted with another key than " +
      "storage.encryption_key_file (restore the key file it was written with, or delete the value so nexo " +
      "obtains a new one)",
  );
});

Deno.test("EncryptedStorage.load() of an altered or truncated sealed value rejects as damaged", async () => {
  const { inner, storage } = await open();
  await storage.store("k.pem", SECRET, { private: true });
  const sealed = (await inner.load("k.pem"))!;
  const flipped = sealed.slice();
  flipped[sealed.length - 20]! ^= 0x01; // a ciphertext byte, before the 16-byte tag
  await inner.store("k.pem", flipped);
  const error = await storage.load("k.pem").then(() => null, (error: unknown) => error);
  assert.ok(error instanceof StorageError);
  assert.match(
    error.message,
    /^Cannot decrypt memory:k\.pem: the encrypted value is damaged .*delete the value/,
  );
  assert.ok(!error.message.includes("PRIVATE KEY"));
  for (const length of [sealed.length - 1, MAGIC.length + 8 + 12, MAGIC.length + 3]) {
    await inner.store("k.pem", sealed.slice(0, length));
    await assert.rejects(storage.load("k.pem"), (error) => {
      return error instanceof StorageError && error.message.includes("is damaged");
    }, `truncated to ${length} bytes`);
  }
});

Deno.test("EncryptedStorage.load() returns a value stored before encryption was on unchanged", async () => {
  const { inner, storage } = await open();
  await inner.store("old/privkey.pem", SECRET, { private: true });
  assert.equal(await loadText(storage, "old/privkey.pem"), SECRET);
});

Deno.test("EncryptedStorage passes describe, list, rename, delete and lock to inner", async () => {
  const { inner, storage } = await open();
  assert.equal(storage.describe("a/b"), inner.describe("a/b"));
  await storage.store(".new/privkey.pem", SECRET, { private: true });
  await storage.rename(".new", "live");
  assert.deepEqual(await inner.list(""), ["live"]);
  assert.equal(await loadText(storage, "live/privkey.pem"), SECRET, "a renamed value still decrypts");
  assert.equal(await storage.delete("live"), true);
  assert.equal(await inner.load("live/privkey.pem"), null);
  const held = await storage.lock("issue/example.com");
  const controller = new AbortController();
  const waiting = inner.lock("issue/example.com", { signal: controller.signal });
  controller.abort(new Error("still held"));
  await assert.rejects(waiting, /still held/);
  await held.release();
});

Deno.test("EncryptedStorage.create() rejects a key that is not 32 bytes", async () => {
  await assert.rejects(
    EncryptedStorage.create(new MemoryStorage(), new Uint8Array(16)),
    /32-byte key, got 16/,
  );
});

Deno.test("parseEncryptionKey() reads 44 base64 characters or 64 hex digits, trimming whitespace", () => {
  const base64 = KEY.toBase64();
  assert.equal(base64.length, 44);
  assert.deepEqual(parseEncryptionKey(base64, "/etc/nexo/storage.key"), KEY);
  assert.deepEqual(parseEncryptionKey(`${base64}\n`, "/etc/nexo/storage.key"), KEY);
  assert.deepEqual(parseEncryptionKey(KEY.toHex(), "/etc/nexo/storage.key"), KEY);
  assert.deepEqual(parseEncryptionKey(`  ${KEY.toHex().toUpperCase()}\r\n`, "/etc/nexo/storage.key"), KEY);
});

Deno.test("parseEncryptionKey() rejects bad text, naming the file and fix, not the text", () => {
  const source = "/etc/nexo/storage.key";
  const texts = [
    "",
    "\n",
    new Uint8Array(16).fill(0xab).toBase64(), // 16 bytes
    Uint8Array.from({ length: 33 }, (_, i) => i * 5).toBase64(), // 33 bytes
    KEY.toBase64().slice(0, -1), // padding missing
    KEY.toHex().slice(2), // 31 bytes in hex
    `${KEY.toHex()}zz`,
    "correct horse battery staple, the key is hunter2\n",
    `${KEY.toBase64()}\n${KEY.toBase64()}\n`, // two keys
  ];
  for (const text of texts) {
    assert.throws(() => parseEncryptionKey(text, source), (error: Error) => {
      assert.ok(error.message.includes(source), error.message);
      assert.ok(error.message.includes(`openssl rand -base64 32 > ${source} && chmod 600 ${source}`));
      for (let i = 0; i + 6 <= text.trim().length; i++) {
        const fragment = text.trim().slice(i, i + 6);
        assert.ok(!error.message.includes(fragment), `the message quotes ${JSON.stringify(fragment)}`);
      }
      return true;
    });
  }
});
