import assert from "node:assert/strict";
import { type CertEntry, CertStore } from "./cert_store.ts";

const NOW = Date.parse("2030-01-01T00:00:00Z");
const DAY = 24 * 3600_000;

function entry(names: string[], overrides: Partial<CertEntry> = {}): CertEntry {
  return {
    certPem: `cert for ${names.join(",")}`,
    keyPem: `key for ${names.join(",")}`,
    names,
    notAfter: new Date(NOW + DAY),
    source: "file",
    ...overrides,
  };
}

function storeAt(now = NOW): CertStore {
  return new CertStore({ now: () => now });
}

Deno.test("CertStore.lookup() prefers an exact name over the wildcard", () => {
  const store = storeAt();
  const wildcard = entry(["*.example.com"]);
  const exact = entry(["api.example.com"]);
  store.set(wildcard);
  store.set(exact);
  assert.equal(store.lookup("api.example.com"), exact);
  assert.equal(store.lookup("web.example.com"), wildcard);
});

Deno.test("CertStore.lookup() matches a wildcard for exactly one label, never the apex or deeper names", () => {
  const store = storeAt();
  store.set(entry(["*.example.com"]));
  assert.ok(store.lookup("a.example.com"));
  assert.equal(store.lookup("example.com"), undefined);
  assert.equal(store.lookup("b.a.example.com"), undefined);
  assert.equal(store.lookup("a.example.org"), undefined);
  assert.equal(store.lookup(""), undefined);
  assert.equal(store.lookup("."), undefined);
  assert.equal(store.lookup("com"), undefined);
});

Deno.test("CertStore.lookup() ignores case and one trailing dot", () => {
  const store = storeAt();
  const wildcard = entry(["*.Example.COM"]);
  store.set(wildcard);
  store.set(entry(["Exact.Test"]));
  assert.equal(store.lookup("A.EXAMPLE.com"), wildcard);
  assert.ok(store.lookup("exact.test."));
  assert.ok(store.covers("EXACT.TEST"));
  assert.deepEqual(store.names(), ["*.example.com", "exact.test"]);
});

Deno.test("CertStore.lookup() skips expired entries and falls back to a valid wildcard", () => {
  let now = NOW;
  const store = new CertStore({ now: () => now });
  const wildcard = entry(["*.example.com"], { notAfter: new Date(NOW + 10 * DAY) });
  store.set(wildcard);
  store.set(entry(["api.example.com"], { notAfter: new Date(NOW + DAY) }));
  assert.notEqual(store.lookup("api.example.com"), wildcard);
  now = NOW + DAY; // notAfter itself counts as expired
  assert.equal(store.lookup("api.example.com"), wildcard);
  now = NOW + 10 * DAY;
  assert.equal(store.lookup("api.example.com"), undefined);
  assert.equal(store.covers("api.example.com"), false);
  assert.deepEqual(store.names(), ["*.example.com", "api.example.com"]);
});

Deno.test("CertStore.set() always replaces the entry for a name; the older one keeps its other names", () => {
  const store = storeAt();
  const old = entry(["a.test", "b.test"], { notAfter: new Date(NOW + 9 * DAY) });
  const newer = entry(["a.test"], { notAfter: new Date(NOW + DAY), source: "acme" });
  store.set(old);
  store.set(newer);
  assert.equal(store.lookup("a.test"), newer);
  assert.equal(store.lookup("b.test"), old);
});

Deno.test("CertStore.delete() removes one exact name only", () => {
  const store = storeAt();
  store.set(entry(["a.test", "*.a.test"]));
  assert.equal(store.delete("A.test"), true);
  assert.equal(store.delete("a.test"), false);
  assert.equal(store.lookup("a.test"), undefined);
  assert.ok(store.lookup("x.a.test"));
});

Deno.test("CertStore.resolve() returns the same key pair object for every hit", async () => {
  const store = storeAt();
  store.set(entry(["*.example.com"]));
  const first = await store.resolve("a.example.com");
  assert.equal(first?.cert, "cert for *.example.com");
  assert.equal(first?.key, "key for *.example.com");
  assert.equal(first?.notAfterMs, store.lookup("a.example.com")?.notAfter.getTime());
  assert.equal(await store.resolve("b.example.com"), first);
});

Deno.test("CertStore.resolve() without a miss handler resolves undefined on a miss", async () => {
  assert.equal(await storeAt().resolve("missing.test"), undefined);
});

Deno.test("CertStore.resolve() shares one miss-handler call among concurrent misses and stores the result", async () => {
  const store = storeAt();
  const calls: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  store.setMissHandler(async (name) => {
    calls.push(name);
    await gate;
    return entry([name], { source: "internal" });
  });
  const waiting = [store.resolve("Lazy.Test"), store.resolve("lazy.test"), store.resolve("other.test")];
  release();
  const [a, b, other] = await Promise.all(waiting);
  assert.deepEqual(calls, ["lazy.test", "other.test"]);
  assert.deepEqual([a?.cert, a?.key], ["cert for lazy.test", "key for lazy.test"]);
  assert.deepEqual(b, a);
  assert.equal(other?.cert, "cert for other.test");
  assert.equal(store.lookup("lazy.test")?.source, "internal");
  await store.resolve("lazy.test");
  assert.equal(calls.length, 2);
});

Deno.test("CertStore.resolve() caches nothing when the miss handler fails or declines", async () => {
  const store = storeAt();
  let calls = 0;
  store.setMissHandler((name) => {
    calls++;
    return calls === 1 ? Promise.reject(new Error(`cannot issue ${name}`)) : Promise.resolve(undefined);
  });
  await assert.rejects(store.resolve("flaky.test"), /cannot issue flaky\.test/);
  assert.equal(await store.resolve("flaky.test"), undefined);
  assert.equal(calls, 2);
  assert.equal(await store.resolve(""), undefined);
  assert.equal(calls, 2);
  store.setMissHandler(undefined);
  assert.equal(await store.resolve("flaky.test"), undefined);
  assert.equal(calls, 2);
});

Deno.test("CertStore.resolve() asks the miss handler again for a name whose entry has expired", async () => {
  let now = NOW;
  const store = new CertStore({ now: () => now });
  store.set(entry(["renew.test"], { notAfter: new Date(NOW + DAY) }));
  const fresh = entry(["renew.test"], { certPem: "fresh", notAfter: new Date(NOW + 3 * DAY) });
  store.setMissHandler(() => Promise.resolve(fresh));
  assert.notEqual((await store.resolve("renew.test"))?.cert, "fresh");
  now = NOW + 2 * DAY;
  assert.equal((await store.resolve("renew.test"))?.cert, "fresh");
  assert.equal(store.lookup("renew.test"), fresh);
});
