// Host-and-port strings in the config: listen addresses (":443", "127.0.0.1:8443", "[::1]:443") and DNS
// resolvers ("1.1.1.1", "1.1.1.1:53", "[2606:4700:4700::1111]:53"). Validates and splits them; does not
// open sockets or resolve names.

import type { ListenAddress } from "./types.ts";
import { isIpAddress, normalizeHostname } from "./hostname.ts";

const LISTEN_FORMS = `like ":443", "127.0.0.1:8443", "[::1]:443" or "localhost:8443"`;
const RESOLVER_FORMS = `like "1.1.1.1", "1.1.1.1:53" or "[2606:4700:4700::1111]:53"`;

interface HostPort {
  /** Host without brackets; "" when none was written (":443"). */
  host: string;
  port: string | null;
  /** Whether the host was written in brackets, as IPv6 addresses must be. */
  bracketed: boolean;
}

/**
 * Parses a listen address: a port (443 or "443"), ":port" for all interfaces, "ipv4:port", "[ipv6]:port" or
 * "hostname:port". Returns `hostname: ""` for all interfaces and IPv6 addresses without brackets, ready for
 * `Deno.listen`. Ports are 0-65535 (0: any free port). Throws `RangeError` quoting the input, with the accepted forms, when the
 * address is malformed, lacks a port, has an unbracketed IPv6 address or a bad host.
 */
export function parseListenAddress(value: string | number): ListenAddress {
  const quoted = typeof value === "number" ? String(value) : JSON.stringify(value);
  const fail = (reason: string) => new RangeError(`invalid listen address ${quoted}: ${reason}`);
  const text = String(value).trim();
  if (text === "") throw new RangeError(`empty listen address (write one ${LISTEN_FORMS})`);
  // Port 0 asks the OS for a free port (the "listening" log line names it): tests and side-by-side runs.
  if (/^\d+$/.test(text)) return { hostname: "", port: checkPort(text, fail, 0) };
  if (text.includes("://")) throw fail(`write a host and port, not a URL (${LISTEN_FORMS})`);
  const { host, port, bracketed } = splitHostPort(text, fail);
  if (port === null) throw fail(`it has no port (add one: "${bracketed ? `[${host}]` : host}:443")`);
  if (host === "*") throw fail(`write ":${port}" to listen on all interfaces`);
  return { hostname: checkHost(host, bracketed, fail), port: checkPort(port, fail, 0) };
}

/**
 * Validates a DNS resolver address, "host" (port 53) or "host:port" with an IPv4 address, "[ipv6]" or a
 * host name, and returns it trimmed and lowercased. Throws `RangeError` quoting the input when it is
 * malformed, has an unbracketed IPv6 address (suggesting the bracketed form), a bad host, or a port outside
 * 1-65535.
 */
export function parseResolver(text: string): string {
  const fail = (reason: string) => new RangeError(`invalid DNS resolver ${JSON.stringify(text)}: ${reason}`);
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "") throw new RangeError(`empty DNS resolver (write one ${RESOLVER_FORMS})`);
  if (!trimmed.startsWith("[") && trimmed.includes(":") && isIpAddress(trimmed)) {
    throw fail(`put IPv6 addresses in brackets: "[${trimmed}]:53"`);
  }
  const { host, port, bracketed } = splitHostPort(trimmed, fail);
  if (host === "") throw fail(`it has no host (write one ${RESOLVER_FORMS})`);
  checkHost(host, bracketed, fail);
  if (port !== null) checkPort(port, fail);
  return trimmed;
}

/** Splits "host:port", "[v6]:port", "[v6]" or "host"; an unbracketed IPv6 address is an error. */
function splitHostPort(text: string, fail: (reason: string) => RangeError): HostPort {
  if (text.startsWith("[")) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
    if (match === null) throw fail(`write IPv6 addresses as "[address]:port", like "[::1]:443"`);
    return { host: match[1] ?? "", port: match[2] ?? null, bracketed: true };
  }
  const colons = text.split(":").length - 1;
  if (colons > 1) {
    const last = text.lastIndexOf(":");
    throw fail(`put IPv6 addresses in brackets: "[${text.slice(0, last)}]:${text.slice(last + 1)}"`);
  }
  if (colons === 0) return { host: text, port: null, bracketed: false };
  const at = text.indexOf(":");
  return { host: text.slice(0, at), port: text.slice(at + 1), bracketed: false };
}

/** Checks the host part and returns it as `Deno.listen` wants it: lowercased, without brackets. */
function checkHost(host: string, bracketed: boolean, fail: (reason: string) => RangeError): string {
  if (bracketed) {
    if (!isIpAddress(host)) throw fail(`"[${host}]" is not an IPv6 address`);
    return host.toLowerCase();
  }
  if (host === "") return "";
  if (/^[\d.]+$/.test(host)) {
    if (!isIpAddress(host)) throw fail(`"${host}" is not an IPv4 address`);
    return host;
  }
  try {
    return normalizeHostname(host);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw fail(`bad host: ${error.message}`);
  }
}

/** Ports are 1-65535 (RFC 6335 §6); 0 would mean "any free port", which is not a stable address. */
function checkPort(port: string, fail: (reason: string) => RangeError, min = 1): number {
  if (!/^\d+$/.test(port)) throw fail(`port "${port}" is not a number`);
  const number = Number(port);
  if (number < min || number > 65535) throw fail(`port ${number} is out of range (use ${min}-65535)`);
  return number;
}
