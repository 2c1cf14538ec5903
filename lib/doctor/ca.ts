// `nexo doctor`'s check of the ACME CA: its directory reachable and well-formed (RFC 8555 §7.1.1), its terms
// of service, whether it demands External Account Binding, this machine's clock against the CA's Date header,
// and the stored account (still known to the CA, or to be created at first start). It orders nothing and
// registers nothing: the account lookup uses onlyReturnExisting (§7.3.1).

import { errorMessage } from "../error_message.ts";
import type { Config } from "../config/types.ts";
import { accountDir, AcmeAccountStore } from "../storage/acme_accounts.ts";
import { join } from "../path.ts";
import { FileStorage } from "../storage/file_storage.ts";
import { lookUpAccount } from "./acme_account.ts";
import { type Finding, finding } from "./report.ts";

const AREA = "ca";
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Clock offsets worth a word: a minute off is a misconfigured NTP (warning); an hour off makes fresh
 * certificates look not yet valid and renewal times wrong (problem). The Date header has 1 s resolution.
 */
const CLOCK_WARNING_MS = 60_000;
const CLOCK_PROBLEM_MS = 3_600_000;

/** CAs whose CAA name is known by the directory's host, for when the directory cannot be read. */
const KNOWN_CAA_NAMES: ReadonlyArray<[RegExp, string]> = [
  [/(^|\.)api\.letsencrypt\.org$/, "letsencrypt.org"],
  [/^acme\.zerossl\.com$/, "sectigo.com"], // ZeroSSL issues through Sectigo and documents that CAA name
  [/\.pki\.goog$/, "pki.goog"],
];

/** What the CA check learned that the CAA check needs. */
export interface CaFacts {
  findings: Finding[];
  /** The CA's CAA names (meta.caaIdentities, else known by host); null when unknown. */
  caaIdentities: string[] | null;
  /** nexo's account URL; null when it will register a new one; undefined when doctor could not tell. */
  accountUrl: string | null | undefined;
}

/** The saved account's finding, and its URL as `CaFacts.accountUrl` has it. */
interface Account {
  finding: Finding;
  url: string | null | undefined;
}

interface Directory {
  newNonce?: unknown;
  newAccount?: unknown;
  newOrder?: unknown;
  meta?: { termsOfService?: unknown; externalAccountRequired?: unknown; caaIdentities?: unknown };
}

/** Runs the CA checks against `config.acme`. `now` is the clock being checked (a seam for tests). */
export async function checkCa(config: Config, now: () => number = Date.now): Promise<CaFacts> {
  const url = config.acme.directory;
  const subject = url;
  const findings: Finding[] = [];
  const byHost = knownCaaName(url);
  let caCerts: string[] = [];
  if (config.acme.caCert !== null) {
    try {
      caCerts = [await Deno.readTextFile(config.acme.caCert)];
    } catch (error) {
      findings.push({
        area: AREA,
        subject: `acme.ca_cert ${config.acme.caCert}`,
        status: "problem",
        message: `cannot read it: ${errorMessage(error)}`,
        fix: "fix the path, or remove acme.ca_cert for a public CA",
      });
      return { findings, caaIdentities: byHost, accountUrl: undefined };
    }
  }
  let client: Deno.HttpClient | undefined;
  let directory: Directory;
  try {
    client = caCerts.length > 0 ? Deno.createHttpClient({ caCerts }) : undefined;
    const sent = now();
    const response = await fetch(url, {
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(client ? { client } : {}),
    });
    const received = now();
    const text = await response.text();
    if (!response.ok) {
      findings.push({
        area: AREA,
        subject,
        status: "problem",
        message: `the directory answered HTTP ${response.status}`,
        fix: "check acme.directory (Let's Encrypt's is https://acme-v02.api.letsencrypt.org/directory)",
      });
      return { findings, caaIdentities: byHost, accountUrl: undefined };
    }
    directory = parseDirectory(text);
    findings.push(finding(AREA, subject, "ok", "the directory answers"));
    findings.push(clockFinding(response.headers.get("date"), (sent + received) / 2));
  } catch (error) {
    findings.push({
      area: AREA,
      subject,
      status: "problem",
      message: `cannot read the directory: ${reason(error)}`,
      fix: caCerts.length === 0 && /certificate|UnknownIssuer/i.test(errorMessage(error))
        ? "the CA's certificate is not trusted here: set acme.ca_cert for a private CA"
        : "check that this machine reaches it over HTTPS (firewall, proxy, DNS) and that acme.directory is right",
    });
    return { findings, caaIdentities: byHost, accountUrl: undefined };
  } finally {
    client?.close();
  }
  findings.push(...directoryFindings(directory, config.acme.eab));
  const account = await accountFinding(config, directory, caCerts);
  findings.push(account.finding);
  const identities = directory.meta?.caaIdentities;
  const caaIdentities = Array.isArray(identities) && identities.every((i) => typeof i === "string")
    ? identities as string[]
    : byHost;
  return { findings, caaIdentities, accountUrl: account.url };
}

function reason(error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  // fetch() says only "fetch failed"; the cause says refused, DNS or TLS.
  const cause = error instanceof Error && error.cause !== undefined ? `: ${errorMessage(error.cause)}` : "";
  return errorMessage(error) + cause;
}

function knownCaaName(directoryUrl: string): string[] | null {
  let host: string;
  try {
    host = new URL(directoryUrl).hostname;
  } catch {
    return null;
  }
  const known = KNOWN_CAA_NAMES.find(([pattern]) => pattern.test(host));
  return known ? [known[1]] : null;
}

function parseDirectory(text: string): Directory {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("the answer is not JSON: is acme.directory an ACME directory URL?");
  }
  if (typeof parsed !== "object" || parsed === null) throw new Error("the answer is not a JSON object");
  const directory = parsed as Directory;
  for (const key of ["newNonce", "newAccount", "newOrder"] as const) {
    if (typeof directory[key] !== "string") {
      throw new Error(`the answer has no "${key}": is acme.directory an ACME directory URL?`);
    }
  }
  return directory;
}

/** The terms of service and External Account Binding (RFC 8555 §7.3.4). */
function directoryFindings(directory: Directory, eab: Config["acme"]["eab"]): Finding[] {
  const findings: Finding[] = [];
  const terms = directory.meta?.termsOfService;
  findings.push(finding(
    AREA,
    "terms of service",
    "ok",
    typeof terms === "string"
      ? `${terms} (nexo agrees to them when it creates the account)`
      : "the CA publishes none",
  ));
  if (directory.meta?.externalAccountRequired === true) {
    findings.push(
      eab !== null
        ? finding(
          AREA,
          "External Account Binding",
          "ok",
          `required by this CA; acme.eab is set (kid ${eab.kid})`,
        )
        : {
          area: AREA,
          subject: "External Account Binding",
          status: "problem",
          message:
            "this CA requires External Account Binding (a key id and HMAC key from its dashboard), and " +
            "acme.eab is not set: it will refuse to register nexo's account",
          fix: "add acme.eab: { kid: ..., hmac_key: ... } with the values the CA's dashboard shows",
        },
    );
  }
  return findings;
}

/** The clock against the CA's Date header (RFC 9110 §6.6.1), taken at the middle of the request. */
export function clockFinding(dateHeader: string | null, localMs: number): Finding {
  const subject = "this machine's clock";
  const caMs = dateHeader === null ? NaN : Date.parse(dateHeader);
  if (Number.isNaN(caMs)) {
    return finding(AREA, subject, "skipped", "the CA sent no Date header to compare with");
  }
  const offset = localMs - caMs;
  const seconds = Math.round(Math.abs(offset) / 1000);
  const side = offset > 0 ? "ahead of" : "behind";
  if (Math.abs(offset) < CLOCK_WARNING_MS) {
    return finding(AREA, subject, "ok", `within ${Math.max(seconds, 1)} s of the CA's`);
  }
  return {
    area: AREA,
    subject,
    status: Math.abs(offset) >= CLOCK_PROBLEM_MS ? "problem" : "warning",
    message: `${seconds} s ${side} the CA's: certificates look valid at the wrong times and renewals drift`,
    fix: "turn on time synchronization: sudo timedatectl set-ntp true (or install chrony)",
  };
}

/**
 * The account nexo saved for this directory: looked up at the CA by its key (onlyReturnExisting, which
 * registers nothing), or, when none is saved, that one will be created at first start.
 */
async function accountFinding(config: Config, directory: Directory, caCertsPem: string[]): Promise<Account> {
  const subject = "ACME account";
  let account;
  try {
    account = await new AcmeAccountStore(new FileStorage(config.baseDir)).loadAccount(config.acme.directory);
  } catch (error) {
    return {
      finding: { area: AREA, subject, status: "problem", message: `cannot read it: ${errorMessage(error)}` },
      url: undefined,
    };
  }
  const contact = config.email
    ? ` for ${config.email}`
    : " without an email (set email: to hear about expiry)";
  const fresh = (message: string) => ({ finding: finding(AREA, subject, "ok", message), url: null });
  if (account === null) return fresh(`none saved yet: nexo registers one${contact} at first start`);
  let client: Deno.HttpClient | undefined;
  try {
    // Cannot fail here: the directory was read through the same certificates.
    client = caCertsPem.length > 0 ? Deno.createHttpClient({ caCerts: caCertsPem }) : undefined;
    const found = await lookUpAccount(account.keyPem, {
      newNonce: String(directory.newNonce),
      newAccount: String(directory.newAccount),
      timeoutMs: REQUEST_TIMEOUT_MS,
      ...(client ? { client } : {}),
    });
    if (found.kind === "found" && found.status === "valid") {
      return { finding: finding(AREA, subject, "ok", `known to the CA (${found.url})`), url: found.url };
    }
    if (found.kind === "found") {
      return {
        finding: {
          area: AREA,
          subject,
          status: "problem",
          message: `the CA has the saved account as "${found.status}" (${found.url}): it cannot order`,
          fix:
            `move ${
              join(config.baseDir, accountDir(config.acme.directory))
            } away, so that nexo registers a ` +
            `new account at its next start`,
        },
        url: found.url,
      };
    }
    if (found.kind === "gone") {
      return fresh(
        "the saved account is unknown to the CA (a reset test CA?): nexo registers a new one at start",
      );
    }
    return {
      finding: { area: AREA, subject, status: "warning", message: `could not look it up: ${found.reason}` },
      url: undefined,
    };
  } finally {
    client?.close();
  }
}
