// One balanced route's upstreams at work: which one a request goes to (pick.ts, among the healthy ones), the
// retry on another after a failure the route's `retry` names (never re-sending a body that cannot be sent
// again), the failures passive health counts, requests in flight for least_conn, and the cookie that pins a
// client for `lb: cookie`. When every upstream is out, the one that failed longest ago is tried anyway: a
// likely 502 beats a certain one.

import type { Balancing, ProxyRoute } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import type { Logger } from "../log.ts";
import type { Attempt, Dispatch, DispatchContext, Dispatched } from "../proxy/forward.ts";
import type { HeaderList } from "../proxy/headers.ts";
import { UpstreamError } from "../proxy/upstream_client.ts";
import { cookieValue } from "../cookies.ts";
import { pickUpstream } from "./pick.ts";
import type { UpstreamHealth } from "./upstream_health.ts";

/** The cookie `lb: cookie` pins a client with (host-only, like nexo's other cookies). */
export const LB_COOKIE = "__Host-nexo_lb";
/** Methods a client may repeat without a different effect (RFC 9110 §9.2.2). */
const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
/** "All upstreams down" is logged at most this often per route. */
const ALL_DOWN_LOG_EVERY_MS = 10_000;

/** An upstream chosen for a WebSocket (no retry: a connection is balanced once, when it opens). */
export interface Chosen {
  upstream: URL;
  setCookie: string | null;
  /** Reports how the connection went: null when it opened, else why not; then counts it done. */
  release: (error: string | null) => void;
}

export class RouteBalancer {
  readonly host: string;
  readonly members: readonly UpstreamHealth[];
  readonly #balancing: Balancing;
  /** Cookie ids, one per member, for `lb: cookie`. */
  readonly #ids: readonly string[];
  readonly #log: Logger;
  #turn = 0;
  #allDownLoggedAt = 0;

  constructor(
    route: ProxyRoute & { balancing: Balancing },
    members: readonly UpstreamHealth[],
    options: { ids: readonly string[]; log: Logger },
  ) {
    this.host = route.host;
    this.members = members;
    this.#balancing = route.balancing;
    this.#ids = options.ids;
    this.#log = options.log;
  }

  /** The dispatcher for one request from `client` (forward.ts calls it with its one-try function). */
  dispatcher(client: string, headerList: HeaderList): Dispatch {
    return (attempt, context) => this.#dispatch(attempt, context, { client, headerList });
  }

  /** One upstream for a WebSocket from `client`. */
  choose(client: string, headerList: HeaderList): Chosen {
    const member = this.#choose(client, headerList, new Set());
    member.inFlight++;
    member.requests++;
    let released = false;
    return {
      upstream: member.upstream,
      setCookie: this.#cookieFor(member, headerList),
      release: (error) => {
        if (released) return;
        released = true;
        member.inFlight--;
        if (error !== null) this.#failed(member, error);
      },
    };
  }

  async #dispatch(
    attempt: Attempt,
    context: DispatchContext,
    request: { client: string; headerList: HeaderList },
  ): Promise<Dispatched> {
    const { retry } = this.#balancing;
    const deadline = Date.now() + context.timeoutMs;
    const tried = new Set<UpstreamHealth>();
    for (let attempts = 1;; attempts++) {
      const member = this.#choose(request.client, request.headerList, tried);
      tried.add(member);
      member.inFlight++;
      member.requests++;
      const more = attempts < retry.tries;
      try {
        const response = await attempt(member.upstream, Math.max(1, deadline - Date.now()));
        if (response.status >= 500) this.#failed(member, `answered ${response.status}`);
        if (more && retry.on.includes(response.status) && context.replayable) {
          member.inFlight--;
          await response.body?.cancel().catch(() => {});
          continue;
        }
        let released = false;
        return {
          response,
          upstream: member.upstream,
          setCookie: this.#cookieFor(member, request.headerList),
          release: () => {
            if (!released) member.inFlight--;
            released = true;
          },
        };
      } catch (error) {
        member.inFlight--;
        if (!(error instanceof UpstreamError)) throw error; // the client left, or a bug: not the upstream's
        this.#failed(member, errorMessage(error));
        // A connection that broke before the response head (an upstream killed or restarted mid-request) counts
        // as connect_error, as nginx's proxy_next_upstream error does: but the request may have reached the
        // app, so only an idempotent, replayable one goes elsewhere.
        const condition = error.kind === "connect" || error.kind === "reset"
          ? "connect_error"
          : error.kind === "timeout"
          ? "timeout"
          : null;
        const allowed = error.kind === "connect"
          ? context.untouched()
          : context.replayable && IDEMPOTENT.has(context.method);
        if (
          !more || condition === null || !retry.on.includes(condition) || !allowed || Date.now() >= deadline
        ) {
          throw error;
        }
      }
    }
  }

  /**
   * A healthy member not tried yet, by the route's policy; else the one that failed longest ago. Once every
   * member was tried, they are all candidates again (a route with one upstream retries that one).
   */
  #choose(client: string, headerList: HeaderList, tried: Set<UpstreamHealth>): UpstreamHealth {
    const now = Date.now();
    const fresh = this.members.filter((member) => !tried.has(member));
    const untried = fresh.length > 0 ? fresh : this.members;
    const healthy = untried.filter((member) => member.healthy(now));
    const turn = this.#turn++;
    if (healthy.length > 0) {
      return pickUpstream(this.#balancing.lb, healthy, { client, pinned: this.#pinned(headerList), turn })!;
    }
    const fallback = untried.reduce((a, b) => (b.lastFailureAt < a.lastFailureAt ? b : a));
    if (now - this.#allDownLoggedAt >= ALL_DOWN_LOG_EVERY_MS) {
      this.#allDownLoggedAt = now;
      this.#log.warn("all upstreams down", {
        host: this.host,
        trying: fallback.upstream.host,
        why: "every upstream failed its checks or recent requests; trying the one that failed longest ago",
      });
    }
    return fallback;
  }

  #failed(member: UpstreamHealth, error: string): void {
    if (member.requestFailed(error, Date.now())) {
      this.#log.warn("upstream down", {
        host: this.host,
        upstream: member.upstream.host,
        by: "passive health",
        error,
        retry_in_ms: member.passive?.failWindowMs,
      });
    }
  }

  /** The member the client's lb cookie names, for `lb: cookie`. */
  #pinned(headerList: HeaderList): UpstreamHealth | null {
    if (this.#balancing.lb !== "cookie") return null;
    const id = cookieValue(headerList, LB_COOKIE);
    const index = id === null ? -1 : this.#ids.indexOf(id);
    return index === -1 ? null : this.members[index]!;
  }

  /** A Set-Cookie pinning the client to `member` (lb: cookie), unless its cookie already does. */
  #cookieFor(member: UpstreamHealth, headerList: HeaderList): string | null {
    if (this.#balancing.lb !== "cookie" || this.#pinned(headerList) === member) return null;
    const id = this.#ids[this.members.indexOf(member)]!;
    return `${LB_COOKIE}=${id}; Path=/; Secure; HttpOnly; SameSite=Lax`;
  }
}
