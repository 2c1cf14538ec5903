// Imported first by worker.ts (and by `nexo doctor` before its account lookup), before anything that loads
// acme-client: the `debug` package under acme-client enumerates process.env when it loads, which needs env
// permission for every variable. Neither has it nor needs it, so Node's view of the environment is emptied
// here. Nothing else belongs here.

import process from "node:process";

Object.defineProperty(process, "env", { value: {}, configurable: true, writable: true, enumerable: true });
