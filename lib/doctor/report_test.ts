import assert from "node:assert/strict";
import { exitCode, type Finding, formatJson, formatReport } from "./report.ts";

const FINDINGS: Finding[] = [
  { area: "machine", subject: "listen 0.0.0.0:443", status: "ok", message: "this process can bind it" },
  { area: "dns", subject: "a.example.com", status: "problem", message: "no A record", fix: "add one" },
  { area: "machine", subject: "open files limit", status: "skipped", message: "closed" },
  { area: "dns", subject: "b.example.com", status: "warning", message: "disagree" },
];

Deno.test("formatReport() groups by area in first-seen order, with fixes under their line and a summary", () => {
  const text = formatReport(FINDINGS);
  assert.equal(
    text,
    [
      "This machine:",
      "  ok       listen 0.0.0.0:443: this process can bind it",
      "  skipped  open files limit: closed",
      "",
      "DNS records of the hosts:",
      "  PROBLEM  a.example.com: no A record",
      "             fix: add one",
      "  warning  b.example.com: disagree",
      "",
      "1 problem, 1 warning, 1 ok, 1 not checked. Fix the problems above before the first certificate is ordered.",
      "",
    ].join("\n"),
  );
});

Deno.test("exitCode() is 1 only with a problem; formatJson() says the same in `ok`", () => {
  assert.equal(exitCode(FINDINGS), 1);
  assert.equal(JSON.parse(formatJson(FINDINGS)).ok, false);
  const fine = FINDINGS.filter((f) => f.status !== "problem");
  assert.equal(exitCode(fine), 0);
  assert.deepEqual(JSON.parse(formatJson(fine)), { ok: true, findings: fine });
});
