// Choosing one upstream of a route for a request, by the route's `lb` policy, among those that take requests.
// Pure apart from the round-robin counter the caller keeps.

import type { LbPolicy } from "../config/types.ts";
import type { UpstreamHealth } from "./upstream_health.ts";

export interface PickContext {
  /** The client's address (after trusted_proxies), for ip_hash. */
  client: string;
  /** The upstream the client's lb cookie names, if it is one of the candidates' ids, for cookie. */
  pinned: UpstreamHealth | null;
  /** A counter the caller keeps per route: round robin and ties take turns by it. */
  turn: number;
}

/**
 * The upstream for a request among `candidates` (healthy and not tried yet), in route order; null when there
 * is none.
 */
export function pickUpstream(
  policy: LbPolicy,
  candidates: readonly UpstreamHealth[],
  context: PickContext,
): UpstreamHealth | null {
  if (candidates.length === 0) return null;
  switch (policy) {
    case "first":
      return candidates[0]!;
    case "round_robin":
      return candidates[context.turn % candidates.length]!;
    case "least_conn": {
      const fewest = Math.min(...candidates.map((c) => c.inFlight));
      const tied = candidates.filter((c) => c.inFlight === fewest);
      return tied[context.turn % tied.length]!;
    }
    case "ip_hash":
      return highestScore(candidates, context.client);
    case "cookie":
      return context.pinned !== null && candidates.includes(context.pinned)
        ? context.pinned
        : candidates[context.turn % candidates.length]!;
  }
}

/**
 * Rendezvous hashing: each client goes to the upstream scoring highest for it, so when one upstream leaves,
 * only its own clients move (and come back when it returns).
 */
function highestScore(candidates: readonly UpstreamHealth[], client: string): UpstreamHealth {
  let best = candidates[0]!;
  let bestScore = -1;
  for (const candidate of candidates) {
    const score = fnv1a(`${client}|${candidate.upstream.href}`);
    if (score > bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** FNV-1a, 32 bits: fast and spread well enough for a handful of upstreams. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
