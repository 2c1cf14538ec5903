// The ACME worker's entry point, started by supervisor.ts with narrowed Deno permissions (network only to the
// ACME server, the DNS API and the DNS servers; files only under base_dir and cert_dir; no env, run, ffi).
// It runs one job per message and posts results back. Nothing else lives here.

import process from "node:process";

// The `debug` package under acme-client enumerates process.env when it loads, which needs env permission
// for every variable; the worker has none and needs none, so Node's view of the environment is emptied
// before acme-client is imported (dynamically, below, so this runs first).
Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true, enumerable: true });

const { runJob } = await import("./worker_jobs.ts");

// Typed by hand: the project's type environment is the main thread's (Window), not a worker's.
const scope = self as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};
scope.onmessage = (event) => {
  runJob(event.data, (message) => scope.postMessage(message));
};
