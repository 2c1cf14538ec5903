// The settings of each DNS provider under `dns:` (or under one `dns.zones` entry): rfc2136 (a server, a TSIG
// key and its file), exec (a program and its timeout) and acme_dns (an acme-dns account). It validates what
// can be judged from the text; the files named here are checked at load by dns_files.ts, and the providers
// themselves live in lib/dns.

import type { AcmeDnsConfig, ExecDnsConfig, Rfc2136Config } from "./types.ts";
import { isIpAddress, normalizeHostname } from "./hostname.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";
import { readHttpUrl, readPath } from "./sections.ts";
import { didYouMean } from "./suggest.ts";
import { DEFAULTS } from "./defaults.ts";
import { resolve } from "../path.ts";
import { trimEndOf } from "./trim.ts";

export const RFC2136_KEYS: readonly string[] = [
  "server",
  "tsig_key",
  "tsig_secret_file",
  "tsig_algorithm",
  "zone",
];
export const EXEC_KEYS: readonly string[] = ["command", "timeout", "zone"];
export const ACME_DNS_KEYS: readonly string[] = [
  "api",
  "username",
  "password_file",
  "subdomain",
  "fulldomain",
];
const ALGORITHMS = ["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1"] as const;
const RFC2136_EXAMPLE = `{ server: 203.0.113.53, tsig_key: nexo, tsig_secret_file: /etc/nexo/tsig.key }`;
const ACME_DNS_EXAMPLE =
  `{ api: https://auth.example.org, username: ..., password_file: /etc/nexo/acme-dns.pass, subdomain: ... }`;

/** Reads one block's mapping, reporting each missing required key with `example`; null when unreadable. */
function readSettings(
  r: Reader,
  field: Field,
  known: readonly string[],
  example: string,
): { fields: Map<string, Field>; required: (key: string) => Field | undefined } | null {
  const fields = r.readMapping(field, { known, expected: `a mapping like ${example}` });
  if (fields === null) return null;
  const required = (key: string) => {
    const f = fields.get(key);
    if (f === undefined || f.value === null) {
      r.report(field.keyNode, `${field.path}.${key} is required (like ${example})`);
      return undefined;
    }
    return f;
  };
  return { fields, required };
}

/** An optional zone apex ("example.com", a trailing dot allowed); null when absent. */
function readZone(r: Reader, field: Field | undefined): string | null {
  if (field === undefined || field.value === null) return null;
  const value = r.readString(field)?.trim();
  try {
    return value === undefined ? null : normalizeHostname(value.replace(/\.$/, ""));
  } catch (error) {
    r.report(field.at, `${field.path}: ${(error as Error).message}`);
    return null;
  }
}

/** Reads `rfc2136:`; null when a required setting is missing or invalid (reported). */
export function readRfc2136(r: Reader, field: Field, options: { configDir: string }): Rfc2136Config | null {
  const block = readSettings(r, field, RFC2136_KEYS, RFC2136_EXAMPLE);
  if (block === null) return null;
  const { fields, required } = block;
  const serverField = required("server");
  const keyField = required("tsig_key");
  const fileField = required("tsig_secret_file");
  const server = serverField === undefined ? undefined : readServer(r, serverField);
  const tsigKey = keyField === undefined ? undefined : readKeyName(r, keyField);
  const tsigSecretFile = fileField === undefined
    ? undefined
    : readPath(r, fileField, { configDir: options.configDir, what: "the path of the key file" });
  const algorithmField = fields.get("tsig_algorithm");
  let tsigAlgorithm: Rfc2136Config["tsigAlgorithm"] | undefined = "hmac-sha256";
  if (algorithmField !== undefined && algorithmField.value !== null) {
    const value = r.readString(algorithmField)?.trim().toLowerCase();
    tsigAlgorithm = ALGORITHMS.find((a) => a === value);
    if (value !== undefined && tsigAlgorithm === undefined) {
      r.report(
        algorithmField.at,
        `${algorithmField.path} must be one of ${ALGORITHMS.join(", ")}, got ${quoteValue(value)}` +
          didYouMean(value, ALGORITHMS),
      );
    }
  }
  const zone = readZone(r, fields.get("zone"));
  if (!server || !tsigKey || !tsigSecretFile || !tsigAlgorithm || fileField === undefined) return null;
  return { server, tsigKey, tsigSecretFile, tsigAlgorithm, zone, position: r.positionOf(fileField.keyNode) };
}

/**
 * A TSIG key name: a domain name (RFC 8945 §4.2: the key's owner name), so labels of letters, digits, "-" and
 * "_" of at most 63 bytes; BIND's `tsig-keygen` names are of that form.
 */
function readKeyName(r: Reader, field: Field): string | undefined {
  const text = r.readString(field)?.trim().replace(/\.$/, "");
  if (text === undefined) return undefined;
  const labels = text.split(".");
  if (text === "" || text.length > 253 || labels.some((l) => !/^[A-Za-z0-9_-]{1,63}$/.test(l))) {
    r.report(
      field.at,
      `${field.path} must be the key's name as the server's key clause has it (letters, digits, "-", "_" ` +
        `and dots), got ${quoteValue(text)}`,
    );
    return undefined;
  }
  return text;
}

/** "203.0.113.53", "203.0.113.53:5353", "[2001:db8::53]:53": an IP address (queries need one), port 53. */
function readServer(r: Reader, field: Field): { hostname: string; port: number } | undefined {
  const text = r.readString(field)?.trim();
  if (text === undefined) return undefined;
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:\[\]]+)(?::(\d+))?$/.exec(text);
  const hostname = match?.[1] ?? "";
  const port = Number(match?.[2] ?? 53);
  if (match === null || !isIpAddress(hostname) || !(port >= 1 && port <= 65535)) {
    r.report(
      field.at,
      `${field.path} must be the server's IP address with an optional port, like "203.0.113.53" or ` +
        `"[2001:db8::53]:53", got ${quoteValue(text)}`,
    );
    return undefined;
  }
  return { hostname, port };
}

/**
 * Reads `exec:`. `command` is a list (the program, then fixed arguments) or one path. The program must be an
 * absolute path: the ACME worker is allowed to run exactly that file, and a name looked up in PATH could be
 * another program tomorrow.
 */
export function readExec(r: Reader, field: Field, options: { configDir: string }): ExecDnsConfig | null {
  const example = `{ command: [/etc/nexo/dns-hook], timeout: 60s }`;
  const block = readSettings(r, field, EXEC_KEYS, example);
  if (block === null) return null;
  const { fields, required } = block;
  const commandField = required("command");
  let command: string[] | undefined;
  if (commandField !== undefined) {
    command = typeof (commandField.value as { value?: unknown }).value === "string"
      ? [r.readString(commandField)!]
      : r.readStringList(commandField, "/etc/nexo/dns-hook").map((item) => item.value);
    const program = command[0]?.trim();
    if (program === undefined || program === "") {
      r.report(commandField.at, `${commandField.path} needs the program to run, like ${example}`);
      command = undefined;
    } else if (!program.startsWith("/")) {
      const absolute = program.startsWith("~") ? null : resolve(options.configDir, program);
      r.report(
        commandField.at,
        `${commandField.path} must start with the program's absolute path (nexo may run exactly that ` +
          `file), got ${quoteValue(program)}${absolute ? ` (like ${quoteValue(absolute)})` : ""}`,
      );
      command = undefined;
    } else command = [program, ...command.slice(1)];
  }
  const timeoutField = fields.get("timeout");
  const timeoutMs = timeoutField === undefined || timeoutField.value === null
    ? DEFAULTS.execTimeoutMs
    : r.readDuration(timeoutField);
  const zone = readZone(r, fields.get("zone"));
  if (command === undefined || timeoutMs === undefined || commandField === undefined) return null;
  return { command, timeoutMs, zone, position: r.positionOf(commandField.keyNode) };
}

/**
 * Reads `acme_dns:`: the API URL, the account's username, subdomain and password file (as acme-dns's
 * /register answered), and optionally its fulldomain.
 */
export function readAcmeDns(r: Reader, field: Field, options: { configDir: string }): AcmeDnsConfig | null {
  const block = readSettings(r, field, ACME_DNS_KEYS, ACME_DNS_EXAMPLE);
  if (block === null) return null;
  const { fields, required } = block;
  const apiField = required("api");
  const api = apiField === undefined
    ? undefined
    : trimEndOf(readHttpUrl(r, apiField) ?? "", "/") || undefined;
  const text = (key: string) => {
    const f = required(key);
    const value = f === undefined ? undefined : r.readString(f)?.trim();
    if (f !== undefined && value === "") {
      r.report(f.at, `${f.path} is empty (copy it from acme-dns's /register answer)`);
    }
    return value || undefined;
  };
  const username = text("username");
  const subdomain = text("subdomain");
  if (subdomain !== undefined && !/^[a-z0-9-]{1,63}$/i.test(subdomain)) {
    r.report(
      fields.get("subdomain")!.at,
      `${fields.get("subdomain")!.path} must be the subdomain acme-dns gave (one label, like ` +
        `"d420c923-bbd7-4056-ab64-c3ca54c9b3cf"), got ${quoteValue(subdomain)}`,
    );
  }
  const fileField = required("password_file");
  const passwordFile = fileField === undefined
    ? undefined
    : readPath(r, fileField, { configDir: options.configDir, what: "the path of the password file" });
  const fulldomain = readZone(r, fields.get("fulldomain"));
  if (
    fulldomain !== null && subdomain !== undefined && !fulldomain.startsWith(`${subdomain.toLowerCase()}.`)
  ) {
    r.report(
      fields.get("fulldomain")!.at,
      `${fields.get("fulldomain")!.path} must start with the subdomain: "${subdomain}.<acme-dns domain>"`,
    );
  }
  if (!api || !username || !subdomain || !passwordFile || fileField === undefined) return null;
  return {
    api,
    username,
    passwordFile,
    subdomain: subdomain.toLowerCase(),
    fulldomain,
    position: r.positionOf(fileField.keyNode),
  };
}
