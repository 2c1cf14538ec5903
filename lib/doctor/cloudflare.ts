// `nexo doctor`'s Cloudflare checks, for DNS-01: the token is active, every certificate name has a zone the
// token can read, which host records are proxied (orange cloud), and, only with --write-test, that a TXT
// record can be created, seen at the name servers (timed) and deleted. Messages come from the provider's
// own errors, which never carry the token.

import { errorMessage } from "../error_message.ts";
import type { CloudflareConfig, Config } from "../config/types.ts";
import { CloudflareApi, TOKEN_PAGE } from "../dns/cloudflare_api.ts";
import { CloudflareDnsProvider } from "../dns/cloudflare.ts";
import { type CloudflareZone, CloudflareZones } from "../dns/cloudflare_zones.ts";
import { challengeRecordName } from "../dns/provider.ts";
import { writeTest } from "./record_probe.ts";
import { type Finding, finding } from "./report.ts";

const AREA = "cloudflare";

export interface CloudflareCheckOptions {
  /** Certificate names (wildcards included). */
  names: readonly string[];
  /** Route hosts whose A/AAAA/CNAME records are looked at for the orange cloud. */
  hosts: readonly string[];
  /** Create, time and delete a test TXT record. */
  writeTest: boolean;
}

/** What the checks found, and the hosts whose records Cloudflare proxies. */
export interface CloudflareFacts {
  findings: Finding[];
  proxied: Set<string>;
}

/** Runs the checks with one Cloudflare provider of the config, for the names it serves. */
export async function checkCloudflare(
  config: Config,
  settings: CloudflareConfig,
  options: CloudflareCheckOptions,
): Promise<CloudflareFacts> {
  const api = new CloudflareApi({ apiToken: settings.apiToken, apiBase: settings.apiBase });
  const findings: Finding[] = [];
  const proxied = new Set<string>();
  try {
    const token = await api.expect<{ status?: string }>("verify the Cloudflare API token", {
      method: "GET",
      path: "/user/tokens/verify",
      deniedHint: `check cloudflare.api_token: it must be an API token from ${TOKEN_PAGE}`,
    });
    if (token.result.status !== "active") {
      findings.push({
        area: AREA,
        subject: "API token",
        status: "problem",
        message: `the token is ${token.result.status ?? "not active"}`,
        fix: `create a new token at ${TOKEN_PAGE} with Zone:Zone:Read and Zone:DNS:Edit`,
      });
      return { findings, proxied };
    }
    findings.push(finding(AREA, "API token", "ok", "valid and active"));
  } catch (error) {
    findings.push({ area: AREA, subject: "API token", status: "problem", message: errorMessage(error) });
    return { findings, proxied };
  }
  const zones = new CloudflareZones(api, { zoneId: settings.zoneId, now: Date.now });
  const byZone = new Map<string, { zone: CloudflareZone; names: string[] }>();
  for (const name of options.names) {
    try {
      const zone = await zones.zoneFor(challengeRecordName(name));
      const entry = byZone.get(zone.id) ?? { zone, names: [] };
      entry.names.push(name);
      byZone.set(zone.id, entry);
    } catch (error) {
      findings.push({ area: AREA, subject: name, status: "problem", message: errorMessage(error) });
    }
  }
  for (const { zone, names } of byZone.values()) {
    findings.push(await readRecords(api, zone, names));
    for (const host of options.hosts.filter((h) => isWithin(h, zone.name))) {
      if (await isProxied(api, zone, host)) proxied.add(host);
    }
    findings.push(
      options.writeTest ? await writeTestIn(config, settings, { zone, name: names[0]! }) : finding(
        AREA,
        `DNS edit in ${zone.name}`,
        "skipped",
        "DNS edit permission not tried (Cloudflare shows a token its permissions only with an extra " +
          "permission); run `nexo doctor --write-test` to create and delete a test TXT record",
      ),
    );
  }
  return { findings, proxied };
}

function isWithin(host: string, zone: string): boolean {
  return host === zone || host.endsWith(`.${zone}`);
}

async function readRecords(api: CloudflareApi, zone: CloudflareZone, names: string[]): Promise<Finding> {
  try {
    await api.expect(`read the DNS records of Cloudflare zone ${zone.name}`, {
      method: "GET",
      path: `/zones/${encodeURIComponent(zone.id)}/dns_records?${new URLSearchParams({
        type: "TXT",
        per_page: "5",
      })}`,
      deniedHint: `the API token lacks Zone:DNS:Edit on ${zone.name}: add it at ${TOKEN_PAGE}`,
    });
    return finding(
      AREA,
      `zone ${zone.name}`,
      "ok",
      `found, its DNS records readable (for ${names.join(", ")})`,
    );
  } catch (error) {
    return { area: AREA, subject: `zone ${zone.name}`, status: "problem", message: errorMessage(error) };
  }
}

async function isProxied(api: CloudflareApi, zone: CloudflareZone, host: string): Promise<boolean> {
  try {
    const records = await api.expect<Array<{ type: string; proxied?: boolean }>>(
      `read the DNS records of ${host}`,
      {
        method: "GET",
        path: `/zones/${encodeURIComponent(zone.id)}/dns_records?${new URLSearchParams({ name: host })}`,
        deniedHint: `the API token cannot read the DNS records of ${zone.name}`,
      },
    );
    return records.result.some((r) => ["A", "AAAA", "CNAME"].includes(r.type) && r.proxied === true);
  } catch {
    return false; // readRecords reports a token that cannot read records
  }
}

/** The write test with the Cloudflare provider the server would use. */
function writeTestIn(
  config: Config,
  settings: CloudflareConfig,
  { zone, name }: { zone: CloudflareZone; name: string },
): Promise<Finding> {
  const provider = new CloudflareDnsProvider({
    apiToken: settings.apiToken,
    apiBase: settings.apiBase,
    zoneId: settings.zoneId,
  });
  return writeTest(provider, {
    area: AREA,
    subject: `DNS edit in ${zone.name}`,
    name,
    zone: zone.name,
    resolvers: config.acme.dnsResolvers,
    timeoutMs: config.acme.propagationTimeoutMs,
  });
}
