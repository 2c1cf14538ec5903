// `deno task compile` builds the single binary. It needs Deno's `denort` runtime, which `deno compile`
// downloads; where that host is unreachable (this project's CI), point DENORT_BIN at a denort binary to run
// this test. Without it the test is reported as ignored, with the reason in its name.

import assert from "node:assert/strict";
import { bundledMain } from "./bundle.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");

Deno.test({
  name: "deno task compile builds a binary that runs (ignored unless DENORT_BIN points at a denort binary)",
  ignore: !denort,
  async fn() {
    const out = await Deno.makeTempDir();
    await bundledMain(); // dist/, which the task compiles from
    try {
      const build = await new Deno.Command(Deno.execPath(), {
        args: [
          "compile",
          "--frozen",
          "--allow-net",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--unstable-worker-options",
          "--unstable-net",
          "--unstable-no-legacy-abort",
          "--include",
          "dist",
          "-o",
          `${out}/nexo`,
          "dist/main.js",
        ],
        cwd: ROOT,
        env: { DENORT_BIN: denort! },
        stderr: "piped",
      }).output();
      assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
      const version = await new Deno.Command(`${out}/nexo`, { args: ["version"], stdout: "piped" }).output();
      assert.match(new TextDecoder().decode(version.stdout), /^nexo \d+\.\d+\.\d+/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
