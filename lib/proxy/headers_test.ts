import assert from "node:assert/strict";
import {
  buildResponseHeaders,
  buildUpstreamHeaders,
  headerBytes,
  MAX_HEADER_NAME_LENGTH,
} from "./headers.ts";

const forwarded = {
  clientIp: "203.0.113.7",
  host: "App.example.com:8443",
  proto: "https" as const,
  trusted: true,
};
const untrusted = { ...forwarded, trusted: false };

Deno.test("buildUpstreamHeaders() drops hop-by-hop headers and those named in Connection", () => {
  const incoming = new Headers({
    "connection": "keep-alive, X-Secret-Hop",
    "keep-alive": "timeout=5",
    "x-secret-hop": "1",
    "te": "trailers",
    "upgrade": "h2c",
    "proxy-authorization": "Basic Zm9vOmJhcg==",
    "transfer-encoding": "chunked",
    "accept": "text/html",
    "cookie": "a=b",
  });
  const names = buildUpstreamHeaders(incoming, forwarded).map(([name]) => name);
  for (
    const hop of [
      "connection",
      "keep-alive",
      "x-secret-hop",
      "te",
      "upgrade",
      "proxy-authorization",
      "transfer-encoding",
    ]
  ) {
    assert.ok(!names.includes(hop), `${hop} must not be forwarded`);
  }
  assert.ok(names.includes("accept"));
  assert.ok(names.includes("cookie"));
});

Deno.test("buildUpstreamHeaders() forwards the client's Host and sets X-Forwarded-*", () => {
  const out = new Map(buildUpstreamHeaders(new Headers({ host: "ignored" }), forwarded));
  assert.equal(out.get("host"), "App.example.com:8443");
  assert.equal(out.get("x-forwarded-for"), "203.0.113.7");
  assert.equal(out.get("x-forwarded-proto"), "https");
  assert.equal(out.get("x-forwarded-host"), "App.example.com:8443");
});

Deno.test("buildUpstreamHeaders() from an untrusted client drops its X-Forwarded-For, X-Real-IP and Forwarded", () => {
  const incoming = new Headers({
    "x-forwarded-for": "198.51.100.1",
    "x-real-ip": "198.51.100.1",
    "forwarded": "for=198.51.100.1",
  });
  const out = new Map(buildUpstreamHeaders(incoming, untrusted));
  assert.equal(out.get("x-forwarded-for"), "203.0.113.7");
  assert.equal(out.has("x-real-ip"), false);
  assert.equal(out.has("forwarded"), false);
});

Deno.test("buildUpstreamHeaders() from a trusted proxy appends to X-Forwarded-For and replaces -Proto and -Host", () => {
  const incoming = new Headers({
    "x-forwarded-for": "198.51.100.1",
    "x-forwarded-proto": "http",
    "x-forwarded-host": "evil.example",
  });
  const out = buildUpstreamHeaders(incoming, forwarded);
  assert.deepEqual(out.filter(([n]) => n.startsWith("x-forwarded-")), [
    ["x-forwarded-for", "198.51.100.1, 203.0.113.7"],
    ["x-forwarded-proto", "https"],
    ["x-forwarded-host", "App.example.com:8443"],
  ]);
});

Deno.test("buildUpstreamHeaders() leaves framing to the upstream client", () => {
  const out = new Map(
    buildUpstreamHeaders(new Headers({ "content-length": "5", expect: "100-continue" }), forwarded),
  );
  assert.equal(out.has("content-length"), false);
  assert.equal(out.has("expect"), false);
});

Deno.test("buildResponseHeaders() drops hop-by-hop headers and keeps repeated Set-Cookie lines", () => {
  const headers = buildResponseHeaders([
    ["connection", "close, x-internal"],
    ["x-internal", "1"],
    ["transfer-encoding", "chunked"],
    ["keep-alive", "timeout=5"],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["content-type", "text/plain"],
  ]);
  assert.equal(headers.has("connection"), false);
  assert.equal(headers.has("x-internal"), false);
  assert.equal(headers.has("transfer-encoding"), false);
  assert.equal(headers.has("keep-alive"), false);
  assert.deepEqual(headers.getSetCookie(), ["a=1", "b=2"]);
  assert.equal(headers.get("content-type"), "text/plain");
});

Deno.test("headerBytes() counts names, values and separators", () => {
  assert.equal(headerBytes(new Headers({ a: "bc" })), 1 + 2 + 4);
});

Deno.test("buildUpstreamHeaders() drops names with underscores, which CGI-style apps read as dashes", () => {
  const incoming = new Headers({ "x_real_ip": "198.51.100.1", "x_forwarded_for": "1.2.3.4", "x-app": "1" });
  for (const client of [forwarded, untrusted]) {
    const names = buildUpstreamHeaders(incoming, client).map(([name]) => name);
    assert.ok(!names.some((name) => name.includes("_")), names.join());
    assert.ok(names.includes("x-app"));
  }
});

Deno.test("buildResponseHeaders() replaces control characters with spaces and reports the header", () => {
  const repaired: string[] = [];
  const headers = buildResponseHeaders([
    ["content-disposition", 'attachment; filename="report\x01.pdf"'],
    ["x-tab", "a\tb"],
    ["x-del", "a\x7fb\x1f"],
    ["x-latin", "caf\u00e9"],
  ], (name) => repaired.push(name));
  assert.equal(headers.get("content-disposition"), 'attachment; filename="report .pdf"');
  assert.equal(headers.get("x-tab"), "a\tb");
  assert.equal(headers.get("x-del"), "a b");
  assert.equal(headers.get("x-latin"), "caf\u00e9");
  assert.deepEqual(repaired, ["content-disposition", "x-del"]);
});

Deno.test("buildResponseHeaders() drops a header name longer than HTTP/2 can carry", () => {
  const repaired: string[] = [];
  const long = "x".repeat(MAX_HEADER_NAME_LENGTH + 1);
  const headers = buildResponseHeaders([[long, "v"], ["x-ok", "v"]], (name) => repaired.push(name));
  assert.deepEqual([...headers], [["x-ok", "v"]]);
  assert.deepEqual(repaired, ["x".repeat(64)]);
  assert.equal(
    buildResponseHeaders([["x".repeat(MAX_HEADER_NAME_LENGTH), "v"]]).has("x".repeat(65_535)),
    true,
  );
});
