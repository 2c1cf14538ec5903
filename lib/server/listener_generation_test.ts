import assert from "node:assert/strict";
import { ListenerGeneration } from "./listener_generation.ts";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Retires `generation` with a deadline `deadlineInMs` from now; `shutAt()` is when it shut down (or null). */
function retireAndWatch(generation: ListenerGeneration, deadlineInMs: number) {
  const started = performance.now();
  let shutAt: number | null = null;
  // The generation's timers are unref'd (they must not keep nexo running): this one keeps the test's loop up.
  const alive = setInterval(() => {}, 1_000);
  const done = generation.retire(Date.now() + deadlineInMs, () => {
    shutAt = performance.now() - started;
    return Promise.resolve();
  }).finally(() => clearInterval(alive));
  return { done, shutAt: () => shutAt };
}

Deno.test("ListenerGeneration shuts down at once when nothing holds it", async () => {
  const watch = retireAndWatch(new ListenerGeneration(), 60_000);
  await watch.done;
  assert.ok(watch.shutAt()! < 50);
});

Deno.test("ListenerGeneration waits for its WebSockets until the last one closes or the deadline", async () => {
  const early = new ListenerGeneration();
  const release = early.hold("upgrade");
  const watchEarly = retireAndWatch(early, 60_000);
  await sleep(30);
  assert.equal(watchEarly.shutAt(), null, "held while the WebSocket is open");
  release();
  await watchEarly.done;

  const late = new ListenerGeneration();
  late.hold("upgrade");
  const watchLate = retireAndWatch(late, 40);
  await watchLate.done;
  assert.ok(watchLate.shutAt()! >= 35, "not before the deadline");
  assert.equal(late.upgrades, 1, "the WebSocket still open is closed by the shutdown");
});

Deno.test("ListenerGeneration gives a request body in flight at the deadline the grace, not the cut", async () => {
  // A retiring listener's shutdown cuts the bodies it is still reading: past the deadline, WebSockets no
  // longer count, but an upload does, for up to the grace.
  const generation = new ListenerGeneration({ requestGraceMs: 5_000 });
  generation.hold("upgrade");
  const release = generation.hold("request");
  const watch = retireAndWatch(generation, 30);
  await sleep(100);
  assert.equal(watch.shutAt(), null, "the upload keeps it up past the deadline");
  release();
  await watch.done;
  assert.ok(watch.shutAt()! < 1_000, "shut down as the upload ended, the WebSocket no longer waited for");
});

Deno.test("ListenerGeneration stops waiting for request bodies after the grace", async () => {
  // SO_REUSEPORT keeps handing the retiring listener new connections: a stream of uploads must not keep it
  // (and its cached certificates) alive for ever.
  const generation = new ListenerGeneration({ requestGraceMs: 60 });
  generation.hold("request");
  const watch = retireAndWatch(generation, 20);
  await watch.done;
  assert.ok(watch.shutAt()! >= 75, `waited deadline + grace, shut at ${watch.shutAt()} ms`);
  assert.equal(generation.requests, 1);
});

Deno.test("ListenerGeneration before its deadline waits for uploads and WebSockets alike", async () => {
  const generation = new ListenerGeneration({ requestGraceMs: 60_000 });
  const releaseUpload = generation.hold("request");
  const releaseSocket = generation.hold("upgrade");
  const watch = retireAndWatch(generation, 60_000);
  releaseUpload();
  releaseUpload(); // a second release changes nothing
  await sleep(30);
  assert.equal(watch.shutAt(), null, "the WebSocket still holds it");
  assert.equal(generation.requests, 0);
  releaseSocket();
  await watch.done;
  assert.equal(generation.upgrades, 0);
});

Deno.test("ListenerGeneration.expire() stops waiting for WebSockets but lets uploads finish", async () => {
  const sockets = new ListenerGeneration();
  sockets.hold("upgrade");
  const watchSockets = retireAndWatch(sockets, 60_000);
  sockets.expire();
  await watchSockets.done;
  assert.ok(watchSockets.shutAt()! < 50, "a stopping process does not wait for WebSockets");

  const uploads = new ListenerGeneration({ requestGraceMs: 60_000 });
  uploads.hold("upgrade");
  const release = uploads.hold("request");
  const watchUploads = retireAndWatch(uploads, 60_000);
  uploads.expire();
  uploads.expire();
  await sleep(30);
  assert.equal(watchUploads.shutAt(), null, "the upload in flight is read to the end");
  release();
  await watchUploads.done;
  let shutdowns = 0;
  await uploads.retire(0, () => Promise.resolve(void shutdowns++));
  assert.equal(shutdowns, 0, "retired once");
});
