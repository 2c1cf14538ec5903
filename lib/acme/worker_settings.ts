// What the ACME worker is sent for a job (WorkerSettings): the CAs, the DNS providers with their secrets read
// from their files now (a rotated key applies without a restart), and the DNS servers each provider's records
// are checked at, looked up here so the worker's network permission can name them. It runs nothing itself.

import { errorMessage } from "../error_message.ts";
import { DnsLookup, findNameServers } from "../dns/name_servers.ts";
import { resolveDnsAt } from "../dns/lookups.ts";
import { challengeRecordName, normalizeDnsName } from "../dns/provider.ts";
import type { Config, DnsProviderConfig } from "../config/types.ts";
import { parseTsigSecret } from "../config/tsig_secret.ts";
import { providerFor } from "../config/dns_zones.ts";
import { readSecretLine } from "../config/secret_line.ts";
import { formatAddr } from "../ip_address.ts";
import type { Logger } from "../log.ts";
import type { WorkerDnsProvider, WorkerSettings } from "./messages.ts";

/** The settings of a job for `certificates` under `config`; lookups that fail are logged and left out. */
export async function buildWorkerSettings(
  config: Config,
  certificates: string[][],
  log: Logger,
): Promise<WorkerSettings> {
  const { acme, dns } = config;
  const served = (provider: DnsProviderConfig) =>
    dns === null ? [] : certificates.flat().filter((name) => providerFor(name, dns) === provider);
  // A provider no name of this job uses is not read (its secret file may be broken without harm now), and
  // one whose file cannot be read fails only its own certificates, in the worker.
  const forWorker = async (provider: DnsProviderConfig): Promise<WorkerDnsProvider> => {
    const names = served(provider);
    if (names.length === 0) return { provider: "unavailable", reason: "no certificate of this job uses it" };
    try {
      return await workerDnsProvider(provider, { names, resolvers: acme.dnsResolvers });
    } catch (error) {
      log.warn("dns provider settings unreadable", { error: errorMessage(error) });
      return { provider: "unavailable", reason: errorMessage(error) };
    }
  };
  const workerDns = dns === null ? null : {
    default: dns.default === null ? null : await forWorker(dns.default),
    zones: await Promise.all(
      dns.zones.map(async ({ zone, provider }) => ({ zone, provider: await forWorker(provider) })),
    ),
  };
  const checkServers: Record<string, string[]> = {};
  if (dns !== null) {
    const places = [
      ...(dns.default === null ? [] : [{ key: "", provider: dns.default }]),
      ...dns.zones.map(({ zone, provider }) => ({ key: zone, provider })),
    ];
    for (const { key, provider } of places) {
      const names = served(provider);
      const worker = key === "" ? workerDns!.default : workerDns!.zones.find((z) => z.zone === key)?.provider;
      // acme-dns's records live at the account's fulldomain (configured, or found through the CNAME), in a
      // zone acme-dns serves itself; the user's own servers answer `_acme-challenge` with the CNAME alone.
      const fulldomain = worker?.provider === "acme-dns" ? worker.fulldomain : null;
      checkServers[key] = acme.dnsResolvers.length > 0
        ? acme.dnsResolvers
        : names.length === 0
        ? []
        : await serversFor(provider, fulldomain === null ? names : [fulldomain], log);
    }
  }
  return {
    directoryUrl: acme.directory,
    caCertsPem: acme.caCert ? [await Deno.readTextFile(acme.caCert)] : [],
    email: config.email,
    certDir: config.certDir,
    baseDir: config.baseDir,
    keyType: acme.keyType,
    eab: acme.eab,
    fallbacks: await Promise.all(acme.fallbacks.map(async (issuer) => ({
      directoryUrl: issuer.directory,
      eab: issuer.eab,
      caCertsPem: issuer.caCert ? [await Deno.readTextFile(issuer.caCert)] : [],
    }))),
    dns: workerDns,
    checkServers,
    // Names no DNS provider serves are proven with HTTP-01 through http_listen (no propagation checks).
    http01: (dns === null || dns.default === null) && config.httpListen !== null,
    dnsResolvers: [...new Set([...acme.dnsResolvers, ...Object.values(checkServers).flat()])],
    retryIntervalMs: acme.retryIntervalMs,
    propagationTimeoutMs: acme.propagationTimeoutMs,
    storage: config.storage === null
      ? null
      : await (await import("../storage/shared_store.ts")).readSharedStoreSettings(config.storage),
  };
}

/** Where a provider's records for `names` are checked when acme.dns_resolvers does not say. */
async function serversFor(provider: DnsProviderConfig, names: string[], log: Logger): Promise<string[]> {
  switch (provider.provider) {
    case "rfc2136":
      // Updates go to a primary that is authoritative itself (and may be a private one no public NS record
      // names): records are checked there and at the zone's public servers if it has any (a hidden
      // primary's secondaries lag).
      return [
        ...new Set([formatAddr(provider.rfc2136.server), ...await authoritativeServers(log, [names])]),
      ];
    default:
      return await authoritativeServers(log, [names]);
  }
}

/**
 * The authoritative nameservers of every certificate's zone, as "address:53", looked up here so that the
 * worker's network permission can list them. A lookup that fails leaves the list shorter: the worker's
 * propagation check then reports which record it could not see.
 */
async function authoritativeServers(log: Logger, certificates: string[][]): Promise<string[]> {
  const servers = new Set<string>();
  const lookup = new DnsLookup({
    resolveDns: Deno.resolveDns,
    queryTimeoutMs: 5_000,
    deadline: Date.now() + 30_000,
    now: Date.now,
    signal: undefined,
  });
  for (const name of new Set(certificates.flat().map(challengeRecordName))) {
    try {
      for (const server of await findNameServers(name, { resolvers: [], zone: undefined, lookup })) {
        servers.add(formatAddr({ hostname: server.ipAddr, port: server.port }));
      }
    } catch (error) {
      log.warn("nameserver lookup failed", {
        name,
        error: errorMessage(error),
      });
    }
  }
  return [...servers];
}

/**
 * One provider's settings for the worker, with its secret read from its file now: for each job, so a rotated
 * key or password applies without a restart (the file was checked when the config loaded).
 */
async function workerDnsProvider(
  config: DnsProviderConfig,
  job: { names: string[]; resolvers: string[] },
): Promise<WorkerDnsProvider> {
  switch (config.provider) {
    case "cloudflare": {
      const { apiToken, apiBase, zoneId } = config.cloudflare;
      return { provider: "cloudflare", apiToken, apiBase, zoneId };
    }
    case "rfc2136": {
      const { server, tsigKey, tsigAlgorithm, tsigSecretFile, zone } = config.rfc2136;
      const secret = parseTsigSecret(await Deno.readTextFile(tsigSecretFile)).secret;
      return {
        provider: "rfc2136",
        server,
        keyName: tsigKey,
        algorithm: tsigAlgorithm,
        secretBase64: secret.toBase64(),
        zone,
      };
    }
    case "exec": {
      const { command, timeoutMs, zone } = config.exec;
      return { provider: "exec", command, timeoutMs, zone };
    }
    case "acme-dns": {
      const { api, username, passwordFile, subdomain } = config.acmeDns;
      const password = readSecretLine(await Deno.readTextFile(passwordFile));
      const fulldomain = config.acmeDns.fulldomain ??
        await delegationTarget(job.names, subdomain, job.resolvers);
      return { provider: "acme-dns", api, username, password, subdomain, fulldomain };
    }
  }
}

/**
 * Without `fulldomain`: the target of the first name's `_acme-challenge` CNAME when it is the account's
 * ("<subdomain>.<acme-dns domain>"), asked of `acme.dns_resolvers`' first or the system's resolver; null
 * when it cannot be learnt (the worker then checks `_acme-challenge` itself, which only a recursive
 * resolver answers, and doctor names the missing CNAME).
 */
export async function delegationTarget(
  names: string[],
  subdomain: string,
  resolvers: string[],
): Promise<string | null> {
  const [first] = names;
  if (first === undefined) return null;
  try {
    const [target] = await resolveDnsAt(resolvers)(challengeRecordName(first), "CNAME", {
      signal: AbortSignal.timeout(5_000),
    });
    const name = target === undefined ? null : normalizeDnsName(target);
    return name !== null && name.startsWith(`${subdomain.toLowerCase()}.`) ? name : null;
  } catch {
    return null;
  }
}
