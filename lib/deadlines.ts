// Coarse deadlines for the request path. Deno 2.9.6's setTimeout builds a Node-style Timeout object per call:
// two timers per proxied request (the response head and body deadlines) were ~4% of the serving thread
// under load (measured before lib/timers.ts, whose timers are lighter but still a list insert each). Here
// one interval timer checks every pending deadline each TICK_MS instead, so starting and cancelling one is a
// Set insert and delete. A deadline fires at or after its time, never before, and at most TICK_MS late: fine
// for timeouts of seconds.

import { startInterval, stopTimer, type Timer } from "./timers.ts";

/** How often pending deadlines are checked, in ms: the most a deadline fires late. */
export const TICK_MS = 50;

/** A pending deadline; pass it to `cancelDeadline`. */
export interface Deadline {
  readonly at: number;
  readonly onExpiry: () => void;
}

const pending = new Set<Deadline>();
let ticker: Timer | undefined;

/**
 * Calls `onExpiry` once, `ms` from now (rounded up to the next tick), unless cancelled first. Returns undefined
 * (no deadline) when `ms` is not finite or not below 2^31, like "no timeout".
 */
export function startDeadline(ms: number, onExpiry: () => void): Deadline | undefined {
  if (!Number.isFinite(ms) || ms >= 2 ** 31) return undefined;
  const deadline = { at: performance.now() + Math.max(0, ms), onExpiry };
  pending.add(deadline);
  // A pending deadline keeps the process alive, as a timer would; the ticker stops when none is left.
  ticker ??= startInterval(tick, TICK_MS);
  return deadline;
}

/** Cancels a deadline; a no-op for undefined or one that fired or was cancelled already. */
export function cancelDeadline(deadline: Deadline | undefined): void {
  if (deadline === undefined) return;
  pending.delete(deadline);
  if (pending.size === 0) stopTicker();
}

function tick(): void {
  const now = performance.now();
  for (const deadline of pending) {
    if (deadline.at > now) continue;
    pending.delete(deadline);
    try {
      deadline.onExpiry();
    } catch (error) {
      // One failing callback must not keep the others from firing; surface it like an uncaught timer error.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  if (pending.size === 0) stopTicker();
}

function stopTicker(): void {
  stopTimer(ticker);
  ticker = undefined;
}
