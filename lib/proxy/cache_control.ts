// The default Cache-Control nexo adds when an upstream sends none (the seed's behaviour, made safe): long for
// static assets, revalidate-every-time for everything else, and never "public" for responses that set cookies
// or answer requests carrying credentials. Routes with `cache: false` skip this module entirely.
// It does not cache anything itself: it only writes a header browsers and CDNs act on.

/** One day: long enough to spare repeat downloads, short enough that unversioned assets refresh daily. */
const STATIC_MAX_AGE_S = 86_400;

/**
 * Content types treated as static assets. HTML and JSON are deliberately absent: browsers honour max-age for
 * fetch() too, so even a "short" freshness on an API response shows users stale data after a change.
 */
const STATIC_TYPE_PREFIXES = ["image/", "font/", "audio/", "video/"];
const STATIC_TYPES: ReadonlySet<string> = new Set([
  "text/css",
  "text/javascript",
  "application/javascript",
  "application/x-javascript",
  "application/wasm",
  "application/font-woff",
  "application/font-woff2",
  "application/vnd.ms-fontobject",
]);

/** Statuses whose responses are cacheable by default (RFC 9111 §4.2.2 heuristics apply to these). */
const CACHEABLE_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 206, 300, 301, 308]);

/**
 * Returns the Cache-Control value to add, or null to leave the response alone: when the upstream set
 * Cache-Control (or Expires, which it outranks in old caches), or the status is not cacheable by default.
 */
export function defaultCacheControl(
  status: number,
  responseHeaders: Headers,
  requestHasAuthorization: boolean,
): string | null {
  if (!CACHEABLE_STATUSES.has(status)) return null;
  if (responseHeaders.has("cache-control") || responseHeaders.has("expires")) return null;
  // RFC 9111 §3.5: a shared cache must not reuse a response to an authorized request unless told "public".
  const personal = requestHasAuthorization || responseHeaders.has("set-cookie");
  if (isStaticType(responseHeaders.get("content-type"))) {
    return `${personal ? "private" : "public"}, max-age=${STATIC_MAX_AGE_S}`;
  }
  return personal ? "private, no-cache" : "no-cache";
}

/** Whether a Content-Type value ("text/css; charset=utf-8") names a static asset type. */
export function isStaticType(contentType: string | null): boolean {
  if (!contentType) return false;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return STATIC_TYPES.has(type) || STATIC_TYPE_PREFIXES.some((prefix) => type.startsWith(prefix));
}
