// The `dns:` block: which DNS provider answers DNS-01 challenges (other than the top-level `cloudflare:`
// shorthand), for every name and per zone (`dns.zones`). It reads `provider:` and dispatches each provider's
// settings to dns_settings.ts; the files those name are checked at load by dns_files.ts, and the providers
// themselves live in lib/dns.

import type { DnsConfig, DnsProviderConfig } from "./types.ts";
import { coveringWildcard, normalizeHostname } from "./hostname.ts";
import { providerFor } from "./dns_zones.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";
import { readCloudflare } from "./sections.ts";
import { didYouMean } from "./suggest.ts";
import { readAcmeDns, readExec, readRfc2136 } from "./dns_settings.ts";

/** The providers and the key holding each one's settings. */
const PROVIDERS = {
  rfc2136: "rfc2136",
  cloudflare: "cloudflare",
  exec: "exec",
  "acme-dns": "acme_dns",
} as const;
type ProviderName = keyof typeof PROVIDERS;
const NAMES = Object.keys(PROVIDERS) as ProviderName[];
const SETTINGS_KEYS: readonly string[] = Object.values(PROVIDERS);
export const DNS_KEYS: readonly string[] = ["provider", ...SETTINGS_KEYS, "zones"];
const ZONE_KEYS: readonly string[] = ["provider", ...SETTINGS_KEYS];
const LIST = `${NAMES.slice(0, -1).join(", ")} or ${NAMES.at(-1)}`;

/** Reads `dns:`; null when absent or unreadable. Problems are reported into `r`. */
export function readDns(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string },
): DnsConfig | null {
  if (field === undefined) return null;
  if (field.value === null) {
    r.report(field.keyNode, `dns: is empty: set dns.provider (${LIST}) and its settings`);
    return null;
  }
  const fields = r.readMapping(field, {
    known: DNS_KEYS,
    expected: "a mapping with provider and its settings, like { provider: rfc2136, rfc2136: { ... } }",
  });
  if (fields === null) return null;
  const zonesField = fields.get("zones");
  const zones = zonesField === undefined ? [] : readZones(r, zonesField, options);
  if (zones === null) return null;
  if (fields.get("provider") === undefined && zonesField !== undefined) {
    const stray = SETTINGS_KEYS.map((key) => fields.get(key)).find((f) => f !== undefined);
    if (stray !== undefined) {
      r.report(stray.keyNode, `dns.${stray.name} is set but dns.provider is not: add provider: or remove it`);
    }
    if (zones.length === 0) return null;
    return { default: null, zones };
  }
  const provider = readProvider(r, field, fields, options);
  return provider === null ? null : { default: provider, zones };
}

/** The top-level `cloudflare:` block as the `dns:` it is short for. */
export function cloudflareShorthand(field: Field | undefined, r: Reader): DnsConfig | null {
  const cloudflare = readCloudflare(r, field);
  return cloudflare === null ? null : { default: { provider: "cloudflare", cloudflare }, zones: [] };
}

/**
 * The provider `fields` name (`provider:` and its settings block); null after reporting what is missing or
 * wrong.
 */
function readProvider(
  r: Reader,
  block: Field,
  fields: Map<string, Field>,
  options: { configDir: string },
): DnsProviderConfig | null {
  const providerField = fields.get("provider");
  if (providerField === undefined) {
    r.report(block.keyNode, `${block.path}.provider is required: ${LIST}`);
    return null;
  }
  const value = r.readString(providerField)?.trim().toLowerCase();
  if (value === undefined) return null;
  const provider = NAMES.find((name) => name === value || PROVIDERS[name] === value);
  if (provider === undefined) {
    r.report(
      providerField.at,
      `${providerField.path} must be ${LIST}: got ${quoteValue(value)}` +
        didYouMean(value, NAMES),
    );
    return null;
  }
  const key = PROVIDERS[provider];
  for (const other of SETTINGS_KEYS.filter((k) => k !== key)) {
    const stray = fields.get(other);
    if (stray !== undefined) {
      r.report(
        stray.keyNode,
        `${stray.path} is set but ${providerField.path} is ${provider}: remove one of them`,
      );
    }
  }
  const settings = fields.get(key);
  if (settings === undefined) {
    r.report(
      providerField.at,
      `${providerField.path} is ${provider}, so ${block.path}.${key} needs its settings`,
    );
    return null;
  }
  switch (provider) {
    case "cloudflare": {
      const cloudflare = readCloudflare(r, settings);
      return cloudflare === null ? null : { provider, cloudflare };
    }
    case "rfc2136": {
      const rfc2136 = readRfc2136(r, settings, options);
      return rfc2136 === null ? null : { provider, rfc2136 };
    }
    case "exec": {
      const exec = readExec(r, settings, options);
      return exec === null ? null : { provider, exec };
    }
    case "acme-dns": {
      const acmeDns = readAcmeDns(r, settings, options);
      return acmeDns === null ? null : { provider, acmeDns };
    }
  }
}

/**
 * `dns.zones`: a mapping of zone apex (or any name: "www.example.org" takes that name and the names below it
 * from "example.org") to a provider block. Returned longest zone first, the order names are matched in; null
 * when the mapping itself is unreadable.
 */
function readZones(
  r: Reader,
  field: Field,
  options: { configDir: string },
): Array<{ zone: string; provider: DnsProviderConfig }> | null {
  const entries = r.readMapping(field, {
    known: null,
    expected: `a mapping of zone to provider, like "example.org": { provider: rfc2136, rfc2136: { ... } }`,
  });
  if (entries === null) return null;
  const zones: Array<{ zone: string; provider: DnsProviderConfig }> = [];
  const seen = new Map<string, string>();
  for (const [name, entry] of entries) {
    let zone: string;
    try {
      zone = normalizeHostname(name.trim().replace(/\.$/, ""));
    } catch (error) {
      r.report(
        entry.keyNode,
        `${entry.path}: ${(error as Error).message} (a zone is a domain like "example.org")`,
      );
      continue;
    }
    const earlier = seen.get(zone);
    if (earlier !== undefined) {
      r.report(entry.keyNode, `${entry.path} names the zone ${zone} again (also ${earlier}): keep one`);
      continue;
    }
    seen.set(zone, entry.path);
    const fields = r.readMapping(entry, {
      known: ZONE_KEYS,
      expected: `a provider block like { provider: cloudflare, cloudflare: { api_token: ... } }`,
    });
    if (fields === null) continue;
    const provider = readProvider(r, entry, fields, options);
    if (provider !== null) zones.push({ zone, provider });
  }
  if (entries.size === 0) {
    r.report(field.at, `${field.path} is empty: name a zone and its provider, or remove it`);
  }
  return zones.sort((a, b) => b.zone.length - a.zone.length);
}

/**
 * An acme-dns account under a `dns.zones` key answers the challenges of that one name and its wildcard (the
 * `_acme-challenge` CNAME the user set): another host the zone's routing sends it (www.<zone>, not covered by
 * `*.<zone>` in `wildcards`) could never be proven. Reported at the `dns:` key.
 */
export function checkAcmeDnsNames(
  r: Reader,
  field: Field,
  config: { dns: DnsConfig; wildcards: readonly string[]; hosts: readonly string[] },
): void {
  for (const { zone, provider } of config.dns.zones) {
    if (provider.provider !== "acme-dns") continue;
    const stray = config.hosts.filter((host) => {
      if (providerFor(host, config.dns) !== provider || host === zone) return false;
      const wildcard = coveringWildcard(host);
      return wildcard !== `*.${zone}` || !config.wildcards.includes(wildcard);
    });
    if (stray.length > 0) {
      r.report(
        field.keyNode,
        `dns.zones."${zone}" is an acme-dns account, which answers only _acme-challenge.${zone} (and *.${zone}); ` +
          `${stray.join(", ")} need their own dns.zones entries (one acme-dns account each)`,
      );
    }
  }
}
