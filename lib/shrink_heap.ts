// Gives the main isolate's heap back to the OS after a rare burst of work on the main thread (an ACME job's
// messages and installed chain, a config reload's parse and validation). V8 grows the young generation
// (semi-spaces, up to --max-semi-space-size) whenever much of what it scavenges survives, as such a burst's
// objects do, and a regular major GC leaves it that size: measured with the bench/acme_cost.ts setup, new
// space went from 3.8 to 8 MiB over 15 issuances and to 13 MiB over 20 reloads, none of it in use, hence a
// creep of ~0.5 MiB of RSS per issuance or reload. The "last-resort" flavor (V8's
// CollectAllAvailableGarbage: memory-reducing mark-compacts, then the young generation shrunk) undoes that.
// Only with `--expose-gc` (lib/v8_flags.ts); otherwise nothing. With DENO_USR2_MEMORY_TRIM=1 the memory glibc
// keeps after the GC goes back too (below), and the end of a burst of traffic is such a rare burst of work.

import { gc } from "./stream_gc.ts";
import { startInterval, startTimer, stopTimer, type Timer, unrefTimer } from "./timers.ts";

/**
 * Whether Deno gives glibc's freed memory back on a SIGUSR2: `DENO_USR2_MEMORY_TRIM=1` (undocumented in Deno
 * 2.9.6; its handler runs a full GC and `malloc_trim`), which the environment nexo ships with sets
 * (lib/v8_flags.ts MALLOC_ENV). Read only when reading it is permitted, so never a permission prompt.
 */
const TRIM_BY_SIGNAL = (() => {
  const variable = "DENO_USR2_MEMORY_TRIM";
  try {
    return Deno.permissions.querySync({ name: "env", variable }).state === "granted" &&
      Deno.env.get(variable) === "1";
  } catch {
    return false;
  }
})();
let signalHandled = false;
/** How long after a GC glibc's memory is trimmed: V8's sweeper has freed the dead buffers by then. */
const SWEEP_MS = 1_000;
let trimPending: Timer | undefined;

/**
 * A full, memory-reducing GC of the main isolate, then (with DENO_USR2_MEMORY_TRIM=1) glibc's freed memory
 * handed back to the OS: 20-60 ms on the development machine (up to 160 under load), a pause every request in
 * flight waits out, so for rare events only (an ACME job, a settled reload, the end of a burst of traffic).
 */
export function shrinkHeap(): void {
  gc?.({ type: "major", flavor: "last-resort" });
  if (!TRIM_BY_SIGNAL) return;
  // A listener of nexo's own keeps the signal harmless: without any handler a SIGUSR2 ends the process.
  if (!signalHandled) {
    try {
      Deno.addSignalListener("SIGUSR2", () => {});
    } catch {
      return; // no listener, no signal
    }
    signalHandled = true;
  }
  // V8 frees the dead ArrayBuffers' memory on a background thread after the GC: a trim at once finds most of
  // it still allocated (measured: 2 MiB given back instead of 85). So the trim waits for that sweep.
  stopTimer(trimPending);
  trimPending = startTimer(() => {
    try {
      Deno.kill(Deno.pid, "SIGUSR2");
    } catch {
      // Not permitted after all: no trim, and nothing else changes.
    }
  }, SWEEP_MS);
  unrefTimer(trimPending);
}

const SETTLE_MS = 1_000;
let pending: Timer | undefined;

/**
 * shrinkHeap() once things have settled: `SETTLE_MS` after the last call. A burst of reloads (a script
 * rewriting the config in a loop) then costs one GC (20-60 ms on the development machine), not one each.
 */
export function shrinkHeapSoon(): void {
  if (gc === undefined) return;
  stopTimer(pending);
  pending = startTimer(shrinkHeap, SETTLE_MS);
  unrefTimer(pending);
}

/** How often the end of a burst of traffic is looked for. */
const BURST_CHECK_MS = 10_000;
/** At least this many requests finished within one check: a burst (100 requests a second). */
const BUSY_REQUESTS = 1_000;
/** At most this many: quiet enough for a GC's pause (10 requests a second). */
const QUIET_REQUESTS = 100;

/**
 * When a burst of traffic is over, for shrinkAfterBursts(): checked every BURST_CHECK_MS with the number of
 * requests finished so far, it says "shrink" at the first quiet check after one or more busy ones. So a
 * shrink, and its pause, comes once per burst and only when few requests are there to wait for it; steady
 * traffic between the two rates never triggers one, nor does a start under load that never lets up.
 */
export class BurstWatch {
  #seen: number;
  #busy = false;

  constructor(finishedSoFar: number) {
    this.#seen = finishedSoFar;
  }

  due(finished: number): boolean {
    const recent = finished - this.#seen;
    this.#seen = finished;
    if (recent >= BUSY_REQUESTS) {
      this.#busy = true;
      return false;
    }
    if (!this.#busy || recent > QUIET_REQUESTS) return false;
    this.#busy = false;
    return true;
  }
}

/**
 * shrinkHeap() once a burst of traffic is over (BurstWatch): the young generation the burst grew, and the
 * buffers it freed, which glibc keeps in its free lists (V8's own memory reducer, some 30 s after a load,
 * gives back only the heap). Returns the stop function.
 */
export function shrinkAfterBursts(finishedRequests: () => number): () => void {
  const watch = new BurstWatch(finishedRequests());
  const timer = startInterval(() => {
    if (watch.due(finishedRequests())) shrinkHeap();
  }, BURST_CHECK_MS);
  unrefTimer(timer);
  return () => stopTimer(timer);
}
