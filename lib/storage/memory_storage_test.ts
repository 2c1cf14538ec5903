import assert from "node:assert/strict";
import { MemoryStorage } from "./memory_storage.ts";
import { runStorageConformance } from "./storage_conformance.ts";

runStorageConformance("MemoryStorage", () => {
  return Promise.resolve({ storage: new MemoryStorage(), close: () => Promise.resolve() });
}, { crossProcess: false });

Deno.test("MemoryStorage.isPrivate() reports the private option a key was stored with", async () => {
  const storage = new MemoryStorage();
  await storage.store("key.pem", "secret", { private: true });
  await storage.store("cert.pem", "public");
  assert.equal(storage.isPrivate("key.pem"), true);
  assert.equal(storage.isPrivate("cert.pem"), false);
  assert.equal(storage.isPrivate("absent"), false);
});
