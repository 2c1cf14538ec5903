import assert from "node:assert/strict";
import { join } from "node:path";
import { CertRepository, type NewCertificate } from "./cert_repository.ts";
import { FileStorage } from "./file_storage.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { loadText, withLock } from "./storage.ts";
import { CrashingStorage, SimulatedCrash } from "./testdata/crashing_storage.ts";
import { loadCertDir } from "../tls/cert_files.ts";
import { CertStore } from "../tls/cert_store.ts";
import { LocalCa } from "../tls/local_ca.ts";

const DAY = 24 * 60 * 60 * 1000;
const LE = "https://acme-v02.api.letsencrypt.org/directory";

interface Dirs {
  ca: LocalCa;
  certDir: string;
  baseDir: string;
}

async function withDirs(fn: (dirs: Dirs) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "nexo_cert_repository_" });
  try {
    const ca = await LocalCa.loadOrCreate(join(tmp, "ca"));
    await fn({ ca, certDir: join(tmp, "certs"), baseDir: join(tmp, "base") });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

function fileRepository(
  dirs: Dirs,
  wrap = (s: FileStorage): FileStorage | CrashingStorage => s,
): CertRepository {
  return new CertRepository({
    certs: wrap(new FileStorage(dirs.certDir)),
    state: new FileStorage(dirs.baseDir),
  });
}

async function issue(dirs: Dirs, names: string[], lifetimeDays = 7): Promise<NewCertificate> {
  const issued = await dirs.ca.issue(names, { lifetimeMs: lifetimeDays * DAY });
  return { certPem: issued.certPem, keyPem: issued.keyPem, issuer: "acme", directoryUrl: LE };
}

async function serve(certDir: string): Promise<{ store: CertStore; loaded: number; errors: string[] }> {
  const store = new CertStore();
  const result = await loadCertDir(certDir, store);
  return { store, loaded: result.loaded.length, errors: result.errors };
}

async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}

Deno.test("saveCertificate() writes the certbot layout that loadCertDir serves, key 0600, wildcard_ directory", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    const cert = await issue(dirs, ["*.example.com", "example.com"]);
    const saved = await repository.saveCertificate(["*.Example.com", "example.com"], cert);
    const dir = join(dirs.certDir, "wildcard_.example.com");
    assert.equal(saved.dir, "wildcard_.example.com");
    assert.equal(saved.location, dir);
    assert.equal(await modeOf(join(dir, "privkey.pem")), 0o600);
    assert.equal(await modeOf(dir), 0o700);
    assert.equal(await Deno.readTextFile(join(dir, "fullchain.pem")), cert.certPem);

    const { store, loaded, errors } = await serve(dirs.certDir);
    assert.deepEqual(errors, []);
    assert.equal(loaded, 1);
    assert.equal(store.lookup("www.example.com")?.keyPem, cert.keyPem);

    const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
    assert.deepEqual(Object.keys(meta), [
      "names",
      "issuer",
      "directory_url",
      "not_before",
      "not_after",
      "issued_at",
      "last_error",
      "failures",
      "last_failure_at",
      "next_attempt_at",
    ]);
    assert.deepEqual(meta.names, ["*.example.com", "example.com"]);
    assert.equal(meta.issuer, "acme");
    assert.equal(meta.directory_url, LE);
    assert.equal(meta.not_after, saved.notAfter?.toISOString());
    assert.equal(meta.failures, 0);
  });
});

/**
 * Saves `next` over `previous` (or over nothing) with a crash injected at every write in turn, and checks
 * the invariant at each: loadCertDir serves a complete, matching pair (old before the commit, new after),
 * and the next process's loadCertificates() recovers to exactly one directory.
 */
async function checkCrashAtEveryStep(dirs: Dirs, withPrevious: boolean): Promise<void> {
  const previous = await issue(dirs, ["example.com"], 7);
  const next = await issue(dirs, ["example.com"], 14); // expires later, so loadCertDir prefers it
  // A dry run on a counting wrapper lists the writes a save makes, so that each can be the crash point.
  const probe = new CrashingStorage(new FileStorage(dirs.certDir), Infinity);
  const probing = new CertRepository({ certs: probe, state: new MemoryStorage() });
  if (withPrevious) await probing.saveCertificate(["example.com"], previous);
  const before = probe.writes.length;
  await probing.saveCertificate(["example.com"], next);
  const steps = probe.writes.slice(before);
  const commit = steps.indexOf("rename .example.com+new -> example.com+next");
  assert.ok(commit > 0, steps.join("; "));

  for (let crashAt = 0; crashAt <= steps.length; crashAt++) {
    await Deno.remove(dirs.certDir, { recursive: true }).catch(() => {});
    if (withPrevious) await fileRepository(dirs).saveCertificate(["example.com"], previous);
    const saving = fileRepository(dirs, (s) => new CrashingStorage(s, crashAt))
      .saveCertificate(["example.com"], next);
    if (crashAt < steps.length) await assert.rejects(saving, SimulatedCrash);
    else await saving;
    const committed = crashAt > commit;
    const expected = committed ? next : withPrevious ? previous : undefined;
    const at = `crash at ${crashAt} (${steps[crashAt] ?? "none"})`;

    const crashed = await serve(dirs.certDir);
    assert.deepEqual(crashed.errors, [], `${at}: loadCertDir finds no broken pair`);
    assert.equal(crashed.store.lookup("example.com")?.certPem, expected?.certPem, at);
    assert.equal(crashed.store.lookup("example.com")?.keyPem, expected?.keyPem, at);

    const restarted = await fileRepository(dirs).loadCertificates();
    assert.deepEqual(restarted.problems, [], at);
    assert.deepEqual(
      restarted.certificates.map((c) => c.pair?.certPem),
      expected ? [expected.certPem] : [],
      at,
    );
    const left = await new FileStorage(dirs.certDir).list("");
    assert.deepEqual(left, expected ? ["example.com"] : [], `${at}: recovery leaves one directory`);
    const recovered = await serve(dirs.certDir);
    assert.deepEqual([recovered.loaded, recovered.errors], [expected ? 1 : 0, []], at);
  }
}

Deno.test("saveCertificate() crashed at any step over an old certificate always leaves a servable matching pair", async () => {
  await withDirs((dirs) => checkCrashAtEveryStep(dirs, true));
});

Deno.test("saveCertificate() crashed at any step of a first save leaves nothing or the new pair, never a half", async () => {
  await withDirs((dirs) => checkCrashAtEveryStep(dirs, false));
});

Deno.test("recordFailure() updates meta.json and leaves the working chain and key byte for byte", async () => {
  await withDirs(async (dirs) => {
    let now = Date.UTC(2025, 5, 1);
    const repository = new CertRepository({
      certs: new FileStorage(dirs.certDir),
      state: new FileStorage(dirs.baseDir),
      now: () => now,
    });
    const cert = await issue(dirs, ["example.com"]);
    await repository.saveCertificate(["example.com"], cert);
    const dir = join(dirs.certDir, "example.com");
    const before = await Promise.all(
      ["fullchain.pem", "privkey.pem"].map((f) => Deno.readFile(join(dir, f))),
    );
    await repository.recordFailure(["example.com"], { error: "first", nextAttemptAt: new Date(now + 1000) });
    now += 5000;
    const meta = await repository.recordFailure(["example.com"], {
      error: "urn:ietf:params:acme:error:dns: NXDOMAIN",
      nextAttemptAt: new Date(now + 7200_000),
    });
    assert.equal(meta.failures, 2);
    const after = await Promise.all(["fullchain.pem", "privkey.pem"].map((f) => Deno.readFile(join(dir, f))));
    assert.deepEqual(after, before);
    const [stored] = (await repository.loadCertificates()).certificates;
    assert.equal(stored?.failures, 2);
    assert.equal(stored?.lastError, "urn:ietf:params:acme:error:dns: NXDOMAIN");
    assert.equal(stored?.lastFailureAt?.getTime(), now);
    assert.equal(stored?.nextAttemptAt?.getTime(), now + 7200_000);
    assert.equal(stored?.pair?.keyPem, cert.keyPem);
    assert.equal(stored?.managed, true);
  });
});

Deno.test("recordFailure() for a certificate never issued keeps a hidden record that loadCertDir skips", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    await repository.recordFailure(["new.example.com"], { error: "timeout", nextAttemptAt: new Date(0) });
    assert.deepEqual(await serve(dirs.certDir).then((r) => [r.loaded, r.errors]), [0, []]);
    const { certificates } = await repository.loadCertificates();
    assert.equal(certificates.length, 1);
    assert.equal(certificates[0]?.dir, "new.example.com");
    assert.equal(certificates[0]?.pair, null);
    assert.equal(certificates[0]?.failures, 1);

    const saved = await repository.saveCertificate(
      ["new.example.com"],
      await issue(dirs, ["new.example.com"]),
    );
    assert.equal(saved.failures, 0);
    assert.deepEqual(await new FileStorage(dirs.certDir).list(""), ["new.example.com"], "the record is gone");
  });
});

Deno.test("recordRenewalInfo() keeps the CA's window through a failure and is cleared by the next certificate", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    const info = {
      certId: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
      windowStart: new Date("2025-06-01T00:00:00Z"),
      windowEnd: new Date("2025-06-03T00:00:00Z"),
      renewAt: new Date("2025-06-02T07:30:00Z"),
      explanationUrl: null,
    };
    assert.equal(await repository.recordRenewalInfo(["example.com"], info), false, "nothing stored yet");
    await repository.saveCertificate(["example.com"], await issue(dirs, ["example.com"]));
    assert.equal(await repository.recordRenewalInfo(["example.com"], info), true);
    await repository.recordFailure(["example.com"], { error: "timeout", nextAttemptAt: new Date(0) });
    const [stored] = (await repository.loadCertificates()).certificates;
    assert.deepEqual(stored?.renewalInfo, info);
    assert.equal(stored?.failures, 1, "the failure record went in beside it");

    await repository.saveCertificate(["example.com"], await issue(dirs, ["example.com"]));
    const [renewed] = (await repository.loadCertificates()).certificates;
    assert.equal(renewed?.renewalInfo, null, "a new certificate starts without a window");
  });
});

Deno.test("saveCertificate() refuses to replace a directory nexo did not write and leaves it untouched", async () => {
  await withDirs(async (dirs) => {
    const own = await issue(dirs, ["example.com"]);
    const dir = join(dirs.certDir, "example.com");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "fullchain.pem"), own.certPem);
    await Deno.writeTextFile(join(dir, "privkey.pem"), own.keyPem);
    const repository = fileRepository(dirs);
    await assert.rejects(
      repository.saveCertificate(["example.com"], await issue(dirs, ["example.com"])),
      /holds a certificate nexo did not write \(it has no meta\.json\); move that directory elsewhere/,
    );
    assert.equal(await Deno.readTextFile(join(dir, "fullchain.pem")), own.certPem);
    await repository.recordFailure(["example.com"], { error: "not managed", nextAttemptAt: new Date(0) });
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir), (entry) => entry.name).then((n) => n.sort()), [
      "fullchain.pem",
      "privkey.pem",
    ]);
    const [stored] = (await repository.loadCertificates()).certificates;
    assert.equal(stored?.managed, false);
    assert.equal(stored?.pair?.certPem, own.certPem);
    assert.equal(stored?.lastError, "not managed");
  });
});

Deno.test("saveCertificate() rejects a key that does not match or names the chain does not cover, writing nothing", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    const a = await issue(dirs, ["example.com"]);
    const b = await issue(dirs, ["example.com"]);
    await assert.rejects(
      repository.saveCertificate(["example.com"], { ...a, keyPem: b.keyPem }),
      /^CertificateError: Cannot save the certificate for example\.com: Private key does not belong to certificate/,
    );
    await assert.rejects(
      repository.saveCertificate(["example.com", "www.example.com"], a),
      /it does not cover www\.example\.com/,
    );
    await assert.rejects(repository.saveCertificate(["../etc"], a), /is not a DNS name/);
    assert.deepEqual(await new FileStorage(dirs.certDir).list(""), []);
  });
});

Deno.test("loadCertificates() reports a corrupt meta.json and a damaged chain but still lists both", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    await repository.saveCertificate(["a.example"], await issue(dirs, ["a.example"]));
    await repository.saveCertificate(["b.example"], await issue(dirs, ["b.example"]));
    await Deno.writeTextFile(join(dirs.certDir, "a.example", "meta.json"), "{ not json");
    await Deno.writeTextFile(join(dirs.certDir, "b.example", "fullchain.pem"), "garbage");
    const { certificates, problems } = await repository.loadCertificates();
    assert.deepEqual(certificates.map((c) => [c.dir, c.names, c.pair !== null]), [
      ["a.example", ["a.example"], true],
      ["b.example", ["b.example"], false],
    ]);
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? "", /a\.example\/meta\.json": it is not valid JSON \(nexo rewrites it/);
    assert.match(problems[1] ?? "", /b\.example\/fullchain\.pem.*no certificate found.*nexo reissues it/);
  });
});

Deno.test("lockIssuance() makes a second issuer of the same certificate wait, whatever the names' case", async () => {
  const storage = new MemoryStorage();
  const one = new CertRepository({ certs: storage, state: new MemoryStorage() });
  const two = new CertRepository({ certs: storage, state: new MemoryStorage() });
  const order: string[] = [];
  const first = withLock(one.lockIssuance(["*.example.com"]), async () => {
    order.push("first start");
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push("first end");
  });
  const second = withLock(two.lockIssuance(["*.EXAMPLE.com", "example.com"]), () => {
    order.push("second");
    return Promise.resolve();
  });
  await Promise.all([first, second]);
  assert.deepEqual(order, ["first start", "first end", "second"]);
});

Deno.test("saveAccount() keeps one account per ACME directory, key and json 0600, and loadAccount() reads it", async () => {
  await withDirs(async (dirs) => {
    const repository = fileRepository(dirs);
    const pebble = "https://localhost:14000/dir";
    assert.equal(await repository.loadAccount(pebble), null);
    await repository.saveAccount(pebble, {
      keyPem: "KEY-A",
      url: "https://localhost:14000/acct/1",
      email: null,
    });
    await repository.saveAccount(LE, { keyPem: "KEY-B", url: "https://le/acct/2", email: "ops@example.com" });
    const pebbleDir = join(dirs.baseDir, "acme", "localhost_14000-dir");
    assert.equal(await modeOf(join(pebbleDir, "account.key")), 0o600);
    assert.equal(await modeOf(join(pebbleDir, "account.json")), 0o600);
    assert.deepEqual(await repository.loadAccount(pebble), {
      keyPem: "KEY-A",
      url: "https://localhost:14000/acct/1",
      email: null,
    });
    assert.deepEqual(await repository.loadAccount(LE), {
      keyPem: "KEY-B",
      url: "https://le/acct/2",
      email: "ops@example.com",
    });
    assert.ok(
      (await Deno.stat(join(dirs.baseDir, "acme", "acme-v02.api.letsencrypt.org-directory"))).isDirectory,
    );
  });
});

Deno.test("loadAccount() returns the key without a URL when account.json is missing or belongs to another key", async () => {
  const state = new MemoryStorage();
  const repository = new CertRepository({ certs: new MemoryStorage(), state });
  await repository.saveAccount(LE, { keyPem: "OLD", url: "https://le/acct/1", email: null });
  // A crash between the two writes of a later save: the new key beside the old account.json.
  await state.store("acme/acme-v02.api.letsencrypt.org-directory/account.key", "NEW", { private: true });
  assert.deepEqual(await repository.loadAccount(LE), { keyPem: "NEW", url: null, email: null });
  await state.delete("acme/acme-v02.api.letsencrypt.org-directory/account.json");
  assert.deepEqual(await repository.loadAccount(LE), { keyPem: "NEW", url: null, email: null });
  assert.equal(await loadText(state, "acme/acme-v02.api.letsencrypt.org-directory/account.key"), "NEW");
});

Deno.test("loadAccount() refuses an account saved for another directory URL with the same sanitized name", async () => {
  const repository = new CertRepository({ certs: new MemoryStorage(), state: new MemoryStorage() });
  await repository.saveAccount("https://ca.example/a/b", {
    keyPem: "K",
    url: "https://ca.example/acct/1",
    email: null,
  });
  await assert.rejects(
    repository.loadAccount("https://ca.example/a-b"),
    /it belongs to https:\/\/ca\.example\/a\/b \(move that directory away/,
  );
});
