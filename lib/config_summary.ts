// What `nexo check` prints after a config validates: the addresses, each route and where it goes, and which
// certificate will cover which host, and the warnings the server would log, so a user sees what the file
// will do before running it. Pure text.

import { isOneLabelUnder, planCertificates } from "./acme/plan.ts";
import type { Config, DnsProviderConfig } from "./config/types.ts";
import { parseRedisUrl, redisLabel } from "./storage/redis_url.ts";
import { dnsProviders } from "./config/dns_zones.ts";
import type { ConfigWarning } from "./config_warnings.ts";
import { formatAddr } from "./ip_address.ts";

/** A short, aligned summary of `config` and its `warnings` (ends with a newline). */
export function summarizeConfig(config: Config, warnings: readonly ConfigWarning[] = []): string {
  const lines = [`${config.file}: ok`];
  const issuer = config.issuer === "internal"
    ? "internal (local CA in base_dir/ca)"
    : `acme (${[config.acme.directory, ...config.acme.fallbacks.map((ca) => ca.directory)].join(", then ")})`;
  lines.push(
    `listen ${formatAddr(config.listen)}, http_listen ${
      config.httpListen ? formatAddr(config.httpListen) : "off"
    }, ` +
      `issuer ${issuer}`,
  );
  const width = Math.max(0, ...config.routes.map((route) => route.host.length));
  lines.push(`routes (${config.routes.length}):`);
  for (const route of config.routes) {
    const target = route.kind === "proxy"
      ? `-> ${route.upstreams.map((url) => url.href).join(", ")}${
        route.balancing !== null && route.upstreams.length > 1 ? ` (${route.balancing.lb})` : ""
      }`
      : route.kind === "redirect"
      ? `=> ${route.target.href} (${route.status}${route.keepPath ? ", keeps the path" : ""})`
      : route.kind === "admin"
      ? "nexo's dashboard (admin: true)"
      : "GitHub sign-in (auth.host)";
    lines.push(`  ${route.host.padEnd(width)}  ${target}`);
  }
  if (config.issuer === "acme") {
    const plans = planCertificates(config);
    const methods = [
      ...dnsProviders(config.dns).map((provider) => `DNS-01 via ${describeDnsProvider(provider)}`),
      ...(config.httpListen !== null && (config.dns === null || config.dns.default === null)
        ? [config.dns === null ? "HTTP-01 on http_listen" : "HTTP-01 on http_listen for other names"]
        : []),
    ];
    const method = methods.length === 0
      ? "no challenge method: add cloudflare, dns or http_listen"
      : [...new Set(methods)].join("; ");
    lines.push(`certificates (${plans.length}, ${method}):`);
    if (config.storage !== null) {
      const { redis, encryptionKeyFile } = config.storage;
      lines.push(
        `  shared with other instances through ${
          redisLabel(parseRedisUrl(redis.url))
        } (prefix ${redis.prefix}` +
          `${encryptionKeyFile === null ? "" : ", private keys encrypted"})`,
      );
    }
    for (const plan of plans) {
      const covered = config.routes.map((route) => route.host).filter((host) =>
        plan.names.some((name) =>
          name === host || (name.startsWith("*.") && isOneLabelUnder(host, name.slice(2)))
        )
      );
      lines.push(`  ${plan.names.join(" + ")}  covers ${covered.join(", ")}`);
    }
  } else {
    lines.push("certificates: minted by the local CA per host on first use");
  }
  // The same warnings the server logs at start and on reload.
  if (warnings.length > 0) lines.push(`warnings (${warnings.length}):`);
  for (const warning of warnings) lines.push(`  ${warning.key}: ${warning.message}`);
  return lines.join("\n") + "\n";
}

/** How the summary names a DNS provider: its kind and where it sends records. */
function describeDnsProvider(provider: DnsProviderConfig): string {
  switch (provider.provider) {
    case "cloudflare":
      return "Cloudflare";
    case "rfc2136":
      return `RFC 2136 updates to ${formatAddr(provider.rfc2136.server)}`;
    case "exec":
      return `the hook ${provider.exec.command[0]}`;
    case "acme-dns":
      return `acme-dns at ${provider.acmeDns.api}`;
  }
}
