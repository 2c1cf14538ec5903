// What a killed nexo left in its base_dir, judged file by file the way the next start reads it: every
// certificate, key, meta.json and account file whole and parseable, temp files only under temp names, every
// visible certificate directory a matching pair, and the repository's recovery clean. It only reads
// base_dir; recovery runs on a copy.

import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { dirname, join } from "node:path";
import { decodeMeta } from "../lib/storage/cert_meta.ts";
import { CertRepository } from "../lib/storage/cert_repository.ts";
import { swapOwner } from "../lib/storage/dir_swap.ts";
import { loadCertDir } from "../lib/tls/cert_files.ts";
import { CertStore } from "../lib/tls/cert_store.ts";
import { checkKeyMatchesCertificate, parseCertificate } from "../lib/tls/pem.ts";

/** Every file below `dir`, as paths relative to it, sorted; [] when `dir` does not exist. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(dir, prefix))) {
      const relative = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory) found.push(...await listFiles(dir, relative));
      else found.push(relative);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}

/** A FileStorage temp file (`.<name>.tmp-<uuid>`): a write the kill interrupted before its rename. */
const TEMP_FILE = /^\..+\.tmp-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What a kill left in base_dir besides whole certificate directories. */
export interface Leftovers {
  /** Temp files of interrupted writes. */
  temps: string[];
  /** Entries of cert_dir from an interrupted swap (dir_swap.ts): ".X+new", "X+next", ".X+old". */
  swap: string[];
  /** Lock files of the killed process. */
  locks: string[];
}

/**
 * Asserts that everything under `baseDir` is whole: each PEM certificate parses and is for `host`, each key
 * parses, each meta.json and account.json parses, the chain and key in one directory match, and the
 * directories a server start loads (lib/tls/cert_files.ts) load without a single error. Temp files are
 * allowed, under their hidden temp names only. Resolves what the kill left over.
 */
export async function assertStateWhole(baseDir: string, host: string): Promise<Leftovers> {
  const leftovers: Leftovers = { temps: [], swap: [], locks: [] };
  const files = await listFiles(baseDir);
  for (const path of files) {
    const name = path.slice(path.lastIndexOf("/") + 1);
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (path === "config.yaml") continue;
    if (TEMP_FILE.test(name)) {
      leftovers.temps.push(path);
      continue;
    }
    const text = await Deno.readTextFile(join(baseDir, path));
    if (path.startsWith("certs/.locks/")) {
      // One small write right after an exclusive create: empty (killed in between) or whole.
      if (text !== "") JSON.parse(text);
      leftovers.locks.push(path);
      continue;
    }
    switch (name) {
      case "fullchain.pem":
        assert.deepEqual(parseCertificate(text, path).names, [host], path);
        break;
      case "privkey.pem":
      case "account.key":
        createPrivateKey(text); // throws on a torn or empty key
        break;
      case "meta.json":
        decodeMeta(text, path);
        break;
      case "account.json":
        assert.equal(typeof JSON.parse(text).url, "string", path);
        break;
      default:
        assert.fail(`unexpected file ${path}`);
    }
    if (name === "fullchain.pem" && files.includes(`${dir}/privkey.pem`)) {
      const key = await Deno.readTextFile(join(baseDir, dir, "privkey.pem"));
      await checkKeyMatchesCertificate(text, key, { certSource: path, keySource: `${dir}/privkey.pem` });
    }
  }
  try {
    for await (const entry of Deno.readDir(join(baseDir, "certs"))) {
      if (swapOwner(entry.name) !== undefined) leftovers.swap.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error; // killed before the first write
  }
  // `now` at the epoch: what matters here is that every visible directory is a complete pair, not expiry.
  const { errors } = await loadCertDir(join(baseDir, "certs"), new CertStore(), { now: new Date(0) });
  assert.deepEqual(errors, [], "a server start loads every visible certificate directory");
  return leftovers;
}

/**
 * Runs the certificate repository's recovery (the first thing the next start does) on a copy of
 * `baseDir`'s cert_dir, leaving the original as the kill left it, and asserts it reports no damaged file.
 * Resolves the certificate it recovered for `host` (notAfter null when there is none).
 */
export async function recoverCopy(baseDir: string, host: string): Promise<{ notAfter: Date | null }> {
  const copy = await Deno.makeTempDir({ prefix: "nexo-crash-copy-" });
  try {
    for (const path of await listFiles(join(baseDir, "certs"))) {
      // The killed process's lock files are not certificate state.
      if (path.startsWith(".locks/")) continue;
      const target = join(copy, "certs", path);
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.copyFile(join(baseDir, "certs", path), target);
    }
    const repository = CertRepository.open({ certDir: join(copy, "certs"), baseDir: copy });
    const { certificates, problems } = await repository.loadCertificates();
    assert.deepEqual(problems, [], "recovery finds no damaged file");
    const stored = certificates.find((cert) => cert.dir === host);
    return { notAfter: stored?.pair ? stored.notAfter : null };
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
}
