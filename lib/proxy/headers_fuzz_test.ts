// Fuzzes what the proxy does with headers a client or an upstream controls (hop-by-hop removal, Connection
// tokens, the X-Forwarded-* chain and trusted_proxies) and the CIDR and address parser behind
// trusted_proxies, against oracles written from the doc comments and RFCs rather than from the code.
// Seed and case count: NEXO_FUZZ_SEED, NEXO_FUZZ_RUNS (see tests/fuzz.ts); a failure prints both and the input.

import assert from "node:assert/strict";
import { type Rng, runFuzz, showString, withinHangLimit } from "../../tests/fuzz.ts";
import {
  buildResponseHeaders,
  buildUpstreamHeaders,
  connectionTokens,
  HOP_BY_HOP_HEADERS,
} from "./headers.ts";
import { type Cidr, inCidrs, parseCidr, parseIp } from "../cidr.ts";

const NAMES = [
  ...HOP_BY_HOP_HEADERS,
  "host",
  "content-length",
  "expect",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-real-ip",
  "forwarded",
  "cookie",
  "set-cookie",
  "accept",
  "authorization",
  "x-custom",
  "x-b3-traceid",
  "x_real_ip",
  "x_forwarded_for",
];

/** Header values: addresses and lists that look like a forwarding chain, and odd but legal field values. */
function randomValue(rng: Rng): string {
  return rng.pick([
    () => `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`,
    () => "1.2.3.4, 5.6.7.8",
    () => "for=192.0.2.60;proto=http;by=203.0.113.43",
    () => rng.pick(NAMES).toUpperCase(),
    () => `${rng.pick(NAMES)}, ${rng.pick(NAMES)},,  ${rng.pick(NAMES)}\t`,
    () => "close",
    () => "",
    () => "a".repeat(rng.between(1, 5000)),
    () => "caf\u00e9 \u00ff",
  ])();
}

function randomHeaders(rng: Rng): Array<[string, string]> {
  return Array.from({ length: rng.between(0, 20) }, () => {
    const name = rng.chance(0.9) ? rng.pick(NAMES) : `x-${rng.uint32().toString(36)}`;
    return [rng.chance(0.3) ? name.toUpperCase() : name, randomValue(rng)];
  });
}

/** The lowercased names a Connection value lists (RFC 9110 §7.6.1: those fields are for this hop only). */
function listedIn(connection: string | null): Set<string> {
  return new Set((connection ?? "").split(",").map((token) => token.trim().toLowerCase()));
}

/** The names the upstream request must not carry from the client, per `buildUpstreamHeaders()`'s contract. */
function droppedNames(incoming: Headers, trusted: boolean): Set<string> {
  const dropped = new Set([...HOP_BY_HOP_HEADERS, "host", "content-length", "expect", "x-forwarded-for"]);
  for (const name of ["x-forwarded-proto", "x-forwarded-host"]) dropped.add(name);
  if (!trusted) { for (const name of ["x-real-ip", "forwarded"]) dropped.add(name); }
  for (const name of listedIn(incoming.get("connection"))) dropped.add(name);
  // CGI-style apps read "_" as "-": such names are dropped whoever sent them.
  for (const [name] of incoming) if (name.includes("_")) dropped.add(name);
  return dropped;
}

Deno.test("buildUpstreamHeaders() forwards exactly the end-to-end headers and one X-Forwarded-* set", () => {
  runFuzz({
    name: "buildUpstreamHeaders() forwards exactly the end-to-end headers and one X-Forwarded-* set",
    file: import.meta.url,
    defaultRuns: 3000,
    generate: (rng) => ({
      headers: randomHeaders(rng),
      trusted: rng.chance(0.5),
      clientIp: rng.pick(["203.0.113.7", "2001:db8::1", "::ffff:10.0.0.1"]),
      host: rng.pick(["app.example.com", "app.example.com:8443", "[::1]:443"]),
    }),
    check: ({ headers, trusted, clientIp, host }) => {
      const incoming = new Headers(headers);
      const out = withinHangLimit(
        "buildUpstreamHeaders()",
        () => buildUpstreamHeaders(incoming, { clientIp, host, proto: "https", trusted }),
      );
      const dropped = droppedNames(incoming, trusted);
      const fields = [...incoming];
      const kept = fields.filter(([name]) => !dropped.has(name));
      // From iteration, not get(): Deno 2.9.6 iterates ["a", ""], ["a", "b"] as "b" but get()s ", b".
      const chain = trusted ? new Map(fields).get("x-forwarded-for") : null;
      // Hop-by-hop headers the Connection header names stay dropped even from a trusted proxy, so its
      // X-Forwarded-For chain counts only when Connection does not name it.
      const prior = chain && !listedIn(incoming.get("connection")).has("x-forwarded-for") ? chain : null;
      assert.deepEqual(out, [
        ["host", host],
        ...kept,
        ["x-forwarded-for", prior ? `${prior}, ${clientIp}` : clientIp],
        ["x-forwarded-proto", "https"],
        ["x-forwarded-host", host],
      ]);
    },
  });
});

Deno.test("buildResponseHeaders() drops hop-by-hop and Connection-named headers and keeps the rest in order", () => {
  runFuzz({
    name: "buildResponseHeaders() drops hop-by-hop and Connection-named headers and keeps the rest in order",
    file: import.meta.url,
    defaultRuns: 3000,
    generate: (rng) =>
      randomHeaders(rng).map(([name, value]) => [name.toLowerCase(), value] as [string, string]),
    check: (upstream) => {
      const named = new Set<string>();
      for (const [name, value] of upstream) {
        if (name === "connection") { for (const t of value.split(",")) named.add(t.trim().toLowerCase()); }
      }
      const expected = upstream.filter(([name]) => !HOP_BY_HOP_HEADERS.has(name) && !named.has(name));
      const out = buildResponseHeaders(upstream);
      // Headers sorts names and joins repeats (except Set-Cookie), so compare per name.
      for (const name of new Set(upstream.map(([n]) => n))) {
        const values = expected.filter(([n]) => n === name).map(([, v]) => v.trim());
        if (name === "set-cookie") assert.deepEqual(out.getSetCookie(), values, name);
        else assert.equal(out.get(name), values.length === 0 ? null : values.join(", "), name);
      }
      assert.equal(connectionTokens(null), null);
    },
  });
});

/** An IPv4 or IPv6 text, valid or nearly so: compressed, embedded IPv4, zone ids, leading zeros, junk. */
function randomAddress(rng: Rng): string {
  const v4 = () => Array.from({ length: 4 }, () => String(rng.int(256))).join(".");
  const group = () => rng.int(0x10000).toString(16).padStart(rng.chance(0.2) ? 4 : 1, "0");
  const groups = (n: number) => Array.from({ length: n }, group);
  switch (rng.int(7)) {
    case 0:
      return v4();
    case 1:
      return groups(8).join(":");
    case 2: {
      const head = rng.int(7);
      return `${groups(head).join(":")}::${groups(rng.int(7 - head)).join(":")}`;
    }
    case 3:
      return `::ffff:${v4()}`;
    case 4:
      return `${groups(6).join(":")}:${v4()}`;
    case 5:
      return `[${groups(8).join(":")}]`;
    default: {
      const text = rng.chance(0.5) ? v4() : groups(8).join(":");
      const at = rng.int(text.length + 1);
      return text.slice(0, at) + rng.pick([..."0:.x%/ \u0000g", "::", "1.2.3.4", "%eth0"]) + text.slice(at);
    }
  }
}

/** The 16-bit groups of an IPv6 address as the WHATWG URL parser writes it ("[2001:db8::1]"), as bytes. */
function bytesOfCanonical(hostname: string): Uint8Array {
  const [head = "", tail] = hostname.slice(1, -1).split("::");
  const words = (part: string) => (part === "" ? [] : part.split(":").map((w) => parseInt(w, 16)));
  const all = tail === undefined
    ? words(head)
    : [...words(head), ...Array(8 - words(head).length - words(tail).length).fill(0), ...words(tail)];
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}

/** Whether the first `prefix` bits of `a` and `b` agree, counted bit by bit. */
function samePrefix(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if (((a[bit >> 3] ?? 0) & mask) !== ((b[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

Deno.test("parseCidr() and inCidrs() agree with the URL parser and a bit-by-bit prefix match", () => {
  runFuzz({
    name: "parseCidr() and inCidrs() agree with the URL parser and a bit-by-bit prefix match",
    file: import.meta.url,
    defaultRuns: 5000,
    generate: (rng) => ({
      network: randomAddress(rng),
      prefix: rng.pick([
        "",
        `/${rng.between(0, 128)}`,
        `/${rng.between(0, 32)}`,
        "/",
        "/-1",
        "/1.5",
        "/ 8",
        "/08",
      ]),
      client: randomAddress(rng),
    }),
    show: (c) => showString(JSON.stringify(c)),
    check: ({ network, prefix, client }) => {
      let cidr: Cidr | null = null;
      try {
        cidr = parseCidr(network + prefix);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
      }
      // Whatever the URL parser reads as an IPv6 address, the trusted_proxies parser must read the same.
      for (const text of [network, client]) {
        const bare = text.replace(/^\[(.*)\]$/, "$1");
        let url: URL | null = null;
        try {
          url = bare.includes(":") ? new URL(`http://[${bare}]/`) : null;
        } catch {
          // not an address the URL parser takes
        }
        if (url === null) continue;
        const expected = bytesOfCanonical(url.hostname);
        const mapped = expected.slice(0, 10).every((b) => b === 0) && expected[10] === 0xff &&
          expected[11] === 0xff;
        assert.deepEqual(parseIp(text), mapped ? expected.slice(12) : expected, `parseIp(${text})`);
      }
      if (cidr === null) return;
      const max = cidr.bytes.length * 8;
      assert.ok([4, 16].includes(cidr.bytes.length) && Number.isInteger(cidr.prefix));
      assert.ok(cidr.prefix >= 0 && cidr.prefix <= max, `prefix ${cidr.prefix}`);
      const ip = parseIp(client);
      const expected = ip !== null && ip.length === cidr.bytes.length &&
        samePrefix(ip, cidr.bytes, cidr.prefix);
      assert.equal(inCidrs(client, [cidr]), expected, `${client} in ${network}${prefix}`);
    },
  });
});
