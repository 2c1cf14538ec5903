import assert from "node:assert/strict";
import type { FromWorker } from "./messages.ts";
import { reportCrashes, type WorkerScope } from "./worker_crash.ts";

/** A worker scope that records what reportCrashes() does with it. */
function fakeScope() {
  const target = new EventTarget();
  const posted: FromWorker[] = [];
  let closed = 0;
  const scope = {
    addEventListener: (type: string, listener: (event: Event) => void) =>
      target.addEventListener(type, listener),
    postMessage: (message: FromWorker) => posted.push(message),
    close: () => closed++,
  } as unknown as WorkerScope;
  return { scope, target, posted, closed: () => closed };
}

Deno.test("reportCrashes() turns an uncaught error into one crashed message and closes the worker", () => {
  const { scope, target, posted, closed } = fakeScope();
  reportCrashes(scope);
  const error = new ErrorEvent("error", {
    error: new Error("boom"),
    message: "Uncaught Error: boom",
    cancelable: true,
  });
  target.dispatchEvent(error);
  assert.ok(error.defaultPrevented, "Deno does not print it");
  const rejection = new Event("unhandledrejection", { cancelable: true });
  Object.assign(rejection, { reason: new Error("later") });
  target.dispatchEvent(rejection);
  assert.ok(rejection.defaultPrevented);
  assert.deepEqual(posted, [{ type: "crashed", error: "boom" }], "reported once");
  assert.equal(closed(), 1);
});

Deno.test("reportCrashes() reports a rejected promise's reason", () => {
  const { scope, target, posted } = fakeScope();
  reportCrashes(scope);
  const rejection = new Event("unhandledrejection", { cancelable: true });
  Object.assign(rejection, { reason: "not an Error" });
  target.dispatchEvent(rejection);
  assert.deepEqual(posted, [{ type: "crashed", error: "not an Error" }]);
});
