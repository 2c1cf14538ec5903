// URLs in the config (a route's upstream and redirect target, forward_auth's url): read, checked and quoted
// for messages without the password a user may have put in them.

import { type Field, quoteValue, type Reader } from "./reader.ts";

export const UPSTREAM_EXAMPLE = `"http://127.0.0.1:8080"`;
export const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
/** "mailto:x", "ftp:x": a scheme without "//". Not "localhost:3000", which is a host and port. */
export const OTHER_SCHEME = /^([a-z][a-z0-9+.-]*):(?!\d|\/\/)/i;

/**
 * An http(s) URL (an upstream, forward_auth's url), or null when invalid (reported). Never quotes a password
 * in a URL.
 */
export function readHttpUrl(r: Reader, f: Field): URL | null {
  const text = readUrlText(r, f, UPSTREAM_EXAMPLE);
  if (text === undefined) return null;
  const fail = (reason: string) => {
    r.report(f.at, `${f.path} must be an http(s) URL, got ${quoteUrl(text, "upstream")} (${reason})`);
    return null;
  };
  if (text.startsWith("//")) return fail(`add "http:": ${quoteValue(`http:${text}`)}`);
  const other = OTHER_SCHEME.exec(text)?.[1];
  if (other !== undefined) return fail(`scheme "${other}" is not supported; use http:// or https://`);
  if (!HAS_SCHEME.test(text)) return fail(`add "http://": ${quoteValue(`http://${text}`)}`);
  const url = parseUrl(text);
  if (url === null) return fail("it does not parse as a URL");
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(`scheme "${url.protocol.slice(0, -1)}" is not supported; use http:// or https://`);
  }
  if (url.username !== "" || url.password !== "") {
    r.report(
      f.at,
      `${f.path} must not contain a user name or password (send credentials from the upstream's side)`,
    );
    return null;
  }
  if (text.includes("?") || text.includes("#")) {
    return fail(`remove the query and fragment; requests keep their own query string`);
  }
  return url;
}

/** The trimmed text of a URL field; undefined when empty or not a string (reported). */
export function readUrlText(r: Reader, f: Field, example: string): string | undefined {
  const text = f.value === null ? "" : r.readString(f)?.trim();
  if (text === "") r.report(f.at, `${f.path} is empty (write a URL like ${example})`);
  return text === "" ? undefined : text;
}

/**
 * Quotes a URL for a message with any password masked: "http://admin:***@host". Upstreams also mask the
 * scheme-less "admin:pw@host"; redirect targets do not, so that "mailto:me@example.com" stays readable.
 */
export function quoteUrl(text: string, kind: "upstream" | "redirect"): string {
  const userinfo = kind === "upstream"
    ? /^((?:[a-z][a-z0-9+.-]*:)?\/\/)?([^/@:]*):[^/@]*@/i
    : /^((?:[a-z][a-z0-9+.-]*:)?\/\/)([^/@:]*):[^/@]*@/i;
  return quoteValue(text.replace(userinfo, "$1$2:***@"));
}

export function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
