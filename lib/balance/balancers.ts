// Every balanced route's balancer, kept for the life of the process: a reload builds the routes' balancers
// again but keeps the health of each upstream whose route still lists it with the same health settings, and
// runs one active check per such upstream (not one per route that lists it). Imported only when a config has
// a route with several upstreams, `lb`, health checks or `retry` (lib/server/run.ts).

import type { Balancing, Config, HealthCheck, ProxyRoute } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { RouteBalancer } from "./route_balancer.ts";
import { healthKey, UpstreamHealth } from "./upstream_health.ts";
import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";

/** An upstream's state for /status. */
export interface UpstreamStatus {
  url: string;
  healthy: boolean;
  in_flight: number;
  requests: number;
  failures: number;
  last_error: string | null;
}

type BalancedRoute = ProxyRoute & { balancing: Balancing };

export class Balancers {
  readonly #pool: UpstreamPool;
  readonly #log: Logger;
  /** Key for the lb cookie's ids: random per process (a restart re-pins clients, as a new upstream list would). */
  readonly #cookieKey: CryptoKey;
  #members = new Map<string, UpstreamHealth>();
  #routes = new Map<string, RouteBalancer>();
  #checks = new Map<string, Timer>();

  private constructor(pool: UpstreamPool, log: Logger, cookieKey: CryptoKey) {
    this.#pool = pool;
    this.#log = log;
    this.#cookieKey = cookieKey;
  }

  static async create(pool: UpstreamPool, log: Logger): Promise<Balancers> {
    const key = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Balancers(pool, log, key);
  }

  /** Rebuilds the balancers for `config`'s routes, keeping the health of what did not change. */
  async update(config: Config): Promise<void> {
    const members = new Map<string, UpstreamHealth>();
    const routes = new Map<string, RouteBalancer>();
    for (const route of config.routes) {
      if (route.kind !== "proxy" || route.balancing === null) continue;
      const balanced = route as BalancedRoute;
      const { healthCheck, passiveHealth } = balanced.balancing;
      const tls = route.upstreamTls?.material ?? null;
      const list = route.upstreams.map((upstream) => {
        const key = healthKey(upstream, healthCheck, passiveHealth, tls);
        const member = members.get(key) ?? this.#members.get(key) ??
          new UpstreamHealth(upstream, healthCheck, passiveHealth, tls);
        members.set(key, member);
        return member;
      });
      const ids = await Promise.all(route.upstreams.map((upstream) => this.#cookieId(route.host, upstream)));
      routes.set(route.host, new RouteBalancer(balanced, list, { ids, log: this.#log }));
    }
    this.#members = members;
    this.#routes = routes;
    for (const [key, timer] of this.#checks) {
      if (members.has(key)) continue;
      stopTimer(timer);
      this.#checks.delete(key);
    }
    for (const [key, member] of members) {
      if (member.check !== null && !this.#checks.has(key)) this.#scheduleCheck(key, member, member.check, 0);
    }
  }

  /** The balancer of the route for `host` (a route key), if it is balanced. */
  get(host: string): RouteBalancer | undefined {
    return this.#routes.get(host);
  }

  /** Each balanced route's upstreams and their state, for /status. */
  status(): Record<string, UpstreamStatus[]> {
    const now = Date.now();
    return Object.fromEntries(
      [...this.#routes].map(([host, balancer]) => [
        host,
        balancer.members.map((member) => ({
          url: member.upstream.href,
          healthy: member.healthy(now),
          in_flight: member.inFlight,
          requests: member.requests,
          failures: member.failed,
          last_error: member.lastError,
        })),
      ]),
    );
  }

  /** Stops every health check. */
  stop(): void {
    for (const timer of this.#checks.values()) stopTimer(timer);
    this.#checks.clear();
  }

  #scheduleCheck(key: string, member: UpstreamHealth, check: HealthCheck, delayMs: number): void {
    const timer = startTimer(async () => {
      const error = await this.#probe(member, check);
      const change = member.checked(error === null, error, Date.now());
      if (change !== null) {
        const routes = [...this.#routes.values()].filter((r) => r.members.includes(member)).map((r) =>
          r.host
        );
        const fields = { upstream: member.upstream.host, routes: routes.join(","), by: "health check" };
        if (change) this.#log.info("upstream up", fields);
        else this.#log.warn("upstream down", { ...fields, error });
      }
      // Still wanted (a reload may have stopped it while the probe ran): the next one.
      if (this.#checks.get(key) === timer) this.#scheduleCheck(key, member, check, check.intervalMs);
    }, delayMs);
    unrefTimer(timer);
    this.#checks.set(key, timer);
  }

  /** One check: null when the upstream answered the path with a healthy status, else why not. */
  async #probe(member: UpstreamHealth, check: HealthCheck): Promise<string | null> {
    const url = new URL(check.path, member.upstream);
    try {
      const response = await this.#pool.request({
        method: "GET",
        url,
        headers: [["host", url.host], ["user-agent", "nexo health check"]],
        body: null,
        bodyLength: null,
        responseTimeoutMs: check.timeoutMs,
        bodyTimeoutMs: check.timeoutMs,
        tls: member.tls,
      });
      // A small body is read so the connection goes back to the pool; a large one is not worth it.
      if (response.hasBody && (response.contentLength ?? Infinity) <= 64 * 1024) await response.bytes();
      else await response.body?.cancel().catch(() => {});
      const { min, max } = check.status;
      return response.status >= min && response.status <= max
        ? null
        : `health check ${check.path} answered ${response.status}`;
    } catch (error) {
      return `health check ${check.path} failed: ${errorMessage(error)}`;
    }
  }

  async #cookieId(host: string, upstream: URL): Promise<string> {
    const mac = await crypto.subtle.sign(
      "HMAC",
      this.#cookieKey,
      new TextEncoder().encode(`${host} ${upstream.href}`),
    );
    return new Uint8Array(mac).subarray(0, 12).toBase64({ alphabet: "base64url", omitPadding: true });
  }
}
