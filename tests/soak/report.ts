// The soak's invariants, checked over everything a run recorded, and the table it prints. Pure: outcomes,
// edits, samples and log lines in, rows out. Limits and why they are what they are sit next to each check.

import { lostToHandover, retirementTimes } from "../handover.ts";
import type { Outcome } from "./traffic.ts";
import { RESTARTING_HOST } from "./world.ts";

/** One config edit: what it was, how it was written, how long until it showed (null: never), and verdict. */
export interface EditRecord {
  kind: "host added" | "host removed" | "upstream changed" | "invalid";
  mode: string;
  ms: number | null;
  ok: boolean;
}

/** nexo's descriptors and memory at `atMs` into the soak. */
export interface Sample {
  atMs: number;
  fds: number;
  rssMib: number;
}

export interface RunRecord {
  outcomes: Outcome[];
  edits: EditRecord[];
  samples: Sample[];
  /** nexo's JSON log lines during the soak. */
  logs: Array<Record<string, unknown>>;
  /** Everything nexo printed, to find lines outside its log format. */
  rawOutput: string;
  /** When the restarting upstream was down, ms since the epoch. */
  outages: Array<[number, number]>;
  txtLeft: number;
  maxDuplicates: number;
  cloudflareCalls: number;
}

export interface Row {
  check: string;
  value: string;
  limit: string;
  ok: boolean;
}

/**
 * A request to the restarting upstream's host that got 502 while it was down (or within a second of it:
 * pooled connections notice a restart on their next use) is what an operator expects, not a fault.
 */
const OUTAGE_GRACE_MS = 1_000;
/**
 * Growth per minute over the run's second half that counts as an upward trend. Certificates renew every
 * ~15 s and listeners are replaced each time, so descriptors and memory move; a leak of one descriptor or one
 * buffer per renewal or per request shows up far above these.
 */
const MAX_FD_SLOPE_PER_MIN = 10;
const MAX_RSS_SLOPE_MIB_PER_MIN = 5;
/**
 * V8's heap grows and shrinks by 10-20 MiB between collections, and the first ACME worker runs raise RSS for
 * a couple of minutes, which alone reads as a slope of that much divided by the window: the limit widens
 * for short runs (2 minutes: ~19 MiB/min, 2-minute runs measured 0.4-9.9) and narrows for long ones
 * (10 minutes: ~8 MiB/min; a 6-minute run measured 2.4). A trend needs the long run to show.
 */
const RSS_NOISE_MIB = 20;

/** How each failed outcome is accounted for: the restarting upstream was down, or a listener was retiring. */
function classify(run: RunRecord) {
  // With 30-second certificates every renewal must reach new handshakes within seconds, so a listener is
  // retired every ~15 s (with real lifetimes: at most once a day, held while its WebSockets live).
  const retirements = retirementTimes(run.logs);
  const upstreamDown = (o: Outcome) =>
    o.host === RESTARTING_HOST && o.status === 502 &&
    run.outages.some(([down, up]) => o.started <= up + OUTAGE_GRACE_MS && o.ended >= down - OUTAGE_GRACE_MS);
  const handover = (o: Outcome) => o.error !== null && lostToHandover(o.error, o.ended, retirements);
  const explained = (o: Outcome) => upstreamDown(o) || handover(o);
  const failed = run.outcomes.filter((o) => o.error !== null);
  return {
    retirements,
    upstreamDown,
    handover,
    explained,
    failed,
    unexplained: failed.filter((o) => !explained(o)),
  };
}

export function checkInvariants(run: RunRecord): Row[] {
  const rows: Row[] = [];
  const { retirements, upstreamDown, handover, explained, failed, unexplained } = classify(run);
  const lostAtHandover = failed.filter((o) => !upstreamDown(o) && handover(o));
  const byKind = (kind: Outcome["kind"]) => run.outcomes.filter((o) => o.kind === kind);
  rows.push({
    check: "requests failed without a reason",
    value: `${unexplained.length} of ${run.outcomes.length} (${failed.filter(upstreamDown).length} 502s ` +
      `while the upstream was down)${unexplained.length ? `: ${describe(unexplained)}` : ""}`,
    limit: "0",
    ok: unexplained.length === 0,
  });
  // Each retirement can cut the one WebSocket session (it lives on one listener at a time) and race a new
  // connection or two: a bound per kind, so a regression that loses every request at a retirement shows.
  const webSocketsCut = lostAtHandover.filter((o) => o.kind === "websocket").length;
  const othersLost = lostAtHandover.length - webSocketsCut;
  rows.push({
    check: "connections lost as a listener retired (Deno limit)",
    value: `${webSocketsCut} WebSockets, ${othersLost} other, over ${retirements.length} retirements`,
    limit: "each <= 1 per retirement",
    ok: webSocketsCut <= retirements.length && othersLost <= retirements.length,
  });
  for (const kind of ["get", "download", "upload", "websocket", "sse"] as const) {
    const all = byKind(kind);
    const bad = all.filter((o) => o.error !== null && !explained(o));
    const good = all.filter((o) => o.error === null).length;
    rows.push({
      check: `  ${kind === "get" ? "small GETs (h1 + h2)" : kind === "sse" ? "event streams" : kind + "s"}`,
      value: `${good} ok of ${all.length}, ${bad.length} unexplained`,
      limit: kind === "websocket" || kind === "sse" ? "no unexpected close" : "all verified",
      ok: bad.length === 0 && all.length > 0,
    });
  }
  const valid = run.edits.filter((e) => e.kind !== "invalid");
  const slowest = Math.max(0, ...valid.map((e) => e.ms ?? Infinity));
  rows.push({
    check: "valid edits served",
    value: `${valid.filter((e) => e.ok).length} of ${valid.length}, slowest ${fmt(slowest)} ms`,
    limit: "all within 1 s",
    ok: valid.length > 0 && valid.every((e) => e.ok),
  });
  const invalid = run.edits.filter((e) => e.kind === "invalid");
  rows.push({
    check: "invalid edits rejected, last good config serving",
    value: `${invalid.filter((e) => e.ok).length} of ${invalid.length}`,
    limit: "all",
    ok: invalid.length > 0 && invalid.every((e) => e.ok),
  });
  rows.push(renewalRow(run.logs));
  rows.push({
    check: "TXT records left at Cloudflare",
    value: String(run.txtLeft),
    limit: "0",
    ok: run.txtLeft === 0,
  });
  rows.push({
    check: "most TXT records with one name and value",
    value: String(run.maxDuplicates),
    limit: "1",
    ok: run.maxDuplicates <= 1,
  });
  const half = run.samples.slice(Math.floor(run.samples.length / 3));
  const windowMin = half.length > 1 ? (half.at(-1)!.atMs - half[0]!.atMs) / 60_000 : 0;
  const rssLimit = MAX_RSS_SLOPE_MIB_PER_MIN + RSS_NOISE_MIB / Math.max(windowMin, 0.5);
  const fdSlope = slopePerMinute(half.map((s) => [s.atMs, s.fds]));
  const rssSlope = slopePerMinute(half.map((s) => [s.atMs, s.rssMib]));
  const first = run.samples[0];
  const last = run.samples.at(-1);
  rows.push({
    check: "open descriptors, slope after the first third",
    value: `${fmt(fdSlope)}/min (${first?.fds ?? "?"} -> ${last?.fds ?? "?"})`,
    limit: `<= ${MAX_FD_SLOPE_PER_MIN}/min`,
    ok: half.length >= 3 && fdSlope <= MAX_FD_SLOPE_PER_MIN,
  });
  rows.push({
    check: "RSS, slope after the first third",
    value: `${fmt(rssSlope)} MiB/min (${fmt(first?.rssMib ?? 0)} -> ${fmt(last?.rssMib ?? 0)} MiB)`,
    limit: `<= ${fmt(rssLimit)} MiB/min`,
    ok: half.length >= 3 && rssSlope <= rssLimit,
  });
  const problems = run.logs.filter((l) =>
    l.level === "error" || l.msg === "handler failed" || l.msg === "acme worker crashed"
  );
  const bare = run.rawOutput.split("\n").filter((line) => line.trim() !== "" && !isJson(line));
  rows.push({
    check: "errors in the log, lines outside its format",
    value: `${problems.length}, ${bare.length}${
      problems.length + bare.length ? `: ${[...problems.map((l) => String(l.msg)), ...bare].slice(0, 3)}` : ""
    }`,
    limit: "0, 0",
    ok: problems.length === 0 && bare.length === 0,
  });
  const orderFailures = run.logs.filter((l) => l.msg === "certificate failed").length;
  rows.push({
    check: "Cloudflare calls; orders failed and retried",
    value: `${run.cloudflareCalls}; ${orderFailures}`,
    limit: "(information)",
    ok: true,
  });
  return rows;
}

/** Every certificate renewed before the one it replaces expired, and renewed at least once. */
function renewalRow(logs: Array<Record<string, unknown>>): Row {
  const installs = new Map<string, Array<{ at: number; notAfter: number }>>();
  for (const line of logs) {
    if (line.msg !== "certificate installed") continue;
    const list = installs.get(String(line.names)) ?? [];
    list.push({ at: Date.parse(String(line.time)), notAfter: Date.parse(String(line.not_after)) });
    installs.set(String(line.names), list);
  }
  let late = 0;
  for (const list of installs.values()) {
    for (let i = 1; i < list.length; i++) if (list[i]!.at >= list[i - 1]!.notAfter) late++;
  }
  const counts = [...installs].map(([names, list]) => `${names}: ${list.length}`).join(", ");
  return {
    check: "certificates renewed before expiry (30 s lifetime)",
    value: `${counts || "none"}; ${late} late`,
    limit: "each renewed, 0 late",
    ok: installs.size >= 2 && [...installs.values()].every((list) => list.length >= 2) && late === 0,
  };
}

/** Least-squares slope of (ms, value) points, per minute. */
export function slopePerMinute(points: Array<[number, number]>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n;
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60_000;
}

export function formatReport(rows: Row[], run: { minutes: number; seed: number }): string {
  const widths = [0, 1, 2].map((i) =>
    Math.max(
      ...rows.map((row) => [row.check, row.value, row.limit][i]!.length),
      [
        "check",
        "value",
        "limit",
      ][i]!.length,
    )
  );
  const line = (cells: string[]) => cells.map((cell, i) => i < 3 ? cell.padEnd(widths[i]!) : cell).join("  ");
  const failed = rows.filter((row) => !row.ok).length;
  return [
    `nexo soak: ${run.minutes.toFixed(1)} min, seed ${run.seed}`,
    line(["check", "value", "limit", ""]),
    ...rows.map((row) => line([row.check, row.value, row.limit, row.ok ? "ok" : "FAILED"])),
    failed === 0 ? "soak: all invariants held" : `soak: ${failed} invariant(s) FAILED`,
  ].join("\n");
}

/**
 * What nexo logged while each of the first few unexplained failures was in flight (and a second either side),
 * so a failure in CI, where only the output survives, can be traced to what happened around it.
 */
export function failureTimelines(run: RunRecord): string {
  const sections = classify(run).unexplained.slice(0, 3).map((o) => {
    const lines = run.logs.filter((l) => {
      const at = Date.parse(String(l.time));
      return at >= o.started - 1_000 && at <= o.ended + 1_000;
    });
    const shown = lines.slice(0, 40).map((l) => {
      const { time, msg, ...rest } = l;
      return `  ${String(time).slice(11)} ${msg} ${JSON.stringify(rest)}`;
    });
    const more = lines.length > shown.length ? [`  ... ${lines.length - shown.length} more`] : [];
    return [
      `${o.kind} ${o.host}, ${new Date(o.started).toISOString().slice(11)} to ` +
      `${new Date(o.ended).toISOString().slice(11)}: ${o.error}`,
      ...shown,
      ...more,
    ].join("\n");
  });
  return sections.length ? ["what nexo logged around each unexplained failure:", ...sections].join("\n") : "";
}

function describe(outcomes: Outcome[]): string {
  return outcomes.slice(0, 3).map((o) => `${o.kind} ${o.host}: ${o.error}`).join("; ");
}

function fmt(value: number): string {
  return Number.isFinite(value) ? (Math.round(value * 10) / 10).toString() : "never";
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
