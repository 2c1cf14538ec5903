// nexo runs with the narrow permission set the README documents (and `deno task compile` bakes in, with
// /etc/nexo as the folder): network, files only in its own folder, a short list of environment variables,
// the system CA store. This runs the real server with exactly the flags `deno task compile` ships, shows it
// serves, and shows those flags deny writes and reads elsewhere, subprocesses, FFI and unlisted variables.

import assert from "node:assert/strict";
import { bundledMain } from "./bundle.ts";
import { shippedPermissionFlags } from "./harness.ts";
import { startEchoUpstream } from "./upstreams.ts";

const MAIN = await bundledMain();
const PROBE = new URL("./testdata/sandbox_probe.ts", import.meta.url).pathname;
const ENV_ALLOWED = "NEXO_CONFIG,NEXO_LOG_FORMAT,NEXO_LOG_LEVEL,HOME,DENO_USR2_MEMORY_TRIM";

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
      ...await shippedPermissionFlags(dir),
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
    assert.match(new TextDecoder().decode(outside.stderr), /may not read it/);
  } finally {
    child.kill("SIGTERM");
    for (;;) if ((await reader.read()).done) break;
    await child.status;
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the shipped permission flags deny writes and reads outside nexo's folder, subprocesses and FFI", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-perm-" });
  const outside = await Deno.makeTempDir({ prefix: "nexo-perm-outside-" });
  try {
    const flags = await shippedPermissionFlags(dir);
    // The set itself: no blanket grants, nothing that runs code outside Deno's sandbox.
    assert.ok(
      flags.includes(`--allow-write=${dir}`) && flags.includes(`--allow-read=${dir}`),
      flags.join(" "),
    );
    for (const forbidden of ["--allow-all", "--allow-run", "--allow-ffi", "--allow-write", "--allow-read"]) {
      assert.ok(!flags.includes(forbidden), `${forbidden} is not granted`);
    }
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", ...flags, PROBE, dir, outside],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const results = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.deepEqual(results, {
      writeInside: "ok",
      writeOutside: "NotCapable",
      readUnrelated: "NotCapable",
      readOutsideDir: "NotCapable",
      subprocess: "NotCapable",
      ffi: "NotCapable",
      envUnlisted: "NotCapable",
    });
    assert.deepEqual([...Deno.readDirSync(outside)], [], "nothing was written outside");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("with the shipped flags nexo looks for its default config where those flags let it read", async () => {
  const home = await Deno.makeTempDir({ prefix: "nexo-perm-home-" });
  try {
    const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
    const flags = (denoJson.tasks.compile as string).split(/\s+/).filter((arg) => arg.startsWith("--allow-"));
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, MAIN, "check"],
      clearEnv: true,
      env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
    if (Deno.uid() === 0) {
      // `sudo nexo server` with the compiled binary: /etc/nexo, which its --allow-read covers (the file need not
      // exist on this machine; what matters is that nexo looked there and was allowed to).
      assert.ok(!said.includes(`${home}/.nexo`), said);
      if (output.code !== 0) assert.match(said, /^\/etc\/nexo\/config\.yaml:/, said);
      assert.doesNotMatch(said, /may not read it/);
    } else {
      // Anyone else gets ~/.nexo, which the compiled binary may not read: the message says so and how to fix it.
      assert.equal(output.code, 1);
      assert.match(
        said,
        new RegExp(`^${home}/\\.nexo/config\\.yaml: cannot read the config file: this nexo may not read it`),
      );
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
