import assert from "node:assert/strict";
import {
  canStartStatusLine,
  detectBodyFraming,
  encodeRequestHead,
  findHeadEnd,
  Http1SyntaxError,
  isPersistent,
  normalizeLengthHeaders,
  parseResponseHead,
  type ResponseHead,
} from "./http1_parse.ts";

const encoder = new TextEncoder();

function head(text: string): ResponseHead {
  return parseResponseHead(encoder.encode(text));
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

Deno.test("parseResponseHead() keeps header order and repeats, lowercases names and trims OWS", () => {
  const parsed = head(
    "HTTP/1.1 200 OK\r\nContent-Type:text/html\r\nSet-Cookie: a=1 \r\nset-cookie: \tb=2\r\nX-Empty:\r\n\r\n",
  );
  assert.deepEqual(parsed, {
    minorVersion: 1,
    status: 200,
    statusText: "OK",
    headers: [["content-type", "text/html"], ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-empty", ""]],
  });
});

Deno.test("parseResponseHead() accepts a reason with spaces, an empty reason and a missing reason", () => {
  assert.equal(head("HTTP/1.1 404 Not Found Here\r\n\r\n").statusText, "Not Found Here");
  assert.equal(head("HTTP/1.1 204 \r\n\r\n").statusText, "");
  assert.equal(head("HTTP/1.0 200\r\n\r\n").minorVersion, 0);
});

Deno.test("parseResponseHead() keeps obs-text bytes as U+0080..U+00FF characters", () => {
  const parsed = parseResponseHead(latin1("HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\n\r\n"));
  assert.deepEqual(parsed.headers, [["x-name", "caf\u00e9"]]);
});

Deno.test("parseResponseHead() rejects malformed heads with Http1SyntaxError", () => {
  for (
    const text of [
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 099 Odd\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nx : a\r\n\r\n",
      "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
      "HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n",
      "HTTP/1.1 200 OK\r\nx: a\0b\r\n\r\n",
      "HTTP/1.1 200 OK\nx: a\r\n\r\n",
    ]
  ) {
    assert.throws(() => head(text), Http1SyntaxError, JSON.stringify(text));
  }
});

Deno.test("canStartStatusLine() accepts any prefix of HTTP/1. and rejects other first bytes at once", () => {
  for (const text of ["", "H", "HTTP/", "HTTP/1.", "HTTP/1.0 200 OK", "HTTP/1.1 404"]) {
    assert.equal(canStartStatusLine(encoder.encode(text)), true, text);
  }
  for (const text of ["h", "HTTP/2 200", "SSH-2.0", "220 smtp", "\r\nHTTP/1.1 200", "HTTP 1.1", "\x00\x00"]) {
    assert.equal(canStartStatusLine(encoder.encode(text)), false, JSON.stringify(text));
  }
});

Deno.test("findHeadEnd() finds the end of the head across split reads and resumes a search", () => {
  const bytes = encoder.encode("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody");
  assert.equal(findHeadEnd(bytes), bytes.length - 4);
  for (let cut = 0; cut < bytes.length - 4; cut++) assert.equal(findHeadEnd(bytes.subarray(0, cut)), -1);
  assert.equal(findHeadEnd(bytes, 20), bytes.length - 4);
  assert.equal(findHeadEnd(encoder.encode("HTTP/1.1 200 OK\r\nA: b\r\n")), -1);
});

Deno.test("detectBodyFraming() gives no body to HEAD, 1xx, 204 and 304 whatever the headers say", () => {
  const withLength = "\r\ncontent-length: 10\r\n\r\n";
  assert.deepEqual(detectBodyFraming("HEAD", head(`HTTP/1.1 200 OK${withLength}`)), { kind: "none" });
  for (const status of ["101 Switching", "204 No Content", "304 Not Modified"]) {
    assert.deepEqual(detectBodyFraming("GET", head(`HTTP/1.1 ${status}${withLength}`)), { kind: "none" });
  }
});

Deno.test("detectBodyFraming() prefers chunked over Content-Length and reads until close without either", () => {
  const chunked = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: Chunked\r\n\r\n");
  assert.deepEqual(detectBodyFraming("GET", chunked), { kind: "chunked", overridesLength: true });
  assert.deepEqual(detectBodyFraming("GET", head("HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n")), {
    kind: "length",
    length: 42,
  });
  assert.deepEqual(detectBodyFraming("GET", head("HTTP/1.1 200 OK\r\n\r\n")), { kind: "close" });
});

Deno.test("detectBodyFraming() accepts repeated identical Content-Length values only", () => {
  const same = head("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n");
  assert.deepEqual(detectBodyFraming("GET", same), { kind: "length", length: 5 });
  for (const value of ["5, 6", "+5", "-1", "0x10", "5 5", "", "1234567890123456"]) {
    const bad = head(`HTTP/1.1 200 OK\r\ncontent-length: ${value}\r\n\r\n`);
    assert.throws(() => detectBodyFraming("GET", bad), Http1SyntaxError, value);
  }
});

Deno.test("detectBodyFraming() rejects transfer codings other than a single chunked", () => {
  for (const value of ["gzip", "gzip, chunked", "chunked, chunked", "identity"]) {
    const bad = head(`HTTP/1.1 200 OK\r\ntransfer-encoding: ${value}\r\n\r\n`);
    assert.throws(() => detectBodyFraming("GET", bad), Http1SyntaxError, value);
  }
});

Deno.test("normalizeLengthHeaders() drops an overridden Content-Length and collapses repeated ones", () => {
  const headers: Array<[string, string]> = [["content-length", "5, 5"], ["x", "1"], ["content-length", "5"]];
  assert.deepEqual(normalizeLengthHeaders(headers, { kind: "length", length: 5 }), [["content-length", "5"], [
    "x",
    "1",
  ]]);
  assert.deepEqual(normalizeLengthHeaders(headers, { kind: "chunked", overridesLength: true }), [["x", "1"]]);
  const single: Array<[string, string]> = [["content-length", "5"]];
  assert.equal(normalizeLengthHeaders(single, { kind: "length", length: 5 }), single);
});

Deno.test("isPersistent() follows Connection options and the HTTP version", () => {
  assert.equal(isPersistent(head("HTTP/1.1 200 OK\r\n\r\n")), true);
  assert.equal(isPersistent(head("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\n\r\n")), false);
  assert.equal(isPersistent(head("HTTP/1.0 200 OK\r\n\r\n")), false);
  assert.equal(isPersistent(head("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n")), true);
});

Deno.test("encodeRequestHead() writes the request line, the given headers and the framing line", () => {
  const bytes = encodeRequestHead({
    method: "POST",
    target: "/p?q=1",
    headers: [["Host", "a.example"], ["X-Name", "caf\u00e9"]],
    framing: ["content-length", "3"],
  });
  assert.deepEqual(
    bytes,
    latin1("POST /p?q=1 HTTP/1.1\r\nHost: a.example\r\nX-Name: caf\xe9\r\ncontent-length: 3\r\n\r\n"),
  );
});

Deno.test("encodeRequestHead() rejects injection, non-tokens, wide characters and caller framing", () => {
  const base = { method: "GET", target: "/", framing: null };
  for (
    const headers of [
      [["x", "a\r\nb: c"]],
      [["x", "a\nb"]],
      [["x", "a\0"]],
      [["x y", "1"]],
      [["x", "\u20ac"]],
      [["Transfer-Encoding", "chunked"]],
      [["content-length", "1"]],
    ] as Array<[string, string]>[]
  ) {
    assert.throws(() => encodeRequestHead({ ...base, headers }), TypeError, JSON.stringify(headers));
  }
  assert.throws(() => encodeRequestHead({ ...base, method: "GET /x", headers: [] }), TypeError);
});
