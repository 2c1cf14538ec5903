// scripts/install.sh, staged into a temporary root (DESTDIR): what it installs, with which modes, a launcher
// whose permission flags are exactly the compiled binary's, a config it never overwrites, a systemd unit that
// systemd-analyze accepts, and an installed nexo that runs (`version`, `check`) from the staged files.

import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const LIB = "/usr/local/lib/nexo";

/**
 * Seeds the staged Deno cache with this machine's npm packages and downloads (esbuild, which `deno task
 * build` runs), so the script finds them there instead of fetching them again (the test then needs no
 * network for them).
 */
async function seedCache(stage: string): Promise<void> {
  const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  await Deno.mkdir(`${stage}${LIB}/cache`, { recursive: true });
  for (const part of ["npm", "dl"]) {
    if (!(await Deno.stat(`${denoDir}/${part}`).then(() => true, () => false))) continue;
    const copy = await new Deno.Command("cp", {
      args: ["-R", `${denoDir}/${part}`, `${stage}${LIB}/cache/${part}`],
    }).output();
    assert.equal(copy.code, 0, "seeding the staged Deno cache");
  }
}

/** Runs the install script into `stage`; `deno` is the binary it copies (unset: fetched from npm). */
async function install(stage: string, deno: string | undefined): Promise<string> {
  // The test's own environment (proxy and CA settings reach npm and Deno's downloads), minus what the
  // script reads.
  const env = { ...Deno.env.toObject(), DESTDIR: stage };
  delete (env as Record<string, string>).PREFIX;
  delete (env as Record<string, string>).DENO;
  if (deno) Object.assign(env, { DENO: deno });
  const output = await new Deno.Command("sh", {
    args: [`${ROOT}scripts/install.sh`],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, text);
  return text;
}

/** The launcher with its absolute paths moved under `stage`, run with `args` (and `env` added). */
async function runStaged(
  stage: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const launcher = (await Deno.readTextFile(`${stage}/usr/local/bin/nexo`))
    .replaceAll(`"${LIB}`, `"${stage}${LIB}`)
    .replaceAll("/etc/nexo", `${stage}/etc/nexo`);
  const script = `${stage}/nexo-staged`;
  await Deno.writeTextFile(script, launcher);
  const output = await new Deno.Command("sh", {
    args: [script, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: output.code,
    out: new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
  };
}

/** The `--allow-*`, `--v8-flags`, `--unstable-*` and `--no-code-cache` flags of `deno task compile`. */
async function compileFlags(): Promise<string[]> {
  const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.compile as string;
  return task.split(/\s+/).filter((arg) => /^--(allow-|v8-flags=|unstable-|no-code-cache$)/.test(arg));
}

const mode = async (path: string) => ((await Deno.stat(path)).mode ?? 0) & 0o777;

Deno.test("scripts/install.sh stages nexo with the compiled binary's permissions and a working launcher", async () => {
  const stage = await Deno.makeTempDir({ prefix: "nexo-install-" });
  try {
    await seedCache(stage);
    const said = await install(stage, Deno.execPath());
    assert.match(said, /config\.yaml: ok/, "the installed nexo checked the config skeleton");
    assert.equal(await mode(`${stage}/usr/local/bin/nexo`), 0o755);
    assert.equal(await mode(`${stage}${LIB}/bin/deno`), 0o755);
    assert.equal(await mode(`${stage}/etc/nexo/config.yaml`), 0o600, "the config will hold the API token");
    assert.equal(await mode(`${stage}/etc/nexo`), 0o750);
    const tests = [...Deno.readDirSync(`${stage}${LIB}/app/lib/config`)].filter((e) =>
      e.name.endsWith("_test.ts")
    );
    assert.deepEqual(tests, [], "no tests installed");
    // The launcher runs the bundle, built from the installed sources, the ACME worker beside it.
    assert.ok((await Deno.stat(`${stage}${LIB}/app/dist/acme_worker.js`)).isFile);

    const launcher = await Deno.readTextFile(`${stage}/usr/local/bin/nexo`);
    const exec = launcher.split("\n").find((line) => line.startsWith("exec "))!;
    const flags = exec.split(/\s+/).filter((arg) =>
      /^--(allow-|v8-flags=|unstable-|no-code-cache$)/.test(arg)
    );
    assert.deepEqual(flags, await compileFlags(), "exactly the flags deno task compile bakes in");
    assert.ok(!launcher.includes(stage), "the launcher names the final paths, not the staging root");
    assert.ok(exec.includes(`"${LIB}/app/dist/main.js"`), exec);
    assert.match(launcher, /NEXO_CONFIG="\$\{NEXO_CONFIG:-\/etc\/nexo\/config\.yaml\}"/);

    const version = await runStaged(stage, ["version"]);
    assert.equal(version.code, 0, version.out);
    assert.match(version.out, /^nexo \S+ \(deno 2\.9\.6\)/);
    // No --config: the launcher's default finds /etc/nexo/config.yaml, read under the narrow flags.
    const check = await runStaged(stage, ["check"]);
    assert.equal(check.code, 0, check.out);
    assert.match(check.out, /config\.yaml: ok/);

    // `nexo trust` from the installed launcher: it alone may run NSS's certutil, for a local CA's config.
    const home = `${stage}/home`;
    await Deno.mkdir(home);
    await Deno.writeTextFile(
      `${stage}/etc/nexo/local.yaml`,
      `base_dir: /etc/nexo/local\nissuer: internal\nproxies:\n  "app.localhost":\n    upstream: http://127.0.0.1:3000\n`
        .replaceAll("/etc/nexo", `${stage}/etc/nexo`),
    );
    const trusted = await runStaged(stage, [
      "trust",
      "--config",
      `${stage}/etc/nexo/local.yaml`,
      "--stores",
      "nss",
    ], {
      HOME: home,
    });
    assert.equal(trusted.code, 0, trusted.out);
    assert.match(trusted.out, /added +browsers .*\.pki\/nssdb: nexo local CA [0-9a-f]{16}/);
    const untrusted = await runStaged(stage, [
      "untrust",
      "--config",
      `${stage}/etc/nexo/local.yaml`,
      "--stores",
      "nss",
    ], {
      HOME: home,
    });
    assert.equal(untrusted.code, 0, untrusted.out);
    assert.match(untrusted.out, /removed +browsers/);
    // Any other command may run only the exec DNS hook, as the compiled binary.
    const runGrants = launcher.split("\n").find((line) => line.startsWith("exec "))!.match(
      /--allow-run=\S+/g,
    );
    assert.deepEqual(runGrants, ["--allow-run=/etc/nexo/dns-hook"]);

    // systemd accepts the unit once its ExecStart exists (here: the staged launcher).
    const unit = (await Deno.readTextFile(`${stage}/etc/systemd/system/nexo.service`))
      .replace("/usr/local/bin/nexo", `${stage}/usr/local/bin/nexo`);
    await Deno.writeTextFile(`${stage}/nexo.service`, unit);
    const verify = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${stage}/nexo.service`],
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    if (verify !== null) {
      const complaints = new TextDecoder().decode(verify.stderr) + new TextDecoder().decode(verify.stdout);
      assert.equal(complaints.trim(), "", "systemd-analyze verify");
    }

    // Again, as an upgrade: the config is kept, the sources replaced whole.
    await Deno.writeTextFile(`${stage}/etc/nexo/config.yaml`, "# edited\n", { append: true });
    await Deno.writeTextFile(`${stage}${LIB}/app/lib/stale.ts`, "");
    const again = await install(stage, Deno.execPath());
    assert.match(again, /kept \/etc\/nexo\/config\.yaml/);
    assert.match(await Deno.readTextFile(`${stage}/etc/nexo/config.yaml`), /# edited\n$/);
    await assert.rejects(Deno.stat(`${stage}${LIB}/app/lib/stale.ts`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
});

Deno.test("scripts/install.sh fetches the pinned Deno from npm when none is given", async () => {
  const stage = await Deno.makeTempDir({ prefix: "nexo-install-npm-" });
  try {
    await seedCache(stage);
    await install(stage, undefined);
    const version = await new Deno.Command(`${stage}${LIB}/bin/deno`, {
      args: ["--version"],
      stdout: "piped",
    })
      .output();
    assert.match(new TextDecoder().decode(version.stdout), /^deno 2\.9\.6 /);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
});

Deno.test("scripts/install.sh refuses to install into / without root", async () => {
  if (Deno.uid() !== 0) {
    const output = await new Deno.Command("sh", { args: [`${ROOT}scripts/install.sh`], stderr: "piped" })
      .output();
    assert.equal(output.code, 1);
    assert.match(new TextDecoder().decode(output.stderr), /run it as root/);
    return;
  }
  // As root (this machine, CI): the same check, seen through a user that is not root.
  const output = await new Deno.Command("su", {
    args: ["nobody", "-s", "/bin/sh", "-c", `sh ${ROOT}scripts/install.sh`],
    stderr: "piped",
  }).output();
  assert.equal(output.code, 1);
  assert.match(new TextDecoder().decode(output.stderr), /run it as root/);
});
