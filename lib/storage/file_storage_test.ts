import assert from "node:assert/strict";
import { join } from "node:path";
import { FileStorage } from "./file_storage.ts";
import { runStorageConformance } from "./storage_conformance.ts";
import { loadText, StorageError } from "./storage.ts";
import { runOrThrow, tryMountTmpfs } from "../../tests/tmpfs.ts";

const CHILD = new URL("./testdata/storage_child.ts", import.meta.url).pathname;
const FAST_LOCKS = { staleMs: 5_000, refreshMs: 50, pollMs: 10 };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nexo_file_storage_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rawNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}

runStorageConformance("FileStorage", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo_file_storage_" });
  const root = join(dir, "root");
  return {
    storage: new FileStorage(root, { lockTimings: FAST_LOCKS }),
    close: () => Deno.remove(dir, { recursive: true }),
    // A child process on the same folder; the kernel drops its flock when it is killed, so a waiter breaks
    // the lock at its next poll, long before the stale timeout.
    holdElsewhere: async (name) => {
      const holder = await LockHolder.start(root, name, FAST_LOCKS.staleMs);
      return { die: () => holder.kill() };
    },
    takeoverMs: 1_000,
  };
}, { crossProcess: true });

Deno.test("FileStorage.store() writes private values 0600, creates directories 0700, leaves no temp file", async () => {
  await withTempDir(async (tmp) => {
    const root = join(tmp, "root");
    const storage = new FileStorage(root);
    await storage.store("example.com/privkey.pem", "key", { private: true });
    await storage.store("example.com/fullchain.pem", "chain");
    assert.equal(await modeOf(join(root, "example.com", "privkey.pem")), 0o600);
    assert.equal(await modeOf(join(root, "example.com")), 0o700);
    assert.equal(await modeOf(root), 0o700);
    const umask = Deno.umask();
    Deno.umask(umask);
    assert.equal(await modeOf(join(root, "example.com", "fullchain.pem")), 0o644 & ~umask);
    assert.deepEqual(await rawNames(join(root, "example.com")), ["fullchain.pem", "privkey.pem"]);
  });
});

Deno.test("FileStorage.store() over a public value makes a private one 0600 (the new file's mode wins)", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root);
    await storage.store("account.key", "was public");
    await storage.store("account.key", "now secret", { private: true });
    assert.equal(await modeOf(join(root, "account.key")), 0o600);
  });
});

Deno.test("FileStorage.list() and load() ignore temp files a crashed write left behind", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root);
    await storage.store("dir/key", "value");
    await Deno.writeTextFile(join(root, "dir", `.key.tmp-${crypto.randomUUID()}`), "half a val");
    assert.deepEqual(await storage.list("dir"), ["key"]);
    assert.equal(await loadText(storage, "dir/key"), "value");
  });
});

Deno.test("FileStorage.describe() maps keys to paths under the root", () => {
  const storage = new FileStorage("/etc/nexo/certs");
  assert.equal(storage.describe("example.com/privkey.pem"), "/etc/nexo/certs/example.com/privkey.pem");
  assert.equal(storage.describe(""), "/etc/nexo/certs");
});

/**
 * Runs storage_child.ts under `ulimit -f` (in blocks of 512 or 1024 bytes, depending on the shell). The child
 * gets its own empty DENO_DIR: the limit applies to every file it writes, and the shared cache's SQLite files
 * grow past 4 MiB during a full test run, which would kill the child before it reaches the code under test.
 */
async function runChildWithFileSizeLimit(limitBlocks: number, args: string[]): Promise<Deno.CommandOutput> {
  const denoDir = await Deno.makeTempDir({ prefix: "nexo_child_deno_dir_" });
  try {
    const script = `ulimit -f ${limitBlocks} && exec "$0" run --no-config --allow-read --allow-write "$@"`;
    return await new Deno.Command("sh", {
      args: ["-c", script, Deno.execPath(), CHILD, ...args],
      env: { DENO_DIR: denoDir },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
}

// The limit is at most 4 MiB in either block size; the value written is 16 MiB.
const LIMIT_BLOCKS = 4096;
const TOO_BIG = String(16 * 1024 * 1024);

Deno.test("FileStorage.store() that fails part-way (file-size limit) rejects naming the path and keeps the old value", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root);
    await storage.store("site/fullchain.pem", "old chain");
    const output = await runChildWithFileSizeLimit(LIMIT_BLOCKS, [
      "store",
      root,
      "site/fullchain.pem",
      TOO_BIG,
      "--survive-fsize",
    ]);
    const stdout = new TextDecoder().decode(output.stdout).trim();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const error = JSON.parse(stdout) as { name: string; message: string };
    assert.equal(error.name, "StorageError");
    assert.match(error.message, /^Cannot write ".*\/site\/fullchain\.pem": .*file-size limit.*ulimit -f/);
    assert.equal(await loadText(storage, "site/fullchain.pem"), "old chain");
    assert.deepEqual(await rawNames(join(root, "site")), ["fullchain.pem"], "the temp file was removed");
  });
});

Deno.test("FileStorage.store() in a process killed mid-write leaves the old value intact", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root);
    await storage.store("site/fullchain.pem", "old chain");
    const output = await runChildWithFileSizeLimit(LIMIT_BLOCKS, [
      "store",
      root,
      "site/fullchain.pem",
      TOO_BIG,
    ]);
    assert.equal(output.signal, "SIGXFSZ", "the child died writing the value");
    assert.equal(await loadText(storage, "site/fullchain.pem"), "old chain");
    // Whether the temp file exists depends on where the limit struck; at most one may be left, and list()
    // must hide it either way.
    const leftovers = (await rawNames(join(root, "site"))).filter((name) => name !== "fullchain.pem");
    assert.ok(
      leftovers.length <= 1,
      `at most the crashed write's temp file is left: ${leftovers.join(", ")}`,
    );
    assert.deepEqual(await storage.list("site"), ["fullchain.pem"]);
  });
});

/** Runs `fn` on a small tmpfs mounted for it; false (and `fn` never runs) when mounting is not allowed. */
async function withTmpfs(fn: (dir: string) => Promise<void>): Promise<boolean> {
  let mounted = false;
  await withTempDir(async (dir) => {
    if (!(await tryMountTmpfs(dir, "size=256k,mode=0700"))) return;
    mounted = true;
    try {
      await fn(dir);
    } finally {
      await runOrThrow("umount", [dir]);
    }
  });
  return mounted;
}

// Real ENOSPC and EROFS need a small or read-only file system: a tmpfs, which only root with CAP_SYS_ADMIN
// may mount. Elsewhere (most CI containers) these two tests are reported as ignored.
const CAN_MOUNT = await withTmpfs(() => Promise.resolve());

Deno.test({
  name: "FileStorage.store() on a full disk rejects with ENOSPC and the fix, keeping the old value",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withTmpfs(async (dir) => {
      const storage = new FileStorage(dir);
      await storage.store("site/privkey.pem", "old key", { private: true });
      const err = await storage.store("site/privkey.pem", new Uint8Array(1024 * 1024), { private: true })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof StorageError);
      assert.equal(err.code, "ENOSPC");
      assert.equal(
        err.message,
        `Cannot write "${dir}/site/privkey.pem": the disk is full (free space on the file system that holds ` +
          `it (df -h); nexo keeps its current files and retries)`,
      );
      assert.equal(await loadText(storage, "site/privkey.pem"), "old key");
      assert.deepEqual(await rawNames(join(dir, "site")), ["privkey.pem"]);
    });
  },
});

Deno.test({
  name:
    "FileStorage.store() on a read-only file system rejects with EROFS and the fix, keeping the old value",
  ignore: !CAN_MOUNT,
  fn: async () => {
    await withTmpfs(async (dir) => {
      const storage = new FileStorage(dir);
      await storage.store("site/meta.json", "{}");
      await runOrThrow("mount", ["-o", "remount,ro", dir]);
      const err = await storage.store("site/meta.json", "{ }").then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof StorageError);
      assert.equal(err.code, "EROFS");
      assert.match(
        err.message,
        /^Cannot write ".*\/site\/meta\.json": the file system is read-only \(remount/,
      );
      assert.equal(await loadText(storage, "site/meta.json"), "{}");
    });
  },
});

/** storage_child.ts holding a lock; `release()` closes its stdin and waits for it to exit. */
class LockHolder {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  static async start(root: string, name: string, staleMs: number): Promise<LockHolder> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-read",
        "--allow-write",
        CHILD,
        "hold-lock",
        root,
        name,
        String(staleMs),
        "20",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const holder = new LockHolder(child);
    assert.equal(await holder.#readUntil("locked"), true, "the child took the lock");
    return holder;
  }

  async #readUntil(word: string): Promise<boolean> {
    let seen = "";
    while (!seen.includes(word)) {
      const { value, done } = await this.#lines.read();
      if (done) return false;
      seen += value;
    }
    return true;
  }

  async release(): Promise<void> {
    await this.#child.stdin.close();
    assert.equal(await this.#readUntil("released"), true);
    await this.#lines.cancel();
    assert.equal((await this.#child.status).code, 0);
  }

  async kill(): Promise<void> {
    this.#child.kill("SIGKILL");
    await this.#lines.cancel();
    await this.#child.stdin.close().catch(() => {});
    assert.equal((await this.#child.status).signal, "SIGKILL");
  }
}

Deno.test("FileStorage.lock() waits while another process holds the lock and gets it once released", async () => {
  await withTempDir(async (root) => {
    const holder = await LockHolder.start(root, "issue/example.com", 5_000);
    const storage = new FileStorage(root, { lockTimings: FAST_LOCKS });
    await assert.rejects(storage.lock("issue/example.com", { signal: AbortSignal.timeout(300) }), {
      name: "TimeoutError",
    });
    const waiting = storage.lock("issue/example.com");
    await holder.release();
    const lock = await waiting;
    assert.equal(lock.lost.aborted, false);
    await lock.release();
  });
});

Deno.test("FileStorage.lock() takes over a lock whose holder was killed at once, long before it is stale", async () => {
  await withTempDir(async (root) => {
    const holder = await LockHolder.start(root, "issue/example.com", 60_000);
    const lockPath = join(root, ".locks", "issue", "example.com.lock");
    assert.match(await Deno.readTextFile(lockPath), /"flock":true/, "the holder keeps a flock on its file");
    await holder.kill();
    assert.ok((await Deno.stat(lockPath)).isFile, "the dead holder's lock file is still there");
    // The kernel dropped the dead holder's flock: no need to wait the 60 s until the file is stale.
    const storage = new FileStorage(root, { lockTimings: { staleMs: 60_000, refreshMs: 50, pollMs: 10 } });
    const lock = await storage.lock("issue/example.com", { signal: AbortSignal.timeout(5_000) });
    assert.match(await Deno.readTextFile(lockPath), new RegExp(`"pid":${Deno.pid},`));
    await lock.release();
    await assert.rejects(Deno.stat(lockPath), Deno.errors.NotFound);
  });
});

Deno.test("FileStorage.lock() takes over an empty lock file (its holder was killed before writing it) once it is refreshMs old", async () => {
  await withTempDir(async (root) => {
    const lockPath = join(root, ".locks", "renew.lock");
    await Deno.mkdir(join(root, ".locks"), { recursive: true });
    await Deno.writeTextFile(lockPath, ""); // what a kill between the exclusive create and the write leaves
    const storage = new FileStorage(root, { lockTimings: { staleMs: 60_000, refreshMs: 300, pollMs: 10 } });
    // A live holder writes its file microseconds after creating it; give it the benefit of the doubt first.
    await assert.rejects(storage.lock("renew", { signal: AbortSignal.timeout(100) }));
    const lock = await storage.lock("renew", { signal: AbortSignal.timeout(5_000) });
    await lock.release();
  });
});

Deno.test("FileStorage.lock() gets past a breaker file left by a waiter killed while breaking, long before it is stale", async () => {
  await withTempDir(async (root) => {
    const holder = await LockHolder.start(root, "renew", 60_000);
    await holder.kill();
    // A killed breaker leaves its file written, with its flock gone like any dead holder's.
    const lockPath = join(root, ".locks", "renew.lock");
    await Deno.writeTextFile(`${lockPath}.break`, `{"pid":1,"token":"killed-breaker","flock":true}\n`);
    const storage = new FileStorage(root, { lockTimings: { staleMs: 60_000, refreshMs: 50, pollMs: 10 } });
    const lock = await storage.lock("renew", { signal: AbortSignal.timeout(5_000) });
    assert.deepEqual(await rawNames(join(root, ".locks")), ["renew.lock"]);
    await lock.release();
  });
});

Deno.test("FileStorage.lock() takes over a lock file without a flock (an older nexo's) once it is staleLockMs old", async () => {
  await withTempDir(async (root) => {
    const lockPath = join(root, ".locks", "issue", "example.com.lock");
    await Deno.mkdir(join(root, ".locks", "issue"), { recursive: true });
    await Deno.writeTextFile(lockPath, `{"pid":1,"token":"older-nexo"}\n`);
    const storage = new FileStorage(root, { lockTimings: { staleMs: 400, refreshMs: 50, pollMs: 10 } });
    // Not yet stale, and nothing says its holder is gone.
    await assert.rejects(storage.lock("issue/example.com", { signal: AbortSignal.timeout(100) }));
    const lock = await storage.lock("issue/example.com");
    assert.match(await Deno.readTextFile(lockPath), new RegExp(`"pid":${Deno.pid},`));
    await lock.release();
  });
});

Deno.test("FileStorage.lock() never breaks a live holder's lock, however long it is held", async () => {
  await withTempDir(async (root) => {
    const timings = { staleMs: 150, refreshMs: 20, pollMs: 10 };
    const holder = await new FileStorage(root, { lockTimings: timings }).lock("renew");
    const waiter = new FileStorage(root, { lockTimings: timings });
    await assert.rejects(waiter.lock("renew", { signal: AbortSignal.timeout(600) }), {
      name: "TimeoutError",
    });
    assert.equal(holder.lost.aborted, false);
    await holder.release();
    await (await waiter.lock("renew")).release();
  });
});

Deno.test("FileStorage.lock() signals `lost` when another process replaced the lock, and release() leaves theirs", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root, { lockTimings: { staleMs: 5_000, refreshMs: 20, pollMs: 10 } });
    const lock = await storage.lock("renew");
    const lockPath = join(root, ".locks", "renew.lock");
    await Deno.remove(lockPath);
    await Deno.writeTextFile(lockPath, '{"pid":1,"token":"someone-else"}\n');
    await new Promise<void>((resolve) =>
      lock.lost.addEventListener("abort", () => resolve(), { once: true })
    );
    await lock.release();
    assert.equal(await Deno.readTextFile(lockPath), '{"pid":1,"token":"someone-else"}\n');
  });
});

Deno.test("FileStorage.lock() removes a stale breaker file left by a waiter that crashed while breaking", async () => {
  await withTempDir(async (root) => {
    const storage = new FileStorage(root, { lockTimings: { staleMs: 200, refreshMs: 20, pollMs: 10 } });
    const lockPath = join(root, ".locks", "renew.lock");
    await Deno.mkdir(join(root, ".locks"), { recursive: true });
    const past = new Date(Date.now() - 60_000);
    for (const path of [lockPath, `${lockPath}.break`]) {
      await Deno.writeTextFile(path, "");
      await Deno.utime(path, past, past);
    }
    const lock = await storage.lock("renew");
    assert.equal(await modeOf(lockPath), 0o600);
    assert.deepEqual(await rawNames(join(root, ".locks")), ["renew.lock"]);
    await lock.release();
    assert.deepEqual(await storage.list(""), [], "the lock directory is not listed");
  });
});
