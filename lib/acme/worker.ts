// The ACME worker's entry point, started by supervisor.ts with narrowed Deno permissions (network only to the
// ACME server, the DNS API and the DNS servers; files only under base_dir and cert_dir; no env, run, ffi).
// It runs one job per message and posts results back. Nothing else lives here.

import { reportCrashes, type WorkerScope } from "./worker_crash.ts";
import { receiveAck, runJob } from "./worker_jobs.ts";

reportCrashes(self as unknown as WorkerScope);

// Typed by hand: the project's type environment is the main thread's (Window), not a worker's.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = (event) => {
  if (event.data.type === "job") runJob(event.data, (message) => scope.postMessage(message));
  else receiveAck(event.data);
};
