// A TSIG key file (dns.rfc2136.tsig_secret_file): BIND's `key "name" { algorithm ...; secret "..."; };` as
// `tsig-keygen` writes it, or the base64 secret alone. Parsing is pure; `checkTsigSecretFile` reads the file
// when the config is loaded, so a missing or garbled file is a config error at its line, not a failed renewal.

import type { ConfigIssue } from "./errors.ts";
import type { Rfc2136Config } from "./types.ts";
import { unreadableReason } from "./unreadable.ts";

/** The secret's bytes, and the algorithm and key name when the file is a BIND key clause. */
export interface TsigSecret {
  secret: Uint8Array;
  algorithm: string | null;
  name: string | null;
}

/** Parses a key file's text; throws a TypeError saying what the text is not (never quoting it). */
export function parseTsigSecret(text: string): TsigSecret {
  const clause = /secret\s+"([^"]+)"/.exec(text);
  const base64 = (clause?.[1] ?? text).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw new TypeError("it is neither a BIND key file (tsig-keygen's output) nor a base64 secret");
  }
  const secret = Uint8Array.fromBase64(base64);
  if (secret.length < 16) {
    throw new TypeError(`its secret is ${secret.length} bytes; make one with tsig-keygen`);
  }
  const algorithm = /algorithm\s+"?([a-z0-9-]+)"?\s*;/i.exec(text)?.[1]?.toLowerCase() ?? null;
  const name = /key\s+"([^"]+)"/.exec(text)?.[1] ?? null;
  return { secret, algorithm, name };
}

/**
 * Reads and parses `rfc2136.tsigSecretFile`; returns the problems, each at the tsig_secret_file line: an
 * unreadable file, one that is no key, or a key clause whose name or algorithm contradicts the config's.
 */
export async function checkTsigSecretFile(rfc2136: Rfc2136Config): Promise<ConfigIssue[]> {
  const where = "dns.rfc2136.tsig_secret_file";
  let text: string;
  try {
    text = await Deno.readTextFile(rfc2136.tsigSecretFile);
  } catch (error) {
    const reason = unreadableReason(error, {
      missing: "check the path",
      kind: "a key file",
      noun: "the file",
    });
    if (reason === null) throw error;
    return [{ ...rfc2136.position, message: `${where}: cannot read ${rfc2136.tsigSecretFile}: ${reason}` }];
  }
  let parsed: TsigSecret;
  try {
    parsed = parseTsigSecret(text);
  } catch (error) {
    return [{
      ...rfc2136.position,
      message: `${where}: ${rfc2136.tsigSecretFile}: ${(error as Error).message}`,
    }];
  }
  const issues: ConfigIssue[] = [];
  if (parsed.name !== null && parsed.name !== rfc2136.tsigKey) {
    issues.push({
      ...rfc2136.position,
      message:
        `${where}: the file's key is "${parsed.name}" but dns.rfc2136.tsig_key is "${rfc2136.tsigKey}"; ` +
        `make them the same`,
    });
  }
  if (parsed.algorithm !== null && parsed.algorithm !== rfc2136.tsigAlgorithm) {
    issues.push({
      ...rfc2136.position,
      message: `${where}: the file's algorithm is ${parsed.algorithm} but dns.rfc2136.tsig_algorithm is ` +
        `${rfc2136.tsigAlgorithm}; make them the same`,
    });
  }
  return issues;
}
