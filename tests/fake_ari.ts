// A faithful fake of ACME Renewal Information (RFC 9773) in front of a real Pebble (Debian's 2.4 has none):
// an HTTPS front that forwards every request to Pebble with the Host it was sent (see `forward`), adds
// `renewalInfo` to the directory (§3), answers `GET <renewalInfo>/<certID>` (§4.1) with the window a test
// sets (or a 500, or garbage), records each newOrder's payload (§5) and can refuse one `replaces` with 409
// alreadyReplaced.

import { ariCertId } from "../lib/acme/ari_cert_id.ts";
import { LocalCa } from "../lib/tls/local_ca.ts";
import type { Pebble } from "./pebble.ts";

/** What the fake answers to renewalInfo requests. */
export type AriAnswer =
  | { kind: "window"; start: Date; end: Date; explanationUrl?: string }
  | { kind: "status"; status: number }
  | { kind: "garbage" };

export interface FakeAri {
  /** The directory URL to give nexo (`acme.directory`): the front's, on "localhost". */
  directoryUrl: string;
  /** The CA that signed the front's TLS certificate: nexo's `acme.ca_cert`. */
  caPem: string;
  /** What renewalInfo requests get from now on (default: a window a year away). */
  answer(answer: AriAnswer): void;
  /** The Retry-After (seconds) sent with windows; default 1. */
  retryAfterSeconds: number;
  /** Answers the next newOrder that carries `replaces` with 409 alreadyReplaced, without passing it on. */
  refuseReplacesOnce(): void;
  /** The payload of every newOrder so far, in order (including refused ones). */
  newOrders(): Array<{ identifiers: unknown; replaces?: string; refused: boolean }>;
  /** The certID (RFC 9773 §4.1) of every certificate downloaded through the front, in order. */
  issued(): string[];
  /** The certIDs asked about at renewalInfo, in order. */
  renewalInfoRequests(): string[];
  close(): Promise<void>;
}

const RENEWAL_INFO_PATH = "/renewal-info";
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"];

/** Starts the front for `pebble` on a free port of 127.0.0.1. */
export async function startFakeAri(pebble: Pebble): Promise<FakeAri> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-fake-ari-" });
  const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
  const leaf = await ca.issue(["localhost"], { lifetimeMs: 24 * 3_600_000 });
  const pebbleOrigin = new URL(pebble.directoryUrl).origin;
  // Pebble must see the front's Host. Deno's fetch drops a Host header without allowHost, and over HTTP/2
  // (Pebble offers it) sends the URL's authority whatever the header says: hence HTTP/1.1 only.
  const upstream = Deno.createHttpClient({ caCerts: [pebble.apiCaPem], allowHost: true, http2: false });
  const paths = await pebblePaths(pebble.directoryUrl, upstream);
  let answer: AriAnswer = {
    kind: "window",
    start: new Date(Date.now() + 365 * 86_400_000),
    end: new Date(Date.now() + 366 * 86_400_000),
  };
  let refuseReplaces = false;
  const orders: Array<{ identifiers: unknown; replaces?: string; refused: boolean }> = [];
  const issued: string[] = [];
  const asked: string[] = [];

  // Pebble builds every URL it hands out, the account URL prefix it checks in `kid` and the JWS "url" it
  // expects from `https://` + the request's Host + path (wfe.go relativeEndpoint(), verifyJWS()): forwarding
  // the Host the client sent keeps nexo talking to the front throughout, and a JWS signed for the front valid.
  const forward = async (request: Request, body: Uint8Array | null): Promise<Response> => {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    for (const name of HOP_BY_HOP) headers.delete(name);
    headers.set("host", url.host); // HTTP/2 requests carry it as :authority, which request.url holds
    const response = await fetch(`${pebbleOrigin}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: body === null ? null : new Uint8Array(body),
      client: upstream,
      redirect: "manual",
    });
    const responseHeaders = new Headers(response.headers);
    for (const name of [...HOP_BY_HOP, "content-encoding"]) responseHeaders.delete(name);
    return new Response(await response.arrayBuffer(), { status: response.status, headers: responseHeaders });
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname.startsWith(`${RENEWAL_INFO_PATH}/`)) {
      return renewalInfo(decodeURIComponent(url.pathname.slice(RENEWAL_INFO_PATH.length + 1)));
    }
    const body = request.method === "POST" ? new Uint8Array(await request.arrayBuffer()) : null;
    if (request.method === "GET" && url.pathname === paths.directory) {
      const response = await forward(request, null);
      const directory = await response.json();
      // RFC 9773 §3: the directory names the renewalInfo resource.
      return Response.json({ ...directory, renewalInfo: `${url.origin}${RENEWAL_INFO_PATH}` });
    }
    if (request.method === "POST" && url.pathname === paths.newOrder && body !== null) {
      const payload = jwsPayload(body) as { identifiers?: unknown; replaces?: unknown };
      const replaces = typeof payload.replaces === "string" ? payload.replaces : undefined;
      const refused = replaces !== undefined && refuseReplaces;
      orders.push({ identifiers: payload.identifiers, ...(replaces ? { replaces } : {}), refused });
      if (refused) {
        refuseReplaces = false;
        return await alreadyReplaced(request, replaces!);
      }
    }
    const response = await forward(request, body);
    if (request.method === "POST" && url.pathname.startsWith(paths.certificatePrefix) && response.ok) {
      const pem = await response.clone().text();
      if (pem.includes("BEGIN CERTIFICATE")) issued.push(ariCertId(pem));
    }
    return response;
  };

  const renewalInfo = (certId: string): Response => {
    asked.push(certId);
    if (answer.kind === "status") {
      return Response.json(
        { type: "urn:ietf:params:acme:error:serverInternal", detail: "fake outage", status: answer.status },
        { status: answer.status, headers: { "content-type": "application/problem+json" } },
      );
    }
    if (answer.kind === "garbage") return new Response("<html>bad gateway</html>", { status: 200 });
    if (!issued.includes(certId)) {
      return Response.json(
        { type: "urn:ietf:params:acme:error:malformed", detail: "unknown certificate", status: 404 },
        { status: 404, headers: { "content-type": "application/problem+json" } },
      );
    }
    return Response.json({
      suggestedWindow: { start: answer.start.toISOString(), end: answer.end.toISOString() },
      ...(answer.explanationUrl ? { explanationURL: answer.explanationUrl } : {}),
    }, { headers: { "retry-after": String(fake.retryAfterSeconds) } });
  };

  /** RFC 9773 §5: 409 with an alreadyReplaced problem, and a fresh nonce as every ACME POST answer has. */
  const alreadyReplaced = async (request: Request, replaces: string): Promise<Response> => {
    const nonce = await forward(new Request(new URL(paths.newNonce, request.url), { method: "HEAD" }), null);
    return Response.json({
      type: "urn:ietf:params:acme:error:alreadyReplaced",
      detail: `certificate ${replaces} was already replaced`,
      status: 409,
    }, {
      status: 409,
      headers: {
        "content-type": "application/problem+json",
        "replay-nonce": nonce.headers.get("replay-nonce") ?? "",
      },
    });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem, onListen: () => {} },
    handle,
  );
  const fake: FakeAri = {
    directoryUrl: `https://localhost:${server.addr.port}${paths.directory}`,
    caPem: ca.rootCertPem,
    retryAfterSeconds: 1,
    answer: (next) => {
      answer = next;
    },
    refuseReplacesOnce: () => {
      refuseReplaces = true;
    },
    newOrders: () => orders.map((order) => ({ ...order })),
    issued: () => [...issued],
    renewalInfoRequests: () => [...asked],
    close: async () => {
      await server.shutdown();
      upstream.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  return fake;
}

/** The paths of Pebble's directory, newOrder, newNonce and certificate resources. */
async function pebblePaths(
  directoryUrl: string,
  client: Deno.HttpClient,
): Promise<{ directory: string; newOrder: string; newNonce: string; certificatePrefix: string }> {
  const response = await fetch(directoryUrl, { client });
  const directory = await response.json() as { newOrder: string; newNonce: string };
  return {
    directory: new URL(directoryUrl).pathname,
    newOrder: new URL(directory.newOrder).pathname,
    newNonce: new URL(directory.newNonce).pathname,
    // Pebble's certificate URLs (wfe.go certPath); the directory does not name them.
    certificatePrefix: "/certZ/",
  };
}

/** The decoded payload of a flattened JWS (RFC 7515 §7.2.2) body, as JSON; {} for POST-as-GET. */
function jwsPayload(body: Uint8Array): unknown {
  const jws = JSON.parse(new TextDecoder().decode(body)) as { payload?: string };
  if (!jws.payload) return {};
  return JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(jws.payload, { alphabet: "base64url" })));
}
