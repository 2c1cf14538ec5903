// `nexo certs`: a table of the certificates under cert_dir (names, issuer, expiry, next renewal: the time
// picked in the CA's suggested window when meta.json holds one, RFC 9773, else the fixed schedule's; last
// error), read from what is stored, so it works while a server runs; with `issuer: internal`, the local CA
// and the hosts whose certificates it mints in memory (they are never stored). It changes nothing.

import { ariCertId } from "./acme/ari_cert_id.ts";
import { boundRenewalTime } from "./acme/ari_schedule.ts";
import { renewalDueAt, renewalWindowNote } from "./acme/schedule.ts";
import type { Config } from "./config/types.ts";
import type { StoredCertificate } from "./storage/cert_meta.ts";
import type { CertRepository } from "./storage/cert_repository.ts";
import { openRepository } from "./storage/open_repository.ts";
import { INTERNAL_LEAF_LIFETIME_MS } from "./server/internal_issuer.ts";
import { localCaDir, localCaRootPath } from "./tls/local_ca.ts";
import { CertificateError, parseCertificate } from "./tls/pem.ts";
import { isoTime } from "./iso_time.ts";

/**
 * Builds the report: with `issuer: internal` the local CA and its hosts first, then `config`'s cert_dir, one
 * certificate per line, plus storage problems ("No certificates in ..." when it holds none and no local CA
 * serves).
 */
export async function certificatesReport(config: Config, now: number = Date.now()): Promise<string> {
  const local = config.issuer === "internal" ? await localCaReport(config) : "";
  const opened = await openRepository(config);
  let loaded: Awaited<ReturnType<CertRepository["loadCertificates"]>>;
  try {
    loaded = await opened.repository.loadCertificates();
  } finally {
    opened.close();
  }
  const { certificates, problems } = loaded;
  if (certificates.length === 0 && problems.length === 0) {
    const where = config.storage === null ? config.certDir : opened.where;
    return local + (local === "" ? `No certificates in ${where}\n` : "");
  }
  return local + storedReport(config, certificates, problems, now);
}

/**
 * The local CA's root and the hosts it serves: their leaves are minted in memory at each name's first
 * handshake (internal_issuer.ts), so cert_dir never holds them and the table below cannot show them.
 */
async function localCaReport(config: Config): Promise<string> {
  const rootPath = localCaRootPath(localCaDir(config.baseDir));
  let root: string;
  try {
    const info = parseCertificate(await Deno.readTextFile(rootPath), rootPath);
    root = `${rootPath} (expires ${day(info.notAfter)})`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      root = `${rootPath} (not created yet: \`nexo server\` creates it)`;
    } else if (error instanceof CertificateError) root = `${rootPath} (unreadable: ${error.message})`;
    else throw error;
  }
  const days = INTERNAL_LEAF_LIFETIME_MS / (24 * 3_600_000);
  const hosts = config.routes.map((route) => route.host);
  return `Local CA: ${root}\n` +
    `Hosts it serves, each with a ${days}-day certificate minted in memory at its first connection and ` +
    `renewed with a third of its life left (not stored in ${config.certDir}):\n` +
    hosts.map((host) => `  ${host}\n`).join("");
}

function storedReport(
  config: Config,
  certificates: Awaited<ReturnType<CertRepository["loadCertificates"]>>["certificates"],
  problems: string[],
  now: number,
): string {
  const rows = [["NAMES", "ISSUER", "EXPIRES", "RENEWAL", "LAST ERROR"]];
  const notes: string[] = [];
  for (const cert of certificates) {
    const validity = cert.notBefore && cert.notAfter
      ? { notBefore: cert.notBefore, notAfter: cert.notAfter }
      : null;
    const window = validity && config.issuer === "acme" ? caWindowOf(cert) : null;
    let renewal = "-";
    if (!cert.managed) renewal = "not managed by nexo";
    else if (cert.nextAttemptAt && cert.nextAttemptAt.getTime() > now) {
      renewal = `retry ${day(cert.nextAttemptAt)}`;
    } else if (validity && window !== null) {
      const { renewAt, capped } = boundRenewalTime(window.renewAt.getTime(), validity);
      renewal = `${renewAt <= now ? "due now" : day(new Date(renewAt))} (CA window) *`;
      const why = window.explanationUrl === null ? "" : `; the CA explains it at ${window.explanationUrl}`;
      const cap = capped
        ? "; moved earlier to keep a tenth of the lifetime, as the window ends too late"
        : "";
      notes.push(
        `* ${cert.names.join(",")}: picked in the CA's suggested renewal window ${
          day(window.windowStart)
        } to ` +
          `${day(window.windowEnd)} (RFC 9773; nexo server asks again as the CA says)${cap}${why}`,
      );
    } else if (validity && config.issuer === "acme") {
      const due = renewalDueAt(validity, config.acme.renewBeforeMs);
      renewal = due <= now ? "due now" : day(new Date(due));
      const lifetime = validity.notAfter.getTime() - validity.notBefore.getTime();
      const note = renewalWindowNote(lifetime, config.acme.renewBeforeMs);
      if (note !== null) {
        renewal += " *";
        notes.push(`* ${cert.names.join(",")}: ${note}`);
      }
    } else if (!cert.pair) renewal = "pending";
    rows.push([
      cert.names.join(","),
      cert.managed ? cert.issuer ?? "-" : "file",
      cert.notAfter ? day(cert.notAfter) : "-",
      renewal,
      cert.lastError ? `${cert.failures}x: ${cert.lastError}` : "-",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
  );
  return lines.join("\n") + "\n" + notes.map((note) => `${note}\n`).join("") +
    problems.map((p) => `problem: ${p}\n`).join("");
}

/** meta.json's renewal window when it is about the stored leaf (not a predecessor's), else null. */
function caWindowOf(cert: StoredCertificate): StoredCertificate["renewalInfo"] {
  if (cert.renewalInfo === null || cert.pair === null) return null;
  try {
    return ariCertId(cert.pair.certPem) === cert.renewalInfo.certId ? cert.renewalInfo : null;
  } catch {
    return null; // a leaf without an authority key identifier has no renewal information
  }
}

function day(date: Date): string {
  return isoTime(date).replace("T", " ").slice(0, 16) + "Z";
}
