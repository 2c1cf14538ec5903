// What the ACME worker does with an error nothing in it caught: report it to the supervisor as a message and
// close, instead of letting Deno print "Uncaught (in worker)" on stderr, a line outside nexo's log format.
// The supervisor logs it and restarts the worker after a backoff, as for a worker that died.

import { errorMessage } from "../error_message.ts";
import type { FromWorker } from "./messages.ts";

/** The parts of a worker's global scope this needs (typed by hand: the project's types are the main thread's). */
export interface WorkerScope {
  addEventListener(type: "error", listener: (event: ErrorEvent) => void): void;
  addEventListener(type: "unhandledrejection", listener: (event: PromiseRejectionEvent) => void): void;
  postMessage(message: FromWorker): void;
  close(): void;
}

/** Installs the handlers; call once, first thing in the worker. */
export function reportCrashes(scope: WorkerScope): void {
  let crashed = false;
  const crash = (error: unknown) => {
    if (crashed) return;
    crashed = true;
    scope.postMessage({ type: "crashed", error: errorMessage(error) });
    scope.close();
  };
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    crash(event.error ?? event.message);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    crash(event.reason);
  });
}
