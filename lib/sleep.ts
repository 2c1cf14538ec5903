// Waiting that an AbortSignal can cut short; shared by the polling loops (DNS propagation, file locks).

import { startTimer, stopTimer } from "./timers.ts";

/** Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts (at once if it has). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const onAbort = () => {
      stopTimer(timer);
      reject(signal?.reason);
    };
    const timer = startTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
