// `nexo trust` as a new user meets it: headless Chromium (a fresh HOME, no --ignore-certificate-errors)
// refuses the demo's certificate until `nexo trust` ran, opens the page after it, and refuses it again after
// `nexo untrust`. nexo runs with the permissions of `deno task nexo` (the README's way), or of the compiled
// binary, which may not run programs and prints the commands instead: those are run here as printed.

import assert from "node:assert/strict";
import { openInChromium } from "./chromium.ts";
import { bundledMain } from "./bundle.ts";
import { closedPort } from "./upstreams.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = await bundledMain();

/** The `--allow-*` flags of a deno.json task, with /etc/nexo moved to `dir` where given. */
async function taskFlags(task: string, dir?: string): Promise<string[]> {
  const text = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks[task] as string;
  const flags = text.split(/\s+/).filter((arg) => arg.startsWith("--allow-"));
  return dir === undefined ? flags : flags.map((flag) => flag.replaceAll("/etc/nexo", dir));
}

async function nexo(flags: string[], args: string[], home: string): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...args],
    env: { HOME: home, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, out };
}

/** `nexo demo` on free ports, with its state in `dir`; resolves once it serves. */
async function startDemo(dir: string, home: string) {
  const port = closedPort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "demo",
      "--dir",
      dir,
      "--port",
      String(port),
      "--http-port",
      String(closedPort()),
    ],
    env: { HOME: home },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("Stop with Ctrl-C")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`demo exited early:\n${printed}`);
    printed += value;
  }
  return {
    url: `https://app.localhost:${port}/`,
    port,
    config: `${dir}/config.yaml`,
    async stop() {
      child.kill("SIGINT");
      await reader.cancel();
      await child.status;
    },
  };
}

const HELLO = "Hello from the example app behind nexo";

Deno.test("nexo trust lets a browser open the demo without a certificate error, and untrust takes it back", async () => {
  const home = await Deno.makeTempDir({ prefix: "nexo-trust-home-" });
  const demo = await startDemo(`${home}/demo`, home);
  try {
    const flags = await taskFlags("nexo");
    const before = await openInChromium(demo.url, home);
    assert.equal(before.error, "ERR_CERT_AUTHORITY_INVALID", before.dom);
    assert.ok(!before.dom.includes(HELLO));

    const trusted = await nexo(flags, ["trust", "--config", demo.config, "--stores", "nss"], home);
    assert.equal(trusted.code, 0, trusted.out);
    assert.match(
      trusted.out,
      /added +browsers \(NSS: Chromium, Firefox\) .*\/\.pki\/nssdb: nexo local CA [0-9a-f]{16}/,
    );
    const after = await openInChromium(demo.url, home);
    assert.equal(after.error, null, after.dom);
    assert.ok(after.dom.includes(HELLO), after.dom);

    // Again: nothing added twice.
    const again = await nexo(flags, ["trust", "--config", demo.config, "--stores", "nss"], home);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /present +browsers/);

    const untrusted = await nexo(flags, ["untrust", "--config", demo.config, "--stores", "nss"], home);
    assert.equal(untrusted.code, 0, untrusted.out);
    assert.match(untrusted.out, /removed +browsers/);
    const gone = await openInChromium(demo.url, home);
    assert.equal(gone.error, "ERR_CERT_AUTHORITY_INVALID", gone.dom);
  } finally {
    await demo.stop();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test({
  name: "nexo trust adds the root to the system store, where curl finds it, and untrust removes it",
  // It changes what this whole machine trusts: only on CI's fresh machine, as root.
  ignore: Deno.env.get("CI") !== "true" || Deno.uid() !== 0,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "nexo-trust-home-" });
    const demo = await startDemo(`${home}/demo`, home);
    const flags = await taskFlags("nexo");
    const curl = () =>
      new Deno.Command("curl", {
        args: ["-sS", "--resolve", `app.localhost:${demo.port}:127.0.0.1`, demo.url],
        stdout: "piped",
        stderr: "piped",
      }).output();
    try {
      assert.equal((await curl()).code, 60, "curl refuses the local CA before trust");
      const trusted = await nexo(flags, ["trust", "--config", demo.config, "--stores", "system"], home);
      assert.equal(trusted.code, 0, trusted.out);
      assert.match(trusted.out, /added +system store/);
      const ok = await curl();
      assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
      assert.match(new TextDecoder().decode(ok.stdout), new RegExp(HELLO));
      const untrusted = await nexo(flags, ["untrust", "--config", demo.config, "--stores", "system"], home);
      assert.equal(untrusted.code, 0, untrusted.out);
      assert.equal((await curl()).code, 60, "curl refuses it again after untrust");
    } finally {
      await nexo(flags, ["untrust", "--config", demo.config, "--stores", "system"], home);
      await demo.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("the compiled binary may not run programs: nexo trust prints the commands, which work as printed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-trust-" });
  const home = `${dir}/home`;
  await Deno.mkdir(home);
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `base_dir: ${dir}\nissuer: internal\nproxies:\n  "app.localhost":\n    upstream: http://127.0.0.1:3000\n`,
  );
  try {
    const said = await nexo(
      await taskFlags("compile", dir),
      ["trust", "--config", `${dir}/config.yaml`],
      home,
    );
    assert.equal(said.code, 1, said.out);
    assert.match(said.out, /skipped +system store .*may not run programs.*sudo cp .*root\.crt/);
    assert.match(said.out, /skipped +browsers .*may not run programs/);
    // The NSS command, run exactly as printed (its database made first, as Chromium does at its first start).
    const command = /run: (certutil -d sql:\S+ -A -t C,, -n "[^"]+" -i \S+)/.exec(said.out)![1]!;
    await Deno.mkdir(`${home}/.pki/nssdb`, { recursive: true });
    const init = await new Deno.Command("certutil", {
      args: ["-d", `sql:${home}/.pki/nssdb`, "-N", "--empty-password"],
    })
      .output();
    assert.equal(init.code, 0);
    const ran = await new Deno.Command("sh", { args: ["-c", command], env: { HOME: home } }).output();
    assert.equal(ran.code, 0, new TextDecoder().decode(ran.stderr));
    const listed = await new Deno.Command("certutil", {
      args: ["-d", `sql:${home}/.pki/nssdb`, "-L"],
      stdout: "piped",
    })
      .output();
    assert.match(new TextDecoder().decode(listed.stdout), /nexo local CA [0-9a-f]{16} +C,,/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
