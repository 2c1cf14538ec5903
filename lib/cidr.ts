// IP networks: CIDR parsing and matching, for `trusted_proxies` (which clients may speak for others: a CDN,
// a load balancer) and the access rules (`allow`, `deny`). Pure parsing and matching; no I/O.

/** A parsed CIDR: the network's bytes, its prefix length in bits. */
export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses "10.0.0.0/8", "2400:cb00::/32" or a bare address (a /32 or /128). Throws RangeError when invalid. */
export function parseCidr(text: string): Cidr {
  const [address = "", prefixText] = text.trim().split("/");
  const bytes = parseIp(address);
  if (!bytes) {
    throw new RangeError(`"${text}" is not an IP address or CIDR (like "10.0.0.0/8" or "2400:cb00::/32")`);
  }
  const max = bytes.length * 8;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (
    !Number.isInteger(prefix) || prefix < 0 || prefix > max ||
    (prefixText ?? "").trim() === "" && prefixText !== undefined
  ) {
    throw new RangeError(`"${text}" has an invalid prefix length (use 0-${max})`);
  }
  return { bytes, prefix };
}

/** Whether `ip` (as the socket reports it) falls in any of `cidrs`. IPv4-mapped IPv6 counts as IPv4. */
export function inCidrs(ip: string, cidrs: readonly Cidr[]): boolean {
  if (cidrs.length === 0) return false;
  const bytes = parseIp(ip);
  if (!bytes) return false;
  return cidrs.some((cidr) => inCidr(bytes, cidr));
}

function inCidr(bytes: Uint8Array, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (cidr.bytes[i]! & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4 (also when written as IPv4-mapped IPv6), 16 for IPv6, null for anything else. */
export function parseIp(text: string): Uint8Array | null {
  const ip = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const v4 = parseIpv4(ip);
  if (v4) return v4;
  const v6 = parseIpv6(ip);
  if (v6 && v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) return v6.slice(12);
  return v6;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!) || Number(parts[i]) > 255) return null;
    out[i] = Number(parts[i]);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const push = (list: string[]) => {
    for (const group of list) {
      if (group.includes(".")) {
        const v4 = parseIpv4(group);
        if (!v4) return false;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return false;
        words.push(parseInt(group, 16));
      }
    }
    return true;
  };
  if (!push(head)) return null;
  const headWords = words.length;
  if (!push(tail)) return null;
  const missing = 8 - words.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [
    ...words.slice(0, headWords),
    ...new Array(halves.length === 2 ? missing : 0).fill(0),
    ...words.slice(headWords),
  ];
  const out = new Uint8Array(16);
  all.forEach((word, i) => {
    out[i * 2] = word >> 8;
    out[i * 2 + 1] = word & 0xff;
  });
  return out;
}
