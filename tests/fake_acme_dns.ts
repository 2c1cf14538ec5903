// A fake acme-dns server (github.com/joohoi/acme-dns; Debian does not package it), served with
// Deno.serve on 127.0.0.1 over HTTP or HTTPS: POST /register, POST /update and GET /health as acme-dns's
// source answers them, with the TXT values of each account pushed to a pebble-challtestsrv (tests/
// challtestsrv.ts) at "<subdomain>.<domain>", so Deno.resolveDns and Pebble see what acme-dns would serve.
//
// Behaviour, from acme-dns's source (main.go routes; pkg/api/{register,auth,update,util}.go; pkg/database/db.go):
// - Routes (julienschmidt/httprouter): POST /register (unless registration is disabled), POST /update, GET
//   /health (200, empty body). Another method on a known path: 405 "Method Not Allowed" with Allow; an unknown
//   path: 404 "404 page not found"; a path with a trailing slash: a 308 redirect (301 for GET) without it.
// - /register: an optional JSON body {"allowfrom": ["CIDR", ...]}; malformed JSON: 400 malformed_json_payload;
//   an entry Go's net.ParseCIDR refuses (a bare address too; IPv6 brackets are dropped first): 400
//   invalid_allowfrom_cidr. Else 201 {username (UUID), password (40 chars of A-Za-z0-9-_), fulldomain,
//   subdomain (UUID), allowfrom}, and the account gets two empty TXT slots with LastUpdate 0.
// - /update: X-Api-User must be a UUID of a known user, X-Api-Key exactly 40 characters of A-Za-z0-9-_ and the
//   user's password, the client's address inside one of the account's allowfrom CIDRs (any address when it
//   has none), and the body's "subdomain" the user's (JSON keys match case-insensitively, as Go's decoder
//   does; a body that is not JSON leaves it empty). Any of these failing: 401 {"error": "forbidden"}, with no
//   hint which. Then a subdomain outside ^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$: 400 bad_subdomain;
//   a "txt" that is not exactly 43 characters of A-Za-z0-9-_: 400 bad_txt; nothing stored either way. Else
//   the value overwrites the slot with the oldest LastUpdate (whole Unix seconds) and the answer is 200
//   {"txt": "<value>"}. SQL leaves ties unordered; the fake breaks them the worst way for a client (the slot
//   written last among them), so a client that relies on an order within one second fails here.
// - Bodies are acme-dns's: `{"error": "<code>"}` with a space after the colon, Content-Type application/json.
// - DNS: the non-empty slots, as TXT records at the fulldomain (acme-dns answers TTL 1; challtestsrv uses 0).

import { inCidrs, parseCidr } from "../lib/cidr.ts";
import { challengeRecordName } from "../lib/dns/provider.ts";
import type { ChallTestSrv } from "./challtestsrv.ts";

export interface FakeAcmeDnsOptions {
  /** acme-dns's `domain`: fulldomains are "<subdomain>.<domain>"; default "auth.acme-dns.test". */
  domain?: string;
  /** Where the accounts' TXT values are published, and `delegate()` sets CNAMEs. */
  challtestsrv?: Pick<ChallTestSrv, "setTxt" | "clearTxt" | "setCname">;
  /** Serve HTTPS with this certificate (for "localhost") and key; `caPem` signed it (for `register()`). */
  tls?: { certPem: string; keyPem: string; caPem: string };
  /** acme-dns's `disable_registration`: /register is not routed. */
  disableRegistration?: boolean;
}

/** What /register answers (201), as acme-dns spells it. */
export interface FakeAcmeDnsAccount {
  username: string;
  password: string;
  fulldomain: string;
  subdomain: string;
  allowfrom: string[];
}

/** One request as received (headers lowercased), for assertions. */
export interface FakeAcmeDnsRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The client's address as acme-dns would see it (the socket's). */
  remoteAddr: string;
  /** When it arrived, ms since the epoch. */
  at: number;
}

/** An answer to give instead of acme-dns's: what a proxy in front of it might send. */
export interface FakeAcmeDnsFailure {
  status: number;
  body?: string;
  retryAfter?: string;
  /** Handle the request first (an update is stored), then answer with the failure: a proxy that timed out. */
  afterWrite?: boolean;
}

export interface FakeAcmeDns {
  /** Base URL of the API ("http://127.0.0.1:port", or "https://localhost:port" with `tls`). */
  api: string;
  domain: string;
  requests: FakeAcmeDnsRequest[];
  /** Registers an account through POST /register, as a user would; throws unless it answers 201. */
  register(allowfrom?: string[]): Promise<FakeAcmeDnsAccount>;
  /**
   * The user's side of the setup, at their own DNS host, not acme-dns's: `_acme-challenge.<domain>` CNAME to
   * the account's fulldomain, in challtestsrv.
   */
  delegate(domain: string, account: FakeAcmeDnsAccount): Promise<void>;
  /** The values acme-dns serves for `subdomain` now (its non-empty slots, in slot order). */
  txtValues(subdomain: string): string[];
  /** Answers the next `count` requests with `failure`. */
  failNext(count: number, failure: FakeAcmeDnsFailure): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Slot {
  value: string;
  /** LastUpdate: Unix seconds, 0 before the first update. */
  lastUpdate: number;
  /** Order of writes, for breaking LastUpdate ties (0: never written). */
  writeSeq: number;
}

interface Account extends FakeAcmeDnsAccount {
  cidrs: ReturnType<typeof parseCidr>[];
  slots: Slot[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SANITIZED = /^[A-Za-z0-9_-]*$/;
const SUBDOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890-_";
const ROUTES: Record<string, string[]> = { "/register": ["POST"], "/update": ["POST"], "/health": ["GET"] };

/** Starts the fake on 127.0.0.1 with a free port. */
export function startFakeAcmeDns(options: FakeAcmeDnsOptions = {}): Promise<FakeAcmeDns> {
  const state = new FakeState(options);
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      ...(options.tls ? { cert: options.tls.certPem, key: options.tls.keyPem } : {}),
    },
    (request, info) => state.handle(request, info.remoteAddr.hostname),
  );
  const api = options.tls ? `https://localhost:${server.addr.port}` : `http://127.0.0.1:${server.addr.port}`;
  const fake: FakeAcmeDns = {
    api,
    domain: state.domain,
    requests: state.requests,
    register: async (allowfrom) => {
      const client = options.tls ? Deno.createHttpClient({ caCerts: [options.tls.caPem] }) : undefined;
      try {
        const response = await fetch(`${api}/register`, {
          method: "POST",
          ...(allowfrom ? { body: JSON.stringify({ allowfrom }) } : {}),
          ...(client ? { client } : {}),
        });
        const text = await response.text();
        if (response.status !== 201) throw new Error(`/register answered ${response.status}: ${text}`);
        return JSON.parse(text);
      } finally {
        client?.close();
      }
    },
    delegate: async (domain, account) => {
      await options.challtestsrv?.setCname(challengeRecordName(domain), account.fulldomain);
    },
    txtValues: (subdomain) => state.served(subdomain),
    failNext: (count, failure) => {
      for (let i = 0; i < count; i++) state.failures.push(failure);
    },
    close: async () => {
      await server.shutdown();
      await state.writes;
    },
    [Symbol.asyncDispose]: () => fake.close(),
  };
  return Promise.resolve(fake);
}

class FakeState {
  readonly domain: string;
  readonly requests: FakeAcmeDnsRequest[] = [];
  readonly failures: FakeAcmeDnsFailure[] = [];
  readonly #options: FakeAcmeDnsOptions;
  readonly #accounts = new Map<string, Account>();
  #writeSeq = 0;
  /** Updates and their publishing run one at a time (acme-dns holds a lock around each database write). */
  writes: Promise<unknown> = Promise.resolve();

  constructor(options: FakeAcmeDnsOptions) {
    this.#options = options;
    this.domain = (options.domain ?? "auth.acme-dns.test").toLowerCase();
  }

  served(subdomain: string): string[] {
    const account = [...this.#accounts.values()].find((a) => a.subdomain === subdomain);
    return account?.slots.map((slot) => slot.value).filter((value) => value !== "") ?? [];
  }

  async handle(request: Request, remoteAddr: string): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const headers = Object.fromEntries([...request.headers].map(([k, v]) => [k.toLowerCase(), v]));
    this.requests.push({
      method: request.method,
      path: url.pathname,
      headers,
      body,
      remoteAddr,
      at: Date.now(),
    });
    const failure = this.failures.shift();
    if (failure && !failure.afterWrite) return failed(failure);
    const response = await this.#route(request.method, url.pathname, headers, body, remoteAddr);
    return failure ? failed(failure) : response;
  }

  #route(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string,
    remoteAddr: string,
  ): Promise<Response> | Response {
    const routes = this.#options.disableRegistration
      ? Object.fromEntries(Object.entries(ROUTES).filter(([p]) => p !== "/register"))
      : ROUTES;
    // httprouter's RedirectTrailingSlash: 301 for GET, 308 otherwise.
    if (path.length > 1 && path.endsWith("/") && routes[path.slice(0, -1)]) {
      return new Response(null, {
        status: method === "GET" ? 301 : 308,
        headers: { location: path.slice(0, -1) },
      });
    }
    const methods = routes[path];
    if (!methods) return text(404, "404 page not found\n");
    if (!methods.includes(method)) {
      return new Response("Method Not Allowed\n", {
        status: 405,
        headers: { allow: [...methods, "OPTIONS"].join(", "), "content-type": "text/plain; charset=utf-8" },
      });
    }
    if (path === "/health") return new Response(null, { status: 200 });
    if (path === "/register") return this.#register(body);
    return this.#update(headers, body, remoteAddr);
  }

  #register(body: string): Response {
    let allowfrom: string[] = [];
    if (body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return jsonError(400, "malformed_json_payload");
      }
      const given = field(parsed, "allowfrom");
      if (given !== undefined && given !== null && !isStringArray(given)) {
        return jsonError(400, "malformed_json_payload");
      }
      allowfrom = (given ?? []).map((entry) => entry.replace(/[\[\]]+/g, ""));
    }
    const cidrs: ReturnType<typeof parseCidr>[] = [];
    for (const entry of allowfrom) {
      const cidr = goParseCidr(entry);
      if (cidr === null) return jsonError(400, "invalid_allowfrom_cidr");
      cidrs.push(cidr);
    }
    const subdomain = crypto.randomUUID();
    const account: Account = {
      username: crypto.randomUUID(),
      password: randomPassword(),
      fulldomain: `${subdomain}.${this.domain}`,
      subdomain,
      allowfrom,
      cidrs,
      slots: [{ value: "", lastUpdate: 0, writeSeq: 0 }, { value: "", lastUpdate: 0, writeSeq: 0 }],
    };
    this.#accounts.set(account.username.toLowerCase(), account);
    const { username, password, fulldomain } = account;
    return json(201, { username, password, fulldomain, subdomain, allowfrom });
  }

  async #update(headers: Record<string, string>, body: string, remoteAddr: string): Promise<Response> {
    const user = headers["x-api-user"] ?? "";
    const key = headers["x-api-key"] ?? "";
    const account = UUID.test(user) ? this.#accounts.get(user.toLowerCase()) : undefined;
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(body);
    } catch {
      // Go's decoder error is only logged: the fields stay empty.
    }
    const subdomain = stringField(parsed, "subdomain");
    const txt = stringField(parsed, "txt");
    const authorized = account !== undefined && key.length === 40 && SANITIZED.test(key) &&
      key === account.password && (account.cidrs.length === 0 || inCidrs(remoteAddr, account.cidrs)) &&
      subdomain === account.subdomain;
    if (!authorized) return jsonError(401, "forbidden");
    if (!SUBDOMAIN.test(subdomain)) return jsonError(400, "bad_subdomain");
    if (txt.length !== 43 || !SANITIZED.test(txt)) return jsonError(400, "bad_txt");
    const write = this.writes.then(() => this.#store(account, txt));
    this.writes = write.catch(() => {});
    await write;
    // Built by concatenation in acme-dns, exactly like this.
    return new Response(`{"txt": "${txt}"}`, {
      status: 200,
      headers: { "content-type": "application/json" },
    });
  }

  /** `UPDATE txt SET Value, LastUpdate WHERE rowid = (SELECT ... ORDER BY LastUpdate LIMIT 1)`, then DNS. */
  async #store(account: Account, value: string): Promise<void> {
    const oldest = Math.min(...account.slots.map((slot) => slot.lastUpdate));
    const tied = account.slots.filter((slot) => slot.lastUpdate === oldest);
    const slot = tied.reduce((a, b) => (b.writeSeq > a.writeSeq ? b : a));
    slot.value = value;
    slot.lastUpdate = Math.floor(Date.now() / 1000);
    slot.writeSeq = ++this.#writeSeq;
    const dns = this.#options.challtestsrv;
    if (!dns) return;
    await dns.clearTxt(account.fulldomain);
    for (const served of this.served(account.subdomain)) await dns.setTxt(account.fulldomain, served);
  }
}

/** A JSON object's field, matched case-insensitively as Go's encoding/json does. */
function field(value: unknown, name: string): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (name in record) return record[name];
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record[key];
}

function stringField(value: unknown, name: string): string {
  const found = field(value, name);
  return typeof found === "string" ? found : "";
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((entry) => typeof entry === "string");
}

/** Go's net.ParseCIDR: an address with a prefix length; a bare address is an error there. */
function goParseCidr(text: string): ReturnType<typeof parseCidr> | null {
  if (!text.includes("/")) return null;
  try {
    return parseCidr(text);
  } catch {
    return null;
  }
}

function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(40));
  return [...bytes].map((byte) => PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length]).join("");
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** acme-dns's jsonError: `{"error": "<code>"}`. */
function jsonError(status: number, code: string): Response {
  return new Response(`{"error": "${code}"}`, { status, headers: { "content-type": "application/json" } });
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function failed(failure: FakeAcmeDnsFailure): Response {
  return new Response(failure.body ?? "", {
    status: failure.status,
    headers: failure.retryAfter === undefined ? {} : { "retry-after": failure.retryAfter },
  });
}
