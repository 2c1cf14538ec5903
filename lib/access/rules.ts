// The access rules of a config, ready to check: networks parsed once, a rate limiter per route that keeps its
// buckets across reloads while the route's limit is unchanged, and sign-in (basic_auth.ts, then
// github_auth.ts, then forward_auth.ts; a reload starts basic_auth's remembered logins afresh, GitHub
// sessions outlive it). Imported only when a config has any rule (lib/server/run.ts), so a config without
// them loads none of this; github_auth.ts is imported only when the config has `auth:`.

import { type Cidr, inCidrs, parseCidr } from "../cidr.ts";
import type { Config, RateLimit, Route, RouteAccess } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { errorPage, pageBytes } from "../proxy/error_page.ts";
import type { HeaderList } from "../proxy/headers.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { BasicAuthGuard, challenge } from "./basic_auth.ts";
import { askAuthServer, withAuthHeaders } from "./forward_auth.ts";
import { clientAddress } from "../client_address.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { GitHubSignIn, Sessions, SignInRequest } from "./github_auth.ts";

/** Why a request is refused, and how. */
export type Refusal =
  | { status: 403; reason: "denied" | "not allowed" }
  | { status: 429; reason: "rate limited"; retryAfterS: number };

interface RouteRules {
  allow: Cidr[] | null;
  deny: Cidr[];
  limiter: RateLimiter | null;
  basic: BasicAuthGuard | null;
}

/** What sign-in (`basic_auth`, then `forward_auth`) makes of a request that passed the network rules. */
export type AuthOutcome =
  /** Let through, with the headers the upstream gets (credentials removed, auth headers copied). */
  | { kind: "allow"; headerList: HeaderList }
  /** Answered here: nexo's 401, a redirect to sign in, or the auth server's own answer. */
  | { kind: "deny"; response: Response; bytes: number; error: string; reason: string }
  /** Answered here, and not a refusal: one of GitHub sign-in's own pages (the session hand-over, sign-out). */
  | { kind: "answer"; response: Response; bytes: number }
  /** The auth server did not answer. */
  | { kind: "unavailable"; error: string };

export class AccessRules {
  readonly #deny: Cidr[];
  readonly #routes: Map<string, RouteRules>;
  readonly #sessions: Sessions | null;
  readonly #github: GitHubSignIn | null;

  private constructor(
    deny: Cidr[],
    routes: Map<string, RouteRules>,
    github: { sessions: Sessions; signIn: GitHubSignIn } | null,
  ) {
    this.#deny = deny;
    this.#routes = routes;
    this.#sessions = github?.sessions ?? null;
    this.#github = github?.signIn ?? null;
  }

  /**
   * The rules of `config`; a route whose rate limit is unchanged from `previous` keeps its buckets, and
   * GitHub sessions keep their signing key.
   */
  static async fromConfig(config: Config, previous: AccessRules | null, log: Logger): Promise<AccessRules> {
    const routes = new Map<string, RouteRules>();
    for (const route of config.routes) {
      if (route.access === null) continue;
      const { allow, deny, rateLimit, basicAuth } = route.access;
      const kept = previous === null ? undefined : previous.#routes.get(route.host)?.limiter;
      routes.set(route.host, {
        allow: allow === null ? null : allow.map(parseCidr),
        deny: deny.map(parseCidr),
        limiter: rateLimit === null
          ? null
          : kept !== undefined && kept !== null && sameLimit(kept.limit, rateLimit)
          ? kept
          : new RateLimiter(rateLimit),
        basic: basicAuth === null ? null : new BasicAuthGuard(basicAuth),
      });
    }
    let github = null;
    if (config.auth !== null) {
      const { GitHubSignIn, openSessions } = await import("./github_auth.ts");
      const sessions = (previous === null ? null : previous.#sessions) ??
        await openSessions(config.baseDir, log);
      github = { sessions, signIn: new GitHubSignIn(config.auth, sessions, log) };
    }
    return new AccessRules(config.deny.map(parseCidr), routes, github);
  }

  /** The address the rules judge: the socket's, or the client a trusted proxy names (client_address.ts). */
  clientOf(socketIp: string, forwardedFor: string | null, trusted: readonly Cidr[]): string {
    return clientAddress(socketIp, forwardedFor, trusted);
  }

  /**
   * Sign-in for a route with `basic_auth`, `github_auth` or `forward_auth` (in that order), after its network
   * rules passed: whether the request goes on, and with which headers.
   */
  async authenticate(
    pool: UpstreamPool,
    routeHost: string,
    access: RouteAccess,
    request: SignInRequest,
  ): Promise<AuthOutcome> {
    let headerList = request.headerList;
    const basic = this.#routes.get(routeHost)?.basic ?? null;
    if (basic !== null) {
      const authorization = headerList.find(([name]) => name === "authorization")?.[1] ?? null;
      const failure = await basic.check(authorization, Date.now());
      if (failure !== null) {
        const page = errorPage(401, "Sign in to reach this site.");
        page.headers.set("www-authenticate", challenge(basic.realm));
        return {
          kind: "deny",
          response: page,
          bytes: pageBytes(page),
          error: failure,
          reason: "unauthorized",
        };
      }
      if (!basic.passCredentials) headerList = headerList.filter(([name]) => name !== "authorization");
    }
    if (access.githubAuth !== null) {
      // parse.ts refuses github_auth without `auth:`, so the sign-in is there.
      const outcome = await this.#github!.guard({ ...request, headerList }, access.githubAuth, Date.now());
      if (outcome.kind !== "allow") return outcome;
      headerList = outcome.headerList;
    }
    const forwardAuth = access.forwardAuth;
    if (forwardAuth === null) return { kind: "allow", headerList };
    const verdict = await askAuthServer(pool, forwardAuth, { ...request, headerList });
    switch (verdict.kind) {
      case "allow":
        return { kind: "allow", headerList: withAuthHeaders(headerList, forwardAuth, verdict.copy) };
      case "deny":
        // The auth server's answer as it is: a 302 to its login page, a 401 with its challenge.
        return { ...verdict, error: "refused by forward_auth", reason: "auth refused" };
      case "unavailable":
        return verdict;
    }
  }

  /** The sign-in host's own pages (`auth.host`: GitHub's OAuth start and callback). */
  async signInHost(
    pool: UpstreamPool,
    request: SignInRequest,
    routeFor: (host: string) => Route | undefined,
  ): Promise<Exclude<AuthOutcome, { kind: "allow" }>> {
    // parse.ts adds the sign-in route only with `auth:`, so the sign-in is there.
    return await this.#github!.serve(request, { pool, routeFor, nowMs: Date.now() });
  }

  /** Whether the top-level `deny` refuses `client` everywhere. */
  deniedEverywhere(client: string): boolean {
    return this.#deny.length > 0 && inCidrs(client, this.#deny);
  }

  /** The route's own rules for `client` at `nowMs`, in order: deny, allow, rate limit. */
  check(routeHost: string, client: string, nowMs: number): Refusal | null {
    const rules = this.#routes.get(routeHost);
    if (rules === undefined) return null;
    if (rules.deny.length > 0 && inCidrs(client, rules.deny)) return { status: 403, reason: "denied" };
    if (rules.allow !== null && !inCidrs(client, rules.allow)) return { status: 403, reason: "not allowed" };
    if (rules.limiter !== null) {
      const retryAfterS = rules.limiter.take(client, nowMs);
      if (retryAfterS > 0) return { status: 429, reason: "rate limited", retryAfterS };
    }
    return null;
  }
}

function sameLimit(a: RateLimit, b: RateLimit): boolean {
  return a.requests === b.requests && a.perMs === b.perMs && a.burst === b.burst;
}
