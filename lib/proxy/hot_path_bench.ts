// The per-request pure functions around the upstream exchange, for `deno task bench:micro`: routing, the
// request and response header rewriting, the upstream URL, the trusted-proxy check and a request deadline.
// docs/performance.md says what they cost within a whole request.

import { parseConfig } from "../config/parse.ts";
import { cancelDeadline, startDeadline } from "../deadlines.ts";
import { buildRouteTable, matchRoute, normalizeHost } from "../router.ts";
import { upstreamUrl } from "./forward.ts";
import { buildResponseHeaders, buildUpstreamHeaders, headerBytes } from "./headers.ts";
import { inCidrs, parseCidr } from "../cidr.ts";

const ROUTES = Array.from(
  { length: 50 },
  (_, i) => `  "app${i}.example.com":\n    upstream: http://127.0.0.1:${3000 + i}\n`,
)
  .join("") + `  "*.apps.example.com":\n    upstream: http://127.0.0.1:4000/base/\n`;
const config = parseConfig(`base_dir: /tmp/nexo-bench\nissuer: internal\nproxies:\n${ROUTES}`, "bench.yaml");
const table = buildRouteTable(config.routes);

// What a browser sends for a page.
const REQUEST_HEADERS = new Headers([
  ["host", "app42.example.com"],
  ["user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
  ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
  ["accept-language", "en-US,en;q=0.5"],
  ["accept-encoding", "gzip, deflate, br, zstd"],
  ["cookie", "session=abcdef0123456789; theme=dark"],
  ["connection", "keep-alive"],
  ["upgrade-insecure-requests", "1"],
]);
const RESPONSE_HEADERS: Array<[string, string]> = [
  ["date", "Mon, 24 Nov 2025 20:00:00 GMT"],
  ["content-type", "text/html; charset=utf-8"],
  ["content-length", "14523"],
  ["connection", "keep-alive"],
  ["cache-control", "private, max-age=0, must-revalidate"],
  ["set-cookie", "session=abcdef0123456789; Path=/; HttpOnly; Secure"],
  ["vary", "Accept-Encoding, Cookie"],
];
const FORWARDED = {
  clientIp: "203.0.113.7",
  host: "app42.example.com",
  proto: "https" as const,
  trusted: false,
};
const CIDRS = ["173.245.48.0/20", "103.21.244.0/22", "2400:cb00::/32", "10.0.0.0/8"].map(parseCidr);
const BASE = new URL("http://127.0.0.1:4000/base/");
const REQUEST_URL = new URL("https://x.apps.example.com/assets/app.js?v=3");

Deno.bench("route an exact host among 51 routes", { group: "route" }, () => {
  matchRoute(table, normalizeHost("App42.Example.com:443"));
});

Deno.bench("route a host through a wildcard", { group: "route" }, () => {
  matchRoute(table, normalizeHost("x.apps.example.com"));
});

Deno.bench("request headers: size check + rewrite for the upstream", { group: "headers" }, () => {
  // As the handler does it: one iteration of the Headers (the costly part), then work on the list.
  const list = [...REQUEST_HEADERS];
  headerBytes(list);
  buildUpstreamHeaders(list, FORWARDED);
});

Deno.bench("response headers: hop-by-hop removal into a Headers", { group: "headers" }, () => {
  buildResponseHeaders(RESPONSE_HEADERS);
});

Deno.bench("upstream URL for a request under a base path", () => {
  upstreamUrl(BASE, REQUEST_URL);
});

Deno.bench("trusted_proxies check of an untrusted IPv4 client against 4 networks", () => {
  inCidrs("203.0.113.7", CIDRS);
});

// With another request's deadline pending, as on a busy server (on an idle one the first deadline also
// starts the interval).
const other = startDeadline(2 ** 30, () => {});
Deno.bench("start and cancel a request deadline on a busy server", () => {
  cancelDeadline(startDeadline(30_000, () => {}));
});
addEventListener("unload", () => cancelDeadline(other));
