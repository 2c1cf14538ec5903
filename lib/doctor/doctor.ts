// `nexo doctor`: what will make the first certificate fail, found before it fails. It loads the config as
// `nexo check` does, then checks this machine, the CA, the DNS provider, and each host's DNS and CAA records,
// and returns the findings (report.ts prints them). It orders no certificate and registers no account; it
// writes only a test file it removes and, with --write-test, a TXT record it deletes.

import { planCertificates } from "../acme/plan.ts";
import { ConfigError } from "../config/errors.ts";
import { loadConfig } from "../config/parse.ts";
import type { Config, ListenAddress } from "../config/types.ts";
import { allConfigWarnings } from "../config_warnings.ts";
import { errorMessage } from "../error_message.ts";
import { ipVersion } from "../ip_address.ts";
import { checkHostAddresses, machineAddresses } from "./addresses.ts";
import { checkCa } from "./ca.ts";
import { checkCaa } from "./caa.ts";
import { checkMachine } from "./machine.ts";
import { DnsAsker, type DnsServer } from "./resolvers.ts";
import { type Finding, finding } from "./report.ts";
import { formatAddr } from "../ip_address.ts";
import { dnsProviders, providerFor } from "../config/dns_zones.ts";

/** The order areas print in: what the user edits first, then the world outside. */
const AREA_ORDER = ["config", "machine", "storage", "dns", "caa", "cloudflare", "dns provider", "ca"];

export interface DoctorOptions {
  /** Create and delete a test TXT record at the DNS provider. */
  writeTest?: boolean;
  /** Seams for tests. */
  resolveDns?: typeof Deno.resolveDns;
  proc?: string;
  machineAddresses?: string[];
}

/** Every finding for the config at `path`, areas in report order. Never throws for what it checks. */
export async function runDoctor(path: string, options: DoctorOptions = {}): Promise<Finding[]> {
  let config: Config;
  try {
    config = await loadConfig(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((issue) => ({
      area: "config",
      subject: `${issue.file}:${issue.line}:${issue.col}`,
      status: "problem",
      message: issue.message,
      fix: "fix the config (`nexo check` shows the same); doctor checks the rest once it loads",
    }));
  }
  const findings = [...await configFindings(config), ...await checkMachine(config, options)];
  if (config.storage !== null) findings.push(...await (await import("./storage.ts")).checkStorage(config));
  if (config.issuer === "internal") {
    findings.push(finding(
      "config",
      "issuer",
      "ok",
      "internal: certificates come from nexo's local CA, so DNS, CAA and the CA's checks do not apply",
    ));
    return sortByArea(findings);
  }
  findings.push(...await checkOutside(config, options));
  return sortByArea(findings);
}

async function configFindings(config: Config): Promise<Finding[]> {
  const certificates = planCertificates(config).length;
  const findings: Finding[] = [
    finding(
      "config",
      config.file,
      "ok",
      `valid: ${config.routes.length} route(s), ${certificates} certificate(s)`,
    ),
  ];
  for (const warning of await allConfigWarnings(config)) {
    findings.push({ area: "config", subject: warning.key, status: "warning", message: warning.message });
  }
  return findings;
}

/** The CA, the DNS provider, and every host's records. */
async function checkOutside(config: Config, options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const names = planCertificates(config).flatMap((plan) => plan.names);
  const hosts = config.routes.map((route) => route.host).filter(isPublicName);
  const dnsProvider = config.dns !== null;
  const challenge = dnsProvider ? "dns-01" : config.httpListen !== null ? "http-01" : null;
  if (challenge === null && names.length > 0) {
    findings.push({
      area: "config",
      subject: "challenge",
      status: "problem",
      message:
        "no way to prove the names to the CA: no DNS provider (cloudflare: or dns:) and no http_listen (HTTP-01)",
      fix: `add http_listen: "0.0.0.0:80", or a cloudflare: or dns: block`,
    });
  }
  const viaHttp = names.some((name) => config.dns === null || providerFor(name, config.dns) === null);
  if (viaHttp && config.httpListen !== null) findings.push(...httpListenFindings(config.httpListen));
  const ca = await checkCa(config);
  findings.push(...ca.findings);
  let proxied = new Set<string>();
  if (!dnsProvider && options.writeTest) {
    findings.push(finding(
      "config",
      "--write-test",
      "skipped",
      "no DNS provider is configured (no cloudflare: or dns: block), so there is no record to write",
    ));
  }
  for (const provider of dnsProviders(config.dns)) {
    // Each provider is asked about the names it serves (dns.zones may split them).
    const served = names.filter((name) => providerFor(name, config.dns!) === provider);
    const writeTest = options.writeTest ?? false;
    if (provider.provider === "rfc2136") {
      const { checkRfc2136 } = await import("./rfc2136.ts");
      findings.push(...await checkRfc2136(config, provider.rfc2136, { names: served, writeTest }));
    }
    if (provider.provider === "cloudflare") {
      const { checkCloudflare } = await import("./cloudflare.ts");
      const cloudflare = await checkCloudflare(config, provider.cloudflare, {
        names: served,
        hosts,
        writeTest,
      });
      findings.push(...cloudflare.findings);
      proxied = new Set([...proxied, ...cloudflare.proxied]);
    }
    if (provider.provider === "exec" || provider.provider === "acme-dns") {
      const { checkDnsHook } = await import("./dns_hooks.ts");
      findings.push(...await checkDnsHook(config, provider, { names: served, writeTest }));
    }
  }
  const unserved = config.dns === null ? [] : names.filter((name) => providerFor(name, config.dns!) === null);
  if (unserved.length > 0 && config.httpListen === null) {
    findings.push({
      area: "config",
      subject: "challenge",
      status: "problem",
      message:
        `no DNS provider serves ${unserved.join(", ")} (dns.zones covers other names) and there is no ` +
        `http_listen for HTTP-01`,
      fix: "add the zone to dns.zones, set dns.provider for every other name, or set http_listen",
    });
  }
  const asker = new DnsAsker(options.resolveDns);
  const recursive = await asker.recursiveServers(config.acme.dnsResolvers);
  const [first] = recursive;
  if (first === undefined) {
    findings.push(finding("dns", "resolvers", "skipped", "no acme.dns_resolvers entry has an address"));
    return findings;
  }
  const unreached: string[] = [];
  let why = "";
  // Hosts at once: a resolver that never answers costs its timeout once, not once per host.
  const perHost = await Promise.all(hosts.map(async (host) => {
    const authoritative = await asker.authoritativeServers(host, first).catch((error) => {
      unreached.push(host);
      why ||= errorMessage(error);
      return [] as DnsServer[];
    });
    return await checkHostAddresses([host], {
      asker,
      servers: [...recursive, ...authoritative],
      machine: options.machineAddresses ?? machineAddresses(),
      challenge: challenge ?? "http-01",
      privateCa: config.acme.caCert !== null,
      proxied,
    });
  }));
  findings.push(...perHost.flat());
  if (unreached.length > 0) {
    findings.push(finding(
      "dns",
      "authoritative servers",
      "skipped",
      `not found for ${unreached.join(", ")} (${why}${unreached.length > 1 ? ", ..." : ""}), so only the ` +
        `resolvers were compared`,
    ));
  }
  findings.push(
    ...await checkCaa(names, {
      asker,
      server: first,
      context: { identities: ca.caaIdentities, challenge: challenge ?? "http-01", accountUrl: ca.accountUrl },
    }),
  );
  return findings;
}

/**
 * HTTP-01 validation connects to port 80 of the host's public address (RFC 8555 §8.3): an http_listen on
 * loopback, or on another port, works only behind a forward that nexo cannot see.
 */
function httpListenFindings(address: ListenAddress): Finding[] {
  const findings: Finding[] = [];
  const subject = `http_listen ${formatAddr(address)}`;
  if (/^127\.|^::1$|^localhost$/.test(address.hostname)) {
    findings.push({
      area: "config",
      subject,
      status: "warning",
      message: "only this machine can reach a loopback address, and HTTP-01 needs the CA to reach it",
      fix: `set http_listen to "0.0.0.0:80", unless a proxy on this machine forwards port 80 to it`,
    });
  }
  if (address.port !== 80) {
    findings.push({
      area: "config",
      subject,
      status: "warning",
      message: `the CA connects to port 80 for HTTP-01, not ${address.port}`,
      fix: `forward port 80 to ${address.port} (Docker: -p 80:${address.port}), or listen on port 80`,
    });
  }
  return findings;
}

/** A name DNS can answer for: not an IP address, not localhost, at least two labels, not a wildcard. */
function isPublicName(host: string): boolean {
  return ipVersion(host.replace(/^\[|\]$/g, "")) === 0 && host.includes(".") && !host.startsWith("*.") &&
    host !== "localhost" && !host.endsWith(".localhost");
}

function sortByArea(findings: Finding[]): Finding[] {
  const rank = (area: string) => {
    const index = AREA_ORDER.indexOf(area);
    return index === -1 ? AREA_ORDER.length : index;
  };
  return findings.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f.area) - rank(b.f.area) || a.i - b.i)
    .map(({ f }) => f);
}
