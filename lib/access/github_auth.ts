// `github_auth`: routes only GitHub users on an allowlist may reach, signed in through one sign-in host
// (`auth.host`) for every such route, with GitHub's OAuth web flow:
//
// 1. A browser without a session on a protected host (notes.example.com) is sent to
//    https://auth.example.com/oauth2/start?rd=<the URL it asked for>.
// 2. The sign-in host remembers a random `state` in a short-lived cookie of its own and sends the browser to
//    GitHub's authorize page with it.
// 3. GitHub sends the browser back to /oauth2/callback with a code and that state. The state must match the
//    cookie (so a callback this browser did not start, a login CSRF, is refused); the code is traded for the
//    GitHub login (github_api.ts), which must be on the protected route's allowlist (else a 403 page).
// 4. The browser goes back to the protected host with a one-time ticket (signed, valid a minute), at
//    /.nexo/auth/session; that host sets its own session cookie (signed, host-only, expires after
//    `auth.session_ttl`) and sends the browser on to the URL it first asked for.
//
// Every token is signed by signed_token.ts under the key of session_key.ts. The upstream never sees the
// session cookie; it gets the login in X-Forwarded-User (a client's own X-Forwarded-User is removed).
// Imported only when a config has `auth:` (rules.ts).

import type { GitHubAuth, Route, SignInConfig } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import { errorPage, noticePage, pageBytes } from "../proxy/error_page.ts";
import type { HeaderList } from "../proxy/headers.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { timingSafeEqual } from "../auth/constant_time.ts";
import { cookieValue, hostCookie, withoutCookie } from "../cookies.ts";
import { authorizeUrl, signedInLogin } from "./github_api.ts";
import { loadSessionKey } from "./session_key.ts";
import { randomToken, type TokenPayload, TokenSigner } from "./signed_token.ts";

/** The session cookie on a protected host. */
export const SESSION_COOKIE = "__Host-nexo_session";
/** Paths nexo answers itself on a protected host: the hand-over from the sign-in host, and signing out. */
export const SESSION_PATH = "/.nexo/auth/session";
export const SIGN_OUT_PATH = "/.nexo/auth/sign-out";
export const START_PATH = "/oauth2/start";
export const CALLBACK_PATH = "/oauth2/callback";
/** The header the upstream reads the signed-in GitHub login from (oauth2-proxy's and Authelia's name). */
export const USER_HEADER = "x-forwarded-user";
/** The state cookie's name is this plus the state's first characters, so sign-ins in two tabs do not clash. */
const STATE_COOKIE_PREFIX = "__Host-nexo_oauth_";
/** Time from leaving for GitHub to coming back: a person may have to type a password and a 2FA code. */
const STATE_TTL_MS = 10 * 60_000;
/** A ticket rides in a URL: it is good once, for a minute. */
const TICKET_TTL_MS = 60_000;
/** Clock drift tolerated on a session's issue time (several processes may share a key later). */
const CLOCK_SKEW_MS = 60_000;
/** Tickets remembered as used; far above what a minute of sign-ins brings (each needs a GitHub round trip). */
const MAX_USED_TICKETS = 10_000;

/** A request as sign-in sees it. */
export interface SignInRequest {
  method: string;
  url: URL;
  headerList: HeaderList;
  /** Whether it asks for a WebSocket: such a request cannot follow a redirect to sign in. */
  upgrade: boolean;
  /** The client's address (after trusted_proxies), for the log. */
  client: string;
  signal: AbortSignal;
}

export type SignInOutcome =
  /** Signed in and allowed: the headers for the upstream (session cookie out, X-Forwarded-User in). */
  | { kind: "allow"; headerList: HeaderList }
  /** Refused: sent to sign in (302), told to (401), or not on the allowlist (403). */
  | { kind: "deny"; response: Response; bytes: number; error: string; reason: string }
  /** One of nexo's own sign-in pages or redirects, which is not a refusal. */
  | { kind: "answer"; response: Response; bytes: number };

/** What sign-in answers itself: every outcome but "allow". */
export type SignInAnswer = Exclude<SignInOutcome, { kind: "allow" }>;

/** What outlives a reload: the signing key and the tickets already used. */
export interface Sessions {
  signer: TokenSigner;
  usedTickets: Map<string, number>;
}

/** The signing key from `base_dir` (made there on first use); logs when it can be kept only in memory. */
export async function openSessions(baseDir: string, log: Logger): Promise<Sessions> {
  const key = await loadSessionKey(baseDir);
  if (key.problem !== null) {
    log.warn("sign-in key kept in memory only", {
      error: key.problem,
      fix: "make base_dir writable by nexo; until then a restart signs everyone out",
    });
  }
  return { signer: await TokenSigner.create(key.secret), usedTickets: new Map() };
}

export class GitHubSignIn {
  readonly #config: SignInConfig;
  readonly #sessions: Sessions;
  readonly #log: Logger;

  constructor(config: SignInConfig, sessions: Sessions, log: Logger) {
    this.#config = config;
    this.#sessions = sessions;
    this.#log = log;
  }

  /** Checks a request to a route with `github_auth`: its session, or the way to get one. */
  async guard(request: SignInRequest, rule: GitHubAuth, nowMs: number): Promise<SignInOutcome> {
    const { url } = request;
    if (url.pathname === SESSION_PATH) return await this.#takeTicket(request, nowMs);
    if (url.pathname === SIGN_OUT_PATH) {
      return answer(
        noticePage("Signed out", `You are signed out of ${url.hostname}.`),
        hostCookie(SESSION_COOKIE, "", 0),
      );
    }
    const session = await this.#session(request, nowMs);
    if (session !== null) {
      if (!rule.allowedUsers.includes(session.toLowerCase())) {
        return deny(
          errorPage(
            403,
            `You are signed in with GitHub as ${session}, who may not reach this site. Ask its operator to ` +
              `let you in, or sign out at ${SIGN_OUT_PATH} and sign in as another GitHub user.`,
          ),
          { error: `GitHub user ${session} is not allowed`, reason: "user not allowed" },
        );
      }
      const headerList = withoutCookie(request.headerList, SESSION_COOKIE).filter(([name]) =>
        name !== USER_HEADER
      );
      return { kind: "allow", headerList: [...headerList, [USER_HEADER, session]] };
    }
    if ((request.method !== "GET" && request.method !== "HEAD") || request.upgrade) {
      const page = errorPage(401, `Sign in first: open https://${url.host}/ in a browser.`);
      // RFC 9110 §15.5.2: a 401 names how to authenticate; here, a browser sign-in.
      page.headers.set("www-authenticate", `GitHub realm="${url.hostname}"`);
      return deny(page, { error: "not signed in", reason: "sign-in required" });
    }
    const start = new URL(`https://${this.#config.host}${url.port ? `:${url.port}` : ""}${START_PATH}`);
    start.searchParams.set("rd", `https://${url.host}${url.pathname}${url.search}`);
    return deny(redirect(start.href), { error: "not signed in", reason: "sign-in required" });
  }

  /** The sign-in host's pages: /oauth2/start and /oauth2/callback. */
  async serve(
    request: SignInRequest,
    context: { pool: UpstreamPool; routeFor: (host: string) => Route | undefined; nowMs: number },
  ): Promise<SignInAnswer> {
    const { url } = request;
    if (request.method !== "GET" && request.method !== "HEAD") {
      const page = errorPage(405, "This host only serves sign-in pages to browsers.");
      page.headers.set("allow", "GET, HEAD"); // RFC 9110 §15.5.6
      return answer(page);
    }
    if (url.pathname === START_PATH) return await this.#start(request, context);
    if (url.pathname === CALLBACK_PATH) return await this.#callback(request, context);
    return answer(errorPage(404, "This host only serves sign-in pages."));
  }

  async #start(
    request: SignInRequest,
    context: { routeFor: (host: string) => Route | undefined; nowMs: number },
  ): Promise<SignInAnswer> {
    const github = this.#config.github;
    const target = protectedTarget(request.url.searchParams.get("rd"), context.routeFor);
    if (github === null || target === null) {
      return answer(
        errorPage(400, "This sign-in link does not lead to a site that signs in with GitHub here."),
      );
    }
    const state = randomToken();
    const cookie = await this.#sessions.signer.sign({
      k: "state",
      n: state,
      r: target.href,
      e: context.nowMs + STATE_TTL_MS,
    });
    const authorize = authorizeUrl(github, { redirectUri: this.#callbackUri(request.url), state });
    return answer(redirect(authorize), hostCookie(stateCookieName(state), cookie, STATE_TTL_MS / 1000));
  }

  async #callback(
    request: SignInRequest,
    context: { pool: UpstreamPool; routeFor: (host: string) => Route | undefined; nowMs: number },
  ): Promise<SignInAnswer> {
    const params = request.url.searchParams;
    const state = params.get("state") ?? "";
    const cookieName = stateCookieName(state);
    const clear = hostCookie(cookieName, "", 0);
    const started = await this.#verify(cookieValue(request.headerList, cookieName), "state", context.nowMs);
    const stale = "This sign-in was not started in this browser, or took longer than 10 minutes; go back " +
      "to the site and sign in again.";
    // A refused state leaves the cookie alone: a forged callback must not end this browser's own sign-in.
    if (started === null || typeof started.n !== "string" || typeof started.r !== "string") {
      return deny(
        errorPage(400, stale),
        { error: "sign-in state missing or invalid", reason: "bad state" },
      );
    }
    if (!timingSafeEqual(encode(state), encode(started.n))) {
      return deny(
        errorPage(400, stale),
        { error: "sign-in state does not match", reason: "bad state" },
      );
    }
    const target = new URL(started.r);
    const code = params.get("code");
    if (code === null || code === "") {
      // GitHub's error=access_denied: the person declined on GitHub's page.
      const error = params.get("error") ?? "no code";
      return deny(
        errorPage(403, `GitHub did not sign you in (${error}). Go back to the site to try again.`),
        { error: `GitHub sign-in not completed: ${error}`, reason: "sign-in declined" },
        clear,
      );
    }
    let login: string;
    try {
      login = await signedInLogin(context.pool, this.#config.github!, {
        code,
        redirectUri: this.#callbackUri(request.url),
        signal: request.signal,
      });
    } catch (error) {
      if (!request.signal.aborted) {
        this.#log.warn("github sign-in failed", { host: target.hostname, error: errorMessage(error) });
      }
      return deny(
        errorPage(502, "GitHub did not confirm the sign-in. Go back to the site to try again."),
        { error: "GitHub did not confirm the sign-in", reason: "auth unavailable" },
        clear,
      );
    }
    const rule = githubRule(context.routeFor(target.hostname));
    if (rule === null || !rule.allowedUsers.includes(login.toLowerCase())) {
      this.#log.warn("sign-in refused", { host: target.hostname, user: login, client: request.client });
      return deny(
        errorPage(
          403,
          `You signed in with GitHub as ${login}, who may not reach ${target.hostname}. Ask its operator to ` +
            `let you in, or sign out of GitHub and sign in as another user.`,
        ),
        { error: `GitHub user ${login} is not allowed`, reason: "user not allowed" },
        clear,
      );
    }
    this.#log.info("signed in", { host: target.hostname, user: login, client: request.client });
    const ticket = await this.#sessions.signer.sign({
      k: "ticket",
      u: login,
      h: target.hostname,
      p: target.pathname + target.search,
      n: randomToken(),
      e: context.nowMs + TICKET_TTL_MS,
    });
    const handOver = new URL(`https://${target.host}${SESSION_PATH}`);
    handOver.searchParams.set("ticket", ticket);
    return answer(redirect(handOver.href), clear);
  }

  /** /.nexo/auth/session on a protected host: a ticket from the sign-in host becomes this host's session. */
  async #takeTicket(request: SignInRequest, nowMs: number): Promise<SignInAnswer> {
    const { url } = request;
    const ticket = await this.#verify(url.searchParams.get("ticket"), "ticket", nowMs);
    const { u: user, p: path, n: nonce, e: expires } = ticket ?? {};
    if (
      ticket === null || ticket.h !== url.hostname || typeof user !== "string" || typeof path !== "string" ||
      typeof nonce !== "string" || typeof expires !== "number" || !this.#useTicket(nonce, expires, nowMs)
    ) {
      return deny(
        errorPage(
          400,
          "This sign-in link has expired or was used already; reload the site to sign in again.",
        ),
        { error: "sign-in ticket invalid, expired or reused", reason: "bad ticket" },
      );
    }
    const session = await this.#sessions.signer.sign({ k: "session", u: user, h: url.hostname, i: nowMs });
    // Absolute, on this host: a path like "//elsewhere" must not become a redirect to another site.
    return answer(
      redirect(`https://${url.host}${path}`),
      hostCookie(SESSION_COOKIE, session, Math.floor(this.#config.sessionTtlMs / 1000)),
    );
  }

  /** The GitHub login of the request's valid session for its host, or null. */
  async #session(request: SignInRequest, nowMs: number): Promise<string | null> {
    const payload = await this.#verify(cookieValue(request.headerList, SESSION_COOKIE), "session", null);
    if (payload === null || payload.h !== request.url.hostname || typeof payload.u !== "string") return null;
    const issued = payload.i;
    if (typeof issued !== "number" || issued > nowMs + CLOCK_SKEW_MS) return null;
    // Checked against today's session_ttl, so shortening it applies to sessions already given out.
    return nowMs < issued + this.#config.sessionTtlMs ? payload.u : null;
  }

  /** The payload of a token of `kind` signed here and, with `nowMs`, not past its `e`xpiry; else null. */
  async #verify(token: string | null, kind: string, nowMs: number | null): Promise<TokenPayload | null> {
    if (token === null || token === "") return null;
    const payload = await this.#sessions.signer.verify(token);
    if (payload === null || payload.k !== kind) return null;
    if (nowMs !== null && !(typeof payload.e === "number" && nowMs < payload.e)) return null;
    return payload;
  }

  /** Marks ticket `nonce` used; false when it was already (or too many are remembered to tell). */
  #useTicket(nonce: string, expiresMs: number, nowMs: number): boolean {
    const used = this.#sessions.usedTickets;
    if (used.has(nonce)) return false;
    if (used.size >= MAX_USED_TICKETS) {
      for (const [seen, expiry] of used) if (expiry <= nowMs) used.delete(seen);
      if (used.size >= MAX_USED_TICKETS) return false;
    }
    used.set(nonce, expiresMs);
    return true;
  }

  /** The callback URL GitHub sends the browser back to (registered in the OAuth app as is, with the port). */
  #callbackUri(url: URL): string {
    return `https://${this.#config.host}${url.port ? `:${url.port}` : ""}${CALLBACK_PATH}`;
  }
}

/** `rd` when it is an https URL of a host whose route has `github_auth`; else null (no open redirect). */
function protectedTarget(rd: string | null, routeFor: (host: string) => Route | undefined): URL | null {
  if (rd === null || !URL.canParse(rd)) return null;
  const target = new URL(rd);
  if (target.protocol !== "https:" || target.username !== "" || target.password !== "") return null;
  return githubRule(routeFor(target.hostname)) === null ? null : target;
}

function githubRule(route: Route | undefined): GitHubAuth | null {
  return route?.access?.githubAuth ?? null;
}

function stateCookieName(state: string): string {
  return STATE_COOKIE_PREFIX + state.slice(0, 8).replace(/[^A-Za-z0-9_-]/g, "");
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A 302 that tells no one where it came from: the URLs here carry a return address, a state or a ticket. */
function redirect(location: string): Response {
  return new Response(null, {
    status: 302,
    headers: { location, "cache-control": "no-store", "referrer-policy": "no-referrer" },
  });
}

function deny(
  response: Response,
  why: { error: string; reason: string },
  setCookie?: string,
): SignInAnswer {
  if (setCookie !== undefined) response.headers.append("set-cookie", setCookie);
  return { kind: "deny", response, bytes: pageBytes(response), ...why };
}

function answer(response: Response, setCookie?: string): SignInAnswer {
  if (setCookie !== undefined) response.headers.append("set-cookie", setCookie);
  return { kind: "answer", response, bytes: pageBytes(response) };
}
