// Loads user-provided certificates from a certbot-like directory (`<dir>/<any name>/fullchain.pem` and
// `privkey.pem`) into a CertStore, indexed by each certificate's own names. It does not watch for changes,
// verify chains against a trust store, or write anything; one bad directory is reported and skipped.

import { join } from "../path.ts";
import type { CertStore } from "./cert_store.ts";
import { CertificateError, checkKeyMatchesCertificate, parseCertificate } from "./pem.ts";
import { isoTime } from "../iso_time.ts";

const CHAIN_FILE = "fullchain.pem";
const KEY_FILE = "privkey.pem";

/** A certificate directory that was added to the store. */
export interface LoadedCertificate {
  /** The certificate directory, e.g. "/etc/nexo/certs/example.com". */
  dir: string;
  /** The names it was indexed under, from its SANs (or CN when it has none). */
  names: string[];
  notAfter: Date;
}

/** What `loadCertDir` did: what it loaded and one message per directory it skipped. */
export interface LoadCertDirResult {
  /** In the order they were added to the store: earliest expiry first. */
  loaded: LoadedCertificate[];
  /** Each names the file, what is wrong with it and the fix; never key material. */
  errors: string[];
}

/** Options for `loadCertDir`. */
export interface LoadCertDirOptions {
  /** The time expiry is judged against (a seam for tests); default the current time. */
  now?: Date;
}

interface Candidate extends LoadedCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * Scans the subdirectories of `dir` (sorted, dot-directories skipped) and adds every usable pair to
 * `store` with source "file". A missing `dir` loads nothing and is not an error. A subdirectory with a
 * missing, unreadable or corrupt file, a key that does not match, no DNS names, or an expired certificate
 * is skipped with a message in `errors`. When two directories claim the same name, the certificate that
 * expires later wins. Rejects only on unexpected I/O failures listing `dir` itself.
 */
export async function loadCertDir(
  dir: string,
  store: CertStore,
  options: LoadCertDirOptions = {},
): Promise<LoadCertDirResult> {
  const now = options.now ?? new Date();
  const result: LoadCertDirResult = { loaded: [], errors: [] };
  const candidates: Candidate[] = [];
  for (const certDir of await listCertDirs(dir, result.errors)) {
    const candidate = await readCandidate(certDir, now);
    if (typeof candidate === "string") result.errors.push(candidate);
    else candidates.push(candidate);
  }
  // Set in order of expiry so that, for a name claimed twice, the later-expiring certificate is set last.
  candidates.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
  for (const { certPem, keyPem, ...loaded } of candidates) {
    store.set({ certPem, keyPem, names: loaded.names, notAfter: loaded.notAfter, source: "file" });
    result.loaded.push(loaded);
  }
  return result;
}

async function listCertDirs(dir: string, errors: string[]): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".")) continue;
      // certbot's live/ holds a README file beside the certificate directories; follow symlinked dirs.
      const path = join(dir, entry.name);
      if (entry.isDirectory || (entry.isSymlink && (await statOrUndefined(path))?.isDirectory)) {
        names.push(path);
      }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    if (err instanceof Deno.errors.PermissionDenied) {
      errors.push(`Cannot list certificate directory "${dir}": permission denied (make it readable by nexo)`);
      return [];
    }
    if (err instanceof Deno.errors.NotADirectory) {
      errors.push(
        `Cannot list certificate directory "${dir}": it is a file (point the setting at a directory)`,
      );
      return [];
    }
    throw err;
  }
  return names.sort();
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined; // a dangling symlink
    throw err;
  }
}

/** Reads and checks one certificate directory; returns the error message when it cannot be used. */
async function readCandidate(certDir: string, now: Date): Promise<Candidate | string> {
  const chainPath = join(certDir, CHAIN_FILE);
  const keyPath = join(certDir, KEY_FILE);
  const certPem = await readPemFile(chainPath);
  const keyPem = await readPemFile(keyPath);
  if (certPem.error !== undefined) return certPem.error;
  if (keyPem.error !== undefined) return keyPem.error;
  try {
    const info = parseCertificate(certPem.text, chainPath);
    if (info.names.length === 0) {
      return `Cannot load certificate "${chainPath}": it has no DNS names (reissue it with a subjectAltName)`;
    }
    if (info.notAfter.getTime() <= now.getTime()) {
      return `Cannot load certificate "${chainPath}": it expired on ${isoTime(info.notAfter)} ` +
        `(renew it, e.g. "certbot renew", or remove "${certDir}")`;
    }
    await checkKeyMatchesCertificate(certPem.text, keyPem.text, {
      certSource: chainPath,
      keySource: keyPath,
    });
    return {
      dir: certDir,
      names: info.names,
      notAfter: info.notAfter,
      certPem: certPem.text,
      keyPem: keyPem.text,
    };
  } catch (err) {
    if (err instanceof CertificateError) return err.message;
    throw err;
  }
}

async function readPemFile(path: string): Promise<{ text: string; error?: undefined } | { error: string }> {
  try {
    return { text: await Deno.readTextFile(path) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return {
        error:
          `Cannot load "${path}": the file is missing (each certificate directory needs ${CHAIN_FILE} and ${KEY_FILE})`,
      };
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      return {
        error: `Cannot load "${path}": permission denied (make it readable by the user running nexo)`,
      };
    }
    if (err instanceof Deno.errors.IsADirectory) {
      return { error: `Cannot load "${path}": it is a directory (it must be a PEM file)` };
    }
    throw err;
  }
}
