// Reads one certificate directory of the layout in cert_meta.ts (chain, key, meta.json or its failure
// record) into a StoredCertificate, loading as much as damaged files allow and describing the damage. It
// does not write, lock or recover interrupted saves (cert_repository.ts does, before reading).

import {
  type CertMeta,
  CHAIN_FILE,
  decodeMeta,
  emptyCertMeta,
  KEY_FILE,
  META_FILE,
  pendingDir,
  type StoredCertificate,
} from "./cert_meta.ts";
import { joinKey, loadText, type Storage, type StorageKey } from "./storage.ts";
import {
  CertificateError,
  type CertificateInfo,
  checkKeyMatchesCertificate,
  parseCertificate,
} from "../tls/pem.ts";

/** A read's result; `problems` names each damaged file and the fix, never key material. */
export interface ReadResult<T> {
  value: T;
  problems: string[];
}

/**
 * Reads the certificate directory `dir` (a top-level key of `storage`): null for a directory that is neither
 * managed (meta.json) nor holds a fullchain.pem. A corrupt meta.json yields no failure state; a missing,
 * corrupt or mismatched pair yields `pair: null`. Problems in directories nexo does not manage are left to
 * loadCertDir, which reports them too. Rejects only with StorageError.
 */
export async function readCertDir(
  storage: Storage,
  dir: string,
): Promise<ReadResult<StoredCertificate | null>> {
  const files = await storage.list(dir);
  const managed = files.includes(META_FILE);
  if (!managed && !files.includes(CHAIN_FILE)) return { value: null, problems: [] };
  // A directory nexo does not manage keeps its failure state in the pending record (see recordFailure).
  const meta = await readMeta(storage, joinKey(managed ? dir : pendingDir(dir), META_FILE));
  const pair = await readPair(storage, dir);
  const base = meta.value ?? emptyCertMeta([]);
  const value: StoredCertificate = {
    ...base,
    names: managed && meta.value !== null ? meta.value.names : pair.value?.info.names ?? base.names,
    // The certificate itself is the authority on its dates; meta.json's copy is for people.
    notBefore: pair.value?.info.notBefore ?? base.notBefore,
    notAfter: pair.value?.info.notAfter ?? base.notAfter,
    dir,
    location: storage.describe(dir),
    managed,
    pair: pair.value === null ? null : { certPem: pair.value.certPem, keyPem: pair.value.keyPem },
  };
  return { value, problems: managed ? [...meta.problems, ...pair.problems] : meta.problems };
}

/** The meta.json at `key`: null when missing, or when corrupt (with a problem). */
export async function readMeta(storage: Storage, key: StorageKey): Promise<ReadResult<CertMeta | null>> {
  const text = await loadText(storage, key);
  if (text === null) return { value: null, problems: [] };
  try {
    return { value: decodeMeta(text, storage.describe(key)), problems: [] };
  } catch (err) {
    return { value: null, problems: [(err as Error).message] };
  }
}

interface Pair {
  certPem: string;
  keyPem: string;
  info: CertificateInfo;
}

async function readPair(storage: Storage, dir: string): Promise<ReadResult<Pair | null>> {
  const chainKey = joinKey(dir, CHAIN_FILE);
  const keyKey = joinKey(dir, KEY_FILE);
  const certPem = await loadText(storage, chainKey);
  const keyPem = await loadText(storage, keyKey);
  if (certPem === null || keyPem === null) {
    const missing = storage.describe(certPem === null ? chainKey : keyKey);
    return {
      value: null,
      problems: [`Cannot load "${missing}": the file is missing (nexo reissues the certificate)`],
    };
  }
  const sources = { certSource: storage.describe(chainKey), keySource: storage.describe(keyKey) };
  try {
    const info = parseCertificate(certPem, sources.certSource);
    await checkKeyMatchesCertificate(certPem, keyPem, sources);
    return { value: { certPem, keyPem, info }, problems: [] };
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    return { value: null, problems: [`${err.message}; nexo reissues it`] };
  }
}
