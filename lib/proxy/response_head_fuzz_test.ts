// Fuzzes the path every upstream response head takes to the client: bytes -> parseResponseHead() -> framing
// -> buildResponseHeaders() -> a Response Deno serves. Oracle: whatever the bytes, nexo either refuses the
// head (Http1SyntaxError, a 502) or builds headers that Deno's HTTP/1.1 and HTTP/2 writers accept. Deno 2.9.6
// panics, ending the process, on a control byte in a response header value (HTTP/1.1) or a header name of
// 65,536 characters (HTTP/2), so the served part of this test fails by crashing if either gets through.
// Seed and case count: NEXO_FUZZ_SEED, NEXO_FUZZ_RUNS (see tests/fuzz.ts).

import assert from "node:assert/strict";
import { type Rng, runFuzz } from "../../tests/fuzz.ts";
import { buildResponseHeaders, MAX_HEADER_NAME_LENGTH } from "./headers.ts";
import {
  detectBodyFraming,
  Http1SyntaxError,
  normalizeLengthHeaders,
  parseResponseHead,
  type ResponseHead,
} from "./http1_parse.ts";

/** RFC 9110 §5.5 field-value octets that hyper's HeaderValue accepts: HTAB, SP..~, obs-text. */
const SENDABLE_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** One octet for a header value: mostly text, often a control byte, sometimes obs-text. */
function randomOctet(rng: Rng): number {
  switch (rng.int(4)) {
    case 0:
      return rng.int(0x20); // C0 controls, CR, LF and NUL included
    case 1:
      return rng.pick([0x7f, 0x09, 0x20, 0x80, 0xff, 0x85, 0xa0]);
    default:
      return 0x21 + rng.int(0x5e);
  }
}

function randomName(rng: Rng): string {
  if (rng.chance(0.05)) return "x".repeat(rng.between(60_000, 70_000));
  if (rng.chance(0.1)) {
    return String.fromCharCode(...Array.from({ length: rng.between(1, 6) }, () => rng.int(256)));
  }
  return rng.pick(["content-disposition", "set-cookie", "x-name", "location", "content-type", "link", "x-a"]);
}

/** A response head as bytes: a valid status line, then field lines with hostile names and values. */
function randomHead(rng: Rng): Uint8Array {
  const parts: number[] = [];
  const push = (text: string) => {
    for (let i = 0; i < text.length; i++) parts.push(text.charCodeAt(i) & 0xff);
  };
  push(`HTTP/1.1 ${rng.pick([200, 204, 206, 301, 304, 404, 500])} ${rng.pick(["OK", "", "Caf\xe9"])}\r\n`);
  for (let i = rng.between(0, 8); i > 0; i--) {
    push(randomName(rng));
    push(rng.pick([": ", ":", ":\t"]));
    for (let n = rng.between(0, 40); n > 0; n--) parts.push(randomOctet(rng));
    push("\r\n");
  }
  push("\r\n");
  return new Uint8Array(parts);
}

interface Built {
  head: ResponseHead;
  headers: Headers;
  repaired: string[];
}

/** The production path from bytes to client headers; null when nexo refuses the head (a 502). */
function build(bytes: Uint8Array): Built | null {
  let head: ResponseHead;
  let headers: Array<[string, string]>;
  try {
    head = parseResponseHead(bytes);
    headers = normalizeLengthHeaders(head.headers, detectBodyFraming("GET", head));
  } catch (error) {
    if (error instanceof Http1SyntaxError) return null;
    throw error;
  }
  const repaired: string[] = [];
  return { head, headers: buildResponseHeaders(headers, (name) => repaired.push(name)), repaired };
}

function assertSendable(headers: Headers): void {
  for (const [name, value] of headers) {
    assert.ok(TOKEN.test(name) && name.length <= MAX_HEADER_NAME_LENGTH, `name ${name.slice(0, 40)}`);
    assert.ok(SENDABLE_VALUE.test(value), `value of ${name}: ${JSON.stringify(value)}`);
  }
}

Deno.test("buildResponseHeaders() turns any upstream head nexo accepts into headers Deno can send", () => {
  let repairedCases = 0;
  runFuzz({
    name: "buildResponseHeaders() turns any upstream head nexo accepts into headers Deno can send",
    file: import.meta.url,
    defaultRuns: 3000,
    generate: randomHead,
    show: (bytes) => JSON.stringify(String.fromCharCode(...bytes.subarray(0, 400))),
    check: (bytes) => {
      const built = build(bytes);
      if (built === null) return;
      assertSendable(built.headers);
      const invalid = built.head.headers.some(([name, value]) =>
        // deno-lint-ignore no-control-regex
        name.length > MAX_HEADER_NAME_LENGTH || /[\0-\x08\x0a-\x1f\x7f]/.test(value)
      );
      // Hop-by-hop names are dropped before repair, so a repair implies an invalid field, not the reverse.
      if (built.repaired.length > 0) assert.ok(invalid, "repaired a header that was valid");
      if (built.repaired.length > 0) repairedCases++;
      // Constructing the Response must not throw either (it would become a 500).
      new Response(null, { status: built.head.status, headers: built.headers });
    },
  });
  assert.ok(repairedCases > 0, "the generator never produced a control character nexo accepted");
});

Deno.test("upstream heads with control bytes and long names are served over HTTP/1.1 and HTTP/2 without a Deno panic", async () => {
  const cases: Built[] = [];
  runFuzz({
    name: "upstream heads collected for serving",
    file: import.meta.url,
    defaultRuns: 300,
    generate: randomHead,
    check: (bytes) => {
      const built = build(bytes);
      if (built !== null) cases.push(built);
    },
  });
  let next = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const built = cases[next++ % cases.length]!;
    const status = built.head.status;
    const body = status === 204 || status === 304 ? null : "ok";
    const headers = new Headers(built.headers);
    headers.delete("content-length");
    return new Response(body, { status, headers });
  });
  // HTTP/1.1, and HTTP/2 with prior knowledge (h2c): Deno.serve speaks both on one plain port.
  const h1 = Deno.createHttpClient({ http2: false });
  const h2 = Deno.createHttpClient({ http1: false, http2: true });
  try {
    for (let i = 0; i < cases.length; i++) {
      for (const client of [h1, h2]) {
        next = i;
        const response = await fetch(`http://127.0.0.1:${server.addr.port}/`, { client, redirect: "manual" });
        await response.body?.cancel();
        assert.equal(response.status, cases[i]!.head.status);
      }
    }
  } finally {
    h1.close();
    h2.close();
    await server.shutdown();
  }
});
