// `nexo trust` and `nexo untrust`: the local CA's root (issuer: internal, and the demo) into and out of this
// machine's trust stores, as `caddy trust` and `mkcert -install` do: the system store (Debian's
// update-ca-certificates: curl, wget, most programs) and the NSS databases Chromium (~/.pki/nssdb) and Firefox
// (its profiles) read. Loaded only by those two commands.
//
// Both stores are changed through their own tools (update-ca-certificates, NSS's certutil), run by absolute
// path: nexo needs `--allow-run` for exactly those two programs, which `deno task nexo` and the installed
// launcher grant for these commands only. A nexo that may not run them (the compiled binary) prints the
// commands that do the same.

import type { Config } from "./config/types.ts";
import { join } from "./path.ts";
import { currentUid } from "./process_user.ts";
import { writeAndRename } from "./storage/atomic_write.ts";
import { LocalCa, localCaDir, localCaRootPath } from "./tls/local_ca.ts";
import { computeFingerprint } from "./tls/pem.ts";

export const CERTUTIL = "/usr/bin/certutil";
export const UPDATE_CA_CERTIFICATES = "/usr/sbin/update-ca-certificates";
/** Where Debian's update-ca-certificates takes local roots from (files ending in .crt). */
export const SYSTEM_ANCHORS_DIR = "/usr/local/share/ca-certificates";

export type TrustStore = "system" | "nss";
export const TRUST_STORES: readonly TrustStore[] = ["system", "nss"];

/** What happened to one store: the root added or removed, already so, skipped (with the fix), or failed. */
export interface StoreOutcome {
  store: string;
  result: "added" | "present" | "removed" | "absent" | "skipped" | "failed";
  detail: string;
}

export interface TrustTarget {
  /** The root certificate's file (PEM). */
  rootPath: string;
  rootPem: string;
  /** The user whose browser databases change: their home. */
  home: string;
  stores: ReadonlySet<TrustStore>;
}

/**
 * `nexo trust` / `nexo untrust` on a loaded config: the report to print and the exit code (0 when every store
 * it could reach is as asked and none failed; 1 otherwise, each skipped store saying what to run instead).
 */
export async function trustCommand(
  action: "trust" | "untrust",
  config: Config,
  storesText: string,
  home: string,
): Promise<{ code: number; text: string }> {
  if (config.issuer !== "internal") {
    return {
      code: 1,
      text: `${config.file}: issuer is ${config.issuer}, whose certificates chain to a CA browsers already ` +
        `trust. nexo ${action} is for issuer: internal (the demo's config is ~/.nexo/demo/config.yaml).\n`,
    };
  }
  const stores = new Set<TrustStore>();
  for (const name of storesText.split(",").map((s) => s.trim())) {
    const store = TRUST_STORES.find((s) => s === name);
    if (store === undefined) {
      return {
        code: 1,
        text: `error: --stores takes ${TRUST_STORES.join(",")} (comma-separated), got '${name}'\n`,
      };
    }
    stores.add(store);
  }
  const caDir = localCaDir(config.baseDir);
  const rootPath = localCaRootPath(caDir);
  // Trusting a CA that does not exist yet creates it, as the server would at its first start.
  if (action === "trust") await LocalCa.loadOrCreate(caDir);
  const rootPem = await Deno.readTextFile(rootPath).catch((error) => {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  });
  if (rootPem === null) return { code: 0, text: `No local CA at ${rootPath}: nothing to remove.\n` };
  const target = { rootPath, rootPem, home, stores };
  const outcomes = action === "trust" ? await trust(target) : await untrust(target);
  const width = Math.max(...outcomes.map((o) => o.result.length));
  const lines = outcomes.map((o) => `  ${o.result.padEnd(width)}  ${o.store}: ${o.detail}\n`);
  const done = outcomes.filter((o) => o.result !== "skipped" && o.result !== "failed");
  const failed = outcomes.some((o) => o.result === "failed") || done.length === 0;
  const after = action === "trust"
    ? "Browsers read their stores at start: restart them to see the change.\n"
    : "";
  return {
    code: failed ? 1 : 0,
    text: `Local CA root: ${rootPath}\n${lines.join("")}${done.length > 0 ? after : ""}`,
  };
}

/** The names a root goes by in the stores: one per root, so two nexo CAs (the demo's, a server's) coexist. */
export async function rootLabels(rootPem: string): Promise<{ nickname: string; fileName: string }> {
  const short = (await computeFingerprint(rootPem)).replaceAll(":", "").slice(0, 16).toLowerCase();
  return { nickname: `nexo local CA ${short}`, fileName: `nexo-local-ca-${short}.crt` };
}

/** Adds the root to each requested store. */
export async function trust(target: TrustTarget): Promise<StoreOutcome[]> {
  const labels = await rootLabels(target.rootPem);
  const outcomes: StoreOutcome[] = [];
  if (target.stores.has("system")) outcomes.push(await trustSystem(target, labels.fileName));
  if (target.stores.has("nss")) outcomes.push(...await trustNss(target, labels.nickname, "add"));
  return outcomes;
}

/** Removes the root from each requested store. */
export async function untrust(target: TrustTarget): Promise<StoreOutcome[]> {
  const labels = await rootLabels(target.rootPem);
  const outcomes: StoreOutcome[] = [];
  if (target.stores.has("system")) outcomes.push(await untrustSystem(labels.fileName));
  if (target.stores.has("nss")) outcomes.push(...await trustNss(target, labels.nickname, "remove"));
  return outcomes;
}

const SYSTEM = "system store (update-ca-certificates)";

async function trustSystem(target: TrustTarget, fileName: string): Promise<StoreOutcome> {
  const path = join(SYSTEM_ANCHORS_DIR, fileName);
  const by = `sudo cp ${target.rootPath} ${path} && sudo update-ca-certificates`;
  const unusable = systemStoreUnusable(by);
  if (unusable) return unusable;
  const existing = await Deno.readTextFile(path).catch(() => null);
  if (existing === target.rootPem) return { store: SYSTEM, result: "present", detail: path };
  await writeAndRename(path, new TextEncoder().encode(target.rootPem), 0o644);
  const ran = await run(UPDATE_CA_CERTIFICATES, []);
  if (!ran.ok) return { store: SYSTEM, result: "failed", detail: `update-ca-certificates: ${ran.output}` };
  return { store: SYSTEM, result: "added", detail: path };
}

async function untrustSystem(fileName: string): Promise<StoreOutcome> {
  const path = join(SYSTEM_ANCHORS_DIR, fileName);
  const unusable = systemStoreUnusable(`sudo rm ${path} && sudo update-ca-certificates`);
  if (unusable) return unusable;
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { store: SYSTEM, result: "absent", detail: path };
    throw error;
  }
  // --fresh: without it Debian's tool leaves the removed root's links in /etc/ssl/certs, dangling.
  const ran = await run(UPDATE_CA_CERTIFICATES, ["--fresh"]);
  if (!ran.ok) return { store: SYSTEM, result: "failed", detail: `update-ca-certificates: ${ran.output}` };
  return { store: SYSTEM, result: "removed", detail: path };
}

/** Why the system store cannot be changed from here, with the commands that do it; null when it can. */
function systemStoreUnusable(commands: string): StoreOutcome | null {
  const skipped = (why: string) => ({
    store: SYSTEM,
    result: "skipped" as const,
    detail: `${why}; or run: ${commands}`,
  });
  if (!mayRun(UPDATE_CA_CERTIFICATES)) return skipped("this nexo may not run programs (the compiled binary)");
  if (!exists(UPDATE_CA_CERTIFICATES)) {
    return skipped(
      `${UPDATE_CA_CERTIFICATES} not found (Debian and Ubuntu have it: apt-get install ca-certificates)`,
    );
  }
  if (!mayWrite(SYSTEM_ANCHORS_DIR)) return skipped(`this nexo may not write ${SYSTEM_ANCHORS_DIR}`);
  if (currentUid() !== 0) return skipped("needs root: sudo nexo trust --stores system");
  return null;
}

/** The NSS databases of `home`: Chromium's (created when missing, as Chromium reads it at start) and Firefox's. */
async function nssDatabases(home: string, create: boolean): Promise<string[]> {
  const databases: string[] = [];
  const chromium = join(home, ".pki", "nssdb");
  if (exists(join(chromium, "cert9.db"))) databases.push(chromium);
  else if (create) {
    await Deno.mkdir(chromium, { recursive: true, mode: 0o700 });
    const made = await run(CERTUTIL, ["-d", `sql:${chromium}`, "-N", "--empty-password"]);
    if (!made.ok) throw new Error(`cannot create the NSS database ${chromium}: ${made.output}`);
    databases.push(chromium);
  }
  for (
    const profiles of [
      join(home, ".mozilla", "firefox"),
      join(home, "snap", "firefox", "common", ".mozilla", "firefox"),
    ]
  ) {
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(profiles)];
    } catch {
      continue;
    }
    for (const entry of entries) {
      const profile = join(profiles, entry.name);
      if (entry.isDirectory && exists(join(profile, "cert9.db"))) databases.push(profile);
    }
  }
  return databases;
}

async function trustNss(
  target: TrustTarget,
  nickname: string,
  action: "add" | "remove",
): Promise<StoreOutcome[]> {
  const store = "browsers (NSS: Chromium, Firefox)";
  const chromium = join(target.home, ".pki", "nssdb");
  const by = action === "add"
    ? `certutil -d sql:${chromium} -A -t C,, -n "${nickname}" -i ${target.rootPath}`
    : `certutil -d sql:${chromium} -D -n "${nickname}"`;
  if (!mayRun(CERTUTIL)) {
    return [{
      store,
      result: "skipped",
      detail: `this nexo may not run programs (the compiled binary); run: ${by}`,
    }];
  }
  if (!exists(CERTUTIL)) {
    return [{
      store,
      result: "skipped",
      detail: `${CERTUTIL} not found: apt-get install libnss3-tools; then run: ${by}`,
    }];
  }
  // Root changing a user's databases would leave them owned by root, unreadable to that user's browser.
  const owner = Deno.statSync(target.home).uid;
  if (currentUid() === 0 && owner !== 0) {
    return [{
      store,
      result: "skipped",
      detail: `${target.home} is another user's: run nexo trust --stores nss as that user`,
    }];
  }
  const outcomes: StoreOutcome[] = [];
  for (const db of await nssDatabases(target.home, action === "add")) {
    const where = `${store} ${db}`;
    const present = (await run(CERTUTIL, ["-d", `sql:${db}`, "-L", "-n", nickname])).ok;
    if (action === "add") {
      if (present) {
        outcomes.push({ store: where, result: "present", detail: nickname });
        continue;
      }
      const added = await run(CERTUTIL, [
        "-d",
        `sql:${db}`,
        "-A",
        "-t",
        "C,,",
        "-n",
        nickname,
        "-i",
        target.rootPath,
      ]);
      outcomes.push(
        added.ok
          ? { store: where, result: "added", detail: nickname }
          : { store: where, result: "failed", detail: `certutil: ${added.output}` },
      );
    } else {
      if (!present) {
        outcomes.push({ store: where, result: "absent", detail: nickname });
        continue;
      }
      const removed = await run(CERTUTIL, ["-d", `sql:${db}`, "-D", "-n", nickname]);
      outcomes.push(
        removed.ok
          ? { store: where, result: "removed", detail: nickname }
          : { store: where, result: "failed", detail: `certutil: ${removed.output}` },
      );
    }
  }
  if (outcomes.length === 0) {
    outcomes.push({ store, result: "absent", detail: `no NSS database under ${target.home}` });
  }
  return outcomes;
}

async function run(program: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  return { ok: output.success, output: text.trim().split("\n").slice(-3).join(" ") };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function mayRun(program: string): boolean {
  return Deno.permissions.querySync({ name: "run", command: program }).state === "granted";
}

function mayWrite(path: string): boolean {
  return Deno.permissions.querySync({ name: "write", path }).state === "granted";
}
