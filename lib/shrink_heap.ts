// Gives the main isolate's heap back to the OS after a rare burst of work on the main thread (an ACME job's
// messages and installed chain, a config reload's parse and validation). V8 grows the young generation
// (semi-spaces, up to --max-semi-space-size) whenever much of what it scavenges survives, as such a burst's
// objects do, and a regular major GC leaves it that size: measured with the bench/acme_cost.ts setup, new
// space went from 3.8 to 8 MiB over 15 issuances and to 13 MiB over 20 reloads, none of it in use, hence a
// creep of ~0.5 MiB of RSS per issuance or reload. The "last-resort" flavor (V8's
// CollectAllAvailableGarbage: memory-reducing mark-compacts, then the young generation shrunk) undoes that.
// Only with `--expose-gc` (lib/v8_flags.ts); otherwise nothing.

import { gc } from "./stream_gc.ts";

/**
 * A full, memory-reducing GC of the main isolate: 20-60 ms on the development machine (up to 160 under load),
 * a pause every request in flight waits out, so for rare events only (an ACME job, a settled reload).
 */
export function shrinkHeap(): void {
  gc?.({ type: "major", flavor: "last-resort" });
}

const SETTLE_MS = 1_000;
let pending: ReturnType<typeof setTimeout> | undefined;

/**
 * shrinkHeap() once things have settled: `SETTLE_MS` after the last call. A burst of reloads (a script
 * rewriting the config in a loop) then costs one GC (20-60 ms on the development machine), not one each.
 */
export function shrinkHeapSoon(): void {
  if (gc === undefined) return;
  clearTimeout(pending);
  pending = setTimeout(shrinkHeap, SETTLE_MS);
  Deno.unrefTimer(pending);
}
