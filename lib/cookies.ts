// Reading one cookie from a request and removing it before the upstream sees it, and writing nexo's own
// cookies (RFC 6265). nexo's cookies use the "__Host-" prefix (RFC 6265bis §4.1.3.2): a browser keeps them
// only when Secure, with Path=/ and no Domain, so no other host, not even a subdomain, can set or read them.

import type { HeaderList } from "./proxy/headers.ts";

/** The value of cookie `name` in the request's Cookie header lines, or null. */
export function cookieValue(headerList: HeaderList, name: string): string | null {
  for (const [field, value] of headerList) {
    if (field !== "cookie") continue;
    // HTTP/2 may send one cookie per field, and a joined Cookie may use ", " (a cookie value has no comma).
    for (const pair of value.split(/[;,]/)) {
      const eq = pair.indexOf("=");
      if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return null;
}

/** The header lines with cookie `name` taken out of every Cookie line (a line left empty is dropped). */
export function withoutCookie(headerList: HeaderList, name: string): HeaderList {
  if (cookieValue(headerList, name) === null) return headerList;
  const out: Array<[string, string]> = [];
  for (const [field, value] of headerList) {
    if (field !== "cookie") {
      out.push([field, value]);
      continue;
    }
    const kept = value.split(/[;,]/).filter((pair) => {
      const eq = pair.indexOf("=");
      return pair.trim() !== "" && (eq === -1 || pair.slice(0, eq).trim() !== name);
    });
    if (kept.length > 0) out.push([field, kept.map((pair) => pair.trim()).join("; ")]);
  }
  return out;
}

/** A Set-Cookie value for a "__Host-" cookie: HttpOnly, SameSite=Lax; `maxAgeS` 0 deletes it. */
export function hostCookie(name: string, value: string, maxAgeS: number): string {
  return `${name}=${value}; Path=/; Max-Age=${maxAgeS}; Secure; HttpOnly; SameSite=Lax`;
}
