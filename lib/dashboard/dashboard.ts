// The dashboard on the admin listener, on when `admin.password_hash` is set: sign-in with a server-side
// session cookie (HttpOnly, SameSite=Strict), CSRF tokens on every change, lockout per client address and a
// strict Content-Security-Policy (the Host allowlist is lib/server/admin.ts's). It also says who may read
// /status and /metrics on a listener other machines reach. Loaded only when enabled (admin.ts imports it).

import { bcryptVerify } from "../auth/bcrypt.ts";
import { timingSafeEqual } from "../auth/constant_time.ts";
import { concatBytes } from "../bytes.ts";
import type { AdminConfig } from "../config/types.ts";
import { cookieValue } from "../cookies.ts";
import type { Logger } from "../log.ts";
import { DASHBOARD_CSS, DASHBOARD_JS, FAVICON_SVG } from "./assets.ts";
import { LoginLimiter } from "./login_limiter.ts";
import { LogTail } from "./log_tail.ts";
import { ConfigEditor, type SaveResult } from "./config_editor.ts";
import type { RouteChange } from "./route_edit.ts";
import { TrafficHistory } from "./traffic.ts";
import { errorMessage } from "../error_message.ts";
import { dirname } from "../path.ts";
import { syncDir, writeAndRename } from "../storage/atomic_write.ts";
import { appPage, loginPage } from "./pages.ts";
import { randomToken, type Session, Sessions } from "./sessions.ts";
import { startInterval, stopTimer, type Timer, unrefTimer } from "../timers.ts";

const SESSION_COOKIE = "nexo_session";
const LOGIN_COOKIE = "nexo_login";
/** A sign-in form is good for 10 minutes; a form body over 4 KiB is no sign-in. */
const LOGIN_FORM_S = 600;
const MAX_FORM_BYTES = 4096;
/** A config sent by the editor may be this large (a big config is a few tens of KiB). */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** `admin.traffic_file` is written every 5 minutes and at shutdown: a crash loses at most 5 minutes of it. */
const TRAFFIC_SAVE_MS = 5 * 60_000;

/** Sent with every dashboard response: no framing, no sniffing, no referrer, nothing cached, only own files. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export interface DashboardOptions {
  admin: AdminConfig & { passwordHash: string };
  /** The config file the editor shows and saves (lib/reload.ts applies what it saves). */
  configFile: string;
  /** What the page shows (/api/overview): the /status document and the process's memory. */
  overview: () => Promise<unknown>;
  /**
   * Renews the certificate for `names` through the ACME supervisor (its scheduler and lock): "unknown" when
   * no configured certificate has those names, "running" when its job runs now. Null without `issuer: acme`.
   */
  renew: ((names: string[]) => "queued" | "running" | "unknown") | null;
  log: Logger;
  /** Seams for tests. */
  now?: () => number;
}

/** The dashboard's routes and its checks for the admin listener's other paths. */
export class Dashboard {
  readonly #admin: AdminConfig & { passwordHash: string };
  readonly #overview: () => Promise<unknown>;
  readonly #renew: ((names: string[]) => "queued" | "running" | "unknown") | null;
  readonly #log: Logger;
  readonly #sessions: Sessions;
  readonly #limiter: LoginLimiter;
  readonly #editor: ConfigEditor;
  /** The last log lines and requests (fed by the logger's tap, see `tail`). */
  readonly tail = new LogTail();
  /** Each route's last hour and day (fed by the metrics' listener). */
  readonly traffic: TrafficHistory;
  #saver: Timer | undefined;

  constructor(options: DashboardOptions) {
    this.#admin = options.admin;
    this.#overview = options.overview;
    this.#renew = options.renew;
    this.#editor = new ConfigEditor({ file: options.configFile, log: options.log });
    this.traffic = new TrafficHistory(options.now ? { now: options.now } : {});
    this.#log = options.log;
    this.#sessions = new Sessions(options.now ? { now: options.now } : {});
    this.#limiter = new LoginLimiter(options.now ? { now: options.now } : {});
  }

  /** Reads `admin.traffic_file` (a missing or unreadable one starts afresh) and saves it periodically. */
  async start(): Promise<void> {
    const file = this.#admin.trafficFile;
    if (file === null) return;
    try {
      this.traffic.restore(await Deno.readTextFile(file));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        this.#log.warn("traffic file not read", {
          file,
          error: errorMessage(error),
          note: "starting afresh",
        });
      }
    }
    this.#saver = startInterval(() => void this.#saveTraffic(), TRAFFIC_SAVE_MS);
    unrefTimer(this.#saver);
  }

  /** Stops the periodic save and saves the traffic history one last time. */
  async close(): Promise<void> {
    stopTimer(this.#saver);
    await this.#saveTraffic();
  }

  async #saveTraffic(): Promise<void> {
    const file = this.#admin.trafficFile;
    if (file === null) return;
    try {
      await writeAndRename(file, new TextEncoder().encode(this.traffic.toJson()), 0o600);
      await syncDir(dirname(file));
    } catch (error) {
      this.#log.warn("traffic file not written", { file, error: errorMessage(error) });
    }
  }

  /** Whether `req` is signed in (a live session), or carries `admin.metrics_token` when `metrics` is true. */
  authorized(req: Request, options: { metrics: boolean }): boolean {
    if (this.#session(req) !== undefined) return true;
    const token = this.#admin.metricsToken;
    const given = /^Bearer (.+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
    return options.metrics && token !== null && given !== undefined && sameSecret(given, token);
  }

  /**
   * Answers a dashboard path, or null when `req` is not one (the caller answers /status, /metrics, 404).
   * `secure`: it came over HTTPS (a route with admin: true), so its cookies are marked Secure.
   */
  async handle(req: Request, client: string, secure = false): Promise<Response | null> {
    const response = await this.#answer(req, client);
    if (response === null || !secure) return response;
    const cookies = response.headers.getSetCookie();
    response.headers.delete("set-cookie");
    for (const line of cookies) response.headers.append("set-cookie", `${line}; Secure`);
    return response;
  }

  async #answer(req: Request, client: string): Promise<Response | null> {
    const { pathname } = new URL(req.url);
    const method = req.method;
    switch (`${method} ${pathname}`) {
      case "GET /":
      case "HEAD /": {
        const session = this.#session(req);
        if (session === undefined) return redirect("/login");
        return html(appPage({ csrf: session.csrf, username: session.username }));
      }
      case "GET /login":
      case "HEAD /login":
        return this.#loginForm(null, 200);
      case "POST /login":
        return await this.#login(req, client);
      case "POST /logout":
        return await this.#logout(req);
      case "GET /api/overview": {
        if (this.#session(req) === undefined) return json({ error: "sign in first" }, 401);
        const overview = await this.#overview() as Record<string, unknown>;
        return json({
          ...overview,
          logs: this.tail.lines(),
          requests: this.tail.requests(),
          history: this.traffic.snapshot(),
        }, 200);
      }
      case "POST /api/renew":
        return await this.#renewNow(req);
      case "GET /api/config": {
        if (this.#session(req) === undefined) return json({ error: "sign in first" }, 401);
        return json(await this.#editor.load(), 200);
      }
      case "POST /api/config":
      case "POST /api/route":
        return await this.#changeConfig(req, pathname === "/api/route");
      case "GET /assets/dashboard.js":
        return asset(DASHBOARD_JS, "text/javascript; charset=utf-8");
      case "GET /assets/dashboard.css":
        return asset(DASHBOARD_CSS, "text/css; charset=utf-8");
      case "GET /assets/favicon.svg":
        return asset(FAVICON_SVG, "image/svg+xml");
    }
    if (
      ["/", "/login", "/logout", "/api/overview", "/api/renew", "/api/config", "/api/route"].includes(
        pathname,
      ) ||
      pathname.startsWith("/assets/")
    ) {
      return withHeaders(new Response("method not allowed\n", { status: 405 }));
    }
    return null;
  }

  #session(req: Request): Session | undefined {
    return this.#sessions.get(cookieValue([...req.headers], SESSION_COOKIE));
  }

  #loginForm(message: string | null, status: number, extra: Record<string, string> = {}, username = "") {
    const csrf = randomToken();
    const response = html(loginPage({ csrf, message, username }), status, extra);
    response.headers.append("set-cookie", cookie(LOGIN_COOKIE, csrf, LOGIN_FORM_S));
    return response;
  }

  async #login(req: Request, client: string): Promise<Response> {
    const form = await readForm(req);
    if (form === null) return text("expected a sign-in form\n", 400);
    const expected = cookieValue([...req.headers], LOGIN_COOKIE);
    if (expected === null || !sameSecret(form.get("csrf") ?? "", expected)) {
      // Another site's form, or a page kept open past 10 minutes: a fresh form, no password checked.
      return this.#loginForm("The sign-in form expired: please sign in again.", 403);
    }
    const username = form.get("username") ?? "";
    const admission = this.#limiter.admit(client);
    if (!admission.allowed) {
      const message = admission.reason === "locked"
        ? `Too many failed sign-ins from your address: try again in ${
          Math.ceil(admission.retryAfterS / 60)
        } minutes.`
        : "The server is checking other sign-ins: try again in a moment.";
      return this.#loginForm(message, 429, { "retry-after": String(admission.retryAfterS) }, username);
    }
    let good: boolean;
    try {
      // The password is checked even for a wrong user name: the time taken says nothing about which was wrong.
      const passwordGood = await bcryptVerify(form.get("password") ?? "", this.#admin.passwordHash);
      good = passwordGood && sameSecret(username, this.#admin.username);
    } finally {
      admission.release();
    }
    if (!good) {
      const locked = this.#limiter.fail(client);
      this.#log.warn("dashboard sign-in failed", { client, locked: locked || undefined });
      return this.#loginForm(
        locked
          ? "Too many failed sign-ins from your address: try again in 15 minutes."
          : "Wrong user name or password.",
        locked ? 429 : 401,
        {},
        username,
      );
    }
    this.#limiter.succeed(client);
    const session = this.#sessions.create(username);
    this.#log.info("dashboard sign-in", { client, user: username });
    const response = redirect("/");
    response.headers.append("set-cookie", cookie(SESSION_COOKIE, session.id, null));
    response.headers.append("set-cookie", cookie(LOGIN_COOKIE, "", 0));
    return response;
  }

  /**
   * The editor's save (`{ text, version }`) or the route form (`{ version, action, host, upstream | redirect }`),
   * with the session's token in X-CSRF-Token: 200 `{ version }` once written, 422 with the issues at their
   * lines (nothing written), 409 when the file changed meanwhile.
   */
  async #changeConfig(req: Request, route: boolean): Promise<Response> {
    const session = this.#session(req);
    if (session === undefined) return json({ error: "sign in first" }, 401);
    if (!sameSecret(req.headers.get("x-csrf-token") ?? "", session.csrf)) {
      return json({ error: "missing or wrong CSRF token: reload the page" }, 403);
    }
    const body = await readJson(req, MAX_CONFIG_BYTES) as Record<string, unknown> | null;
    const version = body?.version;
    if (body === null || typeof version !== "string") {
      return json({ error: "expected a JSON body with version" }, 400);
    }
    let result: SaveResult;
    if (route) {
      const change = routeChange(body);
      if (change === null) {
        return json(
          { error: 'expected {"action": "set", "host", "upstream" or "redirect"} or "remove"' },
          400,
        );
      }
      result = await this.#editor.changeRoute(change, version, session.username);
    } else {
      if (typeof body.text !== "string") return json({ error: "expected the config's text" }, 400);
      result = await this.#editor.save(body.text, version, session.username);
    }
    return result.saved ? json({ version: result.version }, 200) : json(result, result.status);
  }

  /** "Renew now": a JSON body `{ "names": [...] }` with the session's token in X-CSRF-Token. */
  async #renewNow(req: Request): Promise<Response> {
    const session = this.#session(req);
    if (session === undefined) return json({ error: "sign in first" }, 401);
    if (!sameSecret(req.headers.get("x-csrf-token") ?? "", session.csrf)) {
      return json({ error: "missing or wrong CSRF token: reload the page" }, 403);
    }
    if (this.#renew === null) {
      return json({ error: "nexo obtains no certificate here (issuer: internal)" }, 409);
    }
    const body = await readJson(req);
    const names = (body as { names?: unknown } | null)?.names;
    if (
      !Array.isArray(names) || names.length === 0 ||
      !names.every((n) => typeof n === "string" && n.length < 256)
    ) {
      return json({ error: 'expected {"names": ["example.com", ...]}' }, 400);
    }
    const outcome = this.#renew(names);
    if (outcome === "unknown") {
      return json({ error: `no configured certificate is for exactly ${names.join(", ")}` }, 404);
    }
    if (outcome === "running") return json({ error: "it is being renewed now" }, 409);
    this.#log.info("dashboard renewal requested", { user: session.username, names: names.join(",") });
    return json({ queued: names }, 202);
  }

  async #logout(req: Request): Promise<Response> {
    const session = this.#session(req);
    if (session === undefined) return redirect("/login");
    const form = await readForm(req);
    const token = req.headers.get("x-csrf-token") ?? form?.get("csrf") ?? "";
    if (!sameSecret(token, session.csrf)) return text("missing or wrong CSRF token: reload the page\n", 403);
    this.#sessions.delete(session.id);
    const response = redirect("/login");
    response.headers.append("set-cookie", cookie(SESSION_COOKIE, "", 0));
    return response;
  }
}

/** An urlencoded form of at most 4 KiB, or null for anything else. */
async function readForm(req: Request): Promise<URLSearchParams | null> {
  const type = req.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) return null;
  const body = await readBody(req, MAX_FORM_BYTES);
  return body === null ? null : new URLSearchParams(body);
}

/**
 * The body as text, or null past `maxBytes`: read chunk by chunk and cancelled there, so a chunked body
 * with no Content-Length cannot make nexo hold more (req.text() would read all of it first).
 */
async function readBody(req: Request, maxBytes: number): Promise<string | null> {
  if (Number(req.headers.get("content-length") ?? 0) > maxBytes || req.body === null) {
    await req.body?.cancel().catch(() => {});
    return req.body === null ? "" : null;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

/** The route form's fields as a RouteChange, or null when they are not one. */
function routeChange(body: Record<string, unknown>): RouteChange | null {
  const { action, host, upstream, redirect } = body;
  if (typeof host !== "string") return null;
  if (action === "remove") return { action, host };
  if (action !== "set") return null;
  if (typeof upstream === "string" && upstream.trim() !== "") return { action, host, upstream };
  if (typeof redirect === "string" && redirect.trim() !== "") return { action, host, redirect };
  return null;
}

/** A JSON body of at most `maxBytes` (4 KiB by default), or null. */
async function readJson(req: Request, maxBytes = MAX_FORM_BYTES): Promise<unknown> {
  if (!(req.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json")) return null;
  const body = await readBody(req, maxBytes);
  if (body === null) return null;
  try {
    return JSON.parse(body);
  } catch {
    return null;
  }
}

function sameSecret(given: string, expected: string): boolean {
  const encoder = new TextEncoder();
  return timingSafeEqual(encoder.encode(given), encoder.encode(expected));
}

/** An HttpOnly, SameSite=Strict cookie for the whole listener; `maxAgeS` null lasts the browser session. */
function cookie(name: string, value: string, maxAgeS: number | null): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Strict${
    maxAgeS === null ? "" : `; Max-Age=${maxAgeS}`
  }`;
}

function withHeaders(response: Response, extra: Record<string, string> = {}): Response {
  for (const [name, value] of Object.entries({ ...SECURITY_HEADERS, ...extra })) {
    response.headers.set(name, value);
  }
  return response;
}

function html(body: string, status = 200, extra: Record<string, string> = {}): Response {
  return withHeaders(
    new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8" } }),
    extra,
  );
}

function json(value: unknown, status: number): Response {
  return withHeaders(Response.json(value, { status }));
}

function text(body: string, status: number): Response {
  return withHeaders(
    new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } }),
  );
}

function asset(body: string, type: string): Response {
  return withHeaders(new Response(body, { headers: { "content-type": type } }), {
    "cache-control": "no-cache",
  });
}

function redirect(location: string): Response {
  return withHeaders(new Response(null, { status: 303, headers: { location } }));
}
