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
  /**
   * The CA is private (`acme.ca_cert` set: a step-ca or Pebble on the same network), so a private address
   * of this machine is as good as a public one; with a public CA it is unreachable.
   */
  privateCa?: boolean;
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

type Answered = { server: DnsServer; addresses: string[] };

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
  const answered = answers.filter((answer) => "addresses" in answer) as Answered[];
  if (answered.length === 0) {
    const why = answers.map((answer) => `${answer.server.label}: ${"error" in answer ? answer.error : ""}`);
    return finding(AREA, host, "skipped", `no DNS server answered (${why.join("; ")})`);
  }
  // The zone's own servers say what the records are now; resolvers may still hold an older answer.
  const authoritative = answered.filter((answer) => answer.server.authoritative === true);
  const decisive = authoritative.length > 0 ? authoritative : answered;
  const verdict = judgeAddresses(host, [...new Set(decisive.flatMap((a) => a.addresses))].sort(), options);
  const silent = answers.filter((answer) => "error" in answer).map((answer) => answer.server.label);
  const noted = silent.length === 0
    ? verdict
    : { ...verdict, message: `${verdict.message} (no answer from ${silent.join(", ")})` };
  if (new Set(answered.map((answer) => answer.addresses.join(","))).size === 1) return noted;
  const seen = answered.map((a) => `${a.server.label} says ${a.addresses.join(", ") || "nothing"}`).join(
    "; ",
  );
  if (noted.status === "problem") {
    return { ...noted, message: `${noted.message}; DNS servers disagree: ${seen}` };
  }
  return {
    area: AREA,
    subject: host,
    status: "warning",
    message: `DNS servers disagree: ${seen}`,
    fix: "a recent change may still be spreading (wait out the old TTL), or a record differs between " +
      "providers: make them agree before the first certificate",
  };
}

/** How one address of a host stands against this machine. */
type Placement = "here" | "private" | "elsewhere" | "unknown";

/**
 * Where `address` leads: "here" (one of this machine's, reachable by the CA), "private" (no one on the
 * Internet reaches it), "elsewhere" (a public address of another machine, while this one has a public address
 * of that family), "unknown" (this machine has no public address of that family: NAT, doctor cannot tell).
 */
function place(address: string, options: Pick<AddressCheckOptions, "machine" | "privateCa">): Placement {
  const mine = options.machine.includes(address);
  if (!isPublicAddress(address)) return mine && options.privateCa ? "here" : "private";
  if (mine) return "here";
  const family = ipVersion(address);
  const publicOfFamily = options.machine.some((a) => ipVersion(a) === family && isPublicAddress(a));
  return publicOfFamily ? "elsewhere" : "unknown";
}

/** The verdict for `host` resolving to `addresses` (the decisive servers' answers, merged). */
export function judgeAddresses(
  host: string,
  addresses: readonly string[],
  options: Pick<AddressCheckOptions, "machine" | "challenge" | "proxied" | "privateCa">,
): Finding {
  const http01 = options.challenge === "http-01";
  const failing = http01 ? "problem" : "warning";
  const mine = options.machine.filter(isPublicAddress);
  const mineV4 = mine.filter((address) => ipVersion(address) === 4);
  const target = mineV4.length > 0 ? mineV4.join(" or ") : "this machine's public IPv4 address";
  const typed = (address: string) => `${ipVersion(address) === 6 ? "AAAA" : "A"} ${address}`;
  if (addresses.length === 0) {
    return {
      area: AREA,
      subject: host,
      status: failing,
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
        status: "warning",
        message: `proxied by Cloudflare (orange cloud, ${addresses.join(", ")}): HTTP-01 reaches nexo only ` +
          `if Cloudflare passes plain HTTP through (no "Always Use HTTPS", no redirect rule on port 80)`,
        fix:
          "set the record to DNS only (grey cloud) until the certificate is issued, or add a cloudflare: " +
          "block so nexo uses DNS-01",
      }
      : finding(
        AREA,
        host,
        "ok",
        `proxied by Cloudflare (orange cloud): visitors reach Cloudflare, which forwards to this machine; ` +
          `DNS-01 does not need the record`,
      );
  }
  const by = (kind: Placement) => addresses.filter((address) => place(address, options) === kind);
  const [here, privateOnes, elsewhere, unknown] = [by("here"), by("private"), by("elsewhere"), by("unknown")];
  if (elsewhere.length > 0 || privateOnes.length > 0) {
    const wrong = [...elsewhere, ...privateOnes];
    const why = privateOnes.length > 0 && elsewhere.length === 0
      ? `${privateOnes.join(", ")} ${
        privateOnes.length > 1 ? "are private addresses" : "is a private address"
      } ` +
        `no one on the Internet can reach`
      : `not this machine (${mine.join(", ")})`;
    return {
      area: AREA,
      subject: host,
      status: failing,
      message: here.length > 0
        ? `points here (${here.join(", ")}) but also to ${wrong.map(typed).join(", ")}: ` +
          (http01
            ? "the CA may validate against the other address"
            : "some visitors do not reach this machine")
        : `points to ${wrong.join(", ")}: ${why}` +
          (http01 ? ", so HTTP-01 validation cannot reach nexo" : ", so visitors do not reach this machine"),
      fix: here.length > 0
        ? `remove the record${wrong.length > 1 ? "s" : ""} ${wrong.map(typed).join(", ")} of ${host}`
        : `point the A record of ${host} to ${target}`,
    };
  }
  if (unknown.length > 0) {
    return {
      area: AREA,
      subject: host,
      status: "warning",
      message:
        `points to ${unknown.join(", ")}; this machine has no public address of that kind (behind NAT ` +
        `or a cloud network's 1:1 NAT), so doctor cannot tell whether that reaches it`,
      fix: `make sure ${unknown.join(", ")} forwards TCP 443${http01 ? " and 80" : ""} to this machine`,
    };
  }
  return finding(AREA, host, "ok", `points here (${here.join(", ")})`);
}
