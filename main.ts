// nexo's entry point: hands argv to lib/cli.ts and exits with its code. Nothing else belongs here.

import { runCli } from "./lib/cli.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
