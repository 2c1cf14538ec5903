// `nexo doctor`'s check of where each host's A/AAAA records point: asked of every server doctor compares
// (resolvers and authoritative), set against this machine's own addresses, with Cloudflare's proxy (orange
// cloud) named as such. How much a wrong record matters depends on the challenge: HTTP-01 must reach this
// machine, DNS-01 issues anyway but visitors go elsewhere. It does not look at CAA (caa.ts).

import { type Cidr, inCidrs, parseCidr } from "../cidr.ts";
import { ipVersion } from "../ip_address.ts";
import type { DnsAsker, DnsServer } from "./resolvers.ts";
import { type Finding, finding } from "./report.ts";

const AREA = "dns";

/**
 * Cloudflare's proxy ranges, as published at https://www.cloudflare.com/ips/ (IPv4 and IPv6 lists): an
 * address in them is Cloudflare's edge, not the origin.
 */
const CLOUDFLARE_RANGES: readonly Cidr[] = [
  "173.245.48.0/20",
  "103.21.244.0/22",
  "103.22.200.0/22",
  "103.31.4.0/22",
  "141.101.64.0/18",
  "108.162.192.0/18",
  "190.93.240.0/20",
  "188.114.96.0/20",
  "197.234.240.0/22",
  "198.41.128.0/17",
  "162.158.0.0/15",
  "104.16.0.0/13",
  "104.24.0.0/14",
  "172.64.0.0/13",
  "131.0.72.0/22",
  "2400:cb00::/32",
  "2606:4700::/32",
  "2803:f800::/32",
  "2405:b500::/32",
  "2405:8100::/32",
  "2a06:98c0::/29",
  "2c0f:f248::/32",
].map(parseCidr);

/**
 * Addresses no one on the Internet can reach this machine at: loopback, RFC 1918 private, carrier-grade NAT
 * (RFC 6598), link-local, IPv6 unique-local (RFC 4193). A machine with only these is behind NAT.
 */
const NOT_PUBLIC: readonly Cidr[] = [
  "127.0.0.0/8",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
].map(parseCidr);

/** Loopback and link-local: never an address to tell a user about. */
const LOCAL_ONLY: readonly Cidr[] = ["127.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10"].map(parseCidr);

/** Whether the Internet could reach `address` (not loopback, private, CGNAT or link-local). */
export function isPublicAddress(address: string): boolean {
  return !inCidrs(address, NOT_PUBLIC);
}

/** Whether `address` is one of Cloudflare's proxy addresses. */
export function isCloudflareEdge(address: string): boolean {
  return inCidrs(address, CLOUDFLARE_RANGES);
}

/** This machine's addresses (every interface); [] when this process may not list them. */
export function machineAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}

export interface AddressCheckOptions {
  asker: DnsAsker;
  /** Servers whose answers are compared; each host is asked of all of them. */
  servers: readonly DnsServer[];
  /** This machine's addresses (machineAddresses()). */
  machine: readonly string[];
  /** How certificates are validated: HTTP-01 must reach this machine; DNS-01 does not. */
  challenge: "http-01" | "dns-01";
  /** Hosts Cloudflare's API reports as proxied (orange cloud). */
  proxied?: ReadonlySet<string>;
}

/** One finding per host: where its records point, and whether every server agrees. */
export async function checkHostAddresses(
  hosts: readonly string[],
  options: AddressCheckOptions,
): Promise<Finding[]> {
  return await Promise.all(hosts.map((host) => checkHost(host, options)));
}

async function checkHost(host: string, options: AddressCheckOptions): Promise<Finding> {
  const answers = await Promise.all(options.servers.map(async (server) => {
    const [a, aaaa] = await Promise.all([
      options.asker.ask(host, "A", server),
      options.asker.ask(host, "AAAA", server),
    ]);
    if ("error" in a && "error" in aaaa) return { server, error: a.error };
    const records = [...("records" in a ? a.records : []), ...("records" in aaaa ? aaaa.records : [])];
    return { server, addresses: [...new Set(records)].sort() };
  }));
  const answered = answers.filter((answer) => "addresses" in answer) as Array<
    { server: DnsServer; addresses: string[] }
  >;
  if (answered.length === 0) {
    const why = answers.map((answer) => `${answer.server.label}: ${"error" in answer ? answer.error : ""}`);
    return finding(AREA, host, "skipped", `no DNS server answered (${why.join("; ")})`);
  }
  const shapes = new Set(answered.map((answer) => answer.addresses.join(",")));
  const all = [...new Set(answered.flatMap((answer) => answer.addresses))].sort();
  const verdict = judgeAddresses(host, all, options);
  if (shapes.size > 1 && verdict.status !== "problem") {
    const seen = answered.map((answer) =>
      `${answer.server.label} says ${answer.addresses.join(", ") || "nothing"}`
    );
    return {
      area: AREA,
      subject: host,
      status: "warning",
      message: `DNS servers disagree: ${seen.join("; ")}`,
      fix: "a recent change may still be spreading (wait out the old TTL), or a record differs between " +
        "providers: make them agree before the first certificate",
    };
  }
  const silent = answers.filter((answer) => "error" in answer).map((answer) => answer.server.label);
  return silent.length === 0
    ? verdict
    : { ...verdict, message: `${verdict.message} (no answer from ${silent.join(", ")})` };
}

/** The verdict for `host` resolving to `addresses` (the union of every answer). */
export function judgeAddresses(
  host: string,
  addresses: readonly string[],
  options: Pick<AddressCheckOptions, "machine" | "challenge" | "proxied">,
): Finding {
  const http01 = options.challenge === "http-01";
  const mine = options.machine.filter(isPublicAddress);
  const mineV4 = mine.filter((address) => ipVersion(address) === 4);
  const target = mineV4.length > 0 ? mineV4.join(" or ") : "this machine's public IPv4 address";
  // How this machine is named in messages: its public addresses, else its private ones (not loopback).
  const shown = mine.length > 0 ? mine : options.machine.filter((a) => !inCidrs(a, LOCAL_ONLY));
  if (addresses.length === 0) {
    return {
      area: AREA,
      subject: host,
      status: http01 ? "problem" : "warning",
      message: http01
        ? "no A or AAAA record: the CA cannot reach it for HTTP-01"
        : "no A or AAAA record: the certificate can be issued (DNS-01), but no visitor reaches the site",
      fix: `add an A record for ${host} pointing to ${target}`,
    };
  }
  if (options.proxied?.has(host) || addresses.every(isCloudflareEdge)) {
    return http01
      ? {
        area: AREA,
        subject: host,
        status: "problem",
        message: `proxied by Cloudflare (orange cloud, ${addresses.join(", ")}): HTTP-01 never reaches nexo`,
        fix: "set the record to DNS only (grey cloud), or add a cloudflare: block so nexo uses DNS-01",
      }
      : finding(
        AREA,
        host,
        "ok",
        `proxied by Cloudflare (orange cloud): visitors reach Cloudflare, which forwards to this machine; ` +
          `DNS-01 does not need the record`,
      );
  }
  const here = addresses.filter((address) => options.machine.includes(address));
  const elsewhere = addresses.filter((address) => !options.machine.includes(address));
  if (elsewhere.length === 0) return finding(AREA, host, "ok", `points here (${here.join(", ")})`);
  if (mine.length === 0 && here.length === 0) {
    return {
      area: AREA,
      subject: host,
      status: "warning",
      message: `points to ${elsewhere.join(", ")}; this machine has only private addresses (behind NAT or ` +
        `a cloud network), so doctor cannot tell whether that reaches it`,
      fix: `make sure ${elsewhere.join(", ")} forwards TCP 443${http01 ? " and 80" : ""} to this machine`,
    };
  }
  const stale = elsewhere.map((address) => `${ipVersion(address) === 6 ? "AAAA" : "A"} ${address}`);
  return {
    area: AREA,
    subject: host,
    status: http01 ? "problem" : "warning",
    message: here.length > 0
      ? `points here (${here.join(", ")}) but also elsewhere (${stale.join(", ")}): ` +
        (http01 ? "the CA may validate against the other address" : "some visitors reach another machine")
      : `points to ${elsewhere.join(", ")}, not to this machine (${shown.join(", ") || "no address"})` +
        (http01 ? ": HTTP-01 validation reaches another machine" : ": visitors reach another machine"),
    fix: here.length > 0
      ? `remove the record${stale.length > 1 ? "s" : ""} ${stale.join(", ")} of ${host}, or point ` +
        `${stale.length > 1 ? "them" : "it"} here`
      : `point the A record of ${host} to ${target}`,
  };
}
