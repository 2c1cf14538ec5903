// The config's nested blocks other than `proxies:`: `acme:`, `cloudflare:`, `limits:` and `wildcards:`, plus
// the path settings. Each reader validates its block, fills in defaults and reports into the Reader; the top
// level and the routes are parse.ts's and routes.ts's.

import { isAbsolute, resolve } from "../path.ts";
import type {
  AcmeConfig,
  AcmeIssuer,
  CloudflareConfig,
  ExternalAccountBinding,
  ServerLimits,
} from "./types.ts";
import { isScalar, isSeq } from "./yaml.ts";
import { ACME_PRESETS, CLOUDFLARE_API_BASE, DEFAULTS } from "./defaults.ts";
import { didYouMean } from "./suggest.ts";
import { parseResolver } from "./address.ts";
import { normalizeWildcard } from "./hostname.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";
import { trimEndOf } from "./trim.ts";

export const ACME_KEYS: readonly string[] = [
  "directory",
  "ca_cert",
  "renew_before",
  "check_interval",
  "retry_interval",
  "propagation_timeout",
  "dns_resolvers",
  "key_type",
  "eab",
  "issuers",
];
/** Keys of one `acme.issuers` entry written as a mapping. */
export const ISSUER_KEYS: readonly string[] = ["directory", "eab", "ca_cert"];
export const EAB_KEYS: readonly string[] = ["kid", "hmac_key"];
const KEY_TYPES = ["ecdsa", "rsa"] as const;
export const CLOUDFLARE_KEYS: readonly string[] = ["api_token", "api_base", "zone_id"];
export const LIMITS_KEYS: readonly string[] = [
  "max_body",
  "max_header",
  "read_timeout",
  "idle_timeout",
  "response_timeout",
  "body_timeout",
];

const TOKEN_HELP =
  "create one with the Zone:DNS:Edit permission at https://dash.cloudflare.com/profile/api-tokens";

/** Options for `readAcme()`. */
export interface AcmeOptions {
  /** Directory relative `ca_cert` paths resolve against. */
  configDir: string;
  /** Directory URL to use when none is given (production or staging, per `staging:`). */
  directory: string;
}

/** Reads `acme:`; absent or empty gives every default. Invalid values are reported and defaulted. */
export function readAcme(r: Reader, field: Field | undefined, options: AcmeOptions): AcmeConfig {
  const fields = readBlock(r, field, ACME_KEYS);
  const get = (key: string) => present(fields?.get(key));
  const dnsResolvers: string[] = [];
  const resolvers = get("dns_resolvers");
  if (resolvers !== undefined) {
    for (const { value, node, path } of r.readStringList(resolvers, `"1.1.1.1:53"`)) {
      try {
        dnsResolvers.push(parseResolver(value));
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        r.report(node, `${path}: ${error.message}`);
      }
    }
  }
  const issuersField = get("issuers");
  if (issuersField !== undefined) {
    for (const key of ["directory", "eab"]) {
      const both = get(key);
      if (both !== undefined) {
        r.report(both.keyNode, `acme.${key} and acme.issuers are both set: move it into the first issuer`);
      }
    }
  }
  const issuers = issuersField === undefined ? null : readIssuers(r, issuersField, options);
  const first = issuers?.[0] ?? readIssuer(r, fields ?? new Map(), { ...options, path: "acme" });
  const caCert = readPath(r, get("ca_cert"), options) ?? null;
  return {
    directory: first?.directory ?? options.directory,
    caCert: issuers === null ? caCert : first?.caCert ?? caCert,
    fallbacks: (issuers ?? []).slice(1).map((issuer) => ({ ...issuer, caCert: issuer.caCert ?? caCert })),
    renewBeforeMs: readDurationField(r, get("renew_before")) ?? DEFAULTS.renewBeforeMs,
    checkIntervalMs: readDurationField(r, get("check_interval")) ?? DEFAULTS.checkIntervalMs,
    retryIntervalMs: readDurationField(r, get("retry_interval")) ?? DEFAULTS.retryIntervalMs,
    propagationTimeoutMs: readDurationField(r, get("propagation_timeout")) ?? DEFAULTS.propagationTimeoutMs,
    dnsResolvers,
    keyType: readKeyType(r, get("key_type")) ?? "ecdsa",
    eab: first?.eab ?? null,
  };
}

/**
 * One CA: `directory` (a preset name or URL, undefined when absent) and its `eab`, read from `fields` (the
 * `acme:` block itself, or one `acme.issuers` entry, with its own `ca_cert`); null when invalid (reported).
 */
function readIssuer(
  r: Reader,
  fields: Map<string, Field>,
  options: AcmeOptions & { path: string; caCert?: boolean },
): AcmeIssuer | null {
  const directoryField = present(fields.get("directory"));
  const preset = readPreset(r, directoryField);
  const eab = readEab(r, present(fields.get("eab")));
  if (preset?.eab && eab === null && directoryField !== undefined) {
    r.report(
      directoryField.at,
      `${directoryField.path} ${preset.name} requires External Account Binding: add ${options.path}.eab with ` +
        `the kid and hmac_key from ${preset.eabHelp}`,
    );
  }
  const directory = preset?.url ?? (preset === null ? undefined : readHttpUrl(r, directoryField));
  if (directory === undefined && directoryField !== undefined) return null;
  return {
    directory: directory ?? options.directory,
    eab,
    caCert: options.caCert ? readPath(r, present(fields.get("ca_cert")), options) ?? null : null,
  };
}

/**
 * `acme.issuers`: the CAs to try in turn for a certificate the previous one failed to issue (Caddy's
 * Let's Encrypt then ZeroSSL), each a preset name or URL, or a mapping with `directory`, `eab` and `ca_cert`.
 */
function readIssuers(r: Reader, field: Field, options: AcmeOptions): AcmeIssuer[] | null {
  const example = `[letsencrypt, { directory: zerossl, eab: { kid: ..., hmac_key: ... } }]`;
  if (field.value === null || !isSeq(field.value) || field.value.items.length === 0) {
    r.report(field.at, `${field.path} must be a list of CAs, like ${example}`);
    return null;
  }
  const issuers: AcmeIssuer[] = [];
  const seen = new Set<string>();
  field.value.items.forEach((item, i) => {
    const path = `${field.path}[${i}]`;
    const node = item ?? field.at;
    const value = r.resolve(item);
    const entry: Field = { name: String(i), path, keyNode: node, at: value ?? node, value };
    let fields: Map<string, Field> | null;
    if (isScalar(value)) {
      fields = new Map([["directory", { ...entry, path }]]);
    } else {
      fields = r.readMapping(entry, { known: ISSUER_KEYS, expected: `a CA, like ${example}`, secret: true });
      if (fields !== null && !fields.has("directory")) {
        r.report(node, `${path}.directory is required (a preset name like zerossl, or the directory URL)`);
        fields = null;
      }
    }
    const issuer = fields === null ? null : readIssuer(r, fields, { ...options, path, caCert: true });
    if (issuer === null) return;
    if (seen.has(issuer.directory)) {
      r.report(node, `${path} names ${issuer.directory} again: each CA once`);
      return;
    }
    seen.add(issuer.directory);
    issuers.push(issuer);
  });
  return issuers.length === 0 ? null : issuers;
}

/**
 * `acme.directory` as a preset name ("letsencrypt", "zerossl", ...): the preset, or undefined when the value
 * is a URL (or absent: readHttpUrl takes it), or null after reporting a name that is no preset.
 */
function readPreset(
  r: Reader,
  field: Field | undefined,
): { name: string; url: string; eab: boolean; eabHelp?: string } | null | undefined {
  if (field === undefined) return undefined;
  const value = r.readString(field)?.trim();
  if (value === undefined) return null; // reported
  if (value.includes(":") || value.includes("/")) return undefined;
  const name = value.toLowerCase();
  const preset = ACME_PRESETS[name];
  if (preset !== undefined) return { name, ...preset };
  const names = Object.keys(ACME_PRESETS);
  r.report(
    field.at,
    `${field.path} must be an ACME directory URL (https://...) or one of ${names.join(", ")}, got ` +
      `${quoteValue(value)}${didYouMean(name, names)}`,
  );
  return null;
}

/**
 * Reads `acme.eab: { kid, hmac_key }`; null when absent. The HMAC key is base64url (RFC 4648 §5), as ZeroSSL
 * and Google issue it, and is never quoted in a message.
 */
function readEab(r: Reader, field: Field | undefined): ExternalAccountBinding | null {
  if (field === undefined) return null;
  const fields = r.readMapping(field, {
    known: EAB_KEYS,
    expected: "a mapping with kid and hmac_key",
    secret: true,
  });
  if (fields === null) return null;
  const kidField = present(fields.get("kid"));
  const keyField = present(fields.get("hmac_key"));
  const kid = kidField === undefined ? undefined : r.readString(kidField)?.trim();
  const hmacKey = keyField === undefined ? undefined : r.readString(keyField, { secret: true })?.trim();
  const help = "both come from the CA's dashboard, where EAB credentials are created";
  if (kid === undefined || kid === "") {
    r.report(kidField?.at ?? field.keyNode, `${field.path}.kid is required (${help})`);
  }
  if (hmacKey === undefined || hmacKey === "") {
    r.report(keyField?.at ?? field.keyNode, `${field.path}.hmac_key is required (${help})`);
  } else if (!/^[A-Za-z0-9_-]+={0,2}$/.test(hmacKey) || hmacKey.length < 16) {
    r.report(
      keyField!.at,
      `${field.path}.hmac_key must be the base64url key the CA shows (letters, digits, "-" and "_"); copy it again`,
    );
  }
  if (!kid || !hmacKey) return null;
  return { kid, hmacKey };
}

function readKeyType(r: Reader, field: Field | undefined): "ecdsa" | "rsa" | undefined {
  if (field === undefined) return undefined;
  const value = r.readString(field);
  if (value === undefined) return undefined;
  const keyType = KEY_TYPES.find((known) => known === value.toLowerCase());
  if (keyType === undefined) {
    r.report(
      field.at,
      `${field.path} must be "ecdsa" (ECDSA P-256) or "rsa" (RSA-2048), got ${JSON.stringify(value)}`,
    );
  }
  return keyType;
}

/**
 * Reads `cloudflare:`; null when the key is absent. A present block (even an empty one) needs an
 * `api_token`. The token is never quoted in a message, whatever is wrong with it.
 */
export function readCloudflare(r: Reader, field: Field | undefined): CloudflareConfig | null {
  if (field === undefined) return null;
  const fields = r.readMapping(field, {
    known: CLOUDFLARE_KEYS,
    expected: "a mapping with an api_token",
    secret: true,
  });
  if (fields === null) return null;
  const tokenField = present(fields.get("api_token"));
  const apiToken = tokenField === undefined ? undefined : r.readString(tokenField, { secret: true })?.trim();
  if (tokenField === undefined) {
    r.report(field.keyNode, `${field.path}.api_token is required (${TOKEN_HELP})`);
  } else if (apiToken === "") r.report(tokenField.at, `${tokenField.path} is empty (${TOKEN_HELP})`);
  const zoneField = present(fields.get("zone_id"));
  const zoneId = zoneField === undefined ? undefined : r.readString(zoneField)?.trim();
  if (zoneField !== undefined && zoneId === "") {
    r.report(zoneField.at, `${zoneField.path} is empty (remove it to look the zone up by name)`);
  }
  return {
    apiToken: apiToken ?? "",
    apiBase: trimEndOf(readHttpUrl(r, present(fields.get("api_base"))) ?? "", "/") || CLOUDFLARE_API_BASE,
    zoneId: zoneId || null,
  };
}

/** Reads `limits:`; absent or empty gives every default. Invalid values are reported and defaulted. */
export function readLimits(r: Reader, field: Field | undefined): ServerLimits {
  const fields = readBlock(r, field, LIMITS_KEYS);
  const get = (key: string) => present(fields?.get(key));
  const maxHeader = get("max_header");
  let maxHeaderBytes = maxHeader === undefined ? undefined : r.readSize(maxHeader);
  if (maxHeader !== undefined && maxHeaderBytes === 0) {
    r.report(
      maxHeader.at,
      `${maxHeader.path} must be more than 0 bytes, or every request fails (try "16KiB")`,
    );
    maxHeaderBytes = undefined;
  }
  const maxBody = get("max_body");
  return {
    maxBodyBytes: (maxBody && r.readSize(maxBody)) ?? DEFAULTS.maxBodyBytes,
    maxHeaderBytes: maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    readTimeoutMs: readDurationField(r, get("read_timeout")) ?? DEFAULTS.readTimeoutMs,
    idleTimeoutMs: readDurationField(r, get("idle_timeout")) ?? DEFAULTS.idleTimeoutMs,
    responseTimeoutMs: readDurationField(r, get("response_timeout")) ?? DEFAULTS.responseTimeoutMs,
    bodyTimeoutMs: readDurationField(r, get("body_timeout")) ?? DEFAULTS.bodyTimeoutMs,
  };
}

/** Reads `wildcards:` into lowercased, validated, distinct names; invalid and repeated ones are reported. */
export function readWildcards(r: Reader, field: Field | undefined): string[] {
  const list = present(field);
  if (list === undefined) return [];
  const firstLines = new Map<string, number>();
  for (const { value, node, path } of r.readStringList(list, `"*.example.com"`)) {
    let wildcard: string;
    try {
      wildcard = normalizeWildcard(value);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      r.report(node, `${path}: ${error.message}`);
      continue;
    }
    const firstLine = firstLines.get(wildcard);
    if (firstLine === undefined) firstLines.set(wildcard, r.positionOf(node).line);
    else {r.report(
        node,
        `${path} repeats "${wildcard}" (first listed on line ${firstLine}); remove one of them`,
      );}
  }
  return [...firstLines.keys()];
}

/**
 * Reads a file-system path, resolved against `options.configDir` when relative; undefined when absent,
 * empty or invalid (reported). "~" is not expanded (nexo does not read $HOME), so a path starting with it
 * is an error.
 */
export function readPath(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string; what?: string },
): string | undefined {
  const f = present(field);
  if (f === undefined) return undefined;
  const value = r.readString(f)?.trim();
  if (value === undefined) return undefined;
  if (value === "") {
    const what = options.what ?? "a directory path";
    r.report(f.at, `${f.path} is empty (write ${what}, or remove the key for the default)`);
  } else if (value.startsWith("~")) {
    r.report(f.at, `${f.path} cannot start with "~" (nexo does not expand it): write the full path`);
  } else {
    return isAbsolute(value) ? resolve(value) : resolve(options.configDir, value);
  }
  return undefined;
}

/** Reads an absolute http(s) URL, kept as written; undefined when absent or invalid (reported). */
export function readHttpUrl(r: Reader, field: Field | undefined): string | undefined {
  if (field === undefined) return undefined;
  const value = r.readString(field)?.trim();
  if (value === undefined) return undefined;
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (url !== null && (url.protocol === "http:" || url.protocol === "https:")) return value;
  const hint = /^[a-z][a-z0-9+.-]*:\/\//i.test(value)
    ? ""
    : ` (add "https://": ${quoteValue(`https://${value}`)})`;
  r.report(field.at, `${field.path} must be an http(s) URL, got ${quoteValue(value)}${hint}`);
  return undefined;
}

function readDurationField(r: Reader, field: Field | undefined): number | undefined {
  return field === undefined ? undefined : r.readDuration(field);
}

/** The block's fields; undefined when it is absent, empty, or not a mapping (then reported). */
function readBlock(
  r: Reader,
  field: Field | undefined,
  known: readonly string[],
): Map<string, Field> | undefined {
  const block = present(field);
  if (block === undefined || block.value === null) return undefined;
  return r.readMapping(block, { known, expected: "a mapping of settings" }) ?? undefined;
}

/** The field when it has a value; undefined when absent or empty (`key:`), which means "use the default". */
function present(field: Field | undefined): Field | undefined {
  return field === undefined || field.value === null ? undefined : field;
}
