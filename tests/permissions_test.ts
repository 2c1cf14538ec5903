// nexo runs with the narrow permission set the README documents (and `deno task compile` bakes in, with
// /etc/nexo as the folder): network, files only in its own folder, a short list of environment variables,
// the system CA store. This runs the real server that way and shows it serves, and cannot read elsewhere.

import assert from "node:assert/strict";
import { startEchoUpstream } from "./upstreams.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ENV_ALLOWED = "NEXO_CONFIG,NEXO_LOG_FORMAT,NEXO_LOG_LEVEL,HOME,LOG_TOKENS,LOG_STREAM";

Deno.test("nexo serves with only the documented permissions, scoped to its folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-perm-" });
  const app = startEchoUpstream();
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `base_dir: ${dir}\nissuer: internal\nlisten: "127.0.0.1:0"\nproxies:\n  "a.test":\n    upstream: ${app.url}\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      `--allow-env=${ENV_ALLOWED}`,
      "--allow-sys",
      MAIN,
      "server",
      "--config",
      `${dir}/config.yaml`,
      "--log-format",
      "json",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  try {
    while (!/"protocol":"https"/.test(output)) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`nexo exited:\n${output}`);
      output += value;
    }
    const port = Number(/"addr":"127\.0\.0\.1:(\d+)","protocol":"https"/.exec(output)![1]);
    const curl = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--cacert",
        `${dir}/ca/root.crt`,
        "--resolve",
        `a.test:${port}:127.0.0.1`,
        `https://a.test:${port}/x`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(curl.stdout)).path, "/x");
    // The config outside the allowed folder would not even load: prove the sandbox holds.
    const outside = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=${dir}`,
        `--allow-env=${ENV_ALLOWED}`,
        MAIN,
        "check",
        "--config",
        "/etc/hostname",
      ],
      stderr: "piped",
    }).output();
    assert.notEqual(outside.code, 0);
    assert.match(new TextDecoder().decode(outside.stderr), /NotCapable|permission|Requires read access/i);
  } finally {
    child.kill("SIGTERM");
    for (;;) if ((await reader.read()).done) break;
    await child.status;
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
