// Redirect routes: answer with the configured status and a Location built from the route's target, optionally
// keeping the request's path and query. No upstream is contacted.

import type { RedirectRoute } from "../config/types.ts";
import { escapeHtml } from "./error_page.ts";

/**
 * Returns the Location for a request URL: the target as configured, or with `keepPath` the target's path
 * joined with the request's path ("/user" + "/repo" -> "/user/repo") and the request's query (the target's
 * own query, if any, comes first).
 */
export function redirectLocation(route: RedirectRoute, requestUrl: URL): string {
  if (!route.keepPath) return route.target.href;
  const target = new URL(route.target.href);
  const base = target.pathname.endsWith("/") ? target.pathname.slice(0, -1) : target.pathname;
  target.pathname = base + requestUrl.pathname;
  if (requestUrl.search) {
    target.search = target.search ? `${target.search}&${requestUrl.search.slice(1)}` : requestUrl.search;
  }
  return target.href;
}

/** Builds the redirect response for a request on a redirect route. */
export function redirectResponse(route: RedirectRoute, requestUrl: URL): Response {
  const location = redirectLocation(route, requestUrl);
  const body = new TextEncoder().encode(
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>Redirecting</title></head>` +
      `<body><a href="${escapeHtml(location)}">${escapeHtml(location)}</a></body></html>\n`,
  );
  return new Response(body, {
    status: route.status,
    headers: {
      location,
      "content-type": "text/html; charset=utf-8",
      "content-length": String(body.byteLength),
    },
  });
}
