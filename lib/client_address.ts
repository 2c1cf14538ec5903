// The address a request comes from, for the access rules: the socket's, or, when that is a trusted proxy
// (`trusted_proxies`: a CDN, a load balancer), the address that proxy says it received the request from.

import { type Cidr, inCidrs, parseIp } from "./cidr.ts";

/**
 * The client's address: `socketIp`, unless it is a trusted proxy, then the rightmost X-Forwarded-For entry
 * that is not itself a trusted proxy. Each proxy appends the address it received from, so entries right of
 * the first untrusted one were written by proxies nexo trusts, and anything left of it by whoever the client
 * is. An entry that is not an address ends the walk at the last hop that was one (a trusted proxy: refused by
 * `allow` unless listed there, never a free pass).
 */
export function clientAddress(
  socketIp: string,
  forwardedFor: string | null,
  trusted: readonly Cidr[],
): string {
  if (forwardedFor === null || !inCidrs(socketIp, trusted)) return socketIp;
  const hops = forwardedFor.split(",");
  let client = socketIp;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = withoutPort(hops[i]!.trim());
    if (parseIp(hop) === null) return client;
    client = hop;
    if (!inCidrs(hop, trusted)) return hop;
  }
  return client;
}

/** "192.0.2.1:5000" -> "192.0.2.1", "[2001:db8::1]:80" -> "2001:db8::1"; an address without a port as is. */
function withoutPort(hop: string): string {
  if (hop.startsWith("[")) {
    const end = hop.indexOf("]");
    return end === -1 ? hop : hop.slice(1, end);
  }
  const colon = hop.indexOf(":");
  // One colon: IPv4 with a port. More: IPv6 without brackets (no port can be told apart).
  return colon !== -1 && colon === hop.lastIndexOf(":") ? hop.slice(0, colon) : hop;
}
