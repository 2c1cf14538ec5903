// The `dns:` block: which DNS provider answers DNS-01 challenges, other than the top-level `cloudflare:`
// shorthand. Today `provider: rfc2136` (dynamic updates signed with TSIG, for BIND, Knot, PowerDNS and the
// like) and `provider: cloudflare` (the same as the top-level block). It validates the block; the TSIG key
// file is read at load by tsig_secret.ts, and the provider itself lives in lib/dns.

import type { CloudflareConfig, Rfc2136Config } from "./types.ts";
import { isIpAddress, normalizeHostname } from "./hostname.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";
import { readCloudflare, readPath } from "./sections.ts";
import { didYouMean } from "./suggest.ts";

export const DNS_KEYS: readonly string[] = ["provider", "rfc2136", "cloudflare"];
export const RFC2136_KEYS: readonly string[] = [
  "server",
  "tsig_key",
  "tsig_secret_file",
  "tsig_algorithm",
  "zone",
];
const PROVIDERS = ["rfc2136", "cloudflare"];
/** Providers the issue list names that this version does not have yet: said so, not "unknown". */
const NOT_YET = ["exec", "acme-dns"];
const ALGORITHMS = ["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1"] as const;
const EXAMPLE =
  `dns:\n  provider: rfc2136\n  rfc2136: { server: 203.0.113.53, tsig_key: nexo, tsig_secret_file: ` +
  `/etc/nexo/tsig.key }`;

/** What `dns:` configures: one of the two providers, the other null. */
export interface DnsBlock {
  cloudflare: CloudflareConfig | null;
  rfc2136: Rfc2136Config | null;
}

/** Reads `dns:`; null when absent. Problems are reported into `r`. */
export function readDns(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string },
): DnsBlock | null {
  if (field === undefined) return null;
  if (field.value === null) {
    r.report(field.keyNode, `dns: is empty: set dns.provider (${PROVIDERS.join(" or ")}) and its settings`);
    return null;
  }
  const fields = r.readMapping(field, {
    known: DNS_KEYS,
    expected: "a mapping with provider and its settings, like { provider: rfc2136, rfc2136: { ... } }",
  });
  if (fields === null) return null;
  const providerField = fields.get("provider");
  const provider = providerField === undefined
    ? undefined
    : r.readString(providerField)?.trim().toLowerCase();
  if (providerField === undefined) {
    r.report(field.keyNode, `dns.provider is required: ${PROVIDERS.join(" or ")}`);
    return null;
  }
  if (provider === undefined) return null;
  if (!PROVIDERS.includes(provider)) {
    const why = NOT_YET.includes(provider)
      ? `the ${provider} provider is not in this version of nexo yet`
      : `got ${quoteValue(provider)}${didYouMean(provider, PROVIDERS)}`;
    r.report(providerField.at, `dns.provider must be ${PROVIDERS.join(" or ")}: ${why}`);
    return null;
  }
  for (const other of PROVIDERS.filter((p) => p !== provider)) {
    const stray = fields.get(other);
    if (stray !== undefined) {
      r.report(stray.keyNode, `dns.${other} is set but dns.provider is ${provider}: remove one of them`);
    }
  }
  const settings = fields.get(provider);
  if (settings === undefined) {
    r.report(providerField.at, `dns.provider is ${provider}, so dns.${provider} needs its settings`);
    return null;
  }
  if (provider === "cloudflare") return { cloudflare: readCloudflare(r, settings), rfc2136: null };
  return { cloudflare: null, rfc2136: readRfc2136(r, settings, options) };
}

function readRfc2136(r: Reader, field: Field, options: { configDir: string }): Rfc2136Config | null {
  const fields = r.readMapping(field, {
    known: RFC2136_KEYS,
    expected: "a mapping of server, tsig_key, ...",
  });
  if (fields === null) return null;
  const required = (key: string) => {
    const f = fields.get(key);
    if (f === undefined || f.value === null) {
      r.report(field.keyNode, `${field.path}.${key} is required (like ${EXAMPLE.split("\n")[2]!.trim()})`);
      return undefined;
    }
    return f;
  };
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
  const zoneField = fields.get("zone");
  let zone: string | null = null;
  if (zoneField !== undefined && zoneField.value !== null) {
    const value = r.readString(zoneField)?.trim();
    try {
      zone = value === undefined ? null : normalizeHostname(value.replace(/\.$/, ""));
    } catch (error) {
      r.report(zoneField.at, `${zoneField.path}: ${(error as Error).message}`);
    }
  }
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
