// Every timer in lib/ (a test keeps it so). Deno 2.9.6's global setTimeout and setInterval are Node's
// (node:timers): the first call loads Deno's Node compatibility layer (util/inspect, errors, validators,
// async_hooks...) into the isolate, +3.3 MiB RSS in an empty script and 1.0-1.5 MiB of nexo's idle. Underneath
// is deno_core's own timer list, the one Deno.serve, fetch and AbortSignal.timeout use, which Deno exposes as
// Deno[Deno.internal].core; timers go there when it is present and to the globals otherwise.

/** A pending timer from `startTimer` or `startInterval`; only `stopTimer` and `unrefTimer` take it. */
export type Timer = { readonly [timerBrand]: true };
declare const timerBrand: unique symbol;

/** The part of deno_core's timer list nexo uses (ext/core's 01_timers.js in Deno 2.9.6). */
interface CoreTimers {
  createTimer(
    callback: () => void,
    ms: number,
    args: undefined,
    isRepeat: boolean,
    isRefed: boolean,
    isSystem: boolean,
  ): object;
  cancelTimer(timer: object): void;
  unrefTimer(timer: object): void;
}

/** deno_core's timers, or null (another Deno version): then the globals. Exported for tests. */
export const CORE_TIMERS: CoreTimers | null = findCoreTimers();

function findCoreTimers(): CoreTimers | null {
  // deno-lint-ignore no-explicit-any
  const core = (Deno as any)[(Deno as any).internal]?.core;
  const fits = ["createTimer", "cancelTimer", "unrefTimer"].every((name) =>
    typeof core?.[name] === "function"
  );
  return fits ? core as CoreTimers : null;
}

/**
 * Calls `run` once, `ms` from now (at least 1 ms; values outside 1 to 2^31-1 mean 1, as for setTimeout), unless
 * stopped first. A pending timer keeps the process alive until `unrefTimer`. An exception `run` throws is an
 * uncaught exception, as from setTimeout.
 */
export function startTimer(run: () => void, ms: number): Timer {
  if (CORE_TIMERS !== null) return CORE_TIMERS.createTimer(run, ms, undefined, false, true, false) as Timer;
  return setTimeout(run, ms) as unknown as Timer;
}

/** Calls `run` every `ms` (as `startTimer`) until stopped. */
export function startInterval(run: () => void, ms: number): Timer {
  if (CORE_TIMERS !== null) return CORE_TIMERS.createTimer(run, ms, undefined, true, true, false) as Timer;
  return setInterval(run, ms) as unknown as Timer;
}

/** Stops a timer; a no-op for undefined, and for a timer that has fired (once) or was stopped already. */
export function stopTimer(timer: Timer | undefined): void {
  if (timer === undefined) return;
  if (CORE_TIMERS !== null) CORE_TIMERS.cancelTimer(timer);
  else clearTimeout(timer as unknown as number);
}

/** Lets the process exit while `timer` is pending (Deno.unrefTimer for these timers). */
export function unrefTimer(timer: Timer): void {
  if (CORE_TIMERS !== null) CORE_TIMERS.unrefTimer(timer);
  else Deno.unrefTimer(timer as unknown as number);
}
