// Validation of the host names the config routes and certifies: exact names ("api.example.com", "localhost")
// and one-label wildcards ("*.example.com"). LDH rules from RFC 1035 §2.3.1 / RFC 1123 §2.1; wildcard
// shape from RFC 6125 §6.4.3 as ACME CAs accept it. Does not resolve names or pick the route a host hits.

import { trimEndOf } from "./trim.ts";

const MAX_NAME_LENGTH = 253; // RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text
const MAX_LABEL_LENGTH = 63; // RFC 1035 §2.3.4
const EXAMPLE = `like "api.example.com"`;

/** Whether `name` is written as a wildcard ("*.example.com"); says nothing about whether it is valid. */
export function isWildcard(name: string): boolean {
  return name.startsWith("*.");
}

/**
 * The one wildcard that can cover `name`, a lowercased host name: "a.example.com" -> "*.example.com" (RFC
 * 6125 §6.4.3: "*" stands for exactly one whole left-most label, so there is one candidate). null for a name
 * without a dot after its first label, and for one whose first label starts with "*" (a literal "*" is not a
 * host name and must not select the wildcard it spells). Routing, certificate lookup and the config's loop
 * check all ask this one rule.
 */
export function coveringWildcard(name: string): string | null {
  const dot = name.indexOf(".");
  if (dot <= 0 || dot === name.length - 1 || name.charCodeAt(0) === 0x2a /* * */) return null;
  return "*" + name.slice(dot);
}

/**
 * Validates an exact host name and returns it lowercased. Single-label names ("localhost") are allowed.
 * Throws `RangeError` with a message that quotes the input and says how to fix it for: empty names, IP
 * addresses, a scheme, path or port around the name, non-ASCII names (suggesting the punycode form), a
 * trailing dot, names over 253 characters, empty labels, labels over 63 characters or with characters other
 * than letters, digits and "-", labels starting or ending with "-", an all-digit last label, and "*".
 */
export function normalizeHostname(name: string): string {
  const host = name.trim().toLowerCase();
  if (host === "") throw new RangeError(`empty hostname (write a name, ${EXAMPLE})`);
  checkHostname(host, (reason) => new RangeError(`invalid hostname ${JSON.stringify(name)}: ${reason}`));
  return host;
}

/**
 * Validates a wildcard name, "*." followed by a valid host name of at least two labels, and returns it
 * lowercased: "*.Example.com" -> "*.example.com". Throws `RangeError` quoting the input for "*.com" (a whole
 * top-level domain), "a.*.com", "*foo.com", "**.example.com", and for anything `normalizeHostname()` rejects
 * in the part after "*.".
 */
export function normalizeWildcard(name: string): string {
  const quoted = JSON.stringify(name);
  const fail = (reason: string) => new RangeError(`invalid wildcard ${quoted}: ${reason}`);
  const wildcard = name.trim().toLowerCase();
  if (!isWildcard(wildcard)) {
    throw fail(`a wildcard is "*." followed by a domain, like "*.example.com" ("*" must be a whole label)`);
  }
  const base = wildcard.slice(2);
  if (base.includes("*")) throw fail(`only the first label may be "*", like "*.example.com"`);
  if (base === "") throw fail(`write a domain after "*.", like "*.example.com"`);
  checkHostname(base, fail);
  if (wildcard.length > MAX_NAME_LENGTH) throw fail(`it is longer than ${MAX_NAME_LENGTH} characters`);
  if (!base.includes(".")) {
    throw fail(
      `it would cover a whole top-level domain; write at least two labels after "*.", like "*.example.com"`,
    );
  }
  return wildcard;
}

/** Validates a route key, which is an exact host name or a wildcard, and returns it lowercased; throws
 * `RangeError` as `normalizeHostname()` or `normalizeWildcard()` do. */
export function normalizeRouteHost(name: string): string {
  return name.includes("*") ? normalizeWildcard(name) : normalizeHostname(name);
}

/** Throws `fail(reason)` unless `host` (trimmed, lowercased) is a valid LDH host name. */
function checkHostname(host: string, fail: (reason: string) => RangeError): void {
  checkSurroundings(host, fail);
  if (host.includes("*")) {
    throw fail(`"*" is only allowed as the whole first label of a wildcard, like "*.example.com"`);
  }
  if (host.endsWith(".")) throw fail(`remove the trailing dot: "${trimEndOf(host, ".")}"`);
  if (host.length > MAX_NAME_LENGTH) throw fail(`it is longer than ${MAX_NAME_LENGTH} characters`);
  const labels = host.split(".");
  for (const label of labels) checkLabel(label, fail);
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) {
    throw fail(`the last label cannot be all digits (it would read as an IP address)`);
  }
}

/** Rejects what people put around a host name by habit: a URL, a port, an IP address, non-ASCII text. */
function checkSurroundings(host: string, fail: (reason: string) => RangeError): void {
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(host) || host.includes("/")) {
    const bare = hostOfUrl(host.includes("://") ? host : `http://${host}`);
    const fix = bare === null ? "" : `: "${bare}"`;
    throw fail(`write only the host name, without a scheme or path${fix}`);
  }
  if (isIpAddress(host)) {
    throw fail(`IP addresses cannot be used here; use a host name (certificates are issued for names)`);
  }
  if (host.includes(":")) throw fail(`remove the port: "${host.slice(0, host.indexOf(":"))}"`);
  // deno-lint-ignore no-control-regex -- the complement of 7-bit ASCII
  if (/[^\x00-\x7f]/.test(host)) {
    const ascii = hostOfUrl(`http://${host}`);
    const fix = ascii === null ? "use its ASCII (punycode) form" : `use its punycode form "${ascii}"`;
    throw fail(`non-ASCII names must be written in ASCII; ${fix}`);
  }
}

function checkLabel(label: string, fail: (reason: string) => RangeError): void {
  if (label === "") throw fail(`it has an empty label (two dots in a row, or a leading dot)`);
  if (label.length > MAX_LABEL_LENGTH) {
    throw fail(`label "${label}" is longer than ${MAX_LABEL_LENGTH} characters`);
  }
  const bad = /[^a-z0-9-]/.exec(label);
  if (bad !== null) {
    throw fail(`"${bad[0]}" is not allowed; host names may contain only letters, digits, "-" and "."`);
  }
  if (label.startsWith("-") || label.endsWith("-")) {
    throw fail(`label "${label}" starts or ends with "-"`);
  }
}

/** Whether `host` is an IPv4 address (dotted decimal) or an IPv6 address, bracketed or not. */
export function isIpAddress(host: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return host.split(".").every((part) => Number(part) <= 255);
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (!bare.includes(":") || !/^[0-9a-f:.]+$/i.test(bare)) return false;
  return hostOfUrl(`http://[${bare}]`) !== null;
}

/** The WHATWG URL parser's host for `url` (which also does IDNA/punycode), or null if it does not parse. */
function hostOfUrl(url: string): string | null {
  try {
    return new URL(url).hostname || null;
  } catch {
    return null;
  }
}
