// Imported first by worker.ts, before anything that loads acme-client: the `debug` package under acme-client
// enumerates process.env when it loads, which needs env permission for every variable. The worker has no env
// permission and needs none, so Node's view of the environment is emptied here. Nothing else belongs here.

import process from "node:process";

Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true, enumerable: true });
