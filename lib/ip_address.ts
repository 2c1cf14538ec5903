// Whether a string is an IP address literal: IPv4 dotted quads and IPv6 text (RFC 4291 §2.2), accepting
// exactly what node:net's isIP accepts (no leading zeros in IPv4, an IPv6 zone id like "%eth0"), without
// importing node:net, whose Node compatibility layer costs +5 MiB idle RSS in the main isolate. It does not
// parse addresses into bytes or accept brackets (lib/config/hostname.ts's isIpAddress does for the config);
// it writes one with its port (`formatAddr`), brackets and all.

const IPV4_OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/; // 0-255, no leading zero
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;
const ZONE_ID = /^[0-9a-zA-Z.:-]+$/; // node's set; RFC 6874 §2 leaves the zone's syntax to the OS

/** Whether `text` is an IPv4 address in dotted-decimal form ("192.0.2.1"; not "192.0.2.01" or "1.2.3"). */
export function isIpv4Address(text: string): boolean {
  const octets = text.split(".");
  return octets.length === 4 && octets.every((octet) => IPV4_OCTET.test(octet));
}

/**
 * Whether `text` is an IPv6 address in any RFC 4291 §2.2 form: eight groups, "::" for one or more zero groups,
 * a trailing dotted IPv4 address for the last two groups, and an optional zone id ("fe80::1%eth0").
 */
export function isIpv6Address(text: string): boolean {
  const percent = text.indexOf("%");
  if (percent !== -1 && !ZONE_ID.test(text.slice(percent + 1))) return false;
  const address = percent === -1 ? text : text.slice(0, percent);
  const halves = address.split("::");
  if (halves.length > 2) return false;
  const groups = halves.map((half, i) => countGroups(half, i === halves.length - 1));
  if (groups.some((count) => count === undefined)) return false;
  const total = groups.reduce<number>((sum, count) => sum + (count ?? 0), 0);
  // "::" stands for at least one group (RFC 4291 §2.2 item 2), so with it at most seven are written.
  return halves.length === 2 ? total <= 7 : total === 8;
}

/** Groups in a ":"-separated run ("" has none); the last run may end in IPv4, which counts as two. */
function countGroups(run: string, last: boolean): number | undefined {
  if (run === "") return 0;
  const parts = run.split(":");
  let count = 0;
  for (const [i, part] of parts.entries()) {
    if (IPV6_GROUP.test(part)) count += 1;
    else if (last && i === parts.length - 1 && isIpv4Address(part)) count += 2;
    else return undefined;
  }
  return count;
}

/** 4 or 6 when `text` is an IPv4 or IPv6 address, else 0: node:net's `isIP` contract. */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (isIpv4Address(text)) return 4;
  return isIpv6Address(text) ? 6 : 0;
}

/** "0.0.0.0:443", "[::1]:8443", ":443" (no host): an address and port, IPv6 in brackets (RFC 3986 §3.2.2). */
export function formatAddr(addr: { hostname: string; port: number }): string {
  return addr.hostname.includes(":") ? `[${addr.hostname}]:${addr.port}` : `${addr.hostname}:${addr.port}`;
}
