// The default Cache-Control nexo adds when an upstream sends none (the seed's behaviour, made safe): long for
// static assets, revalidate-every-time for everything else, never "public" for responses that set cookies or
// answer requests carrying credentials (Authorization or Cookie), and the same value on a 304 as on its 200. Routes with `cache: false` skip this module entirely.
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
 * Path extensions of the static types above, for a 304 that carries no Content-Type (Express and most
 * frameworks strip it): the only other clue to what its 200 said.
 */
const STATIC_EXTENSIONS: ReadonlySet<string> = new Set([
  "css",
  "js",
  "mjs",
  "wasm",
  "png",
  "jpg",
  "jpeg",
  "gif",
  "webp",
  "avif",
  "svg",
  "ico",
  "bmp",
  "woff",
  "woff2",
  "ttf",
  "otf",
  "eot",
  "mp3",
  "ogg",
  "wav",
  "flac",
  "mp4",
  "webm",
  "mov",
]);

/** What the default depends on in the request. */
export interface CacheRequest {
  /**
   * Whether the request carried credentials: Authorization or Cookie. A cookie-authenticated app that sets
   * no Cache-Control (an avatar, an attachment) must not have its responses stored by a shared cache.
   */
  hasCredentials: boolean;
  /** The request's path, used only for a 304 without Content-Type. */
  path: string;
}

/**
 * Returns the Cache-Control value to add, or null to leave the response alone: when the upstream set
 * Cache-Control (or Expires, which it outranks in old caches), or the status is not cacheable by default.
 * A 304 gets the value its 200 would have carried (RFC 9110 §15.4.5: a cache updates the stored response
 * with the 304's fields, so a 304 without it, or with another, changes how the stored 200 is reused).
 */
export function defaultCacheControl(
  status: number,
  responseHeaders: Headers,
  request: CacheRequest,
): string | null {
  if (!CACHEABLE_STATUSES.has(status) && status !== 304) return null;
  if (responseHeaders.has("cache-control") || responseHeaders.has("expires")) return null;
  // RFC 9111 §3.5: a shared cache must not reuse a response to an authorized request unless told "public";
  // a Cookie authorizes as surely as an Authorization header does.
  const personal = request.hasCredentials || responseHeaders.has("set-cookie");
  const contentType = responseHeaders.get("content-type");
  const isStatic = status === 304 && contentType === null
    ? STATIC_EXTENSIONS.has(pathExtension(request.path))
    : isStaticType(contentType);
  if (isStatic) return `${personal ? "private" : "public"}, max-age=${STATIC_MAX_AGE_S}`;
  return personal ? "private, no-cache" : "no-cache";
}

/** The lowercased extension of a URL path's last segment ("/a/b.min.JS" -> "js"), or "" when none. */
function pathExtension(path: string): string {
  const dot = path.lastIndexOf(".");
  return dot === -1 || path.indexOf("/", dot) !== -1 ? "" : path.slice(dot + 1).toLowerCase();
}

/** Whether a Content-Type value ("text/css; charset=utf-8") names a static asset type. */
export function isStaticType(contentType: string | null): boolean {
  if (!contentType) return false;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return STATIC_TYPES.has(type) || STATIC_TYPE_PREFIXES.some((prefix) => type.startsWith(prefix));
}
