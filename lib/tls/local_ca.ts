// The built-in local CA behind `issuer: internal` (like Caddy's internal issuer): it keeps one self-signed
// ECDSA P-256 root in a directory and mints short-lived leaf certificates signed directly by it. It does not
// install the root into any trust store, revoke certificates, or decide when to renew (its callers do).

import { syncDir, writeAndRename } from "../storage/atomic_write.ts";
import { dirname, join } from "../path.ts";
import {
  type Bytes,
  encodeBitString,
  encodeBoolean,
  encodeImplicit,
  encodeOctetString,
  encodeOid,
  encodeSequence,
} from "./der.ts";
import {
  computeKeyId,
  encodeExtension,
  encodeName,
  type IssuerFields,
  OID,
  readIssuerFields,
  signCertificate,
} from "./x509.ts";
import {
  checkKeyMatchesCertificate,
  encodePem,
  parseCertificate,
  splitCertificateChain,
  splitPemBlocks,
} from "./pem.ts";
import { isoTime } from "../iso_time.ts";

const ROOT_CERT_FILE = "root.crt";
const ROOT_KEY_FILE = "root.key";

/** Where nexo keeps its local CA under `base_dir` (the directory `LocalCa.loadOrCreate()` is given). */
export function localCaDir(baseDir: string): string {
  return join(baseDir, "ca");
}

/** The root certificate's path in a local CA directory, whether or not it exists yet. */
export function localCaRootPath(caDir: string): string {
  return join(caDir, ROOT_CERT_FILE);
}

// The root lives long so users trust it once; leaves live a week so a leaked leaf key matters little, and
// notBefore is backdated 5 minutes so clients with a slightly slow clock do not reject a fresh certificate.
const ROOT_LIFETIME_YEARS = 10;
const DEFAULT_LEAF_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Upper bound for the CommonName attribute (RFC 5280 Appendix A, ub-common-name). */
const MAX_COMMON_NAME_LENGTH = 64;

const EC_P256: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };

/** Options for `LocalCa.issue`. */
export interface IssueOptions {
  /** How long the leaf is valid from `now`, in ms; default 7 days. Clamped to the root's own expiry. */
  lifetimeMs?: number;
  /** The issuing time (a seam for tests); default the current time. */
  now?: Date;
}

/** A leaf certificate minted by `LocalCa.issue`. */
export interface IssuedCertificate {
  /** The leaf followed by the root, PEM; what a TLS server sends. */
  certPem: string;
  /** The leaf's private key, PKCS#8 PEM. Never log it. */
  keyPem: string;
  notAfter: Date;
}

/**
 * The local certificate authority. Create it with `loadOrCreate`; `issue` may be called concurrently.
 * The root private key stays in memory as a non-extractable CryptoKey.
 */
export class LocalCa {
  readonly #certPath: string;
  readonly #rootCertPem: string;
  readonly #rootKey: CryptoKey;
  readonly #rootSubject: Bytes;
  readonly #rootKeyId: Bytes;
  readonly #rootNotAfter: Date;

  private constructor(
    certPath: string,
    root: { certPem: string; key: CryptoKey; subject: Bytes; keyId: Bytes; notAfter: Date },
  ) {
    this.#certPath = certPath;
    this.#rootCertPem = root.certPem;
    this.#rootKey = root.key;
    this.#rootSubject = root.subject;
    this.#rootKeyId = root.keyId;
    this.#rootNotAfter = root.notAfter;
  }

  /**
   * Loads the root from `dir/root.crt` and `dir/root.key`, or creates both (key mode 0600, each written
   * atomically; `dir` is created with mode 0700 if missing) when neither exists. Never overwrites: when only one file exists, or a
   * file is unreadable, corrupt or the two do not match, it throws an Error naming the file and the fix.
   * Messages never contain key material. Not safe for two processes creating the same `dir` at once.
   */
  static async loadOrCreate(dir: string): Promise<LocalCa> {
    const certPath = localCaRootPath(dir);
    const keyPath = join(dir, ROOT_KEY_FILE);
    const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
    if (certPem === undefined && keyPem === undefined) {
      const created = await createRoot(new Date());
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      // Key first: a crash in between leaves a lone key, which the next start reports instead of reusing.
      await writeFileAtomic(keyPath, created.keyPem, 0o600);
      await writeFileAtomic(certPath, created.certPem, 0o644);
      return await LocalCa.#fromPem(certPath, keyPath, created);
    }
    if (certPem === undefined || keyPem === undefined) {
      const [present, missing] = certPem === undefined ? [keyPath, certPath] : [certPath, keyPath];
      throw new Error(
        `Cannot load the local CA from "${dir}": "${present}" exists but "${missing}" is missing (restore it from ` +
          `a backup, or delete "${present}" to create a new root that clients must trust again)`,
      );
    }
    return await LocalCa.#fromPem(certPath, keyPath, { certPem, keyPem });
  }

  static async #fromPem(
    certPath: string,
    keyPath: string,
    pems: { certPem: string; keyPem: string },
  ): Promise<LocalCa> {
    const startOver =
      `delete "${certPath}" and "${keyPath}" to create a new root that clients must trust again`;
    let notAfter: Date;
    let issuer: IssuerFields;
    try {
      notAfter = parseCertificate(pems.certPem).notAfter;
      issuer = readIssuerFields(splitCertificateChain(pems.certPem)[0]?.der ?? new Uint8Array());
    } catch (err) {
      throw new Error(
        `Cannot load the local CA root certificate "${certPath}": it is not a valid PEM certificate ` +
          `(restore it from a backup, or ${startOver})`,
        { cause: err },
      );
    }
    const key = await importRootKey(pems.keyPem, `restore it from a backup, or ${startOver}`, keyPath);
    try {
      await checkKeyMatchesCertificate(pems.certPem, pems.keyPem);
    } catch (err) {
      throw new Error(
        `Cannot load the local CA from "${certPath}" and "${keyPath}": the key does not belong to the ` +
          `certificate (restore the matching pair, or ${startOver})`,
        { cause: err },
      );
    }
    return new LocalCa(certPath, {
      certPem: pems.certPem,
      key,
      subject: issuer.subject,
      keyId: issuer.keyId ?? await computeKeyId(issuer.spki),
      notAfter,
    });
  }

  /** Path of the root certificate (PEM), for users to add to their trust store. */
  get rootCertPath(): string {
    return this.#certPath;
  }

  /** The root certificate, PEM. */
  get rootCertPem(): string {
    return this.#rootCertPem;
  }

  /**
   * Mints a leaf for `names` (DNS names, "*.example.com" wildcards allowed; the first is also the CN) with
   * a fresh P-256 key. Throws an Error when `names` is empty or holds an invalid name, when `lifetimeMs` is
   * not positive, or when the root itself has expired. Keeps nothing: callers store the result.
   */
  async issue(names: string[], options: IssueOptions = {}): Promise<IssuedCertificate> {
    const dnsNames = normalizeDnsNames(names);
    const lifetimeMs = options.lifetimeMs ?? DEFAULT_LEAF_LIFETIME_MS;
    if (!Number.isFinite(lifetimeMs) || lifetimeMs <= 0) {
      throw new Error(
        `Cannot issue a certificate for "${dnsNames[0]}": lifetimeMs must be a positive number of ms`,
      );
    }
    const now = options.now ?? new Date();
    if (this.#rootNotAfter.getTime() <= now.getTime()) {
      throw new Error(
        `Cannot issue a certificate for "${dnsNames[0]}": the local CA root "${this.#certPath}" expired on ` +
          `${isoTime(this.#rootNotAfter)} (delete it and root.key to create a new root, then trust it again)`,
      );
    }
    const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, this.#rootNotAfter.getTime()));
    const commonName = dnsNames[0] !== undefined && dnsNames[0].length <= MAX_COMMON_NAME_LENGTH
      ? dnsNames[0]
      : undefined;
    const leafDer = await signCertificate({
      issuer: this.#rootSubject,
      subject: encodeName(commonName),
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      spki,
      extensions: await this.#leafExtensions(dnsNames, spki, commonName === undefined),
    }, this.#rootKey);
    const leafKey = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
    return {
      certPem: encodePem("CERTIFICATE", leafDer) + this.#rootCertPem,
      keyPem: encodePem("PRIVATE KEY", leafKey),
      notAfter: new Date(Math.floor(notAfter.getTime() / 1000) * 1000),
    };
  }

  /** The extensions of a TLS server leaf (RFC 5280 §4.2.1), in the order openssl prints them. */
  async #leafExtensions(dnsNames: string[], spki: Bytes, emptySubject: boolean): Promise<Bytes[]> {
    const sans = dnsNames.map((name) => encodeImplicit(2, new TextEncoder().encode(name))); // dNSName [2]
    const authorityKeyId = encodeSequence(encodeImplicit(0, this.#rootKeyId)); // keyIdentifier [0]
    return [
      encodeExtension(OID.basicConstraints, true, encodeSequence()), // cA DEFAULT FALSE is omitted
      // digitalSignature is bit 0: one byte 0x80 with 7 unused bits (X.690 §11.2.2 drops trailing zeros).
      encodeExtension(OID.keyUsage, true, encodeBitString(Uint8Array.of(0x80), 7)),
      encodeExtension(OID.extKeyUsage, false, encodeSequence(encodeOid(OID.serverAuth))),
      // RFC 5280 §4.2.1.6: the SAN extension is critical when the subject is empty.
      encodeExtension(OID.subjectAltName, emptySubject, encodeSequence(...sans)),
      encodeExtension(OID.authorityKeyIdentifier, false, authorityKeyId),
      encodeExtension(OID.subjectKeyIdentifier, false, encodeOctetString(await computeKeyId(spki))),
    ];
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot read the local CA file "${path}": permission denied (run nexo as the user that owns it)`,
        { cause: err },
      );
    }
    throw err;
  }
}

async function importRootKey(keyPem: string, fix: string, keyPath: string): Promise<CryptoKey> {
  try {
    const block = splitPemBlocks(keyPem).find((b) => b.label === "PRIVATE KEY");
    if (block === undefined) throw new Error("no PKCS#8 PRIVATE KEY block");
    return await crypto.subtle.importKey("pkcs8", block.der, EC_P256, false, ["sign"]);
  } catch (err) {
    // The cause is a decoder reason; neither it nor this message carries key bytes.
    throw new Error(
      `Cannot load the local CA root key "${keyPath}": it is not a PKCS#8 PEM ECDSA P-256 private key (${fix})`,
      { cause: err },
    );
  }
}

async function createRoot(now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  // The full timestamp, so two roots (another machine, a re-created CA) practically never share a subject
  // name, which would send clients that trust both down the wrong chain.
  const name = encodeName(`nexo Local CA ${isoTime(now)}`);
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_LIFETIME_YEARS);
  const der = await signCertificate({
    issuer: name,
    subject: name,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    spki,
    extensions: [
      encodeExtension(OID.basicConstraints, true, encodeSequence(encodeBoolean(true))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b00000110 with the one trailing zero bit unused.
      encodeExtension(OID.keyUsage, true, encodeBitString(Uint8Array.of(0x06), 1)),
      encodeExtension(OID.subjectKeyIdentifier, false, encodeOctetString(await computeKeyId(spki))),
    ],
  }, keys.privateKey);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { certPem: encodePem("CERTIFICATE", der), keyPem: encodePem("PRIVATE KEY", pkcs8) };
}

const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Lowercases and de-duplicates names; throws when one is not a DNS name with an optional "*." label. */
function normalizeDnsNames(names: readonly string[]): string[] {
  if (names.length === 0) {
    throw new Error("Cannot issue a certificate for no names: pass at least one DNS name");
  }
  const out: string[] = [];
  for (const name of names) {
    const lower = name.toLowerCase();
    const labels = lower.split(".");
    const rest = labels[0] === "*" ? labels.slice(1) : labels;
    if (lower.length > 253 || rest.length === 0 || !rest.every((label) => DNS_LABEL.test(label))) {
      throw new Error(
        `Cannot issue a certificate for "${name}": it is not a DNS name (use letters, digits and hyphens, ` +
          `an optional leading "*." label, no trailing dot; convert international names to punycode)`,
      );
    }
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

/** Writes `text` to `path` atomically (see lib/storage/atomic_write.ts) and persists the rename. */
async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  await writeAndRename(path, new TextEncoder().encode(text), mode);
  await syncDir(dirname(path));
}
