// The README's commands run as written on the README's machine (a fresh Debian with Node/npm): every line of
// its ```sh blocks is run here exactly as printed, or named in RUN_ELSEWHERE with what runs it, and every
// `nexo ...` the README shows (inline or in a block) is accepted by nexo's own command-line parser. A command
// added to the README without either fails here, so the README cannot drift from the code.
//
// Lines run through bash, in a copy of the repository (so state the examples write stays out of the
// checkout), with HOME a fresh folder (npm's and Deno's caches are kept, as a new user's would be warm after
// the README's first command). Ctrl-C is a SIGINT to the command's process group, as a terminal sends it.

import assert from "node:assert/strict";
import { PROGRAM } from "../lib/cli.ts";
import { parseArgs } from "../lib/cli_args.ts";
import { openInChromium } from "./chromium.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const README = Deno.readTextFileSync(`${ROOT}README.md`);

/** ```sh lines the test does not run, each with what does run it (kept exact: a stale entry fails). */
const RUN_ELSEWHERE: Record<string, string> = {
  "npx -y deno@2.9.6 task test": "CI: .ci/run is this line (checked below), on a clean clone of every stop",
  "npx -y deno@2.9.6 task ok": "the test command (scripts/test.sh) runs it",
  "npx -y deno@2.9.6 task soak --duration 10m": "the test command runs the soak for 2m; 10m by hand",
  "npx -y deno@2.9.6 task bench": "by hand (15-25 minutes); docs/benchmarks.md holds its last output",
  "sudo sh scripts/install.sh": "tests/install_test.ts, staged into a temporary DESTDIR",
  "npx -y deno@2.9.6 task build": "tests/bundle.ts, once for the end-to-end tests, which run the bundle",
  "scripts/tls_audit.sh app.example.com": "needs a public name; the demo's line below is the same script",
  "sudo nexo doctor": "tests/doctor_test.ts, against challtestsrv, the fake Cloudflare and Pebble",
  "sudo nexo doctor --write-test": "tests/doctor_test.ts (its Cloudflare step)",
};

/** The shipped-permissions line is run by tests/permissions_test.ts with /etc/nexo moved to a temp folder. */
const NARROW_PERMISSIONS_LINE =
  /^DENO_LOG=\S+ MALLOC_ARENA_MAX=1 DENO_USR2_MEMORY_TRIM=1 npx -y deno@2\.9\.6 run .* dist\/main\.js server --config \/etc\/nexo\/config\.yaml$/;

/** Each command line of the README's ```sh blocks, without its trailing comment (bash drops it anyway). */
function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const block of markdown.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)) {
    for (const raw of block[2]!.split("\n")) {
      const line = raw.trim();
      if (line !== "" && !line.startsWith("#")) lines.push(withoutComment(line));
    }
  }
  return lines;
}

/** A line without its trailing `# comment`. */
function withoutComment(line: string): string {
  return line.replace(/\s+#.*$/, "");
}

/** Every `nexo ...` invocation in the README's code: inline spans, blocks and `task nexo ...` lines. */
function nexoInvocations(markdown: string): string[][] {
  const code = [
    ...[...markdown.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].flatMap((m) => m[1]!.split("\n")),
    ...[...markdown.replace(/^ *```[\s\S]*?^ *```$/gm, "").matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!),
  ];
  const invocations: string[][] = [];
  for (const text of code) {
    for (const part of withoutComment(text.trim()).split(/&&|\|\||;/)) {
      const words = part.trim().replace(/[[\]]/g, "").split(/\s+/);
      const at = words.indexOf("nexo");
      const isCommand = at === 0 || (at > 0 && words[at - 1] === "task") || words[at - 1] === "sudo";
      if (at === -1 || !isCommand || words.length === at + 1) continue;
      invocations.push(words.slice(at + 1));
    }
  }
  return invocations;
}

Deno.test("every `nexo ...` the README shows is a command nexo accepts", () => {
  const invocations = nexoInvocations(README);
  assert.ok(invocations.length >= 10, `found ${invocations.length}`);
  for (const args of invocations) {
    // `|` in a synopsis lists choices: each must parse.
    const parsed = parseArgs(PROGRAM, args.map((arg) => arg.split("|")[0]!));
    assert.notEqual(
      parsed.kind,
      "print",
      `nexo ${args.join(" ")}: ${parsed.kind === "print" ? parsed.text : ""}`,
    );
  }
  // Every command nexo has is in the README's command-line synopsis.
  const synopsis = /## Command line\n\n```\n([\s\S]*?)```/.exec(README)![1]!;
  for (const command of PROGRAM.commands) {
    assert.match(
      synopsis,
      new RegExp(`^nexo ${command.name}\\b`, "m"),
      `nexo ${command.name} in the synopsis`,
    );
  }
});

Deno.test("every README command line is run by this test or names what runs it", async () => {
  const lines = shellLines(README);
  const runHere = [...DEMO_LINES, ...CHECKOUT_LINES];
  for (const line of lines) {
    const known = runHere.includes(line) || line in RUN_ELSEWHERE || NARROW_PERMISSIONS_LINE.test(line);
    assert.ok(known, `README line not run by any test: ${line}`);
  }
  for (const line of [...runHere, ...Object.keys(RUN_ELSEWHERE)]) {
    assert.ok(lines.includes(line), `no longer in the README: ${line}`);
  }
  // The CI entry point is the README's test command, word for word.
  const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
  assert.ok(ci.split("\n").includes("npx -y deno@2.9.6 task test"), ci);
  // The narrow-permission line has exactly the compiled binary's permissions (tests/permissions_test.ts runs
  // those), and nexo's V8 flags.
  const narrow = lines.find((line) => NARROW_PERMISSIONS_LINE.test(line))!;
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const compileFlags = (denoJson.tasks.compile as string).split(/\s+/).filter((a) =>
    /^--(allow-|v8-flags=|no-code-cache$)/.test(a)
  );
  assert.deepEqual(
    narrow.split(/\s+/).filter((a) => /^--(allow-|v8-flags=|no-code-cache$)/.test(a)),
    compileFlags,
  );
});

const DEMO_LINES = [
  "npx -y deno@2.9.6 task demo",
  "npx -y deno@2.9.6 task nexo trust --stores nss --config ~/.nexo/demo/config.yaml",
  "npx -y deno@2.9.6 task nexo untrust --stores nss --config ~/.nexo/demo/config.yaml",
];
const CHECKOUT_LINES = [
  "npx -y deno@2.9.6 task nexo check --config examples/local.yaml",
  "npx -y deno@2.9.6 task nexo certs --config examples/local.yaml",
  "npx -y deno@2.9.6 task nexo server --config examples/local.yaml",
  "npx -y deno@2.9.6 task nexo version",
  "scripts/tls_audit.sh app.localhost:8443 127.0.0.1",
];

/** A README line started through bash in `cwd`, in its own process group (Ctrl-C reaches all of it). */
class ReadmeCommand {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(line: string, cwd: string, home: string) {
    this.#child = new Deno.Command("setsid", {
      args: ["bash", "-c", line],
      cwd,
      env: freshUserEnv(home),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, add: (text: string) => void) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
    };
    const out = collect(this.#child.stdout, (t) => this.#stdout += t);
    const err = collect(this.#child.stderr, (t) => this.#stderr += t);
    this.#done = Promise.all([out, err]).then(() => this.#child.status);
  }

  get output(): string {
    return this.#stdout + this.#stderr;
  }

  get stdout(): string {
    return this.#stdout;
  }

  /** Waits until the output matches `pattern` (or the command exits, or 60 s pass: an error with the output). */
  async waitFor(pattern: RegExp): Promise<void> {
    let exited = false;
    this.#done.then(() => exited = true);
    const deadline = Date.now() + 60_000;
    while (!pattern.test(this.output)) {
      if (exited) throw new Error(`exited before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within 60 s:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Ctrl-C, as a terminal sends it: SIGINT to the whole process group. Resolves once every process of the
   * line has exited, with nexo's last log line (the exit status is npx's: 130 after a SIGINT).
   */
  async interrupt(): Promise<string> {
    Deno.kill(-this.#child.pid, "SIGINT");
    await this.finished();
    return this.#stderr.trim().split("\n").at(-1) ?? "";
  }

  finished(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  kill(): void {
    try {
      Deno.kill(-this.#child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** The environment of a new user on the README's machine: this PATH, a fresh HOME, warm npm and Deno caches. */
function freshUserEnv(home: string): Record<string, string> {
  const realHome = Deno.env.get("HOME") ?? "/root";
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    NO_COLOR: "1",
    npm_config_cache: Deno.env.get("npm_config_cache") ?? `${realHome}/.npm`,
    DENO_DIR: Deno.env.get("DENO_DIR") ??
      `${Deno.env.get("XDG_CACHE_HOME") ?? `${realHome}/.cache`}/deno`,
  };
  // npm's registry settings (a proxy, a CA) live in the user's npmrc.
  try {
    Deno.statSync(`${realHome}/.npmrc`);
    env.npm_config_userconfig = `${realHome}/.npmrc`;
  } catch {
    // none: npm's defaults
  }
  for (const name of ["CI", "LANG", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function runToEnd(line: string, cwd: string, home: string): Promise<{ code: number; output: string }> {
  const command = new ReadmeCommand(line, cwd, home);
  const status = await command.finished();
  return { code: status.code, output: command.output };
}

/** A copy of the files a user's checkout has, so what the examples write lands outside this one. */
async function checkoutCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-readme-checkout-" });
  const copy = await new Deno.Command("cp", {
    args: ["-R", "main.ts", "deno.json", "deno.lock", "lib", "examples", "schema", "scripts", dir],
    cwd: ROOT,
  }).output();
  assert.equal(copy.code, 0);
  return dir;
}

Deno.test("the README's demo runs; its curl commands, TLS audit and browser trust work as written", async () => {
  const home = await Deno.makeTempDir({ prefix: "nexo-readme-home-" });
  const demo = new ReadmeCommand(DEMO_LINES[0]!, ROOT, home);
  try {
    await demo.waitFor(/Stop with Ctrl-C/);
    // Every curl command it printed, exactly as printed (they verify TLS against the demo's CA).
    const curls = demo.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("curl "));
    assert.ok(curls.length >= 2, demo.stdout);
    for (const curl of curls) {
      const result = await runToEnd(curl, ROOT, home);
      assert.equal(result.code, 0, `${curl}\n${result.output}`);
    }
    const audit = await runToEnd(CHECKOUT_LINES[4]!, ROOT, home);
    assert.equal(audit.code, 0, audit.output);
    // In a browser: refused, then trusted (the README's line), opened, and untrusted again.
    const url = "https://app.localhost:8443/";
    assert.equal((await openInChromium(url, home)).error, "ERR_CERT_AUTHORITY_INVALID");
    const trusted = await runToEnd(DEMO_LINES[1]!, ROOT, home);
    assert.equal(trusted.code, 0, trusted.output);
    const opened = await openInChromium(url, home);
    assert.equal(opened.error, null, opened.dom);
    assert.match(opened.dom, /Hello from the example app behind nexo/);
    const untrusted = await runToEnd(DEMO_LINES[2]!, ROOT, home);
    assert.equal(untrusted.code, 0, untrusted.output);
    assert.match(untrusted.output, /removed +browsers/);
    // nexo drained and said so (a second SIGINT from deno task used to kill it mid-drain, silently).
    assert.match(await demo.interrupt(), /"msg":"stopped"/, demo.output);
  } finally {
    demo.kill();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("the README's command-line examples run as written in a checkout", async () => {
  const checkout = await checkoutCopy();
  const home = await Deno.makeTempDir({ prefix: "nexo-readme-home-" });
  try {
    const check = await runToEnd(CHECKOUT_LINES[0]!, checkout, home);
    assert.equal(check.code, 0, check.output);
    assert.match(check.output, /app\.localhost/);
    const certs = await runToEnd(CHECKOUT_LINES[1]!, checkout, home);
    assert.equal(certs.code, 0, certs.output);
    const server = new ReadmeCommand(CHECKOUT_LINES[2]!, checkout, home);
    try {
      await server.waitFor(/listening.*https|"protocol":"https"/);
      assert.match(await server.interrupt(), /"msg":"stopped"/, server.output);
    } finally {
      server.kill();
    }
    // After a run, certs lists what the local CA issued.
    const after = await runToEnd(CHECKOUT_LINES[1]!, checkout, home);
    assert.equal(after.code, 0, after.output);
    assert.match(after.output, /app\.localhost/);
    const version = await runToEnd(CHECKOUT_LINES[3]!, checkout, home);
    assert.equal(version.code, 0, version.output);
    assert.match(version.output, /^nexo \d+\.\d+\.\d+ \(deno 2\.9\.6\)$/m);
  } finally {
    await Deno.remove(checkout, { recursive: true });
    await Deno.remove(home, { recursive: true });
  }
});
