// The access rules of a config, ready to check: networks parsed once, a rate limiter per route that keeps its
// buckets across reloads while the route's limit is unchanged. Imported only when a config has any rule
// (lib/server/run.ts), so a config without them loads none of this.

import { type Cidr, inCidrs, parseCidr } from "../cidr.ts";
import type { Config, ForwardAuth, RateLimit } from "../config/types.ts";
import type { HeaderList } from "../proxy/headers.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { askAuthServer, type AuthRequest, type AuthVerdict, withAuthHeaders } from "./forward_auth.ts";
import { clientAddress } from "./client_address.ts";
import { RateLimiter } from "./rate_limit.ts";

/** Why a request is refused, and how. */
export type Refusal =
  | { status: 403; reason: "denied" | "not allowed" }
  | { status: 429; reason: "rate limited"; retryAfterS: number };

interface RouteRules {
  allow: Cidr[] | null;
  deny: Cidr[];
  limiter: RateLimiter | null;
}

export class AccessRules {
  readonly #deny: Cidr[];
  readonly #routes: Map<string, RouteRules>;

  private constructor(deny: Cidr[], routes: Map<string, RouteRules>) {
    this.#deny = deny;
    this.#routes = routes;
  }

  /** The rules of `config`; a route whose rate limit is unchanged from `previous` keeps its buckets. */
  static fromConfig(config: Config, previous: AccessRules | null): AccessRules {
    const routes = new Map<string, RouteRules>();
    for (const route of config.routes) {
      if (route.access === null) continue;
      const { allow, deny, rateLimit } = route.access;
      const kept = previous === null ? undefined : previous.#routes.get(route.host)?.limiter;
      routes.set(route.host, {
        allow: allow === null ? null : allow.map(parseCidr),
        deny: deny.map(parseCidr),
        limiter: rateLimit === null
          ? null
          : kept !== undefined && kept !== null && sameLimit(kept.limit, rateLimit)
          ? kept
          : new RateLimiter(rateLimit),
      });
    }
    return new AccessRules(config.deny.map(parseCidr), routes);
  }

  /** The address the rules judge: the socket's, or the client a trusted proxy names (client_address.ts). */
  clientOf(socketIp: string, forwardedFor: string | null, trusted: readonly Cidr[]): string {
    return clientAddress(socketIp, forwardedFor, trusted);
  }

  /** The auth server's verdict on a request to a route with `forward_auth` (forward_auth.ts). */
  authorize(pool: UpstreamPool, auth: ForwardAuth, request: AuthRequest): Promise<AuthVerdict> {
    return askAuthServer(pool, auth, request);
  }

  /** The upstream request's headers once the auth server let it through with `copy`. */
  authorizedHeaders(headerList: HeaderList, auth: ForwardAuth, copy: Array<[string, string]>): HeaderList {
    return withAuthHeaders(headerList, auth, copy);
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
