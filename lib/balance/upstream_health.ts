// What nexo knows of one upstream of a balanced route: whether its active checks pass, how often its requests
// failed lately (passive health), how many requests it has in flight, and its last error. Kept across
// reloads for as long as a route still lists the upstream with the same health settings (balancers.ts).

import type { HealthCheck, PassiveHealth, UpstreamTlsMaterial } from "../config/types.ts";

export class UpstreamHealth {
  /** Whether active checks pass (true until they say otherwise, and without checks). */
  checkedUp = true;
  /** Checks passed, or failed, in a row. */
  #passes = 0;
  #fails = 0;
  /** When recent request failures happened (ms), oldest first, within the fail window. */
  #failures: number[] = [];
  /** Passive health took it out until then (ms); 0: not resting. */
  restingUntil = 0;
  inFlight = 0;
  /** Requests sent to it, and the ones that failed (connection error, timeout or 5xx). */
  requests = 0;
  failed = 0;
  lastError: string | null = null;
  /** When it last failed (ms); 0: never. */
  lastFailureAt = 0;

  constructor(
    readonly upstream: URL,
    readonly check: HealthCheck | null,
    readonly passive: PassiveHealth | null,
    /** How an https upstream's connections are made (the route's `upstream_tls`); checks use it too. */
    readonly tls: UpstreamTlsMaterial | null = null,
  ) {}

  /** Whether it takes requests at `nowMs`: checks pass and it is not resting after failures. */
  healthy(nowMs: number): boolean {
    return this.checkedUp && this.restingUntil <= nowMs;
  }

  /** A request to it failed; true when that took it out (passive health). */
  requestFailed(error: string, nowMs: number): boolean {
    this.failed++;
    this.lastError = error;
    this.lastFailureAt = nowMs;
    if (this.passive === null) return false;
    const since = nowMs - this.passive.failWindowMs;
    this.#failures = this.#failures.filter((at) => at > since);
    this.#failures.push(nowMs);
    if (this.#failures.length < this.passive.maxFails || this.restingUntil > nowMs) return false;
    // Out for a window, then tried again; the failures that took it out do not count again.
    this.restingUntil = nowMs + this.passive.failWindowMs;
    this.#failures = [];
    return true;
  }

  /**
   * An active check's result: whether the upstream takes requests now, when that changed, else null. Enough
   * passes in a row also end a rest passive health imposed: a passing check is fresher news than failures.
   */
  checked(ok: boolean, error: string | null, nowMs: number): boolean | null {
    if (this.check === null) return null;
    const before = this.healthy(nowMs);
    if (ok) {
      this.#passes++;
      this.#fails = 0;
    } else {
      this.#fails++;
      this.#passes = 0;
      this.lastError = error;
      this.lastFailureAt = nowMs;
    }
    if (this.#passes >= this.check.healthyAfter) {
      this.checkedUp = true;
      this.restingUntil = 0;
    }
    if (this.#fails >= this.check.unhealthyAfter) this.checkedUp = false;
    const after = this.healthy(nowMs);
    return after === before ? null : after;
  }
}

/**
 * The key under which an upstream's health is kept: its URL, the settings that judge it, and how it is
 * connected to (one upstream reached with another CA or client certificate is judged apart).
 */
export function healthKey(
  upstream: URL,
  check: HealthCheck | null,
  passive: PassiveHealth | null,
  tls: UpstreamTlsMaterial | null = null,
): string {
  return JSON.stringify([upstream.href, check, passive, tls?.id ?? null]);
}
