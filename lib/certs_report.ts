// `nexo certs`: a table of the certificates under cert_dir (names, issuer, expiry, next renewal, last error),
// read from what is stored, so it works while a server runs. It changes nothing.

import { renewalDueAt, renewalWindowNote } from "./acme/schedule.ts";
import type { Config } from "./config/types.ts";
import { CertRepository } from "./storage/cert_repository.ts";

/** Builds the report for `config`'s cert_dir, one certificate per line, plus storage problems. */
export async function certificatesReport(config: Config, now: number = Date.now()): Promise<string> {
  const repository = CertRepository.open({ certDir: config.certDir, baseDir: config.baseDir });
  const { certificates, problems } = await repository.loadCertificates();
  if (certificates.length === 0 && problems.length === 0) return `No certificates in ${config.certDir}\n`;
  const rows = [["NAMES", "ISSUER", "EXPIRES", "RENEWAL", "LAST ERROR"]];
  const notes: string[] = [];
  for (const cert of certificates) {
    const validity = cert.notBefore && cert.notAfter
      ? { notBefore: cert.notBefore, notAfter: cert.notAfter }
      : null;
    let renewal = "-";
    if (!cert.managed) renewal = "not managed by nexo";
    else if (cert.nextAttemptAt && cert.nextAttemptAt.getTime() > now) {
      renewal = `retry ${day(cert.nextAttemptAt)}`;
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

function day(date: Date): string {
  return date.toISOString().replace("T", " ").slice(0, 16) + "Z";
}
