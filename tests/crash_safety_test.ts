// Crash safety of the whole process: the real CLI against real Pebble (HTTP-01 through http_listen) while
// its state directory fills up, turns read-only, or the process is killed with SIGKILL at random moments of
// issuance and storage. What must hold: a failed write never tears or replaces a working certificate, the
// error names the path and the fix, serving goes on, and a restart finds every file whole and serves again.
// Storage-level versions of these faults (one FileStorage call) are in lib/storage/file_storage_test.ts.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type CertMeta, decodeMeta } from "../lib/storage/cert_meta.ts";
import { computeFingerprint } from "../lib/tls/pem.ts";
import { type AcmeWorld, servedFingerprint, startAcmeWorld } from "./acme_world.ts";
import { assertStateWhole, type Leftovers, listFiles, recoverCopy } from "./cert_state.ts";
import { type NexoProcess, startNexo } from "./harness.ts";
import { Rng } from "./fuzz.ts";
import { canMountTmpfs, fillLeaving, runOrThrow, withTmpfs } from "./tmpfs.ts";

const HOST = "crash.example.net";

// A full or read-only disk needs a file system of our own: a tmpfs, which only root may mount. Outside CI
// (a developer's laptop) the disk tests are ignored without it; in CI (CI is set) they run and fail loudly,
// so a runner that lost root cannot turn them into silent passes.
const IGNORE_DISK_TESTS = !(await canMountTmpfs()) && Deno.env.get("CI") === undefined;

/** Resolves once no lock file is left under `certDir` (a job releases its locks just after it posts). */
async function waitForLocksReleased(certDir: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await listFiles(join(certDir, ".locks"))).length > 0) {
    if (Date.now() > deadline) throw new Error(`locks still held under ${certDir} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The three files of the certificate directory `dir`, as bytes. */
async function readCertFiles(dir: string): Promise<Record<"chain" | "key" | "meta", Uint8Array>> {
  return {
    chain: await Deno.readFile(join(dir, "fullchain.pem")),
    key: await Deno.readFile(join(dir, "privkey.pem")),
    meta: await Deno.readFile(join(dir, "meta.json")),
  };
}

async function fingerprintOf(chain: Uint8Array): Promise<string> {
  return await computeFingerprint(new TextDecoder().decode(chain));
}

function installs(nexo: NexoProcess): number {
  return nexo.logs.filter((l) => l.msg === "certificate installed" && l.names === HOST).length;
}

/** What `renewOnBrokenDisk` saw. */
interface BrokenDiskOutcome {
  /** The first "certificate failed" log line. */
  failed: Record<string, unknown>;
  logs: Array<Record<string, unknown>>;
  /** meta.json before the disk broke, and right after the failed renewal. */
  metaBefore: CertMeta;
  metaAfterFailure: CertMeta;
}

/** What `withCertificateOnTmpfs` hands its body: nexo serving its first certificate from a small tmpfs. */
interface CertificateOnTmpfs {
  world: AcmeWorld;
  nexo: NexoProcess;
  baseDir: string;
  certDir: string;
  /** The certificate directory's files right after the first issuance. */
  before: Record<"chain" | "key" | "meta", Uint8Array>;
}

/**
 * Runs `body` with nexo on a 512 KiB tmpfs (base_dir, so account, locks and certificates all live there),
 * once it has its first certificate from Pebble and serves it. 20 s certificates are due for renewal after
 * 10 s (renew_before is clamped to half their life), which leaves 10 s in which the old one is still valid.
 */
async function withCertificateOnTmpfs(body: (context: CertificateOnTmpfs) => Promise<void>): Promise<void> {
  const world = await startAcmeWorld(HOST, 20);
  try {
    await withTmpfs(512, async (baseDir) => {
      const certDir = join(baseDir, "certs");
      const nexo = await startNexo(world.config, { dir: baseDir });
      try {
        await nexo.waitForLog((l) => l.msg === "certificate installed" && l.names === HOST, 60_000);
        await waitForLocksReleased(certDir);
        const before = await readCertFiles(join(certDir, HOST));
        await body({ world, nexo, baseDir, certDir, before });
      } finally {
        await nexo.stop();
      }
    });
  } finally {
    await world.stop();
  }
}

/**
 * A renewal on a broken disk that fails before ordering (the setup is withCertificateOnTmpfs's): `breakDisk`
 * runs before the renewal is due; the renewal must fail with the message `expectedError` matches, leave the
 * chain and key byte-identical and keep them served; `repairDisk` fixes the disk and the next retry must renew.
 */
async function renewOnBrokenDisk(
  options: {
    breakDisk: (baseDir: string) => Promise<void>;
    repairDisk: (baseDir: string) => Promise<void>;
    expectedError: (certDir: string) => RegExp;
  },
): Promise<BrokenDiskOutcome> {
  let result: BrokenDiskOutcome | undefined;
  await withCertificateOnTmpfs(async ({ world, nexo, baseDir, certDir, before }) => {
    const oldFingerprint = await fingerprintOf(before.chain);
    assert.equal(await servedFingerprint(nexo, HOST, world.rootPem), oldFingerprint);

    await options.breakDisk(baseDir);
    const failed = await nexo.waitForLog(
      (l) => l.msg === "certificate failed" && l.names === HOST,
      30_000,
    );
    assert.equal(installs(nexo), 1, "the renewal did not happen");
    assert.match(String(failed.error), options.expectedError(certDir));
    const after = await readCertFiles(join(certDir, HOST));
    assert.deepEqual(after.chain, before.chain, "fullchain.pem is byte-identical");
    assert.deepEqual(after.key, before.key, "privkey.pem is byte-identical");
    assert.equal(
      await servedFingerprint(nexo, HOST, world.rootPem),
      oldFingerprint,
      "the old certificate is still served",
    );

    await options.repairDisk(baseDir);
    const repairedAt = nexo.logs.length;
    await nexo.waitForLog(
      (l) => l.msg === "certificate installed" && l.names === HOST && nexo.logs.indexOf(l) >= repairedAt,
      30_000,
    );
    await waitForLocksReleased(certDir);
    const renewed = await readCertFiles(join(certDir, HOST));
    assert.notDeepEqual(renewed.chain, before.chain, "a new certificate was stored");
    assert.equal(await servedFingerprint(nexo, HOST, world.rootPem), await fingerprintOf(renewed.chain));
    const meta = decodeMeta(new TextDecoder().decode(renewed.meta), "meta.json");
    assert.equal(meta.failures, 0, "the success cleared the failure count");
    assert.equal(meta.lastError, null);
    assert.deepEqual(
      (await listFiles(certDir)).filter((path) => !path.startsWith(".locks/")),
      [`${HOST}/fullchain.pem`, `${HOST}/meta.json`, `${HOST}/privkey.pem`],
      "no staging directory, swap leftover or temp file is left",
    );
    result = {
      failed,
      logs: nexo.logs,
      metaBefore: decodeMeta(new TextDecoder().decode(before.meta), "meta.json"),
      metaAfterFailure: decodeMeta(new TextDecoder().decode(after.meta), "meta.json"),
    };
  });
  return result!;
}

/** Escapes `text` for use inside a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test({
  name: "a renewal whose write hits a full disk serves the new certificate from memory, names the file and " +
    "the fix, never orders again while it waits, and writes exactly that certificate once space is freed",
  ignore: IGNORE_DISK_TESTS,
  fn: async () => {
    await withCertificateOnTmpfs(async ({ world, nexo, baseDir, certDir, before }) => {
      // Three pages: the issuance lock and the write lock take one each, the new key fits in the third,
      // and the new chain does not. So the disk fills up in the middle of writing the renewed certificate.
      const filler = await fillLeaving(baseDir, 3);
      const kept = await nexo.waitForLog(
        (l) => l.msg === "certificate kept in memory" && l.names === HOST,
        30_000,
      );
      assert.match(
        String(kept.error),
        new RegExp(
          `^Cannot write "${literal(certDir)}/\\.${literal(HOST)}\\+new/fullchain\\.pem": the disk is ` +
            `full \\(free space on the file system that holds it \\(df -h\\); nexo keeps its current ` +
            `files and retries\\)$`,
        ),
      );
      // The new certificate is served at once; the files on disk are the old ones, byte for byte.
      assert.equal(installs(nexo), 2);
      const served = await servedFingerprint(nexo, HOST, world.rootPem);
      assert.notEqual(served, await fingerprintOf(before.chain), "the renewed certificate is served");
      const onDisk = await readCertFiles(join(certDir, HOST));
      assert.deepEqual(onDisk.chain, before.chain, "fullchain.pem is byte-identical");
      assert.deepEqual(onDisk.key, before.key, "privkey.pem is byte-identical");
      // Writes are retried (retry_interval 1 s, doubling); no order is placed for the same names.
      await nexo.waitForLog((l) => l.msg === "certificate still not stored" && l.names === HOST, 30_000);
      const orders = () => nexo.logs.filter((l) => l.msg === "certificate order started").length;
      const ordersWhileFull = orders();

      await Deno.remove(filler);
      const stored = await nexo.waitForLog(
        (l) => l.msg === "certificate stored" && l.names === HOST,
        30_000,
      );
      assert.ok(Number(stored.after_attempts) >= 3);
      await waitForLocksReleased(certDir);
      const written = await readCertFiles(join(certDir, HOST));
      assert.equal(await fingerprintOf(written.chain), served, "exactly the served certificate was written");
      assert.equal(orders(), ordersWhileFull, "no second order for names whose certificate was waiting");
      assert.equal(orders(), 2, "one first issuance and one renewal");
      assert.equal(decodeMeta(new TextDecoder().decode(written.meta), "meta.json").failures, 0);
      assert.deepEqual(
        (await listFiles(certDir)).filter((path) => !path.startsWith(".locks/")),
        [`${HOST}/fullchain.pem`, `${HOST}/meta.json`, `${HOST}/privkey.pem`],
        "no staging directory, swap leftover or temp file is left",
      );
    });
  },
});

Deno.test({
  name: "a renewal on a read-only file system fails naming the path and the fix, keeps every file and " +
    "serving, and succeeds once remounted read-write",
  ignore: IGNORE_DISK_TESTS,
  fn: async () => {
    const { logs, metaBefore, metaAfterFailure } = await renewOnBrokenDisk({
      breakDisk: (baseDir) => runOrThrow("mount", ["-o", "remount,ro", baseDir]).then(() => {}),
      repairDisk: (baseDir) => runOrThrow("mount", ["-o", "remount,rw", baseDir]).then(() => {}),
      // The first write of a renewal is its lock file.
      expectedError: (certDir) =>
        new RegExp(
          `^Cannot create the lock file "${literal(certDir)}/\\.locks/issue/${literal(HOST)}\\.lock": the ` +
            `file system is read-only \\(remount it read-write, or set base_dir / cert_dir to a writable ` +
            `directory`,
        ),
    });
    // Nothing at all could be written, not even the failure record, and the log says so.
    assert.deepEqual(metaAfterFailure, metaBefore);
    const unrecorded = logs.find((l) => l.msg === "certificate failure not recorded");
    assert.match(String(unrecorded?.error), /: the file system is read-only \(remount it read-write/);
  },
});

/** Which part of its work the killed process had reached, from what it left on disk and what it logged. */
function phaseOf(logs: Array<Record<string, unknown>>, leftovers: Leftovers): string {
  const swap = (suffix: string) => leftovers.swap.some((entry) => entry.endsWith(suffix));
  if (swap("+next")) return "swap committed, not yet promoted";
  if (swap("+old")) return "promoted, old set not yet deleted";
  if (swap("+new")) return "writing the staging directory";
  const lastJob = logs.findLastIndex((l) => l.msg === "certificate job started");
  if (lastJob < 0) return "before any job";
  const events = logs.slice(lastJob).map((l) => l.msg);
  if (events.includes("certificate installed")) return "after install";
  if (events.includes("certificate obtained")) return "storing, outside the swap";
  return "ordering";
}

/**
 * Sends SIGKILL to `nexo` right after the `count`-th file system event under `baseDir`'s cert_dir (lock
 * files, staging writes, renames, deletes), or after `fallbackMs` if there are fewer. The watcher's latency
 * lets the process run a little further, which spreads these kills over every step of a save.
 */
async function killAfterFsEvents(
  nexo: NexoProcess,
  baseDir: string,
  count: number,
  fallbackMs: number,
): Promise<void> {
  const certDir = join(baseDir, "certs");
  const watcher = Deno.watchFs(baseDir, { recursive: true });
  const fallback = setTimeout(() => watcher.close(), fallbackMs);
  let seen = 0;
  try {
    for await (const event of watcher) {
      seen += event.paths.filter((path) => path.startsWith(certDir)).length;
      if (seen >= count) break;
    }
  } finally {
    clearTimeout(fallback);
    await nexo.stop("SIGKILL");
    try {
      watcher.close();
    } catch {
      // already closed by the fallback timer
    }
  }
}

Deno.test("kill -9 at random moments of issuance and storage never leaves a torn or lost certificate, and a restart serves", async () => {
  // 5 s certificates are due for renewal 2.5 s after issuance, so nearly every start has a renewal to do:
  // kills land in swaps over a previous certificate, not only in the first issuance.
  const world = await startAcmeWorld(HOST, 5);
  const baseDir = await Deno.makeTempDir({ prefix: "nexo-crash-kill-" });
  const seed = Number(Deno.env.get("NEXO_CRASH_SEED") ?? Math.floor(Math.random() * 2 ** 32));
  // Seeded, so a failing run's kill triggers can be repeated (NEXO_CRASH_SEED).
  const rng = new Rng(seed);
  const random = () => rng.float();
  const phases = new Map<string, number>();
  const started = Date.now();
  let kills = 0;
  let tempFiles = 0;
  let newestNotAfter = 0;
  /** Checks what the kill of `nexo` left, counts its phase, and resolves the leftovers. */
  const afterKill = async (nexo: NexoProcess, what: string): Promise<Leftovers> => {
    kills++;
    const context = `kill ${kills} (${what}, NEXO_CRASH_SEED=${seed})`;
    try {
      const leftovers = await assertStateWhole(baseDir, HOST);
      const recovered = await recoverCopy(baseDir, HOST);
      // Once a certificate was stored, every later state must recover to it or to a newer one.
      if (newestNotAfter > 0) {
        assert.ok(recovered.notAfter !== null, "the stored certificate was lost");
        assert.ok(recovered.notAfter.getTime() >= newestNotAfter, "an older certificate came back");
      }
      newestNotAfter = Math.max(newestNotAfter, recovered.notAfter?.getTime() ?? 0);
      const phase = phaseOf(nexo.logs, leftovers);
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
      if (leftovers.temps.length > 0) tempFiles++;
      return leftovers;
    } catch (error) {
      throw new Error(`${context}: ${error instanceof Error ? error.message : error}`, { cause: error });
    }
  };
  try {
    // 12 kills or 60 s, whichever comes first: most runs hit every phase, and a slow machine is bounded.
    while (kills < 12 && Date.now() - started < 60_000) {
      const nexo = await startNexo(world.config, { dir: baseDir });
      let what: string;
      if (kills % 2 === 0) {
        // Anywhere in startup, recovery, the order, a save, or the wait for the next renewal.
        const delayMs = Math.round(random() * 3_000);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        await nexo.stop("SIGKILL");
        what = `${delayMs} ms after listening`;
      } else {
        // A save is ~45 events from the issuance lock's creation to its removal; the first two are that lock.
        const count = 1 + Math.floor(random() * 45);
        await killAfterFsEvents(nexo, baseDir, count, 8_000);
        what = `after ${count} file system events`;
      }
      await afterKill(nexo, what);
    }

    // The last kill lands in an order, so it leaves the issuance lock behind (taken before the order is
    // logged, kept until its certificate is stored). That lock's stale timeout is 60 s; the restart must
    // take it over at once because the kernel dropped the dead holder's flock, and 30 s for the whole
    // renewal proves it did not wait for the timeout.
    const last = await startNexo(world.config, { dir: baseDir });
    await last.waitForLog((l) => l.msg === "certificate order started", 30_000).finally(() =>
      last.stop("SIGKILL")
    );
    const leftovers = await afterKill(last, "in an order");
    assert.ok(leftovers.locks.includes(`certs/.locks/issue/${HOST}.lock`), "the issuance lock was left");

    const restarted = await startNexo(world.config, { dir: baseDir });
    try {
      await restarted.waitForLog((l) => l.msg === "certificate installed" && l.names === HOST, 30_000);
      const onDisk = async () =>
        await fingerprintOf(await Deno.readFile(join(baseDir, "certs", HOST, "fullchain.pem")));
      const before = await onDisk();
      const served = await servedFingerprint(restarted, HOST, world.rootPem);
      // A renewal may complete between the reads (one is due every 2.5 s).
      assert.ok([before, await onDisk()].includes(served), "the stored certificate is served");
    } finally {
      await restarted.stop();
    }
    const summary = [...phases].map(([phase, n]) => `${phase}: ${n}`).join(", ");
    Deno.stdout.writeSync(
      new TextEncoder().encode(
        `  ${kills} kills in ${Math.round((Date.now() - started) / 1000)} s (NEXO_CRASH_SEED=${seed}); ` +
          `${summary}; ${tempFiles} left a temp file\n`,
      ),
    );
  } finally {
    await Deno.remove(baseDir, { recursive: true });
    await world.stop();
  }
});
