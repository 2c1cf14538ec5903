// `nexo doctor`'s CAA check (RFC 8659): for each certificate name, the relevant CAA record set found by
// climbing from the name to its parents, and whether its properties let the configured CA issue, with
// `issuewild` for wildcard names (§4.3). It names the CA by the directory's `meta.caaIdentities` (RFC 8555
// §7.1.1). It does not follow CNAMEs on its own (the resolver does) or know a CA's account-URI rules.

import type { DnsAsker, DnsServer } from "./resolvers.ts";
import { type Finding, finding } from "./report.ts";

const AREA = "caa";

/** Property tags a CA understands (RFC 8659 §4, RFC 8657 §3); a critical unknown tag forbids issuance. */
const KNOWN_TAGS = new Set([
  "issue",
  "issuewild",
  "iodef",
  "contactemail",
  "contactphone",
  "issuemail",
  "issuevmc",
]);

export interface CaaRecord {
  critical: boolean;
  tag: string;
  value: string;
}

/** The relevant record set (RFC 8659 §3): where it was found and its records; null when no name has any. */
export interface RelevantSet {
  owner: string;
  records: CaaRecord[];
}

/**
 * Climbs from `name` ("*." dropped: RFC 8659 §3 starts a wildcard's search at its base) up its parents and
 * returns the first non-empty CAA set. A failed lookup stops the climb: a CA must not issue when it cannot
 * tell (§3, "if the lookup fails"), and Let's Encrypt refuses on SERVFAIL.
 */
export async function findRelevantSet(
  name: string,
  asker: DnsAsker,
  server: DnsServer,
): Promise<RelevantSet | null | { error: string; owner: string }> {
  const labels = name.replace(/^\*\./, "").split(".");
  for (let i = 0; i < labels.length; i++) {
    const owner = labels.slice(i).join(".");
    const answer = await asker.ask(owner, "CAA", server);
    if ("error" in answer) return { error: answer.error, owner };
    if (answer.records.length > 0) return { owner, records: answer.records };
  }
  return null;
}

/**
 * Whether `set` lets a CA known by `identities` issue for `name` (RFC 8659 §4.2-4.3), as a finding. With
 * `identities` null (the directory names none) a set that restricts issuance is a warning: doctor cannot
 * tell whether the CA is on its list.
 */
/** What the CAA judgement needs to know of nexo's side. */
export interface CaaContext {
  /** The CA's CAA names (its directory's caaIdentities); null when unknown. */
  identities: readonly string[] | null;
  /** How nexo proves the names (RFC 8657 `validationmethods`). */
  challenge: "http-01" | "dns-01";
  /**
   * The URL of the account nexo will order with (RFC 8657 `accounturi`): a string when saved and known to
   * the CA, null when nexo will register a new one, undefined when doctor could not tell.
   */
  accountUrl: string | null | undefined;
}

/** A property's issuer domain (before the first ";", lowercased) and its parameters (RFC 8659 §4.2). */
function parseIssueValue(value: string): { domain: string; params: Map<string, string> } {
  const [domain = "", ...rest] = value.split(";");
  const params = new Map<string, string>();
  for (const part of rest) {
    const equals = part.indexOf("=");
    if (equals > 0) params.set(part.slice(0, equals).trim().toLowerCase(), part.slice(equals + 1).trim());
  }
  return { domain: domain.trim().toLowerCase(), params };
}

/**
 * Whether `set` lets the CA known by `context.identities` issue for `name` (RFC 8659 §4.2-4.3, with RFC 8657's
 * `validationmethods` and `accounturi`), as a finding. With the CA's name unknown, a set that restricts
 * issuance is a warning: doctor cannot tell whether the CA is on its list.
 */
export function judgeCaa(name: string, set: RelevantSet | null, context: CaaContext): Finding {
  if (set === null) return finding(AREA, name, "ok", "no CAA records: any CA may issue");
  const where = `CAA at ${set.owner}`;
  const unknownCritical = set.records.find((r) => r.critical && !KNOWN_TAGS.has(r.tag.toLowerCase()));
  if (unknownCritical !== undefined) {
    return {
      area: AREA,
      subject: name,
      status: "problem",
      message:
        `${where} has a critical property "${unknownCritical.tag}" no CA knows, which forbids every CA`,
      fix: `remove that record, or clear its critical flag (128 -> 0)`,
    };
  }
  const wildcard = name.startsWith("*.");
  const issuewild = set.records.filter((r) => r.tag.toLowerCase() === "issuewild");
  const issue = set.records.filter((r) => r.tag.toLowerCase() === "issue");
  // §4.3: issuewild, where present, governs wildcard names instead of issue.
  const relevant = (wildcard && issuewild.length > 0 ? issuewild : issue).map((r) =>
    parseIssueValue(r.value)
  );
  const tag = wildcard && issuewild.length > 0 ? "issuewild" : "issue";
  if (relevant.length === 0) return finding(AREA, name, "ok", `${where} does not restrict issuance`);
  // An empty issuer domain (";") allows no CA.
  const allowed = relevant.map((r) => r.domain).filter((d) => d !== "");
  const named = context.identities?.map((id) => id.toLowerCase()) ?? null;
  const record = (value: string) => `${set.owner}. CAA 0 ${tag} "${value}"`;
  if (named === null) {
    return {
      area: AREA,
      subject: name,
      status: "warning",
      message:
        `${where} lets only ${allowed.join(", ") || "no CA"} issue (${tag}); the CA's directory does not ` +
        `say which CAA name it checks, so doctor cannot tell whether it is allowed`,
      fix: `make sure the CA's CAA name is listed (its documentation says which), e.g. ${
        record("ca.example")
      }`,
    };
  }
  const ours = relevant.filter((r) => named.includes(r.domain));
  if (ours.length === 0) {
    return {
      area: AREA,
      subject: name,
      status: "problem",
      message: `${where} lets only ${allowed.join(", ") || "no CA"} issue${wildcard ? " wildcards" : ""} ` +
        `(${tag}), not ${named.join(", ")}: the CA will refuse`,
      fix: `add ${record(named[0] ?? "")}`,
    };
  }
  // RFC 8657: a record that names the CA may still limit the method and the account; any one that lets
  // nexo's method and account through is enough.
  const refusals = ours.map((r) => refusalOf(r.params, context)).filter((why) => why !== null);
  if (refusals.length < ours.length) {
    return finding(AREA, name, "ok", `${where} allows ${named.join(", ")} (${tag})`);
  }
  const unsure = refusals.every((why) => why.startsWith("?"));
  return {
    area: AREA,
    subject: name,
    status: unsure ? "warning" : "problem",
    message: `${where} names ${named.join(", ")} but ${
      refusals.map((why) => why.replace(/^\?/, "")).join("; ")
    }`,
    fix: `add ${record(`${named[0]}`)} (or make its parameters match)`,
  };
}

/** Why a record's RFC 8657 parameters refuse nexo, null when they do not; "?" first when doctor is unsure. */
function refusalOf(params: ReadonlyMap<string, string>, context: CaaContext): string | null {
  const methods = params.get("validationmethods");
  if (methods !== undefined) {
    const listed = methods.split(",").map((m) => m.trim().toLowerCase());
    if (!listed.includes(context.challenge)) {
      return `allows only ${listed.join(", ")}, and nexo validates with ${context.challenge}`;
    }
  }
  const account = params.get("accounturi");
  if (account !== undefined && account !== context.accountUrl) {
    if (context.accountUrl === undefined) {
      return `?only the account ${account} may order, and doctor could not tell nexo's`;
    }
    return context.accountUrl === null
      ? `only the account ${account} may order, and nexo will register a new one`
      : `only the account ${account} may order, not nexo's (${context.accountUrl})`;
  }
  return null;
}

/** One finding per certificate name; a lookup failure is a warning that names the server and the name. */
export async function checkCaa(
  names: readonly string[],
  options: { asker: DnsAsker; server: DnsServer; context: CaaContext },
): Promise<Finding[]> {
  return await Promise.all(names.map(async (name) => {
    const set = await findRelevantSet(name, options.asker, options.server);
    if (set !== null && "error" in set) {
      return {
        area: AREA,
        subject: name,
        status: "warning" as const,
        message: `the CAA lookup of ${set.owner} at ${options.server.label} failed (${set.error}); ` +
          `a CA refuses to issue while its own lookup fails like this`,
        fix: `make sure the DNS servers of ${set.owner} answer CAA queries (even with no records)`,
      };
    }
    return judgeCaa(name, set, options.context);
  }));
}
