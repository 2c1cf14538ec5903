// The certificates nexo issues, as files in cert_dir, and its ACME accounts in base_dir: what the ACME worker
// reads at start (names, expiry, failure state) and writes after each attempt. It does not issue, decide
// when to renew (lib/acme/schedule.ts) or serve (lib/tls/cert_files.ts loads the same directories).
//
// Layout (cert_dir), one directory per certificate, named by certDirName (first name, "*" -> "wildcard_"):
//
//   example.com/              fullchain.pem (leaf first), privkey.pem (0600), meta.json (see cert_meta.ts)
//   wildcard_.example.com/    the same for "*.example.com"
//   .example.com+pending/     meta.json only: failure state of a certificate never issued yet
//   .locks/                   lock files (FileStorage)
//
// Directories are 0700. A swap in progress briefly adds example.com+next, .example.com+new and
// .example.com+old (see dir_swap.ts). Accounts (base_dir): acme/<directory host-path>/account.{key,json}.

import { type AcmeAccount, AcmeAccountStore, type NewAcmeAccount } from "./acme_accounts.ts";
import { readCertDir, readMeta } from "./cert_dir_reader.ts";
import {
  certDirName,
  type CertIssuer,
  type CertMeta,
  CHAIN_FILE,
  emptyCertMeta,
  encodeMeta,
  KEY_FILE,
  META_FILE,
  normalizeCertNames,
  pendingDir,
  pendingOwner,
  type RenewalInfoRecord,
  type StoredCertificate,
} from "./cert_meta.ts";
import { recoverDirectory, replaceDirectory, swapOwner } from "./dir_swap.ts";
import { FileStorage } from "./file_storage.ts";
import { type Storage, type StorageLock, withLock } from "./storage.ts";
import {
  CertificateError,
  type CertificateInfo,
  checkKeyMatchesCertificate,
  parseCertificate,
} from "../tls/pem.ts";

/** A certificate to store, as the issuer returned it. */
export interface NewCertificate {
  /** Leaf first, then intermediates, PEM. */
  certPem: string;
  /** The leaf's private key, PEM. Never log it. */
  keyPem: string;
  issuer: CertIssuer;
  /** The ACME directory URL it came from; null for the internal issuer. */
  directoryUrl: string | null;
}

/** What `loadCertificates` found. */
export interface LoadCertificatesResult {
  /** Sorted by directory name. */
  certificates: StoredCertificate[];
  /** One message per damaged file (naming it and the fix); never key material. */
  problems: string[];
}

/** Failure details for `recordFailure`. */
export interface AttemptFailure {
  /** What went wrong, for people (it is stored in meta.json): never put tokens or keys in it. */
  error: string;
  /** Not before this instant should the next attempt start (from lib/acme/schedule.ts's retryDelayMs). */
  nextAttemptAt: Date;
}

/** Where `CertRepository` keeps things. */
export interface CertRepositoryOptions {
  /** Rooted at cert_dir: one directory per certificate. */
  certs: Storage;
  /** Rooted at base_dir: ACME accounts under acme/. */
  state: Storage;
  /** The current time in ms since the epoch (a seam for tests); default Date.now. */
  now?: () => number;
}

/**
 * The certificate store of the ACME worker. Every method may be called concurrently, from this process or
 * another using the same directories: writes to one certificate are serialized by a lock ("write/<dir>").
 * Holding `lockIssuance` across an issuance additionally keeps two processes from ordering the same
 * certificate. Rejects with StorageError when files cannot be read or written.
 */
export class CertRepository {
  readonly #certs: Storage;
  readonly #accounts: AcmeAccountStore;
  readonly #now: () => number;

  constructor(options: CertRepositoryOptions) {
    this.#certs = options.certs;
    this.#accounts = new AcmeAccountStore(options.state);
    this.#now = options.now ?? Date.now;
  }

  /** A repository on FileStorage: certificates in `paths.certDir`, accounts in `paths.baseDir`. */
  static open(paths: { certDir: string; baseDir: string }): CertRepository {
    return new CertRepository({
      certs: new FileStorage(paths.certDir),
      state: new FileStorage(paths.baseDir),
    });
  }

  /**
   * Waits for the issuance lock of the certificate for `names` (by its first name) and resolves it; the
   * caller releases it, or uses `withLock(repository.lockIssuance(names), fn)`. Not reentrant.
   */
  lockIssuance(names: readonly string[], options: { signal?: AbortSignal } = {}): Promise<StorageLock> {
    return this.#certs.lock(`issue/${certDirName(names)}`, options);
  }

  /**
   * Stores a certificate for `names` (the first names its directory) with fresh meta.json (failures
   * cleared), replacing the previous one crash-safely: at every moment some directory holds a complete,
   * matching pair that loadCertDir will serve, old or new (see dir_swap.ts). Throws an Error, writing
   * nothing, when the chain does not parse, the key does not match it, it does not cover every name, or
   * the directory holds a certificate nexo did not write (no meta.json). Resolves what was stored.
   */
  async saveCertificate(names: readonly string[], certificate: NewCertificate): Promise<StoredCertificate> {
    const wanted = normalizeCertNames(names);
    const dir = certDirName(wanted);
    const info = await checkNewCertificate(wanted, certificate);
    const meta: CertMeta = {
      names: wanted,
      issuer: certificate.issuer,
      directoryUrl: certificate.directoryUrl,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      issuedAt: new Date(this.#now()),
      lastError: null,
      failures: 0,
      lastFailureAt: null,
      nextAttemptAt: null,
      renewalInfo: null, // a new certificate: the CA is asked about it afresh (RFC 9773 §4.3)
    };
    await withLock(this.#certs.lock(`write/${dir}`), async () => {
      await recoverDirectory(this.#certs, dir);
      const existing = await this.#certs.list(dir);
      if (existing.length > 0 && !existing.includes(META_FILE)) {
        const location = this.#certs.describe(dir);
        throw new Error(
          `Cannot save the certificate for ${wanted[0]}: "${location}" holds a certificate nexo did not ` +
            `write (it has no ${META_FILE}); move that directory elsewhere to let nexo manage ${
              wanted[0]
            }, ` +
            `or remove ${wanted[0]} from the names nexo obtains certificates for`,
        );
      }
      // The order of the files does not matter: they go to a hidden staging directory, and the commit is
      // one directory rename (step 3 in dir_swap.ts), after which the pair is visible whole or not at all.
      await replaceDirectory(this.#certs, {
        dir,
        files: [
          { name: KEY_FILE, value: certificate.keyPem, private: true },
          { name: CHAIN_FILE, value: certificate.certPem },
          { name: META_FILE, value: encodeMeta(meta) },
        ],
      });
      await this.#certs.delete(pendingDir(dir));
    });
    const pair = { certPem: certificate.certPem, keyPem: certificate.keyPem };
    return { ...meta, dir, location: this.#certs.describe(dir), managed: true, pair };
  }

  /**
   * Records a failed attempt for the certificate of `names`: increments `failures` and sets `last_error`,
   * `last_failure_at` and `next_attempt_at` in its meta.json, never touching its chain or key. For a
   * certificate not stored yet, or a directory nexo does not manage, the record goes to
   * `.<dir>+pending/meta.json` instead. Resolves the updated state.
   */
  recordFailure(names: readonly string[], failure: AttemptFailure): Promise<CertMeta> {
    const wanted = normalizeCertNames(names);
    const dir = certDirName(wanted);
    return withLock(this.#certs.lock(`write/${dir}`), async () => {
      await recoverDirectory(this.#certs, dir);
      const managed = (await this.#certs.list(dir)).includes(META_FILE);
      const key = `${managed ? dir : pendingDir(dir)}/${META_FILE}`;
      const previous = (await readMeta(this.#certs, key)).value;
      const meta: CertMeta = {
        ...(previous ?? emptyCertMeta(wanted)),
        lastError: failure.error,
        failures: (previous?.failures ?? 0) + 1,
        lastFailureAt: new Date(this.#now()),
        nextAttemptAt: failure.nextAttemptAt,
      };
      await this.#certs.store(key, encodeMeta(meta));
      return meta;
    });
  }

  /**
   * Sets (or, with null, clears) `renewal_info` in the meta.json of the certificate for `names`, changing
   * nothing else. Resolves false, writing nothing, when nexo does not manage that directory (no meta.json):
   * only a stored certificate has a renewal window. Called by the main thread (lib/acme/ari_client.ts).
   */
  recordRenewalInfo(names: readonly string[], info: RenewalInfoRecord | null): Promise<boolean> {
    const dir = certDirName(normalizeCertNames(names));
    return withLock(this.#certs.lock(`write/${dir}`), async () => {
      await recoverDirectory(this.#certs, dir);
      const key = `${dir}/${META_FILE}`;
      const previous = (await readMeta(this.#certs, key)).value;
      if (previous === null) return false;
      await this.#certs.store(key, encodeMeta({ ...previous, renewalInfo: info }));
      return true;
    });
  }

  /**
   * Everything in cert_dir: each certificate directory (managed or not) and each failure record of a
   * certificate never issued. Finishes or undoes interrupted saves first. Damaged files are reported in
   * `problems` and loaded as far as possible (a corrupt meta.json still yields the certificate, with no
   * failure state; a corrupt or mismatched pair yields `pair: null`, so the caller reissues).
   */
  async loadCertificates(): Promise<LoadCertificatesResult> {
    await this.#recoverAll();
    const problems: string[] = [];
    const certificates: StoredCertificate[] = [];
    const entries = await this.#certs.list("");
    for (const entry of entries) {
      if (entry.startsWith(".") || entry.includes("+")) continue;
      const found = await readCertDir(this.#certs, entry);
      problems.push(...found.problems);
      if (found.value !== null) certificates.push(found.value);
    }
    for (const entry of entries) {
      const dir = pendingOwner(entry);
      if (dir === undefined || certificates.some((cert) => cert.dir === dir)) continue;
      const meta = await readMeta(this.#certs, `${entry}/${META_FILE}`);
      problems.push(...meta.problems);
      if (meta.value !== null) {
        const location = this.#certs.describe(dir);
        certificates.push({ ...meta.value, dir, location, managed: false, pair: null });
      }
    }
    certificates.sort((a, b) => a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0);
    return { certificates, problems };
  }

  /**
   * The certificate for `names` as `loadCertificates` would report it (an interrupted save finished or undone
   * first; a certificate never issued yet as its failure record, `pair: null`), or null when nothing is
   * stored. Problems are left out: loadCertificates reports them.
   */
  async loadCertificate(names: readonly string[]): Promise<StoredCertificate | null> {
    const dir = certDirName(normalizeCertNames(names));
    await withLock(this.#certs.lock(`write/${dir}`), () => recoverDirectory(this.#certs, dir));
    const found = (await readCertDir(this.#certs, dir)).value;
    if (found !== null) return found;
    const meta = (await readMeta(this.#certs, `${pendingDir(dir)}/${META_FILE}`)).value;
    return meta === null
      ? null
      : { ...meta, dir, location: this.#certs.describe(dir), managed: false, pair: null };
  }

  /** The ACME account for `directoryUrl`, or null; see AcmeAccountStore.loadAccount. */
  loadAccount(directoryUrl: string): Promise<AcmeAccount | null> {
    return this.#accounts.loadAccount(directoryUrl);
  }

  /** Stores the ACME account for `directoryUrl`; see AcmeAccountStore.saveAccount. */
  saveAccount(directoryUrl: string, account: NewAcmeAccount): Promise<void> {
    return this.#accounts.saveAccount(directoryUrl, account);
  }

  /** Recovers every directory with swap leftovers, and drops failure records of issued certificates. */
  async #recoverAll(): Promise<void> {
    const entries = await this.#certs.list("");
    const owners = new Set(entries.map(swapOwner).filter((dir) => dir !== undefined));
    for (const entry of entries) {
      const dir = pendingOwner(entry);
      if (dir !== undefined && entries.includes(dir)) owners.add(dir); // a save crashed before deleting it
    }
    for (const dir of owners) {
      await withLock(this.#certs.lock(`write/${dir}`), async () => {
        await recoverDirectory(this.#certs, dir);
        if ((await this.#certs.list(dir)).includes(META_FILE)) await this.#certs.delete(pendingDir(dir));
      });
    }
  }
}

/** Parses the new chain and checks it against its key and the requested names; rejects if unusable. */
async function checkNewCertificate(
  names: string[],
  certificate: NewCertificate,
): Promise<{ notBefore: Date; notAfter: Date }> {
  let info: CertificateInfo;
  try {
    info = parseCertificate(certificate.certPem);
    await checkKeyMatchesCertificate(certificate.certPem, certificate.keyPem);
  } catch (err) {
    if (!(err instanceof CertificateError)) throw err;
    throw new CertificateError(
      `Cannot save the certificate for ${names[0]}: ${err.message}; nothing was written (the issuer ` +
        `returned an unusable certificate: nexo retries; report it if it persists)`,
      { cause: err },
    );
  }
  const uncovered = names.filter((name) => !info.names.includes(name));
  if (uncovered.length > 0) {
    throw new CertificateError(
      `Cannot save the certificate for ${names[0]}: it does not cover ${uncovered.join(", ")} (it covers ` +
        `${info.names.join(", ")}); nothing was written (this is a bug in the issuer, please report it)`,
    );
  }
  return info;
}
