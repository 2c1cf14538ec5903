// The certificate layout's names and its meta.json: which directory and files a certificate lives in, and
// the state nexo keeps beside each chain and key (where it came from, when it expires, how renewal is
// failing). It does no I/O; cert_repository.ts and cert_dir_reader.ts go through Storage.

import { isoTime } from "../iso_time.ts";

/** The files of a certificate directory (the certbot names, which lib/tls/cert_files.ts loads). */
export const CHAIN_FILE = "fullchain.pem";
export const KEY_FILE = "privkey.pem";
export const META_FILE = "meta.json";
const PENDING_SUFFIX = "+pending";

/** Who issued a certificate nexo stored. */
export type CertIssuer = "acme" | "internal";

/** meta.json, in memory (the file uses the snake_case names given on each field). */
export interface CertMeta {
  /** `names`: the names the certificate was requested for, lowercased; the first names its directory. */
  names: string[];
  /** `issuer`: null in a failure record for a certificate never issued. */
  issuer: CertIssuer | null;
  /** `directory_url`: the ACME directory it came from; null for the internal issuer. */
  directoryUrl: string | null;
  /** `not_before`, `not_after`: copied from the certificate for people reading the file. */
  notBefore: Date | null;
  notAfter: Date | null;
  /** `issued_at`: when nexo stored it. */
  issuedAt: Date | null;
  /** `last_error`: the last failed attempt's message, null after a success. Never holds secrets. */
  lastError: string | null;
  /** `failures`: consecutive failed attempts since the last success. */
  failures: number;
  /** `last_failure_at`. */
  lastFailureAt: Date | null;
  /** `next_attempt_at`: not before this instant should the next attempt start. */
  nextAttemptAt: Date | null;
  /**
   * `renewal_info` (absent from the file when null): the CA's suggested renewal window for this certificate
   * (RFC 9773) and the time nexo picked in it, so a restart keeps the pick. Null when nexo has none.
   */
  renewalInfo: RenewalInfoRecord | null;
}

/** The renewal window an ACME server suggested (RFC 9773 §4.2) and nexo's pick, as meta.json keeps it. */
export interface RenewalInfoRecord {
  /** `cert_id`: the RFC 9773 §4.1 certID asked about; a record whose ID is not the stored leaf's is stale. */
  certId: string;
  /** `window_start`, `window_end`: the suggested window (end after start). */
  windowStart: Date;
  windowEnd: Date;
  /** `renew_at`: the uniformly random time nexo picked in the window (kept while the window is unchanged). */
  renewAt: Date;
  /** `explanation_url`: the CA's page on why the window is what it is, or null. */
  explanationUrl: string | null;
}

/** One certificate directory (or failure record) as the certificate repository found it. */
export interface StoredCertificate extends CertMeta {
  /** The directory under cert_dir, e.g. "wildcard_.example.com". */
  dir: string;
  /** Where it lives, for messages: "/etc/nexo/certs/wildcard_.example.com". */
  location: string;
  /** False for a directory without meta.json (put there by hand or certbot): nexo never replaces it. */
  managed: boolean;
  /** The chain and key when both are present, parse, and match; null otherwise (never issued, damaged). */
  pair: { certPem: string; keyPem: string } | null;
}

/** A CertMeta with no history: nothing issued, no failures. */
export function emptyCertMeta(names: string[]): CertMeta {
  return {
    names,
    issuer: null,
    directoryUrl: null,
    notBefore: null,
    notAfter: null,
    issuedAt: null,
    lastError: null,
    failures: 0,
    lastFailureAt: null,
    nextAttemptAt: null,
    renewalInfo: null,
  };
}

/**
 * The hidden directory holding the failure record (meta.json only) of the certificate `dir` while `dir`
 * holds no certificate nexo manages: ".example.com+pending". Hidden so that loadCertDir skips it.
 */
export function pendingDir(dir: string): string {
  return `.${dir}${PENDING_SUFFIX}`;
}

/** The certificate directory whose failure record `entry` is, or undefined when it is not one. */
export function pendingOwner(entry: string): string | undefined {
  return entry.startsWith(".") && entry.endsWith(PENDING_SUFFIX)
    ? entry.slice(1, -PENDING_SUFFIX.length)
    : undefined;
}

// Error messages from a CA are a sentence or two; keep a runaway one (an HTML error page) out of meta.json.
const MAX_ERROR_LENGTH = 1000;

const DNS_NAME = /^(\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

/**
 * Lowercases `names` and checks each is a DNS name with an optional leading "*." label (punycode for
 * international names). Throws an Error naming the bad one; also for an empty list.
 */
export function normalizeCertNames(names: readonly string[]): string[] {
  if (names.length === 0) throw new Error("Cannot store a certificate for no names (pass at least one)");
  return names.map((name) => {
    const lower = name.toLowerCase();
    if (lower.length > 253 || !DNS_NAME.test(lower)) {
      throw new Error(
        `Cannot store a certificate for ${JSON.stringify(name)}: it is not a DNS name (letters, digits, ` +
          `hyphens, an optional leading "*." label; convert international names to punycode)`,
      );
    }
    return lower;
  });
}

/**
 * The directory of the certificate for `names`: its first name, lowercased, with a leading "*" written
 * "wildcard_" ("*.example.com" -> "wildcard_.example.com"), as certbot-style tools and nexo's README expect.
 * Throws like `normalizeCertNames`.
 */
export function certDirName(names: readonly string[]): string {
  const first = normalizeCertNames(names)[0] ?? "";
  return first.startsWith("*") ? "wildcard_" + first.slice(1) : first;
}

/**
 * Serializes `meta` as meta.json: snake_case keys, ISO 8601 UTC times, two-space indent, final newline.
 * `renewal_info` is written only when there is one, so files without it keep their shape.
 */
export function encodeMeta(meta: CertMeta): string {
  const time = (date: Date | null) => date === null ? null : isoTime(date);
  const info = meta.renewalInfo;
  const lastError = meta.lastError === null || meta.lastError.length <= MAX_ERROR_LENGTH
    ? meta.lastError
    : meta.lastError.slice(0, MAX_ERROR_LENGTH) + "…";
  return JSON.stringify(
    {
      names: meta.names,
      issuer: meta.issuer,
      directory_url: meta.directoryUrl,
      not_before: time(meta.notBefore),
      not_after: time(meta.notAfter),
      issued_at: time(meta.issuedAt),
      last_error: lastError,
      failures: meta.failures,
      last_failure_at: time(meta.lastFailureAt),
      next_attempt_at: time(meta.nextAttemptAt),
      ...(info === null ? {} : {
        renewal_info: {
          cert_id: info.certId,
          window_start: time(info.windowStart),
          window_end: time(info.windowEnd),
          renew_at: time(info.renewAt),
          explanation_url: info.explanationUrl,
        },
      }),
    },
    null,
    2,
  ) + "\n";
}

/**
 * Parses meta.json text. Missing optional fields read as null (0 for `failures`), so files from older
 * versions load; a `renewal_info` missing any field, or whose window does not end after it starts, reads as
 * null (nexo asks the CA again). Throws an Error naming `source` and the bad field when it is not JSON or
 * `names` is not a list of strings; the message never quotes the file.
 */
export function decodeMeta(text: string, source: string): CertMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`Cannot read "${source}": it is not valid JSON (nexo rewrites it on the next renewal)`, {
      cause: err,
    });
  }
  const record = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const names = record.names;
  if (!Array.isArray(names) || names.length === 0 || !names.every((name) => typeof name === "string")) {
    throw new Error(
      `Cannot read "${source}": "names" must be a non-empty list of strings (nexo rewrites it on the ` +
        `next renewal)`,
    );
  }
  const stringField = (key: string): string | null => {
    const value = record[key];
    return typeof value === "string" ? value : null;
  };
  const timeField = (key: string): Date | null => {
    const value = stringField(key);
    const date = value === null ? null : new Date(value);
    return date === null || Number.isNaN(date.getTime()) ? null : date;
  };
  const issuer = record.issuer === "acme" || record.issuer === "internal" ? record.issuer : null;
  const failures =
    typeof record.failures === "number" && Number.isInteger(record.failures) && record.failures > 0
      ? record.failures
      : 0;
  return {
    names,
    issuer,
    directoryUrl: stringField("directory_url"),
    notBefore: timeField("not_before"),
    notAfter: timeField("not_after"),
    issuedAt: timeField("issued_at"),
    lastError: stringField("last_error"),
    failures,
    lastFailureAt: timeField("last_failure_at"),
    nextAttemptAt: timeField("next_attempt_at"),
    renewalInfo: decodeRenewalInfo(record.renewal_info),
  };
}

function decodeRenewalInfo(raw: unknown): RenewalInfoRecord | null {
  if (typeof raw !== "object" || raw === null) return null;
  const record = raw as Record<string, unknown>;
  const time = (key: string): Date | null => {
    const value = record[key];
    const date = typeof value === "string" ? new Date(value) : null;
    return date === null || Number.isNaN(date.getTime()) ? null : date;
  };
  const [windowStart, windowEnd, renewAt] = [time("window_start"), time("window_end"), time("renew_at")];
  const certId = record.cert_id;
  if (typeof certId !== "string" || certId === "" || !windowStart || !windowEnd || !renewAt) return null;
  if (windowEnd.getTime() <= windowStart.getTime()) return null; // RFC 9773 §4.2: such a window is invalid
  const explanationUrl = typeof record.explanation_url === "string" ? record.explanation_url : null;
  return { certId, windowStart, windowEnd, renewAt, explanationUrl };
}
