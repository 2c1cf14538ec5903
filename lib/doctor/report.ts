// What `nexo doctor` found, and how it is printed: one line per finding (ok / warning / problem / not
// checked) with the fix in words under it, grouped by area, or the same as JSON for scripts; and the exit
// status. It runs no check itself (doctor.ts and the check modules do).

/** How a finding stands. "skipped": doctor could not check it, and says why. */
export type FindingStatus = "ok" | "warning" | "problem" | "skipped";

/** One line of the report. */
export interface Finding {
  /** The group it prints under: "config", "machine", "dns", "caa", "cloudflare", "ca". */
  area: string;
  /** What was checked: a host name, an address, a directory ("api.example.com", "listen 0.0.0.0:443"). */
  subject: string;
  status: FindingStatus;
  /** What doctor saw, one sentence. */
  message: string;
  /** What to change, in words; absent when nothing needs doing. */
  fix?: string;
}

/** Shorthand for a finding without a fix. */
export function finding(area: string, subject: string, status: FindingStatus, message: string): Finding {
  return { area, subject, status, message };
}

const MARKS: Record<FindingStatus, string> = {
  ok: "ok     ",
  warning: "warning",
  problem: "PROBLEM",
  skipped: "skipped",
};

const AREA_TITLES: Record<string, string> = {
  config: "Config",
  machine: "This machine",
  dns: "DNS records of the hosts",
  caa: "CAA records (which CAs may issue)",
  cloudflare: "Cloudflare (DNS-01)",
  "dns provider": "DNS provider (RFC 2136 updates, DNS-01)",
  ca: "The certificate authority",
};

/** The report as text: areas in first-seen order, a line per finding, its fix indented below; a summary. */
export function formatReport(findings: readonly Finding[]): string {
  const areas = [...new Set(findings.map((f) => f.area))];
  const lines: string[] = [];
  for (const area of areas) {
    lines.push(`${AREA_TITLES[area] ?? area}:`);
    for (const f of findings.filter((f) => f.area === area)) {
      lines.push(`  ${MARKS[f.status]}  ${f.subject}: ${f.message}`);
      if (f.fix !== undefined) lines.push(`             fix: ${f.fix}`);
    }
    lines.push("");
  }
  lines.push(summaryLine(findings));
  return lines.join("\n") + "\n";
}

/** "2 problems, 1 warning, 14 ok, 1 not checked." */
export function summaryLine(findings: readonly Finding[]): string {
  const count = (status: FindingStatus) => findings.filter((f) => f.status === status).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const parts = [
    plural(count("problem"), "problem"),
    plural(count("warning"), "warning"),
    `${count("ok")} ok`,
  ];
  if (count("skipped") > 0) parts.push(`${count("skipped")} not checked`);
  const verdict = count("problem") > 0
    ? "Fix the problems above before the first certificate is ordered."
    : "Nothing found that would stop the first certificate.";
  return `${parts.join(", ")}. ${verdict}`;
}

/** The report as JSON: `{ ok, findings }`, `ok` false when any finding is a problem. */
export function formatJson(findings: readonly Finding[]): string {
  return JSON.stringify({ ok: exitCode(findings) === 0, findings }, null, 2) + "\n";
}

/** 0 without problems (warnings and skipped checks included), 1 with any problem. */
export function exitCode(findings: readonly Finding[]): number {
  return findings.some((f) => f.status === "problem") ? 1 : 0;
}
