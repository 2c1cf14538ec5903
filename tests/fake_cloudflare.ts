// A fake of the parts of Cloudflare's v4 API nexo uses (Cloudflare itself is unreachable from tests), served
// with Deno.serve on 127.0.0.1: token verification, zone lookup, and listing, creating and deleting DNS records,
// with Cloudflare's JSON envelope, its error codes, token permissions and injectable 429/5xx answers (a blip or a
// lasting outage). TXT records it stores are pushed to a pebble-challtestsrv (tests/challtestsrv.ts), so
// Deno.resolveDns and Pebble see them, unless publishing is paused (records that never propagate).
//
// Behaviour, following https://developers.cloudflare.com/api/ and what clients report from the real API:
// - Every answer is the envelope {success, errors: [{code, message}], messages, result} (+ result_info on lists).
// - No Authorization header: 400, code 9106. Not "Bearer <token>": 400, code 6003 with error_chain 6111. Wrong or
//   inactive token: 403, code 9109 "Invalid access token"; on GET /user/tokens/verify: 401, code 1000 "Invalid
//   API Token" (an inactive token verifies with 200 and its status).
// - Permissions (`scopes`): zone reads need "zone:read" (else 403, 9109); record reads need "dns:read" or
//   "dns:edit", record writes "dns:edit" (else 403, 10000 "Authentication error"). A zone left out of the
//   token's `tokenZones` is invisible: absent from lists, 403 (9109) by id.
// - POST dns_records needs Content-Type: application/json (else 400, 6003/6105) and a JSON body (else 400,
//   6007). A name outside the zone gets the zone appended ("www" -> "www.example.com"), as Cloudflare does. An
//   identical record (type, name, content) is refused with 400, code 81058.
// - DELETE of an unknown record: 404, code 81044. A DELETE carrying a Content-Type header with its empty body is
//   refused with 400, code 6007 "Malformed JSON in request body": Cloudflare parses any body declared as JSON,
//   and clients that send the header on body-less DELETEs report exactly this error. Whether the real API
//   rejects every such DELETE is our belief, not documented; the fake is strict so nexo never sends one.
// - challtestsrv's set-txt appends and its clear-txt drops every value of a name, so each change to a name's
//   TXT records clears the name and sets the values that remain. Updates to one name are serialized.

import type { ChallTestSrv } from "./challtestsrv.ts";
import { Rng } from "./fuzz.ts";

export type FakeScope = "zone:read" | "dns:read" | "dns:edit";

export interface FakeZone {
  id: string;
  name: string;
}

/** A stored DNS record, shaped like Cloudflare's. */
export interface FakeRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  type: string;
  name: string;
  content: string;
  ttl: number;
  proxied: boolean;
  proxiable: boolean;
  created_on: string;
  modified_on: string;
}

/** One request as the fake received it, for assertions (headers lowercased). */
export interface FakeRequest {
  method: string;
  /** Path below the API base, with the query ("/zones?name=example.com"). */
  path: string;
  headers: Record<string, string>;
  body: string;
  /** When it arrived, ms since the epoch (for tests that check how requests are spaced). */
  at: number;
}

/** An answer to inject instead of the real one: a 429, a 5xx, or a 200 with `success: false`. */
export interface FakeFailure {
  status: number;
  /** Retry-After header value ("30" or an HTTP-date). */
  retryAfter?: string;
  /** Errors for the envelope; a default fitting the status otherwise. */
  errors?: Array<{ code: number; message: string }>;
  /** Answer with an HTML page, as Cloudflare's edge does for some 5xx. */
  html?: boolean;
  /**
   * Handle the request first (a record is really created or deleted) and only then answer with the failure:
   * a write that committed behind an edge that timed out or failed, which a client must not repeat blindly.
   */
  afterWrite?: boolean;
}

export interface FakeCloudflareOptions {
  /** The one valid API token. */
  token: string;
  /** Zone apex names (ids are generated), e.g. ["example.com"]. */
  zones?: string[];
  /** The token's permissions; default all three. Mutable later through `scopes`. */
  scopes?: FakeScope[];
  /** The token's status as /user/tokens/verify reports it; default "active". */
  tokenStatus?: "active" | "disabled" | "expired";
  /** Zone names the token's Zone Resources include; default every zone. */
  tokenZones?: string[];
  /** Where TXT records are published for DNS queries. */
  challtestsrv?: Pick<ChallTestSrv, "setTxt" | "clearTxt">;
}

export interface FakeCloudflare {
  /** Base to give the provider, e.g. "http://127.0.0.1:40123/client/v4". */
  apiBase: string;
  zones: FakeZone[];
  /** The token's permissions; tests may change them between calls. */
  scopes: Set<FakeScope>;
  /** Every request received, in order. */
  requests: FakeRequest[];
  /** The id of the zone named `name`; throws when there is none. */
  zoneId(name: string): string;
  /** A copy of the stored records. */
  records(): FakeRecord[];
  /** Stores a record as if created earlier (a crash's leftover), published to challtestsrv too. */
  addRecord(
    zoneName: string,
    record: { type?: string; name: string; content: string; proxied?: boolean },
  ): Promise<FakeRecord>;
  /** Answers the next `count` requests with `failure` instead of handling them. */
  failNext(count: number, failure: FakeFailure): void;
  /**
   * Answers a share `rate` (0..1) of the requests `match` accepts with `failure`, drawn from a PRNG seeded
   * with `seed`, until `endFlakiness()`: a flaky API. Requests `failNext` queued are answered first.
   */
  startFlakiness(
    rate: number,
    seed: number,
    failure: (draw: number) => FakeFailure,
    match?: (request: FakeRequest) => boolean,
  ): void;
  endFlakiness(): void;
  /** The most TXT records with one name and one value that ever existed at once. */
  readonly maxDuplicates: number;
  /**
   * Answers every request that `match` accepts (default: every request) with `failure` until `endOutage()`:
   * a persistent outage, where `failNext` is a blip. Requests `failNext` queued are answered first.
   */
  startOutage(failure: FakeFailure, match?: (request: FakeRequest) => boolean): void;
  endOutage(): void;
  /**
   * Turns publishing TXT records to challtestsrv off or back on (it starts on when one was given). While off,
   * records are accepted and listed as usual but never served over DNS: a provider whose changes do not
   * propagate. Turning it on publishes what is stored; resolves once challtestsrv serves it.
   */
  setPublishing(on: boolean): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const API_PATH = "/client/v4";
const PROXIABLE = new Set(["A", "AAAA", "CNAME"]);

/** Starts the fake on 127.0.0.1 with a free port. */
export function startFakeCloudflare(options: FakeCloudflareOptions): Promise<FakeCloudflare> {
  const state = new FakeState(options);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => state.handle(request),
  );
  const fake: FakeCloudflare = {
    apiBase: `http://127.0.0.1:${server.addr.port}${API_PATH}`,
    zones: state.zones,
    scopes: state.scopes,
    requests: state.requests,
    zoneId: (name) => state.zoneByName(name).id,
    records: () => state.records.map((record) => ({ ...record })),
    addRecord: (zoneName, record) => state.store(state.zoneByName(zoneName), { type: "TXT", ...record }),
    startFlakiness: (rate, seed, failure, match = () => true) => {
      const rng = new Rng(seed);
      state.flaky = { rate, next: () => rng.float(), failure, match };
    },
    endFlakiness: () => {
      state.flaky = null;
    },
    get maxDuplicates() {
      return state.maxDuplicates;
    },
    failNext: (count, failure) => {
      for (let i = 0; i < count; i++) state.failures.push(failure);
    },
    startOutage: (failure, match = () => true) => {
      state.outage = { failure, match };
    },
    endOutage: () => {
      state.outage = null;
    },
    setPublishing: (on) => state.setPublishing(on),
    close: async () => {
      await server.shutdown();
      await state.settled();
    },
    [Symbol.asyncDispose]: () => fake.close(),
  };
  return Promise.resolve(fake);
}

class FakeState {
  zones: FakeZone[];
  scopes: Set<FakeScope>;
  records: FakeRecord[] = [];
  requests: FakeRequest[] = [];
  failures: FakeFailure[] = [];
  outage: { failure: FakeFailure; match: (request: FakeRequest) => boolean } | null = null;
  flaky: {
    rate: number;
    next: () => number;
    failure: (draw: number) => FakeFailure;
    match: (request: FakeRequest) => boolean;
  } | null = null;
  maxDuplicates = 0;
  publishToDns = true;
  #token: string;
  #tokenStatus: string;
  #tokenZones: Set<string> | null;
  #challtestsrv: Pick<ChallTestSrv, "setTxt" | "clearTxt"> | null;
  #publishing = new Map<string, Promise<void>>();

  constructor(options: FakeCloudflareOptions) {
    this.zones = (options.zones ?? []).map((name) => ({ id: hexId(), name: name.toLowerCase() }));
    this.scopes = new Set(options.scopes ?? ["zone:read", "dns:read", "dns:edit"]);
    this.#token = options.token;
    this.#tokenStatus = options.tokenStatus ?? "active";
    this.#tokenZones = options.tokenZones
      ? new Set(options.tokenZones.map((name) => name.toLowerCase()))
      : null;
    this.#challtestsrv = options.challtestsrv ?? null;
  }

  zoneByName(name: string): FakeZone {
    const zone = this.zones.find((zone) => zone.name === name.toLowerCase());
    if (zone === undefined) throw new Error(`the fake Cloudflare has no zone ${name}`);
    return zone;
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.slice(API_PATH.length);
    const body = await request.text();
    const received: FakeRequest = {
      method: request.method,
      path: `${path}${url.search}`,
      headers: Object.fromEntries(request.headers),
      body,
      at: Date.now(),
    };
    this.requests.push(received);
    const failure = this.failures.shift() ??
      (this.outage?.match(received) ? this.outage.failure : undefined) ?? this.#flakyFailure(received);
    if (failure !== undefined && !failure.afterWrite) return injected(failure);
    const response = await this.#handleReal(request, url, path, body);
    this.#countDuplicates();
    return failure === undefined ? response : injected(failure);
  }

  #flakyFailure(received: FakeRequest): FakeFailure | undefined {
    const flaky = this.flaky;
    if (flaky === null || !flaky.match(received)) return undefined;
    const draw = flaky.next();
    return draw < flaky.rate ? flaky.failure(draw / flaky.rate) : undefined;
  }

  #countDuplicates(): void {
    const counts = new Map<string, number>();
    for (const record of this.records) {
      const key = `${record.type} ${record.name} ${record.content}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    this.maxDuplicates = Math.max(this.maxDuplicates, ...counts.values());
  }

  async #handleReal(request: Request, url: URL, path: string, body: string): Promise<Response> {
    if (!url.pathname.startsWith(`${API_PATH}/`)) return fail(400, 7000, "No route for that URI");
    const denied = this.#authenticate(request.headers.get("authorization"), path);
    if (denied !== null) return denied;
    return await this.#route(request.method, path, url.searchParams, request.headers, body);
  }

  async #route(
    method: string,
    path: string,
    query: URLSearchParams,
    headers: Headers,
    body: string,
  ): Promise<Response> {
    if (path === "/user/tokens/verify") {
      if (method !== "GET") return methodNotAllowed(method);
      return ok({ id: hexId(), status: this.#tokenStatus }, {
        messages: [{ code: 10000, message: "This API Token is valid and active", type: null }],
      });
    }
    if (path === "/zones") return method === "GET" ? this.#listZones(query) : methodNotAllowed(method);
    const zoneMatch = /^\/zones\/([^/]+)(\/dns_records(?:\/([^/]+))?)?$/.exec(path);
    if (zoneMatch === null) return fail(400, 7000, "No route for that URI");
    const [, zoneId = "", records, recordId] = zoneMatch;
    if (!/^[0-9a-f]{32}$/.test(zoneId)) {
      return fail(
        400,
        7003,
        `Could not route to /zones/${zoneId}, perhaps your object identifier is invalid?`,
      );
    }
    const zone = this.zones.find((zone) => zone.id === zoneId && this.#covers(zone));
    if (records === undefined) {
      if (method !== "GET") return methodNotAllowed(method);
      if (!this.scopes.has("zone:read") || zone === undefined) {
        return fail(403, 9109, "Unauthorized to access requested resource");
      }
      return ok(zoneJson(zone));
    }
    if (zone === undefined) return fail(403, 10000, "Authentication error");
    if (recordId === undefined && method === "GET") return this.#listRecords(zone, query);
    if (recordId === undefined && method === "POST") return await this.#createRecord(zone, headers, body);
    if (recordId !== undefined && method === "DELETE") {
      return await this.#deleteRecord(zone, recordId, headers, body);
    }
    return methodNotAllowed(method);
  }

  /** Checks the bearer token; returns the error answer, or null when it is fine. */
  #authenticate(authorization: string | null, path: string): Response | null {
    if (authorization === null) {
      return fail(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers");
    }
    const match = /^Bearer ([A-Za-z0-9_-]+)$/.exec(authorization);
    if (match === null) {
      return json(
        400,
        envelope(null, {
          success: false,
          errors: [{
            code: 6003,
            message: "Invalid request headers",
            error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }],
          }],
        }),
      );
    }
    if (match[1] !== this.#token) {
      return path === "/user/tokens/verify"
        ? fail(401, 1000, "Invalid API Token")
        : fail(403, 9109, "Invalid access token");
    }
    if (this.#tokenStatus !== "active" && path !== "/user/tokens/verify") {
      return fail(403, 9109, "Invalid access token");
    }
    return null;
  }

  #covers(zone: FakeZone): boolean {
    return this.#tokenZones === null || this.#tokenZones.has(zone.name);
  }

  #listZones(query: URLSearchParams): Response {
    if (!this.scopes.has("zone:read")) return fail(403, 9109, "Unauthorized to access requested resource");
    const name = query.get("name")?.toLowerCase();
    const zones = this.zones.filter((zone) =>
      this.#covers(zone) && (name === undefined || zone.name === name)
    );
    return page(zones.map(zoneJson), query, 20, 50);
  }

  #listRecords(zone: FakeZone, query: URLSearchParams): Response {
    if (!this.scopes.has("dns:read") && !this.scopes.has("dns:edit")) {
      return fail(403, 10000, "Authentication error");
    }
    const type = query.get("type");
    const name = query.get("name")?.toLowerCase().replace(/\.$/, "");
    const content = query.get("content");
    const found = this.records.filter((record) =>
      record.zone_id === zone.id && (type === null || record.type === type) &&
      (name === undefined || record.name === name) && (content === null || record.content === content)
    );
    return page(found, query, 100, 5_000_000);
  }

  async #createRecord(zone: FakeZone, headers: Headers, body: string): Promise<Response> {
    if (!this.scopes.has("dns:edit")) return fail(403, 10000, "Authentication error");
    if (!(headers.get("content-type") ?? "").startsWith("application/json")) {
      return json(
        400,
        envelope(null, {
          success: false,
          errors: [{
            code: 6003,
            message: "Invalid request headers",
            error_chain: [{
              code: 6105,
              message: "Invalid Content-Type header, valid values are application/json",
            }],
          }],
        }),
      );
    }
    let input: { type?: unknown; name?: unknown; content?: unknown; ttl?: unknown };
    try {
      input = JSON.parse(body);
    } catch {
      return fail(400, 6007, "Malformed JSON in request body");
    }
    const invalid = validateRecord(input);
    if (invalid !== null) return fail(400, 1004, `DNS Validation Error: ${invalid}`);
    const type = String(input.type);
    const name = qualify(String(input.name), zone.name);
    const content = String(input.content);
    if (this.records.some((r) => r.type === type && r.name === name && r.content === content)) {
      return fail(400, 81058, "An identical record already exists.");
    }
    const record = await this.store(zone, { type, name, content, ttl: Number(input.ttl ?? 1) });
    return ok(record);
  }

  async #deleteRecord(zone: FakeZone, recordId: string, headers: Headers, body: string): Promise<Response> {
    if (!this.scopes.has("dns:edit")) return fail(403, 10000, "Authentication error");
    if (headers.has("content-type") && body === "") return fail(400, 6007, "Malformed JSON in request body");
    const index = this.records.findIndex((record) => record.zone_id === zone.id && record.id === recordId);
    if (index === -1) return fail(404, 81044, "Record does not exist.");
    const [record] = this.records.splice(index, 1);
    if (record !== undefined && record.type === "TXT") await this.#publish(record.name);
    return ok({ id: recordId });
  }

  async store(
    zone: FakeZone,
    input: { type: string; name: string; content: string; ttl?: number; proxied?: boolean },
  ): Promise<FakeRecord> {
    const now = new Date().toISOString();
    const record: FakeRecord = {
      id: hexId(),
      zone_id: zone.id,
      zone_name: zone.name,
      type: input.type,
      name: qualify(input.name, zone.name),
      content: input.content,
      ttl: input.ttl ?? 1,
      // Cloudflare proxies only A, AAAA and CNAME records (the orange cloud); others are never proxiable.
      proxied: PROXIABLE.has(input.type) && input.proxied === true,
      proxiable: PROXIABLE.has(input.type),
      created_on: now,
      modified_on: now,
    };
    this.records.push(record);
    if (record.type === "TXT") await this.#publish(record.name);
    return record;
  }

  /**
   * Makes challtestsrv serve exactly the stored TXT values of `name`. Its set-txt appends and its clear-txt
   * drops a whole name, so every change clears the name and sets the values stored when the update runs;
   * updates to one name run one after another, so the last one leaves the stored state.
   */
  #publish(name: string): Promise<void> {
    const challtestsrv = this.#challtestsrv;
    if (challtestsrv === null || !this.publishToDns) return Promise.resolve();
    const previous = this.#publishing.get(name) ?? Promise.resolve();
    const next = previous.then(async () => {
      await challtestsrv.clearTxt(name);
      for (const record of this.records) {
        if (record.type === "TXT" && record.name === name) await challtestsrv.setTxt(name, record.content);
      }
    });
    this.#publishing.set(name, next.catch(() => {}));
    return next;
  }

  /** Turns publishing to challtestsrv off or on; turning it on publishes every stored TXT name. */
  async setPublishing(on: boolean): Promise<void> {
    this.publishToDns = on;
    if (!on) return;
    const names = new Set(this.records.filter((r) => r.type === "TXT").map((r) => r.name));
    await Promise.all([...names].map((name) => this.#publish(name)));
  }

  /** Resolves once every challtestsrv update has finished. */
  async settled(): Promise<void> {
    await Promise.all(this.#publishing.values());
  }
}

function validateRecord(
  input: { type?: unknown; name?: unknown; content?: unknown; ttl?: unknown },
): string | null {
  if (typeof input !== "object" || input === null) return "the body must be a JSON object";
  if (typeof input.type !== "string" || input.type === "") return "type is required";
  if (typeof input.name !== "string" || input.name === "") return "name is required";
  if (typeof input.content !== "string" || input.content === "") return "content is required";
  const ttl = input.ttl;
  // Cloudflare: 1 means "automatic"; otherwise 60-86400 s (30 s and up on Enterprise zones).
  if (ttl !== undefined && (typeof ttl !== "number" || (ttl !== 1 && (ttl < 60 || ttl > 86400)))) {
    return "TTL must be between 60 and 86400 seconds, or 1 for Automatic";
  }
  return null;
}

/** Cloudflare stores full names: lowercase, no trailing dot, the zone appended to a relative name. */
function qualify(name: string, zone: string): string {
  const lower = name.toLowerCase().replace(/\.$/, "");
  if (lower === "@") return zone;
  return lower === zone || lower.endsWith(`.${zone}`) ? lower : `${lower}.${zone}`;
}

function zoneJson(zone: FakeZone): Record<string, unknown> {
  return {
    id: zone.id,
    name: zone.name,
    status: "active",
    paused: false,
    type: "full",
    name_servers: ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
  };
}

function page(items: unknown[], query: URLSearchParams, defaultSize: number, maxSize: number): Response {
  const perPage = Math.min(maxSize, Math.max(5, Number(query.get("per_page") ?? defaultSize) || defaultSize));
  const pageNumber = Math.max(1, Number(query.get("page") ?? 1) || 1);
  const slice = items.slice((pageNumber - 1) * perPage, pageNumber * perPage);
  return ok(slice, {
    result_info: {
      page: pageNumber,
      per_page: perPage,
      count: slice.length,
      total_count: items.length,
      total_pages: Math.ceil(items.length / perPage),
    },
  });
}

function injected(failure: FakeFailure): Response {
  const headers: Record<string, string> = {};
  if (failure.retryAfter !== undefined) headers["retry-after"] = failure.retryAfter;
  if (failure.html) {
    return new Response(`<html><body><h1>${failure.status} error</h1></body></html>`, {
      status: failure.status,
      headers: { ...headers, "content-type": "text/html" },
    });
  }
  const errors = failure.errors ?? [
    failure.status === 429
      ? { code: 971, message: "Please wait and consider throttling your request speed" }
      : { code: 10002, message: "An unknown error has occurred" },
  ];
  return json(failure.status, envelope(null, { success: false, errors }), headers);
}

function envelope(result: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { success: true, errors: [], messages: [], result, ...extra };
}

function ok(result: unknown, extra: Record<string, unknown> = {}): Response {
  return json(200, envelope(result, extra));
}

function fail(status: number, code: number, message: string): Response {
  return json(status, envelope(null, { success: false, errors: [{ code, message }] }));
}

function methodNotAllowed(method: string): Response {
  return fail(405, 7001, `Method ${method} not available for that URI.`);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, "content-type": "application/json" },
  });
}

function hexId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}
