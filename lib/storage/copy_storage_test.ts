import assert from "node:assert/strict";
import { join } from "node:path";
import { CertRepository, type NewCertificate } from "./cert_repository.ts";
import { type CopyReport, copyStorage, isPrivateKey, isTransient } from "./copy_storage.ts";
import { FileStorage } from "./file_storage.ts";
import { RedisStorage } from "./redis_storage.ts";
import { RespClient } from "./resp_client.ts";
import { parseRedisUrl } from "./redis_url.ts";
import type { Storage, StorageKey, StorageLock, StoreOptions } from "./storage.ts";
import type { StoredCertificate } from "./cert_meta.ts";
import { LocalCa } from "../tls/local_ca.ts";
import { startRedis } from "../../tests/redis.ts";

const DAY = 24 * 60 * 60 * 1000;
const LE = "https://acme-v02.api.letsencrypt.org/directory";
const ACCOUNT_DIR = "acme/acme-v02.api.letsencrypt.org-directory";
const CLIENT_OPTIONS = { connectTimeoutMs: 2_000, commandTimeoutMs: 5_000 };

interface World {
  ca: LocalCa;
  tmp: string;
  /** A RedisStorage on a fresh redis-server under `prefix`. */
  redis(prefix: string): RedisStorage;
}

async function withWorld(fn: (world: World) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "nexo_copy_storage_" });
  await using redis = await startRedis();
  const client = new RespClient(parseRedisUrl(redis.url), CLIENT_OPTIONS);
  try {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    await fn({ ca, tmp, redis: (prefix) => new RedisStorage({ client, prefix }) });
  } finally {
    client.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

async function issue(ca: LocalCa, names: string[]): Promise<NewCertificate> {
  const issued = await ca.issue(names, { lifetimeMs: 7 * DAY });
  return { certPem: issued.certPem, keyPem: issued.keyPem, issuer: "acme", directoryUrl: LE };
}

/** What must survive a copy: everything but the location. */
function summarize(certificates: StoredCertificate[]): unknown[] {
  return certificates.map(({ location: _, ...rest }) => rest);
}

async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}

function nothingChanged(report: CopyReport): void {
  assert.deepEqual(report.copied, []);
  assert.deepEqual(report.conflicts, []);
  assert.ok(report.unchanged.length > 0);
}

Deno.test("copyStorage() moves a cert_dir and ACME accounts into Redis and back: same certificates, keys, modes", async () => {
  await withWorld(async ({ ca, tmp, redis }) => {
    const source = { certs: new FileStorage(join(tmp, "certs")), state: new FileStorage(join(tmp, "base")) };
    const original = new CertRepository(source);
    const names = ["example.com", "www.example.com"];
    await original.saveCertificate(names, await issue(ca, names));
    await original.saveCertificate(["*.example.org"], await issue(ca, ["*.example.org"]));
    await original.recordFailure(["never.example.net"], { error: "rate limited", nextAttemptAt: new Date() });
    const accountKey = (await issue(ca, ["account.invalid"])).keyPem;
    await original.saveAccount(LE, { keyPem: accountKey, url: `${LE}/acct/1`, email: "ops@example.com" });
    const expected = await original.loadCertificates();
    assert.equal(expected.certificates.length, 3);

    const cluster = { certs: redis("certs"), state: redis("state") };
    const intoRedis = await copyStorage(source.certs, cluster.certs, { prefixes: [""], overwrite: false });
    assert.deepEqual(intoRedis, {
      copied: [".never.example.net+pending/meta.json", "example.com", "wildcard_.example.org"],
      unchanged: [],
      conflicts: [],
      skipped: [],
    });
    const accounts = await copyStorage(source.state, cluster.state, { prefixes: ["acme"], overwrite: false });
    assert.deepEqual(accounts.copied, [`${ACCOUNT_DIR}/account.json`, `${ACCOUNT_DIR}/account.key`]);
    const onRedis = new CertRepository(cluster);
    assert.deepEqual(
      summarize((await onRedis.loadCertificates()).certificates),
      summarize(expected.certificates),
    );

    const back = { certs: new FileStorage(join(tmp, "certs2")), state: new FileStorage(join(tmp, "base2")) };
    await copyStorage(cluster.certs, back.certs, { prefixes: [""], overwrite: false });
    await copyStorage(cluster.state, back.state, { prefixes: [""], overwrite: false });
    const restored = new CertRepository(back);
    const loaded = await restored.loadCertificates();
    assert.deepEqual(loaded.problems, []);
    assert.deepEqual(summarize(loaded.certificates), summarize(expected.certificates));
    assert.deepEqual(await restored.loadAccount(LE), await original.loadAccount(LE));
    assert.equal((await restored.loadAccount(LE))?.keyPem, accountKey);

    // Redis keeps no file modes: the layout decides them, as saveCertificate and saveAccount did.
    for (const dir of ["example.com", "wildcard_.example.org"]) {
      assert.equal(await modeOf(join(tmp, "certs2", dir, "privkey.pem")), 0o600);
      assert.equal(await modeOf(join(tmp, "certs2", dir, "fullchain.pem")), 0o644);
    }
    assert.equal(await modeOf(join(tmp, "base2", ACCOUNT_DIR, "account.key")), 0o600);
    assert.equal(await modeOf(join(tmp, "base2", ACCOUNT_DIR, "account.json")), 0o600);

    // A second run, either way, writes nothing.
    nothingChanged(await copyStorage(source.certs, cluster.certs, { prefixes: [""], overwrite: false }));
    nothingChanged(await copyStorage(source.state, cluster.state, { prefixes: ["acme"], overwrite: false }));
    const again = await copyStorage(cluster.certs, back.certs, { prefixes: [""], overwrite: true });
    nothingChanged(again);
    assert.deepEqual(again.unchanged, [
      ".never.example.net+pending/meta.json",
      "example.com",
      "wildcard_.example.org",
    ]);
  });
});

/**
 * Storage that, after every change to the backing store, checks what a reader of the certificate "dir"
 * would see: each visible copy (dir, or dir+next during a swap) is one of `pairs`, whole.
 */
class PairCheckingStorage implements Storage {
  readonly #inner: Storage;
  readonly #dir: string;
  readonly #pairs: NewCertificate[];
  checks = 0;

  constructor(inner: Storage, dir: string, pairs: NewCertificate[]) {
    this.#inner = inner;
    this.#dir = dir;
    this.#pairs = pairs;
  }

  async #check(): Promise<void> {
    const top = await this.#inner.list("");
    const visible = [this.#dir, `${this.#dir}+next`].filter((entry) => top.includes(entry));
    assert.ok(visible.length > 0, `no copy of ${this.#dir} is visible`);
    for (const entry of visible) {
      const text = async (file: string) =>
        new TextDecoder().decode((await this.#inner.load(`${entry}/${file}`))!);
      const pair = { certPem: await text("fullchain.pem"), keyPem: await text("privkey.pem") };
      assert.ok(
        this.#pairs.some((known) => known.certPem === pair.certPem && known.keyPem === pair.keyPem),
        `${entry} holds a chain and a key of different issuances`,
      );
      this.checks++;
    }
  }

  load(key: StorageKey): Promise<Uint8Array | null> {
    return this.#inner.load(key);
  }
  async store(key: StorageKey, value: Uint8Array | string, options?: StoreOptions): Promise<void> {
    await this.#inner.store(key, value, options);
    await this.#check();
  }
  async delete(key: StorageKey): Promise<boolean> {
    const deleted = await this.#inner.delete(key);
    await this.#check();
    return deleted;
  }
  list(prefix: StorageKey): Promise<string[]> {
    return this.#inner.list(prefix);
  }
  async rename(from: StorageKey, to: StorageKey): Promise<void> {
    await this.#inner.rename(from, to);
    await this.#check();
  }
  lock(name: string): Promise<StorageLock> {
    return this.#inner.lock(name);
  }
  describe(key: StorageKey): string {
    return this.#inner.describe(key);
  }
}

Deno.test("copyStorage() reports a differing certificate as one conflict, and with overwrite replaces it whole", async () => {
  await withWorld(async ({ ca, tmp, redis }) => {
    const files = new FileStorage(join(tmp, "certs"));
    const mine = await issue(ca, ["example.com"]);
    await new CertRepository({ certs: files, state: files }).saveCertificate(["example.com"], mine);
    const cluster = redis("certs");
    const theirs = await issue(ca, ["example.com"]);
    const clusterRepository = new CertRepository({ certs: cluster, state: redis("state") });
    await clusterRepository.saveCertificate(["example.com"], theirs);
    await cluster.store("example.com/notes.txt", "a file only the destination has");

    const kept = await copyStorage(files, cluster, { prefixes: [""], overwrite: false });
    assert.deepEqual(kept, { copied: [], unchanged: [], conflicts: ["example.com"], skipped: [] });
    const untouched = (await clusterRepository.loadCertificates()).certificates[0];
    assert.deepEqual(untouched?.pair, { certPem: theirs.certPem, keyPem: theirs.keyPem });

    const checking = new PairCheckingStorage(cluster, "example.com", [mine, theirs]);
    const replaced = await copyStorage(files, checking, { prefixes: [""], overwrite: true });
    assert.deepEqual(replaced, { copied: ["example.com"], unchanged: [], conflicts: [], skipped: [] });
    assert.ok(checking.checks >= 5, `checked ${checking.checks} states of the swap`);
    assert.deepEqual(await cluster.list(""), ["example.com"], "no staging or old directory is left");
    assert.deepEqual(await cluster.list("example.com"), ["fullchain.pem", "meta.json", "privkey.pem"]);
    const now = (await clusterRepository.loadCertificates()).certificates[0];
    assert.deepEqual(now?.pair, { certPem: mine.certPem, keyPem: mine.keyPem });
    assert.deepEqual(
      await cluster.load("example.com/meta.json"),
      await files.load("example.com/meta.json"),
      "meta.json of the same issuance",
    );
  });
});

Deno.test("copyStorage() skips swap leftovers of an unrecovered source and reports them", async () => {
  await withWorld(async ({ ca, tmp, redis }) => {
    const files = new FileStorage(join(tmp, "certs"));
    const saved = await issue(ca, ["example.com"]);
    await new CertRepository({ certs: files, state: files }).saveCertificate(["example.com"], saved);
    const newer = await issue(ca, ["example.com"]);
    // A crash in a swap, between its commit (step 3) and its end, and a stray staging directory.
    await files.store("example.com+next/fullchain.pem", newer.certPem);
    await files.store("example.com+next/privkey.pem", newer.keyPem, { private: true });
    await files.store(".example.com+new/privkey.pem", newer.keyPem, { private: true });
    await files.store(".example.com+old/privkey.pem", saved.keyPem, { private: true });

    const cluster = redis("certs");
    const report = await copyStorage(files, cluster, { prefixes: [""], overwrite: false });
    assert.deepEqual(report.skipped, [".example.com+new", ".example.com+old", "example.com+next"]);
    assert.deepEqual(report.copied, ["example.com"]);
    assert.deepEqual(await cluster.list(""), ["example.com"]);
    assert.equal(new TextDecoder().decode((await cluster.load("example.com/privkey.pem"))!), saved.keyPem);
  });
});

Deno.test("isPrivateKey() and isTransient() follow nexo's layout", () => {
  assert.equal(isPrivateKey("example.com/privkey.pem"), true);
  assert.equal(isPrivateKey(".example.com+new/privkey.pem"), true);
  assert.equal(isPrivateKey(`${ACCOUNT_DIR}/account.key`), true);
  assert.equal(isPrivateKey(`${ACCOUNT_DIR}/account.json`), true);
  assert.equal(isPrivateKey("example.com/fullchain.pem"), false);
  assert.equal(isPrivateKey("example.com/meta.json"), false);
  assert.equal(isPrivateKey("account.json/meta.json"), false);
  for (const key of ["example.com+next", ".example.com+new", ".example.com+old", "acme/x/.y+new", ".locks"]) {
    assert.equal(isTransient(key), true, key);
  }
  for (const key of ["example.com", ".example.com+pending", "acme", "example.com+nextx"]) {
    assert.equal(isTransient(key), false, key);
  }
});
